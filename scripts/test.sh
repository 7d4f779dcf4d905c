#!/usr/bin/env bash
# The whole test suite on a fresh machine: starts PostgreSQL and Redis, then runs every
# unit and integration test against them (each test makes and drops its own database).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_postgres
ensure_redis
ensure_test_tools
# Tests connect as the current OS user with trust auth on 127.0.0.1; override with
# OPSGUARD_TEST_PG=postgres://user:pass@host:port (no database name).
# Benchmarks are compiled (so they cannot rot) but not run here: `cargo bench` runs them.
export OPSGUARD_TEST_PG="${OPSGUARD_TEST_PG:-postgres://$(id -un)@127.0.0.1:5432}"
cargo build --locked --benches --quiet
cargo test --locked --lib --bins --tests "$@"
