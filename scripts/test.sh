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

# Password checks for the postgres_role tests: trust auth lets any password in, so roles
# that are members of the group role opsguard_pwtest must pass scram-sha-256 on 127.0.0.1.
# Idempotent: creates the group role, puts one rule above the trust lines, reloads.
ensure_pg_password_tests() {
    local pg="$OPSGUARD_TEST_PG/postgres" rule="host all +opsguard_pwtest 127.0.0.1/32 scram-sha-256"
    psql "$pg" -qAtc "DO \$\$ BEGIN CREATE ROLE opsguard_pwtest NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
    local hba
    hba=$(psql "$pg" -qAtc "SHOW hba_file")
    if [ -r "$hba" ] && grep -qxF "$rule" "$hba"; then return 0; fi
    if [ ! -w "$hba" ]; then
        echo "warning: $hba needs '$rule' above its trust lines (not writable here):" \
            "the postgres_role tests will fail" >&2
        return 0
    fi
    cat >&2 <<MSG
scripts/test.sh needs one change to PostgreSQL's client authentication:
  file: $hba
  adds, above its other rules:
    # opsguard tests: members of opsguard_pwtest log in with a password
    $rule
  why:  the postgres_role rotation tests must see wrong passwords refused, which the trust
        lines accept; the rule only affects roles in the NOLOGIN group opsguard_pwtest, which
        only those tests create. Then: SELECT pg_reload_conf().
  undo: delete those two lines and run SELECT pg_reload_conf().
  skip: OPSGUARD_TEST_KEEP_HBA=1 (the postgres_role tests then fail).
MSG
    if [ -n "${OPSGUARD_TEST_KEEP_HBA:-}" ]; then
        echo "OPSGUARD_TEST_KEEP_HBA is set: $hba left unchanged" >&2
        return 0
    fi
    local tmp
    tmp=$(mktemp)
    { echo "# opsguard tests: members of opsguard_pwtest log in with a password"; echo "$rule"; cat "$hba"; } >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
    psql "$pg" -qAtc "SELECT pg_reload_conf()" >/dev/null
}
ensure_pg_password_tests
cargo build --locked --benches --quiet
cargo test --locked --lib --bins --tests "$@"
