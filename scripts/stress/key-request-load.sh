#!/usr/bin/env bash
# Keys over HTTP at full load (release build): no crash, no growth, the fetches the docs promise.
#
#   scripts/stress/key-request-load.sh [SECONDS]        # default 40
#
# One nginx worker checks tokens with the keys of `auth_jwt_key_request`, fetched from a
# provider on 127.0.0.1 (python's http.server serving a JWK set) with `auth_jwt_key_cache 1s
# stale=10s`: the keys are refreshed in the background about every 0.75 s under load. wrk
# (2 threads, KEYREQ_CONNECTIONS connections, default 64) cycles through 50 valid tokens and 50
# tokens with made-up kids, each of which may refetch the set (at most once per 30 s).
#
# Fails (exit 1) when: a valid token was answered other than 200, or a made-up kid other than
# 401 (per wrk's count of non-2xx answers); the error log shows `exited on signal`, `[alert]`,
# `[crit]` or `[emerg]`; the worker pid changed; its VmRSS grew by 1 MiB or more after the
# warm-up; the provider saw more fetches than one per 0.75 s plus one refetch per 30 s (and a
# few for start-up).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

seconds=${1:-40}
conns=${KEYREQ_CONNECTIONS:-64}
[ "$seconds" -ge 10 ] || die "SECONDS must be at least 10"

load_test_setup

dir=$ROOT/build/key-request-load
load_prefix "$dir"
port=${KEYREQ_PORT:-18995}
provider_port=${KEYREQ_PROVIDER_PORT:-18994}
mkdir -p "$dir/provider"

python_minting - "$bench_secret" "$dir" <<'EOF_PY'
import importlib, json, sys
mint = importlib.import_module("mint-token")
secret, dir = sys.argv[1], sys.argv[2]
k = mint.b64url(secret.encode())
json.dump({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]},
          open(f"{dir}/provider/keys", "w"))
EOF_PY
{
    mint_token load --secret "$bench_secret" --header kid=k1 --count 50
    for i in $(seq 50); do
        mint_token load --secret "$bench_secret" --header "kid=made-up-$i"
    done
} | bearer_cycle_lua > "$dir/load.lua"

"${PYTHON:-python3}" -m http.server "$provider_port" --bind 127.0.0.1 \
    --directory "$dir/provider" > "$dir/logs/provider.log" 2>&1 &
provider=$!
sleep 0.5
kill -0 "$provider" 2>/dev/null || die "the provider did not start: $(tail -n 1 "$dir/logs/provider.log")"

write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 1;' <<EOF
    access_log off;
    server {
        listen 127.0.0.1:$port;
        auth_jwt "load"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1s stale=10s;
        location = /jwks { internal; proxy_pass http://127.0.0.1:$provider_port/keys; }
        location / { alias html/a/; }
    }
EOF
start_nginx "$dir"
# The prefix and the provider's pid are those of now.
# shellcheck disable=SC2064
trap "\"\$nginx\" -p '$dir/' -c conf/nginx.conf -s stop 2>/dev/null || true; kill $provider 2>/dev/null || true" EXIT
worker=$(pgrep -f "nginx: worker process" -P "$master" | head -n 1)

log "warming up for 5 s"
wrk -t2 -c"$conns" -d5s -s "$dir/load.lua" "http://127.0.0.1:$port/" > /dev/null
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status")
fetches0=$(grep -c 'GET /keys' "$dir/logs/provider.log" || true)
log "loading for $seconds s"
out=$(wrk -t2 -c"$conns" -d"${seconds}s" -s "$dir/load.lua" "http://127.0.0.1:$port/")
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
fetches=$(( $(grep -c 'GET /keys' "$dir/logs/provider.log" || true) - fetches0 ))
total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<< "$out")
refused=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<< "$out")
refused=${refused:-0}
now_worker=$(pgrep -f "nginx: worker process" -P "$master" | head -n 1)
bound=$(( seconds * 4 / 3 + (seconds + 29) / 30 + 3 ))

echo "$out" | sed -n '/requests in/,$p'
echo "  worker $worker -> $now_worker, VmRSS ${rss0} -> ${rss1} KiB; provider fetches: $fetches (bound $bound)"

fails=()
[ "$worker" = "$now_worker" ] || fails+=("the worker changed")
[ $(( rss1 - rss0 )) -lt 1024 ] || fails+=("the worker grew by $(( rss1 - rss0 )) KiB")
[ "$fetches" -le "$bound" ] || fails+=("$fetches fetches, more than $bound")
[ "$fetches" -ge 1 ] || fails+=("no fetch during the load: the keys were never refreshed")
# Half the tokens have made-up kids: half the answers are 401, within one cycle of tokens.
half=$(( total / 2 ))
[ $(( refused - half )) -le 100 ] && [ $(( half - refused )) -le 100 ] \
    || fails+=("$refused of $total answers were not 200, where half is $half")
if grep -E 'exited on signal|\[alert\]|\[crit\]|\[emerg\]' "$dir/logs/error.log" | grep -q .; then
    fails+=("the error log has a crash or an alert")
fi
[ ${#fails[@]} -eq 0 ] || { printf 'FAILED: %s\n' "${fails[@]}" >&2; exit 1; }
echo "PASS"
