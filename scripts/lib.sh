# Shared helpers for the scripts in this directory. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

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
