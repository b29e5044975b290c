#!/usr/bin/env bash
# "Log out everywhere" in a real browser: headless Chromium signs in through
# examples/login-service/login.py, visits the sites of nginx-conf/logout-everywhere.conf served
# by a real nginx with the module, logs out, and checks that every site and the old cookie are
# refused (scripts/test/browser-logout.py lists the steps). A minute at most; scripts/test.sh
# runs it.
#
#   scripts/test/browser.sh
#
# Installs chromium, chromium-driver (Debian) and Selenium (PyPI) when missing; where Chromium
# cannot be installed, it says so and skips (exit 0). It tests the module of `cargo build`
# (debug) with the nginx that module was built against, or NGX_JWT_NGINX and NGX_JWT_MODULE as
# the integration tests do. Screenshots and logs: target/browser-artifacts/ (the cargo target
# directory's, $CARGO_TARGET_DIR when set).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

if ! need_chromium; then
    log "SKIPPED the browser test: Chromium and chromedriver cannot be installed here"
    exit 0
fi
need_packages curl
need_selenium

target=${CARGO_TARGET_DIR:-$ROOT/target}
module=${NGX_JWT_MODULE:-}
if [ -z "$module" ]; then
    # As scripts/test.sh builds: the same features, so the same nginx build, built once.
    log "cargo build (the module under test)"
    cargo build --workspace --all-targets
    module=$target/debug/libngx_http_auth_jwt_module.so
fi
nginx=${NGX_JWT_NGINX:-}
if [ -z "$nginx" ]; then
    out=$(ls -t "$target"/debug/build/ngx_http_auth_jwt_module-*/output | head -n 1)
    nginx=$(sed -n 's/^cargo::rustc-env=NGX_JWT_BUILD_DIR=//p' "$out")/nginx
fi
[ -x "$nginx" ] || die "nginx binary '$nginx' not found"
[ -f "$module" ] || die "module '$module' not found"

log "browser: log out everywhere, in $(chromium --version 2>/dev/null)"
"${PYTHON:-python3}" scripts/test/browser-logout.py --nginx "$nginx" --module "$module" \
    --artifacts "$target/browser-artifacts"
