#!/usr/bin/env bash
# Runs every test: the JWT core's unit and property tests, the integration suite that
# starts the nginx this module was built against on 127.0.0.1 with real tokens,
# scripts/perf/instructions.sh --check (the release module under callgrind: a request served from
# the cache allocates nothing on the heap; a unique RS256 token costs at most 1.2 times its
# RSA verification in instructions), every fuzz target built and run for a few seconds
# (scripts/test/fuzz.sh), so that the harness cannot fall behind the core's API, and "log out
# everywhere" in headless Chromium (scripts/test/browser.sh; skipped, saying so, where Chromium
# cannot be installed).
#
#   scripts/test.sh            # lint (fmt, clippy -D warnings, no import cycle) and every
#                              # test: what CI runs
#   scripts/test.sh --no-lint  # tests only
#
# The integration suite can target another nginx: NGX_JWT_NGINX=/path/to/nginx and
# NGX_JWT_MODULE=/path/to/ngx_http_auth_jwt_module.so (see tests/common/mod.rs).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

need_build_deps
need_pyjwt

if [ "${1:-}" != "--no-lint" ]; then
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    log "import cycles"
    python3 scripts/test/import-cycles.py src jwt-core/src
fi

# The module is a cdylib that no test target links, so `cargo test` alone would not rebuild it.
# Building and testing every target resolves dependencies alike, so nginx is built once for both
# (--tests --benches, unlike --all-targets, honours the cdylib's test = false).
log "cargo build (nginx 1.28.3 and the module on first run)"
cargo build --workspace --all-targets
log "cargo test"
cargo test --workspace --tests --benches
log "browser test: log out everywhere in headless Chromium"
bash scripts/test/browser.sh
log "instructions per request (release, callgrind)"
bash scripts/perf/instructions.sh --check
log "fuzz targets: each built and run for 5 s"
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} bash scripts/test/fuzz.sh 5
