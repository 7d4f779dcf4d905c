//! (being written: see src/logins/mod.rs)
