#!/usr/bin/env bash
# Try opsguard on a fresh machine with only PostgreSQL: builds it, creates and migrates the
# database, makes you (user id $OPSGUARD_DEMO_USER, default 1) an admin and opens the console.
#   bash scripts/run.sh            # console: type /help
#   bash scripts/run.sh serve      # the bot (needs OPSGUARD_TELEGRAM_TOKEN)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_postgres
ensure_redis || echo "Redis unavailable: opsguard runs in degraded mode (see /status)" >&2
# Local trust/peer auth as the OS user unless you say otherwise.
export DATABASE_URL="${DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/opsguard}"
# A demo set-up unless you bring your own config: a master key of its own (kept in
# target/demo), and the opsguard database itself as the backup target "opsguard", stored in
# target/demo/backups, so /backup, /backups and /restore_test work in the console.
if [ -z "${OPSGUARD_CONFIG:-}" ]; then
    mkdir -p target/demo
    [ -s target/demo/master-key ] || head -c 32 /dev/urandom | base64 >target/demo/master-key
    chmod 600 target/demo/master-key
    export OPSGUARD_MASTER_KEY="${OPSGUARD_MASTER_KEY:-$(cat target/demo/master-key)}"
    # Only what differs from the defaults built into the binary.
    printf '[[backups.targets]]\nname = "opsguard"\ndsn = "%s"\n' "$DATABASE_URL" >target/demo/opsguard.toml
    export OPSGUARD_CONFIG=target/demo/opsguard.toml
    export OPSGUARD__BACKUPS__STORAGE="${OPSGUARD__BACKUPS__STORAGE:-$PWD/target/demo/backups}"
fi
bin=target/release/opsguard
if [ ! -x "$bin" ]; then
    echo "building opsguard (release): the first build compiles several hundred crates and takes" \
        "several minutes (later runs rebuild only what changed)" >&2
fi
cargo build --release --locked --quiet
"$bin" migrate >/dev/null
user="${OPSGUARD_DEMO_USER:-1}"
case "${1:-console}" in
    console)
        "$bin" user add "$user" --role admin --name "${USER:-operator}" >/dev/null
        exec "$bin" console --as "$user"
        ;;
    *) exec "$bin" "$@" ;;
esac
