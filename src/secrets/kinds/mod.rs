//! The kinds of managed secret, one file each.

pub mod api_key;
pub mod jwt_key;
pub mod postgres_role;
pub mod redis_acl;
