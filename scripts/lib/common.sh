# shellcheck shell=bash
# Shared helpers for the scripts under scripts/. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages given that are not installed yet (one `apt-get update` first);
# with --no-install-recommends first, without the packages they recommend (a browser's
# recommendations bring desktop daemons a test has no use for).
need_packages() {
    local missing=() flags=()
    if [ "${1:-}" = --no-install-recommends ]; then flags+=("$1"); shift; fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${flags[@]}" "${missing[@]}" >/dev/null
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

# Headless Chromium and its chromedriver, from Debian's packages, with a font for the
# screenshots; fails (without exiting) where they cannot be installed.
need_chromium() {
    (need_packages --no-install-recommends chromium chromium-driver fonts-liberation) || return 1
    command -v chromium >/dev/null && command -v chromedriver >/dev/null
}

# Selenium, to drive Chromium from Python: from PyPI, or Debian's package where pip is refused.
need_selenium() {
    local py=${PYTHON:-python3}
    "$py" -c 'import selenium' 2>/dev/null && return 0
    log "installing Selenium for $py"
    if ! "$py" -m pip install -q selenium 2>/dev/null; then
        # Debian's own python3 refuses pip (PEP 668); there it is a Debian package.
        need_packages python3-selenium
    fi
    "$py" -c 'import selenium' || die "Selenium is not importable by $py"
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

# Writes FILE, the nginx.conf of a test nginx run from a prefix: MODULE loaded, the main-context
# DIRECTIVEs given (e.g. 'worker_processes 1;'), the pid file and the error log (level error) in
# the prefix's logs/, 1024 connections a worker, and an http block holding what stdin holds.
write_nginx_conf() { # FILE MODULE [DIRECTIVE...] < http-block
    local file=$1 module=$2
    shift 2
    {
        printf 'load_module %s;\n' "$module"
        [ $# -eq 0 ] || printf '%s\n' "$@"
        printf 'pid logs/nginx.pid;\nerror_log logs/error.log error;\n'
        printf 'events { worker_connections 1024; }\nhttp {\n'
        cat
        printf '}\n'
    } > "$file"
}

# Checks and starts the nginx of the prefix DIR ($nginx with DIR/conf/nginx.conf), stopped when
# the script exits; $master holds its master's pid.
start_nginx() { # DIR
    "$nginx" -p "$1/" -c conf/nginx.conf -t -q || die "nginx -t failed"
    "$nginx" -p "$1/" -c conf/nginx.conf
    # shellcheck disable=SC2064  # the prefix is the one of now
    trap "\"\$nginx\" -p '$1/' -c conf/nginx.conf -s stop 2>/dev/null || true" EXIT
    for _ in $(seq 50); do [ -s "$1/logs/nginx.pid" ] && break; sleep 0.1; done
    # shellcheck disable=SC2034  # for the scripts
    master=$(cat "$1/logs/nginx.pid")
    sleep 0.3
}

# scripts/mint-token.py, the one token minter of the scripts (--help lists its arguments).
mint_token() { "${PYTHON:-python3}" "$ROOT/scripts/mint-token.py" "$@"; }

# Python with scripts/ on its module path, for the scripts' Python code that mints tokens or
# key sets: importlib.import_module("mint-token").
python_minting() { PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" "$@"; }

# The set-up shared by scripts/perf/bench.sh and scripts/perf/instructions.sh: a fresh prefix
# $ROOT/build/NAME in $dir with its nginx.conf (the release module, the main-context DIRECTIVEs,
# one server on 127.0.0.1:PORT with bench_locations); $keys and $py; the tokens of bench_tokens
# and the requests of bench_cases.
bench_setup() { # NAME PORT [DIRECTIVE...]
    local port=$2
    dir=$ROOT/build/$1
    shift 2
    load_prefix "$dir"
    keys=$ROOT/testdata/keys py=${PYTHON:-python3}
    # The NGINX Plus-style location's key file: the HS256 secret as a JWK set, kid "bench".
    "$py" -c 'import base64, json, sys
k = base64.urlsafe_b64encode(sys.argv[1].encode()).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "oct", "kid": "bench", "alg": "HS256", "k": k}]}))' \
        "$bench_secret" > "$dir/conf/plus-keys.json"
    # The revocation list of /revocation/: $bench_revocations entries (100,000 unless set; half
    # subjects, half token ids), none of them the bench token's, which each request looks up.
    "$py" -c 'import json, sys, time
now, half = int(time.time()), int(sys.argv[1]) // 2
subs = [{"sub": "user-%d@example.com" % i, "cutoff": now} for i in range(half)]
jtis = [{"jti": "%032x" % (i * 2654435761), "exp": now + 86400} for i in range(half)]
json.dump(subs + jtis, sys.stdout)' "${bench_revocations:-100000}" > "$dir/conf/revocations.json"
    write_nginx_conf "$dir/conf/nginx.conf" "$module" "$@" <<EOF
    access_log off;
    auth_jwt_revocation_zone zone=bench:40m state=conf/revocations.json;
    keepalive_requests 1000000;
    root html;
    server {
        listen 127.0.0.1:$port;
$(bench_locations "$bench_hex")
    }
EOF
    bench_tokens
    bench_cases
}

# The locations scripts/perf/bench.sh and scripts/perf/instructions.sh measure, for a server
# block: no auth, HS256 by header and by cookie (secret HEX), one whose test token is invalid,
# RS256 and ES256 with the test keys, and HS256 configured as NGINX Plus has it (auth_jwt and a
# key file, or the same JWK set fetched by auth_jwt_key_request from an internal location), and
# HS256 checked against a revocation list of 100,000 entries; each serves html/a/.
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
        location /plus/ { alias html/a/; auth_jwt "bench"; auth_jwt_key_file conf/plus-keys.json; }
        location /key-request/ {
            alias html/a/;
            auth_jwt "bench"; auth_jwt_key_request /bench-jwks; auth_jwt_key_cache 1h;
        }
        location = /bench-jwks { internal; alias conf/plus-keys.json; }
        location /revocation/ { alias html/a/; auth_jwt_key "$hex"; auth_jwt_revocation bench; }
EOF
}

# The tokens of bench_locations: $hs (HS256), $hsk (HS256 with kid "bench"), $hsj (HS256 with a
# jti), $rs (RS256), $es (ES256), each valid for a day, and $bad, $hs with its
# signature changed.
bench_tokens() {
    local mint=(mint_token bench --ttl 86400)
    hs=$("${mint[@]}" --secret "$bench_secret")
    hsk=$("${mint[@]}" --secret "$bench_secret" --header kid=bench)
    hsj=$("${mint[@]}" --secret "$bench_secret" --claim jti=7f3a9c1e-bench)
    rs=$("${mint[@]}" --alg RS256 --key "$ROOT/testdata/keys/rsa2048.pk8.pem")
    es=$("${mint[@]}" --alg ES256 --key "$ROOT/testdata/keys/ec256.pk8.pem")
    bad=${hs%?}A
    [ "$bad" != "$hs" ] || bad=${hs%?}B
}

# A wrk script sending GET / with each token of stdin (one a line) in turn, as a Bearer token.
bearer_cycle_lua() {
    echo "tokens = {"
    sed 's/.*/  "&",/'
    echo "}"
    cat <<'EOF_LUA'
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/", {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]})
end
EOF_LUA
}

# N distinct RS256 tokens for bench_locations' /rs256/, one a line.
unique_rs256_tokens() { # N
    mint_token bench --ttl 86400 --alg RS256 --key "$ROOT/testdata/keys/rsa2048.pk8.pem" --count "$1"
}

# The requests sent to bench_locations, by case: url[CASE], hdr[CASE] (one request header),
# expect[CASE] (the status) and base[CASE], the case without auth it is compared with: the same
# request to /noauth/, so that only the module differs.
bench_cases() {
    declare -gA url hdr expect base
    local bearer="Authorization: Bearer" cookie="Cookie: theme=dark; auth=$hs; lang=en"
    bench_case noauth /noauth/ "$bearer $hs" 200
    bench_case noauth-cookie /noauth/ "$cookie" 200
    bench_case noauth-rs /noauth/ "$bearer $rs" 200
    bench_case noauth-es /noauth/ "$bearer $es" 200
    bench_case noauth-kid /noauth/ "$bearer $hsk" 200
    bench_case noauth-jti /noauth/ "$bearer $hsj" 200
    bench_case hs256-header /hs-header/ "$bearer $hs" 200 noauth
    bench_case hs256-cookie /hs-cookie/ "$cookie" 200 noauth-cookie
    bench_case rs256 /rs256/ "$bearer $rs" 200 noauth-rs
    bench_case es256 /es256/ "$bearer $es" 200 noauth-es
    bench_case invalid /invalid/ "$bearer $bad" 401 noauth
    bench_case plus /plus/ "$bearer $hsk" 200 noauth-kid
    bench_case key-request /key-request/ "$bearer $hsk" 200 noauth-kid
    bench_case revocation /revocation/ "$bearer $hsj" 200 noauth-jti
}
# shellcheck disable=SC2034  # the arrays of bench_cases, read by the scripts
bench_case() { # CASE URL HEADER STATUS [BASELINE]
    url[$1]=$2 hdr[$1]=$3 expect[$1]=$4
    [ -z "${5:-}" ] || base[$1]=$5
}
