//! Shared pieces of the benchmark: the fake Bot API, the baseline route, the load generator.
pub mod audit_bench;
pub mod fake_api;
pub mod growth;
pub mod load;
pub mod overload;
pub mod scratch;
pub mod served;
