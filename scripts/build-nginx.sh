#!/usr/bin/env bash
# Builds ngx_http_auth_jwt_module for an nginx and checks every configuration in nginx-conf/.
#
#   scripts/build-nginx.sh [vendored] [--serve] [--test] [--debug]
#       nginx 1.28.3 from the nginx-src crate (offline) and the module, installed as a
#       self-contained prefix in build/nginx/ (sbin/nginx, modules/, conf/ = nginx-conf/).
#       --serve then serves the examples: nginx-conf/quickstart.conf on 127.0.0.1:8080, and
#       nginx-conf/logout-everywhere.conf on 127.0.0.1:8090 and 8091 with the login service of
#       examples/login-service/ on 127.0.0.1:8092; it prints what to try, the URLs to open in a
#       browser and a password for user alice (Ctrl-C stops them all).
#
#   scripts/build-nginx.sh debian [--test]
#       The module for Debian's own nginx (/usr/sbin/nginx, no nginx rebuild): installs nginx and
#       nginx-dev when missing, configures a copy of the nginx-dev tree with Debian's conf_flags,
#       builds against it and writes to dist/:
#         ngx_http_auth_jwt_module.so            loads into the packaged nginx
#         libnginx-mod-http-auth-jwt_*.deb       installs it as Debian's libnginx-mod-* packages do
#                                                (control files: packaging/debian/)
#       then runs `nginx -t` over nginx-conf/ with the packaged binary. --test also runs lintian
#       on the .deb (no error or warning allowed) and installs, upgrades and removes it.
#
#   scripts/build-nginx.sh source DIR [--test]
#       Builds nginx from the nginx source tree DIR (--with-compat, auth_request, plus
#       NGX_CONFIGURE_ARGS) and the module against it, into the prefix build/nginx-source/.
#
#   --test   also runs the integration suite against the nginx and module just built
#            (through NGX_JWT_NGINX / NGX_JWT_MODULE, see tests/common/mod.rs).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

usage() { sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

mode=vendored source_dir="" profile=release serve=no run_tests=no
while [ $# -gt 0 ]; do
    case "$1" in
        vendored|debian) mode=$1 ;;
        source) mode=source; source_dir=${2:-}; [ -n "$source_dir" ] || die "source needs a DIR"; shift ;;
        --serve) serve=yes ;;
        --test) run_tests=yes ;;
        --debug) profile=debug ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown argument: %s\n\n' "$1" >&2; usage 2 ;;
    esac
    shift
done
[ "$serve" = no ] || [ "$mode" = vendored ] || die "--serve goes with the vendored build"

MODULE=ngx_http_auth_jwt_module.so
PKG=libnginx-mod-http-auth-jwt

# cargo build of the module; extra environment (the nginx tree) comes from the caller.
# Prints the path of the built module.
build_module() {
    local target_dir=$1; shift
    local flags=(--lib --target-dir "$target_dir")
    [ "$profile" = release ] && flags+=(--release)
    log "building the module ($profile, $target_dir)"
    cargo build "${flags[@]}" "$@" >&2
    echo "$target_dir/$profile/libngx_http_auth_jwt_module.so"
}

# The nginx build directory the module was compiled against (recorded by build.rs).
built_against() {
    local out
    out=$(ls -t "$1/$profile"/build/ngx_http_auth_jwt_module-*/output | head -n 1)
    sed -n 's/^cargo::rustc-env=NGX_JWT_BUILD_DIR=//p' "$out"
}

# A prefix holding the nginx binary (when given), the module and nginx-conf/.
make_prefix() {
    local prefix=$1 module=$2 nginx=${3:-}
    mkdir -p "$prefix"/{sbin,modules,conf,logs,html}
    [ -z "$nginx" ] || install -m 755 "$nginx" "$prefix/sbin/nginx"
    install -m 644 "$module" "$prefix/modules/$MODULE"
    cp -r nginx-conf/. "$prefix/conf/"
    echo '<h1>It works: you are authenticated.</h1>' > "$prefix/html/index.html"
}

# nginx -t over every configuration of nginx-conf/: whole files as they are, sites (server
# blocks for Debian's sites-enabled/) inside a minimal main configuration.
check_confs() {
    local nginx=$1 prefix=$2
    log "nginx -t over nginx-conf/ with $("$nginx" -v 2>&1)"
    for conf in nginx-conf/*.conf; do
        "$nginx" -p "$prefix" -c "conf/$(basename "$conf")" -t -q || die "nginx -t failed for $conf"
        printf '    ok  %s\n' "$conf" >&2
    done
    for site in nginx-conf/sites/*.conf; do
        [ -e "$site" ] || continue
        write_nginx_conf "$prefix/conf/site-check.conf" "modules/$MODULE" \
            <<< "    include sites/$(basename "$site");"
        "$nginx" -p "$prefix" -c conf/site-check.conf -t -q || die "nginx -t failed for $site"
        printf '    ok  %s\n' "$site" >&2
    done
}

run_suite() {
    local nginx=$1 module=$2; shift 2
    need_pyjwt
    log "integration tests against $nginx"
    NGX_JWT_NGINX=$nginx NGX_JWT_MODULE=$(realpath "$module") cargo test --test '*' "$@"
}

build_vendored() {
    need_build_deps
    local module objs prefix=$ROOT/build/nginx
    module=$(build_module target)
    objs=$(built_against target)
    [ -x "$objs/nginx" ] || die "no nginx binary in '$objs'"
    make_prefix "$prefix" "$module" "$objs/nginx"
    log "$("$prefix/sbin/nginx" -v 2>&1) with the module in $prefix"
    check_confs "$prefix/sbin/nginx" "$prefix"
    [ "$run_tests" = no ] || run_suite "$prefix/sbin/nginx" "$prefix/modules/$MODULE"
    [ "$serve" = no ] || serve "$prefix"
}

# The examples of the prefix given, until Ctrl-C: the quick start, and the login flow.
serve() {
    local prefix=$1
    serve_logout "$prefix"
    log "serving nginx-conf/quickstart.conf on http://127.0.0.1:8080 (Ctrl-C stops everything)"
    log "try:  curl -i -H \"Authorization: Bearer \$(scripts/mint-token.py alice)\" http://127.0.0.1:8080/api/"
    "$prefix/sbin/nginx" -p "$prefix" -c conf/quickstart.conf -g 'daemon off; master_process on;'
}

# Starts, in the background, nginx with nginx-conf/logout-everywhere.conf and the login service
# of examples/login-service/ in the prefix given, user alice with a new password each time;
# both are stopped when the script exits.
serve_logout() {
    local prefix=$1 py=${PYTHON:-python3} login=examples/login-service/login.py
    local users=$prefix/logout-users.txt password
    # The workers write the revocation state file in state/: started as root, they run as nobody.
    mkdir -p "$prefix/state"
    [ "$(id -u)" -ne 0 ] || chown nobody "$prefix/state"
    password=$("$py" -c 'import secrets; print(secrets.token_urlsafe(9))')
    rm -f "$users"
    printf '%s\n' "$password" | "$py" "$login" add-user alice --users "$users"
    "$py" "$login" serve --users "$users" --key-file "$prefix/conf/keys/logout-demo.jwk" \
        --cookie-domain example.localhost --default-url http://app.example.localhost:8090/ \
        --revoke-url http://127.0.0.1:8091/revoke --listen 127.0.0.1:8092 &
    login_pid=$!
    "$prefix/sbin/nginx" -p "$prefix" -c conf/logout-everywhere.conf -g 'daemon off; master_process on;' &
    logout_nginx_pid=$!
    trap 'kill "$login_pid" "$logout_nginx_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
    log "serving nginx-conf/logout-everywhere.conf with the login service"
    cat >&2 <<EOF
    In a browser (names under .localhost are this machine), sign in as alice, password $password:
      1. http://app.example.localhost:8090/orders/42?tab=items   a page: to the login page and back
      2. http://wiki.example.localhost:8090/                     another site: no second login
      3. http://api.example.localhost:8090/v1/me                 the API: who you are, as JSON
      4. "Log out everywhere" on a page: every site asks to sign in again, and the old cookie is
         refused:  curl -i --cookie auth=OLD-COOKIE http://api.example.localhost:8090/v1/me
         ("Log out on this device" ends that browser's session only)
      5. the revocation list:  curl http://127.0.0.1:8091/revoke
EOF
}

# Configures a copy of nginx-dev's tree exactly as Debian configured its nginx.
configure_debian_tree() {
    local tree=$ROOT/build/debian-src
    rm -rf "$tree"
    cp -r /usr/share/nginx/src "$tree"
    (
        cd "$tree"
        # shellcheck disable=SC1091  # defines NGX_CONF_FLAGS, Debian's ./configure arguments
        source ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" >configure.log 2>&1 || { tail -20 configure.log; exit 1; }
    ) >&2
    echo "$tree"
}

build_debian() {
    need_build_deps
    need_packages nginx nginx-dev
    local tree module abi version
    tree=$(configure_debian_tree)
    module=$(NGINX_SOURCE_DIR=$tree NGINX_BUILD_DIR=$tree/objs build_module target/debian --no-default-features)
    mkdir -p dist
    install -m 644 "$module" "dist/$MODULE"
    abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
    [ -n "$abi" ] || die "nginx-dev declares no nginx:abi"
    version=$(cargo metadata --no-deps --format-version 1 | python3 -c \
        'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="ngx_http_auth_jwt_module"))')
    make_deb "dist/$MODULE" "$abi" "$version-1"
    local prefix=$ROOT/build/debian
    make_prefix "$prefix" "dist/$MODULE"
    check_confs /usr/sbin/nginx "$prefix"
    [ "$run_tests" = yes ] || return 0
    local deb
    deb=$(ls -t dist/"${PKG}"_*.deb | head -n 1)
    lint_deb "$deb"
    test_deb "$deb"
    NGINX_SOURCE_DIR=$tree NGINX_BUILD_DIR=$tree/objs \
        run_suite /usr/sbin/nginx "dist/$MODULE" --no-default-features --target-dir target/debian
}

# The package on the stock nginx: install, enable an example site, `nginx -t` and a request
# through the packaged binary; an upgrade and an aborted remove; then remove and purge it and
# check nginx is still fine.
test_deb() {
    local deb=$1 site=/etc/nginx/sites-enabled/jwt-example.conf prev out
    local link=/etc/nginx/modules-enabled/50-mod-http-auth-jwt.conf
    [ ! -e "$site" ] || die "$site exists: test_deb installs its own and removes it"
    # test_deb_cleanup undoes this test on any way out, die included; an EXIT trap set before
    # (trap -p prints it as: trap -- CMD EXIT) runs after it, and is back in place at the end.
    prev=$(trap -p EXIT)
    eval "set -- $prev"
    deb_test_dir=$(mktemp -d -t jwt-deb.XXXXXXXX) deb_test_site="" deb_test_pkg=no
    # shellcheck disable=SC2064  # the earlier trap's command is taken now, on purpose
    trap "test_deb_cleanup; ${3:-}" EXIT
    log "installing $deb on the stock nginx"
    deb_test_pkg=yes
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
    [ -L $link ] || die "module not enabled"
    deb_test_site=$site
    install -m 644 nginx-conf/sites/jwt-example.conf "$site"
    nginx -t -q || die "stock nginx -t fails with the example site"
    # A private instance of the stock configuration, on its own pid file, so a running system
    # nginx (if any) is left alone, and with the example site only, as the default site listens
    # on every address.
    local pidfile=$deb_test_dir/nginx.pid conf=$deb_test_dir/nginx.conf
    sed -e "s|^pid .*|pid $pidfile;|" -e "s|include /etc/nginx/sites-enabled/\*;|include $site;|" \
        /etc/nginx/nginx.conf > "$conf"
    if grep -q 'sites-enabled/\*' "$conf"; then die "could not limit $conf to the example site"; fi
    nginx -c "$conf" -g "error_log stderr;" 2>/dev/null || true
    local token code user
    token=$(mint_token deb-user)
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8088/private/ || true)
        [ "$code" = 000 ] || break
        sleep 0.3
    done
    user=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" http://127.0.0.1:8088/private/ \
        | tr -d '\r' | sed -n 's/^X-User: //Ip')
    stop_nginx "$pidfile"
    [ "$code" = 401 ] || die "packaged nginx: /private/ without token gave $code, not 401"
    [ "$user" = deb-user ] || die "packaged nginx: a valid token did not authenticate (X-User '$user')"
    log "packaged nginx: 401 without token, X-User: $user with one"
    # An upgrade, to the same package with a higher version: postinst restarts a running nginx
    # or says it must be, and succeeds either way.
    dpkg-deb -R "$deb" "$deb_test_dir/upgrade"
    sed -i 's/^Version: .*/&+1/' "$deb_test_dir/upgrade/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$deb_test_dir/upgrade" "$deb_test_dir/upgrade.deb" >/dev/null
    out=$(dpkg -i "$deb_test_dir/upgrade.deb" 2>&1) || die "upgrade failed: $out"
    out=$(grep 'a reload keeps the old module code' <<<"$out") || die "no restart note on upgrade: $out"
    [ -L $link ] || die "module not enabled after the upgrade"
    log "upgrade: $out"
    # A remove that fails after prerm: postinst abort-remove enables the module again.
    /var/lib/dpkg/info/$PKG.prerm remove
    if [ -e $link ] || [ ! -L $link.removed ]; then die "prerm remove did not disable the module"; fi
    /var/lib/dpkg/info/$PKG.postinst abort-remove
    if [ ! -L $link ] || [ -e $link.removed ]; then die "postinst abort-remove did not enable the module"; fi
    nginx -t -q || die "stock nginx -t fails after abort-remove"
    log "abort-remove: module enabled again"
    rm -f "$site"
    deb_test_site=""
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$PKG" >/dev/null
    [ ! -e /usr/lib/nginx/modules/$MODULE ] || die "module left behind after remove"
    nginx -t -q || die "nginx -t fails after removing the package"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PKG" >/dev/null
    deb_test_pkg=no
    if [ -L $link ] || [ -L $link.removed ]; then die "module link left behind after purge"; fi
    log "package removed and purged; stock nginx -t still passes"
    test_deb_cleanup
    eval "${prev:-trap - EXIT}"
}

# Stops the nginx whose master wrote the pid file given, if it runs, and waits until it is gone.
stop_nginx() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    kill -QUIT "$pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.3
    done
}

# What test_deb set up and has not undone yet: its private nginx and directory, the example site,
# the package.
test_deb_cleanup() {
    if [ -n "$deb_test_dir" ]; then
        stop_nginx "$deb_test_dir/nginx.pid"
        rm -rf "$deb_test_dir"
    fi
    [ -z "$deb_test_site" ] || rm -f "$deb_test_site"
    if [ "$deb_test_pkg" = yes ]; then
        log "purging $PKG after a failed test"
        DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >/dev/null 2>&1 || true
    fi
    deb_test_dir="" deb_test_site="" deb_test_pkg=no
}

# Debian packages the shared libraries the module links (libc6, libgcc-s1) come from, libc6
# with the newest symbol version the module uses.
shlib_depends() {
    local deps=() lib path pkg glibc
    for lib in $(objdump -p "$1" | awk '/NEEDED/ { print $2 }'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
        [ -n "$path" ] || continue
        # With merged /usr, dpkg knows a library by one of its two paths only.
        pkg=$( (dpkg -S "$path" || dpkg -S "$(realpath "$path")") 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -z "$pkg" ] || deps+=("$pkg")
    done
    glibc=$(objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    printf '%s\n' "${deps[@]}" | sort -u \
        | sed "s/^libc6\$/libc6 (>= ${glibc:-2.36})/" | paste -sd, | sed 's/,/, /g'
}

# A package laid out like Debian's libnginx-mod-*: the module in /usr/lib/nginx/modules, its
# load_module line in modules-available, enabled through a link in /etc/nginx/modules-enabled
# by the maintainer scripts. Its control files are those of packaging/debian/, with @NAME@
# placeholders filled in.
make_deb() {
    local module=$1 abi=$2 version=$3 arch root deb doc src=$ROOT/packaging/debian
    arch=$(dpkg --print-architecture)
    root=$ROOT/build/deb/$PKG
    doc=$root/usr/share/doc/$PKG
    rm -rf "$root"
    umask 022
    install -d "$root/DEBIAN" "$root/usr/lib/nginx/modules" "$root/usr/share/nginx/modules-available" \
        "$doc/docs" "$root/usr/share/lintian/overrides"
    install -m 644 "$module" "$root/usr/lib/nginx/modules/$MODULE"
    # As dh_strip does: no symbols but the dynamic ones, no build notes.
    strip --strip-unneeded --remove-section=.comment --remove-section=.note \
        "$root/usr/lib/nginx/modules/$MODULE"
    install -m 644 "$src/mod-http-auth-jwt.conf" "$root/usr/share/nginx/modules-available/"
    install -m 644 "$src/lintian-overrides" "$root/usr/share/lintian/overrides/$PKG"
    install -m 644 "$src/copyright" README.md "$doc/"
    install -m 644 docs/*.md "$doc/docs/"
    gzip -9n < CHANGELOG.md > "$doc/changelog.gz"
    local depends=$abi shlibs date
    shlibs=$(shlib_depends "$module")
    [ -z "$shlibs" ] || depends="$depends, $shlibs"
    # The changelog entry is dated by the commit built, so that the package is reproducible.
    date=$(git log -1 --format=%cD 2>/dev/null) || date=$(date -R)
    deb_fill "$src/changelog" VERSION "$version" UPSTREAM_VERSION "${version%-*}" NGINX_ABI "$abi" \
        DATE "$date" | gzip -9n > "$doc/changelog.Debian.gz"
    install -m 755 "$src/postinst" "$src/prerm" "$src/postrm" "$root/DEBIAN/"
    deb_fill "$src/control" VERSION "$version" ARCH "$arch" DEPENDS "$depends" \
        INSTALLED_SIZE "$(du -sk "$root/usr" | cut -f1)" > "$root/DEBIAN/control"
    (cd "$root" && find usr -type f | sort | xargs md5sum) > "$root/DEBIAN/md5sums"
    mkdir -p dist
    deb=dist/${PKG}_${version}_${arch}.deb
    dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
    log "wrote $deb (Depends: $depends)"
}

# FILE with each @NAME@ of the NAME VALUE pairs given replaced by its VALUE; fails on one left.
deb_fill() { # FILE [NAME VALUE]...
    local text
    text=$(cat "$1")
    shift
    while [ $# -gt 1 ]; do
        text=${text//"@$1@"/"$2"}
        shift 2
    done
    if grep -q '@[A-Z_]*@' <<< "$text"; then die "unfilled placeholder in $(grep -o '@[A-Z_]*@' <<< "$text")"; fi
    printf '%s\n' "$text"
}

# The package passes lintian: no error, no warning (informational tags are printed only).
lint_deb() {
    need_packages lintian
    log "lintian $1"
    lintian --fail-on error,warning --display-info "$1" || die "lintian finds errors or warnings in $1"
}

build_source() {
    need_build_deps
    local tree objs module prefix=$ROOT/build/nginx-source
    tree=$(realpath "$source_dir")
    [ -f "$tree/src/core/nginx.h" ] || die "'$source_dir' is not an nginx source tree"
    local configure=./configure
    [ -x "$tree/configure" ] || configure=./auto/configure
    log "configuring and building nginx in $tree"
    # shellcheck disable=SC2086  # NGX_CONFIGURE_ARGS is a list of words
    (cd "$tree" && $configure --with-compat --with-http_auth_request_module ${NGX_CONFIGURE_ARGS:-} \
        >configure.log 2>&1 && make -j"$(nproc)" >make.log 2>&1) \
        || die "nginx build failed in $tree (see configure.log, make.log there)"
    objs=$tree/objs
    module=$(NGINX_SOURCE_DIR=$tree NGINX_BUILD_DIR=$objs build_module target/source --no-default-features)
    make_prefix "$prefix" "$module" "$objs/nginx"
    check_confs "$prefix/sbin/nginx" "$prefix"
    [ "$run_tests" = no ] || NGINX_SOURCE_DIR=$tree NGINX_BUILD_DIR=$objs \
        run_suite "$prefix/sbin/nginx" "$prefix/modules/$MODULE" --no-default-features --target-dir target/source
}

case "$mode" in
    vendored) build_vendored ;;
    debian) build_debian ;;
    source) build_source ;;
esac
