//! The audit log's tamper evidence beyond its hash chain: keys derived from the master key
//! (`keys`), signed checkpoints of the chain head kept outside the database (`checkpoint`),
//! verification against both (`verify`), and the split between the owner role and the
//! runtime role that may only append and read (`roles`).
//!
//! Invariants: no audit key is stored in the database or printed; the runtime role never
//! owns, updates, deletes or inserts audit rows except through the append functions.

pub mod checkpoint;
pub mod cli;
pub mod keys;
pub mod roles;
pub mod verify;

pub use checkpoint::Checkpoint;
pub use keys::AuditKeys;
pub use verify::{FullReport, verify_all, verify_recent};
