# Shared helpers for the scripts under scripts/. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages given that are not installed yet (one `apt-get update` first).
need_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# What building the module needs: bindgen's libclang and the libraries nginx links.
need_build_deps() {
    need_packages build-essential libclang-dev libssl-dev libpcre2-dev zlib1g-dev pkg-config
    command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (https://rustup.rs), 1.81 or newer"
}

# PyJWT (with cryptography for RS/ES), for the interop tests: tokens minted as the real
# login service does.
need_pyjwt() {
    local py=${PYTHON:-python3} check='import jwt, cryptography'
    "$py" -c "$check" 2>/dev/null && return 0
    log "installing PyJWT and cryptography for $py"
    if ! "$py" -m pip install -q PyJWT cryptography 2>/dev/null; then
        # Debian's own python3 refuses pip (PEP 668); there they are Debian packages.
        need_packages python3-jwt python3-cryptography
    fi
    "$py" -c "$check" || die "PyJWT or cryptography is not importable by $py"
}

# A load test's setup: wrk, PyJWT, and the release module with the nginx it was built for,
# in $nginx and $module (build.rs records that nginx's build directory).
load_test_setup() {
    need_build_deps
    need_packages wrk
    need_pyjwt
    log "building release"
    (cd "$ROOT" && cargo build --release --lib)
    local out
    out=$(ls -t "$ROOT"/target/release/build/ngx_http_auth_jwt_module-*/output | head -n 1)
    nginx=$(sed -n 's/^cargo::rustc-env=NGX_JWT_BUILD_DIR=//p' "$out")/nginx
    module=$ROOT/target/release/libngx_http_auth_jwt_module.so
    [ -x "$nginx" ] || die "nginx binary $nginx not found"
}

# The HS256 secret of the load scripts, as text and as the hex auth_jwt_key takes by default.
bench_secret=bench-secret-bench-secret-bench-secret-bench-secret-0123456789ab
bench_hex=$(printf '%s' "$bench_secret" | od -An -tx1 | tr -d ' \n')

# A fresh nginx prefix DIR for the load scripts, serving html/a/index.html.
load_prefix() {
    rm -rf "$1" && mkdir -p "$1"/{conf,logs,html/a}
    printf 'hello, world\n' > "$1/html/a/index.html"
}

# The set-up shared by scripts/perf/bench.sh and scripts/perf/instructions.sh: a fresh prefix
# $ROOT/build/NAME in $dir with its nginx.conf (the release module, the main directives MAIN, one
# server on 127.0.0.1:PORT with bench_locations); $secret, $keys and $py for minting tokens.
bench_setup() { # NAME PORT MAIN
    dir=$ROOT/build/$1
    load_prefix "$dir"
    secret=$bench_secret keys=$ROOT/testdata/keys py=${PYTHON:-python3}
    cat > "$dir/conf/nginx.conf" <<EOF
load_module $module;
$3
pid logs/nginx.pid;
error_log logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    root html;
    server {
        listen 127.0.0.1:$2;
$(bench_locations "$bench_hex")
    }
}
EOF
}

# The locations scripts/perf/bench.sh and scripts/perf/instructions.sh measure, for a server block:
# no auth, HS256 by header and by cookie (secret HEX), one whose test token is invalid, RS256
# and ES256 with the test keys; each serves html/a/.
bench_locations() {
    local hex=$1 keys=$ROOT/testdata/keys
    cat <<EOF
        location /noauth/ { alias html/a/; }
        location /hs-header/ { alias html/a/; auth_jwt_key "$hex"; }
        location /hs-cookie/ { alias html/a/; auth_jwt_key "$hex"; auth_jwt_location COOKIE=auth; }
        location /invalid/ { alias html/a/; auth_jwt_key "$hex"; }
        location /rs256/ {
            alias html/a/;
            auth_jwt_algorithm RS256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path $keys/rsa2048.pub;
        }
        location /es256/ {
            alias html/a/;
            auth_jwt_algorithm ES256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path $keys/ec256.pub;
        }
EOF
}
