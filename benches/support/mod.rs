//! Shared pieces of the benchmark: the fake Bot API, the baseline route, the load generator.
pub mod audit_bench;
pub mod fake_api;
pub mod load;
pub mod scratch;
