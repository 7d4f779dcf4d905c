#!/usr/bin/env bash
# The mutation check of the policy decisions (issue 23): cargo-mutants over the files listed
# in .cargo/mutants.toml, each mutant judged by `cargo test --lib` alone (no services).
# Fails when a mutant is missed (survives the unit tests) or times out.
#
#   bash scripts/mutants.sh                      every mutant of every policy file
#   bash scripts/mutants.sh --file src/engine/gates.rs     one file (repeatable)
#   bash scripts/mutants.sh --in-diff [BASE]     only code changed since BASE's merge-base
#                                                (default: origin/main, else HEAD~1)
#   MUTANTS_MAX=N                                at most N mutants (CI's time budget): when
#                                                more are found, one shard of about N runs,
#                                                chosen by the commit, and a warning says so
# Other arguments go to cargo mutants as they are.
#
# Mutants are built in place (the checkout's own target directory, so one at a time: the machine is
# small), so the tree must be clean of uncommitted edits to the examined files; the script
# checks afterwards that every source file is back as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

MUTANTS_VERSION=27.1.0
if ! cargo mutants --version >/dev/null 2>&1; then
    echo "== installing cargo-mutants $MUTANTS_VERSION"
    cargo install cargo-mutants --locked --version "$MUTANTS_VERSION"
fi
cargo mutants --version

# The files that hold the policy decisions, and the pure modules beside them.
policy_files=(
    src/domain/permission.rs
    src/domain/detection.rs
    src/engine/authorize.rs
    src/engine/authorize/cache.rs
    src/engine/gates.rs
    src/engine/totp.rs
    src/engine/totp/policy.rs
    src/engine/totp/upkeep.rs
    src/engine/ratelimit.rs
    src/engine/ratelimit/local.rs
)

args=()
files=()
diff_file=""
while [ $# -gt 0 ]; do
    case "$1" in
        --in-diff)
            shift
            base=""
            if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
                base="$1"
                shift
            fi
            if [ -z "$base" ]; then
                if git rev-parse --verify --quiet origin/main >/dev/null; then
                    base=origin/main
                else
                    base=HEAD~1
                fi
            fi
            from=$(git merge-base "$base" HEAD)
            diff_file=$(mktemp)
            git diff "$from" HEAD -- src > "$diff_file"
            echo "== mutants in code changed since $(git rev-parse --short "$from") ($base)"
            if [ ! -s "$diff_file" ]; then
                echo "no source change: nothing to mutate"
                rm -f "$diff_file"
                exit 0
            fi
            args+=(--in-diff "$diff_file")
            ;;
        --file | -f)
            files+=(--file "$2")
            shift 2
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

if [ ${#files[@]} -eq 0 ]; then
    for f in "${policy_files[@]}"; do files+=(--file "$f"); done
fi

if [ -n "${MUTANTS_MAX:-}" ] && [[ " ${args[*]} " != *" --list "* ]]; then
    found=$(cargo mutants "${files[@]}" "${args[@]}" --list | wc -l)
    if [ "$found" -gt "$MUTANTS_MAX" ]; then
        shards=$(( (found + MUTANTS_MAX - 1) / MUTANTS_MAX ))
        shard=$(( 0x$(git rev-parse HEAD | cut -c1-6) % shards ))
        echo "WARNING: $found mutants exceed MUTANTS_MAX=$MUTANTS_MAX: running shard $shard/$shards" \
            "only; run bash scripts/mutants.sh for all of them" >&2
        args+=(--shard "$shard/$shards")
    fi
fi

before=$(git status --porcelain -- src)
status=0
cargo mutants --in-place --no-shuffle --output target/mutants "${files[@]}" "${args[@]}" || status=$?
if [ -n "$diff_file" ]; then rm -f "$diff_file"; fi
if [ "$(git status --porcelain -- src)" != "$before" ]; then
    echo "cargo-mutants left a source file changed:" >&2
    git status --porcelain -- src >&2
    exit 1
fi
# 0: every mutant caught (or unviable); 2: missed mutants; 3: timeouts; 4: the unmutated tree
# fails its tests. Anything else is a failure of the tool itself.
case "$status" in
    0) echo "== mutants: none missed" ;;
    2) echo "== mutants: MISSED (see target/mutants/mutants.out/missed.txt)" >&2 ;;
    3) echo "== mutants: TIMEOUTS (see target/mutants/mutants.out/timeout.txt)" >&2 ;;
    4) echo "== mutants: the unmutated tree fails cargo test --lib" >&2 ;;
    *) echo "== mutants: cargo mutants failed ($status)" >&2 ;;
esac
exit "$status"
