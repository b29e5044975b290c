#!/usr/bin/env bash
# Builds nginx with this module, installs both under build/nginx/ (a self-contained nginx
# prefix), and checks every configuration in nginx-conf/ with `nginx -t`.
#
#   scripts/build-nginx.sh             # vendored nginx 1.28.3 (offline), release build
#   scripts/build-nginx.sh --serve     # then serve nginx-conf/quickstart.conf on 127.0.0.1:8080
#   scripts/build-nginx.sh --debug     # debug build (what `cargo test` uses)
#
# Result:
#   build/nginx/sbin/nginx                               the nginx the module was built for
#   build/nginx/modules/ngx_http_auth_jwt_module.so      the module, as `load_module` expects it
#   build/nginx/conf/                                    nginx-conf/ (examples and their keys)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

profile=release serve=no
for arg in "$@"; do
    case "$arg" in
        --serve) serve=yes ;;
        --debug) profile=debug ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

need_build_deps

log "building the module and nginx ($profile)"
flags=()
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}" --lib
# build.rs records which nginx build directory the module was compiled against.
out=$(ls -t target/"$profile"/build/ngx_http_auth_jwt_module-*/output | head -n 1)
objs=$(sed -n 's/^cargo::rustc-env=NGX_JWT_BUILD_DIR=//p' "$out")
[ -x "$objs/nginx" ] || die "no nginx binary in '$objs'"

prefix=$ROOT/build/nginx
mkdir -p "$prefix"/{sbin,modules,conf,logs,html}
install -m 755 "$objs/nginx" "$prefix/sbin/nginx"
install -m 644 target/"$profile"/libngx_http_auth_jwt_module.so "$prefix/modules/ngx_http_auth_jwt_module.so"
cp -r nginx-conf/. "$prefix/conf/"
echo '<h1>It works: you are authenticated.</h1>' > "$prefix/html/index.html"
log "$("$prefix/sbin/nginx" -v 2>&1) with ngx_http_auth_jwt_module in $prefix"

log "nginx -t over nginx-conf/"
for conf in nginx-conf/*.conf; do
    "$prefix/sbin/nginx" -p "$prefix" -c "conf/$(basename "$conf")" -t -q \
        || die "nginx -t failed for $conf"
    printf '    ok  %s\n' "$conf" >&2
done

if [ "$serve" = yes ]; then
    log "serving nginx-conf/quickstart.conf on http://127.0.0.1:8080 (Ctrl-C stops)"
    log "try:  curl -i http://127.0.0.1:8080/api/"
    log "      curl -i -H \"Authorization: Bearer \$(scripts/mint-token.py alice)\" http://127.0.0.1:8080/api/"
    exec "$prefix/sbin/nginx" -p "$prefix" -c conf/quickstart.conf -g 'daemon off; master_process on;'
fi
