#!/usr/bin/env bash
# Fuzzes the JWT core crate (jwt-core) with libFuzzer through cargo-fuzz.
#
#   scripts/test/fuzz.sh                 # every target, 120 s each
#   scripts/test/fuzz.sh 300             # every target, 300 s each
#   scripts/test/fuzz.sh 60 verify_hmac  # some targets only
#
# Targets (jwt-core/fuzz/fuzz_targets/): sources (token extraction from header,
# cookie and query strings), verify_hmac, verify_asym (RSA, EC P-256/P-384,
# Ed25519, JWKS), key_material (PEM/DER/JWK/JWKS loading, secret decoding),
# render. cargo-fuzz needs nightly flags: on a stable toolchain they are
# enabled with RUSTC_BOOTSTRAP=1, which this script sets. cargo-fuzz is
# installed with `cargo install` when missing.
#
# Each target starts from the committed seeds (jwt-core/fuzz/seeds/<target>/),
# copied into a scratch corpus (jwt-core/fuzz/corpus/<target>/, git-ignored)
# that keeps growing across runs. A crash, panic, timeout or OOM leaves its
# input in jwt-core/fuzz/artifacts/<target>/; reproduce it with
#   cd jwt-core && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# The script prints the executions of each target and their total, and exits
# non-zero if any target found something.
#
# Environment: FUZZ_SANITIZER (default "address"; "none" runs about twice as
# fast: jwt-core forbids unsafe code), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"

SECONDS_PER_TARGET=${1:-120}
shift || true
case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) die "SECONDS_PER_TARGET must be a number of seconds, not '$SECONDS_PER_TARGET'" ;;
esac
FUZZ_DIR="$ROOT/jwt-core/fuzz"
ALL_TARGETS=(sources verify_hmac verify_asym key_material render)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
SANITIZER=${FUZZ_SANITIZER:-address}

command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (https://rustup.rs)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

cd "$ROOT/jwt-core"
log "building fuzz targets (sanitizer: $SANITIZER)"
for t in "${TARGETS[@]}"; do
    [ -d "$FUZZ_DIR/seeds/$t" ] || die "unknown target $t (no jwt-core/fuzz/seeds/$t)"
    cargo fuzz build --sanitizer "$SANITIZER" "$t"
done

LOG_DIR="$FUZZ_DIR/target/fuzz-logs"
mkdir -p "$LOG_DIR"
total=0
failed=()
report=()
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    mkdir -p "$corpus"
    cp -n "$FUZZ_DIR/seeds/$t/"* "$corpus/"
    log "fuzzing $t for ${SECONDS_PER_TARGET}s (log: ${LOG_DIR#"$ROOT"/}/$t.log)"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "$corpus" "$FUZZ_DIR/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=20000 -timeout=10 \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"$LOG_DIR/$t.log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$LOG_DIR/$t.log" | tail -n 1)
    execs=${execs:-0}
    total=$((total + execs))
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        report+=("$(printf '%-14s %12s executions  FAILED (exit %s)' "$t" "$execs" "$status")")
        grep -E '^(==[0-9]+==|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' \
            "$LOG_DIR/$t.log" | head -n 20 >&2 || true
    else
        report+=("$(printf '%-14s %12s executions  ok' "$t" "$execs")")
    fi
done

printf '%s\n' "${report[@]}"
printf '%-14s %12s executions\n' total "$total"
if [ ${#failed[@]} -gt 0 ]; then
    die "findings in: ${failed[*]} (inputs in jwt-core/fuzz/artifacts/)"
fi
