#!/usr/bin/env bash
# Throughput of nginx with the module against the same nginx without auth, in one run.
#
#   scripts/bench.sh [ROUNDS] [SECONDS]      # default: 10 rounds of 3 s per case
#
# One nginx worker pinned to CPU 0, wrk (1 thread, 32 keep-alive connections) pinned to CPU 1,
# a small static file, default error_log level (error), access_log off. Every round runs every
# case, in an order rotated from round to round.
#
# Cases: hs256-header, hs256-cookie, rs256, es256 (the same token repeated: cache hits),
# invalid (a bad signature: 401 and one error-log line each), rs256-unique (a different token
# per request, from a Lua script: every one verified in full) and rs256-same (the same Lua
# script replaying one token: what rs256-unique costs apart from verification). Each is
# compared with its baseline, the same request sent to a location without auth (noauth,
# noauth-cookie, noauth-rs, noauth-es), so that only the module differs: nginx's own cost of
# parsing a 600-byte header is not the module's.
#
# Printed per case: the median requests/s; the median of its per-round ratios to its baseline
# (adjacent in time, so the machine's drift largely cancels) and their range; the nginx
# worker's CPU time per request (user + system, from /proc) and its ratio to the baseline's,
# which is steadier than throughput on a shared machine.
#
# Then the RS256 verification cost from the core's micro-benchmark (criterion), and the cost
# a unique token adds through nginx, (1/rs256-unique - 1/rs256-same), set against it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

rounds=${1:-10} seconds=${2:-3}
load_test_setup

dir=$ROOT/build/bench
rm -rf "$dir" && mkdir -p "$dir"/{conf,logs,html/a}
printf 'hello, world\n' > "$dir/html/a/index.html"
port=${BENCH_PORT:-18999}
secret=bench-secret-bench-secret-bench-secret-bench-secret-0123456789ab
hex=$(printf '%s' "$secret" | od -An -tx1 | tr -d ' \n')
keys=$ROOT/testdata/keys

cat > "$dir/conf/nginx.conf" <<EOF
load_module $module;
worker_processes 1;
worker_cpu_affinity 01;
pid logs/nginx.pid;
error_log logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    root html;
    server {
        listen 127.0.0.1:$port;
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
    }
}
EOF

py=${PYTHON:-python3}
mint() { # ALG KEY [UNIQUE]
    "$py" - "$@" <<'EOF'
import sys, time, jwt, uuid
alg, key = sys.argv[1], sys.argv[2]
if not alg.startswith("HS"):
    key = open(key).read()
claims = {"sub": "bench", "iat": int(time.time()), "exp": int(time.time()) + 86400}
if len(sys.argv) > 3:
    claims["jti"] = str(uuid.uuid4())
print(jwt.encode(claims, key, algorithm=alg))
EOF
}
hs=$(mint HS256 "$secret")
rs=$(mint RS256 "$keys/rsa2048.pk8.pem")
es=$(mint ES256 "$keys/ec256.pk8.pem")
bad=${hs%?}A
[ "$bad" != "$hs" ] || bad=${hs%?}B

# rs256-unique: wrk sends a different pre-minted token with each request.
log "minting unique RS256 tokens"
"$py" - "$keys/rsa2048.pk8.pem" > "$dir/tokens.lua" <<'EOF'
import sys, time, jwt, uuid
from cryptography.hazmat.primitives.serialization import load_pem_private_key
# Parsed once: handing PyJWT the PEM text would re-parse it for every token.
key = load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
print("tokens = {")
# Five thousand: several times what a worker's cache holds at the default size, so every
# request is a miss that verifies in full.
for i in range(5000):
    t = jwt.encode({"sub": "bench", "jti": str(uuid.uuid4()), "exp": int(time.time()) + 86400}, key, algorithm="RS256")
    print(f'"{t}",')
print("}")
print("i = 0")
print('request = function() i = i % #tokens + 1; return wrk.format("GET", "/rs256/", {["Authorization"] = "Bearer " .. tokens[i]}) end')
EOF
# The same script with its first token only.
awk 'NR == 1 || !/^"/ || !seen++' "$dir/tokens.lua" > "$dir/same.lua"

"$nginx" -p "$dir" -c conf/nginx.conf
trap '"$nginx" -p "$dir" -c conf/nginx.conf -s stop 2>/dev/null || true' EXIT
sleep 0.5

# Every case once, checking it answers what it should before timing it.
declare -A url hdr expect
# Each case is compared with the same request sent to a location without auth, so that only
# the module differs (nginx's own cost of parsing a 600-byte header is not the module's).
url[noauth]=/noauth/;           hdr[noauth]="Authorization: Bearer $hs";        expect[noauth]=200
url[noauth-cookie]=/noauth/;    hdr[noauth-cookie]="Cookie: theme=dark; auth=$hs; lang=en"; expect[noauth-cookie]=200
url[noauth-rs]=/noauth/;        hdr[noauth-rs]="Authorization: Bearer $rs";     expect[noauth-rs]=200
url[noauth-es]=/noauth/;        hdr[noauth-es]="Authorization: Bearer $es";     expect[noauth-es]=200
url[hs256-header]=/hs-header/;  hdr[hs256-header]="Authorization: Bearer $hs";  expect[hs256-header]=200
url[hs256-cookie]=/hs-cookie/;  hdr[hs256-cookie]="Cookie: theme=dark; auth=$hs; lang=en"; expect[hs256-cookie]=200
url[rs256]=/rs256/;             hdr[rs256]="Authorization: Bearer $rs";         expect[rs256]=200
url[es256]=/es256/;             hdr[es256]="Authorization: Bearer $es";         expect[es256]=200
url[invalid]=/invalid/;         hdr[invalid]="Authorization: Bearer $bad";      expect[invalid]=401
cases=(noauth noauth-cookie noauth-rs noauth-es hs256-header hs256-cookie rs256 es256 invalid rs256-unique rs256-same)
declare -A base=([hs256-header]=noauth [hs256-cookie]=noauth-cookie [rs256]=noauth-rs [es256]=noauth-es
    [invalid]=noauth [rs256-unique]=noauth-rs [rs256-same]=noauth-rs)
for c in "${cases[@]}"; do
    case "$c" in rs256-unique|rs256-same) continue ;; esac
    got=$(curl -s -o /dev/null -w '%{http_code}' -H "${hdr[$c]}" "http://127.0.0.1:$port${url[$c]}")
    [ "$got" = "${expect[$c]}" ] || die "case $c answered $got, expected ${expect[$c]}"
done

worker=$(pgrep -f "nginx: worker process" -P "$(cat "$dir/logs/nginx.pid")" | head -n 1)
[ -n "$worker" ] || die "no nginx worker"
ticks_per_s=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$worker/stat"; }

# Prints: requests/s, and the worker's user and system CPU time per request in microseconds.
run_case() {
    local c=$1 args=(-t1 -c32 -d"${seconds}s")
    if [ "$c" = rs256-unique ]; then
        args+=(-s "$dir/tokens.lua" "http://127.0.0.1:$port/rs256/")
    elif [ "$c" = rs256-same ]; then
        args+=(-s "$dir/same.lua" "http://127.0.0.1:$port/rs256/")
    else
        args+=(-H "${hdr[$c]}" "http://127.0.0.1:$port${url[$c]}")
    fi
    local before after out
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk "${args[@]}")
    after=$(cpu_ticks)
    awk -v b="$before" -v a="$after" -v hz="$ticks_per_s" '
        / requests in / { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END {
            split(b, x, " "); split(a, y, " ")
            printf "%s %.2f %.2f\n", rps, (y[1] - x[1]) * 1e6 / hz / n, (y[2] - x[2]) * 1e6 / hz / n
        }' <<< "$out"
}

declare -A results ratios users systems
n=${#cases[@]}
for ((r = 0; r < rounds; r++)); do
    declare -A this=()
    for ((k = 0; k < n; k++)); do
        c=${cases[$(((k + r) % n))]}
        read -r rps user sys <<< "$(run_case "$c")"
        this[$c]=$rps
        results[$c]="${results[$c]:-} $rps"
        users[$c]="${users[$c]:-} $user"
        systems[$c]="${systems[$c]:-} $sys"
        printf '  round %d  %-13s %10s req/s  worker cpu/request: user %6s us  sys %6s us\n' \
            "$((r + 1))" "$c" "$rps" "$user" "$sys" >&2
    done
    for c in "${!base[@]}"; do
        ratios[$c]="${ratios[$c]:-} $(awk -v a="${this[$c]}" -v b="${this[${base[$c]}]}" 'BEGIN { print a / b }')"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }
printf '\n%-14s %-13s %12s %8s %13s %16s %9s\n' case 'compared to' 'median req/s' ratio 'ratio range' \
    'cpu us/req u+s' 'cpu ratio'
cpu() { awk -v u="$(echo "${users[$1]}" | median)" -v s="$(echo "${systems[$1]}" | median)" 'BEGIN { print u + s }'; }
for c in "${cases[@]}"; do
    u=$(echo "${users[$c]}" | median) sy=$(echo "${systems[$c]}" | median)
    if [ -n "${base[$c]:-}" ]; then
        printf '%-14s %-13s %12.0f %8.3f %13s %8.1f+%-7.1f %9.3f\n' "$c" "${base[$c]}" \
            "$(echo "${results[$c]}" | median)" "$(echo "${ratios[$c]}" | median)" \
            "$(echo "${ratios[$c]}" | range)" "$u" "$sy" \
            "$(awk -v b="$(cpu "${base[$c]}")" -v u="$u" -v s="$sy" 'BEGIN { print b / (u + s) }')"
    else
        printf '%-14s %-13s %12.0f %8s %13s %8.1f+%-7.1f\n' "$c" - "$(echo "${results[$c]}" | median)" \
            - - "$u" "$sy"
    fi
done
printf '(%d rounds x %ds, %s, wrk -t1 -c32 keep-alive, one worker)\n' "$rounds" "$seconds" \
    "$("$nginx" -v 2>&1 | sed 's/.*: //')"
alerts=$(grep -c -E '\[alert\]|\[crit\]|exited on signal' "$dir/logs/error.log" || true)
[ "$alerts" = 0 ] || die "the error log has $alerts alert/crit/crash lines"

log "RS256 verification cost (criterion, jwt-core)"
verify_us=$(cargo bench -p jwt-core --bench verify -- 'verify/RS256$' --warm-up-time 1 --measurement-time 3 2>/dev/null \
    | awk '/time:/ { v = $5; u = $6; if (u == "ns") v /= 1000; if (u == "ms") v *= 1000; print v }')
awk -v u="$(echo "${results[rs256-unique]}" | median)" -v s="$(echo "${results[rs256-same]}" | median)" \
    -v uu="$(echo "${users[rs256-unique]}" | median)" -v su="$(echo "${users[rs256-same]}" | median)" \
    -v v="$verify_us" 'BEGIN {
    printf "\nRS256 verify in the core (micro-benchmark):         %6.1f us\n", v
    printf "a unique RS256 token, worker user CPU over a repeat: %6.1f us  (%.2fx the verify)\n", uu - su, (uu - su) / v
    printf "a unique RS256 token, wall time over a repeat:       %6.1f us  (%.2fx; includes kernel time)\n", (1 / u - 1 / s) * 1e6, (1 / u - 1 / s) * 1e6 / v
}'
