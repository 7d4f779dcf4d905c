#!/usr/bin/env bash
# The dependency audit CI runs on every run (README "Security"), offline:
#  1. RustSec advisories: `cargo audit` reads Cargo.lock against the advisory database snapshot
#     ($OPSGUARD_ADVISORY_DB, default ../shared/advisory-db beside the checkout). Any
#     vulnerability fails, and so does any warning (unmaintained, unsound) not accepted in
#     .cargo/audit.toml — with a reason and a review date that has not passed.
#  2. Licences and sources (scripts/licences.py, over `cargo metadata`): every crate's licence
#     is one the MIT-licensed project may ship, and every crate comes from crates.io.
# Installs cargo-audit (a pinned version, from crates.io) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_AUDIT_VERSION=0.22.2
db="${OPSGUARD_ADVISORY_DB:-../shared/advisory-db}"

if [ ! -d "$db/crates" ]; then
    echo "error: no RustSec advisory database at $db (set OPSGUARD_ADVISORY_DB to a copy)" >&2
    exit 1
fi

if ! command -v cargo-audit >/dev/null; then
    echo "installing cargo-audit $CARGO_AUDIT_VERSION (crates.io) ..." >&2
    cargo install --locked --quiet cargo-audit --version "$CARGO_AUDIT_VERSION" >&2
fi

# Every accepted advisory carries its reason and a review date still to come.
python3 - .cargo/audit.toml <<'PY'
import datetime, re, sys, tomllib
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
ignored = tomllib.loads(text).get("advisories", {}).get("ignore", [])
today = datetime.date.today()
bad = []
for rid in ignored:
    m = re.search(r"^\s*# " + re.escape(rid) + r" \S+, review by (\d{4}-\d{2}-\d{2}): \S", text, re.M)
    if not m:
        bad.append(f"{rid}: no '# {rid} <crate>, review by YYYY-MM-DD: <reason>' line")
    elif datetime.date.fromisoformat(m.group(1)) < today:
        bad.append(f"{rid}: its review date {m.group(1)} has passed: look again, then set a new date or drop it")
for b in bad:
    print(f"error: {path}: accepted advisory {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

echo "== cargo audit (advisory database: $db)"
cargo audit --db "$db" --no-fetch --stale

echo "== licences and sources"
python3 scripts/licences.py
