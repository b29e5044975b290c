#!/usr/bin/env bash
# Memory bounds of the module on a real nginx (release build), printed as figures.
#
#   scripts/perf/memory.sh [TOKENS]      # default 3000
#
# 1. The verified-token cache holds what `auth_jwt_cache` allows, claims read or not.
#    One worker with the default cache (2 MiB) serves TOKENS distinct tokens of 300 claims
#    each (about 6 KiB of base64), each sent three times (the second sighting stores it, the
#    third is a hit) to a location that reads eight of its claims through $jwt_claim_* into
#    response headers. The worker's VmRSS is read after the first 5 tokens (warm-up) and at
#    the end; the script fails when it grew by more than the cache size plus 1 MiB.
# 2. A large key set named by many locations is read and parsed once.
#    50 locations name one JWK set of 10,000 RSA keys (one modulus, 10,000 kids): prints the
#    time `nginx -t` takes and its peak RSS, and the running master's VmRSS; fails when
#    `nginx -t` takes more than 20 s or the master holds more than 256 MiB.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

tokens=${1:-3000}
case "$tokens" in '' | *[!0-9]*) die "TOKENS must be a number, not '$tokens'" ;; esac
load_test_setup

dir=$ROOT/build/memory
load_prefix "$dir"
port=${MEMORY_PORT:-18997}
cache_kb=2048

write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 1;' <<EOF
    access_log off;
    keepalive_requests 1000000;
    large_client_header_buffers 4 32k;
    root html;
    server {
        listen 127.0.0.1:$port;
        auth_jwt_key "$bench_hex";
        location /claims/ {
            alias html/a/;
            add_header X-C0 \$jwt_claim_c0;
            add_header X-C37 \$jwt_claim_c37;
            add_header X-C74 \$jwt_claim_c74;
            add_header X-C111 \$jwt_claim_c111;
            add_header X-C148 \$jwt_claim_c148;
            add_header X-C185 \$jwt_claim_c185;
            add_header X-C222 \$jwt_claim_c222;
            add_header X-C299 \$jwt_claim_c299;
        }
    }
EOF

start_nginx "$dir"

log "part 1: $tokens tokens of 300 claims, each sent 3 times, 8 claims read"
python_minting - "$port" "$tokens" "$bench_secret" "$cache_kb" "$dir/logs/nginx.pid" <<'PY'
import http.client, importlib, sys, time
mint = importlib.import_module("mint-token").mint

port, tokens, secret, cache_kb, pidfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
master = int(open(pidfile).read())
worker = int(open(f"/proc/{master}/task/{master}/children").read().split()[0])

def rss_kb():
    for line in open(f"/proc/{worker}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

conn = http.client.HTTPConnection("127.0.0.1", port)
exp = int(time.time()) + 3600
warm = None
for i in range(tokens):
    claims = {f"c{j}": f"v{i}-{j}" for j in range(300)}
    claims.update(sub=f"user-{i}", exp=exp)
    token = mint(claims, "HS256", secret)
    for _ in range(3):
        conn.request("GET", "/claims/", headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        r.read()
        if r.status != 200 or r.getheader("X-C299") != f"v{i}-299":
            sys.exit(f"token {i}: status {r.status}, X-C299 {r.getheader('X-C299')}")
    if i == 4:
        warm = rss_kb()
end = rss_kb()
growth = end - warm
print(f"token length {len(token)} bytes; worker VmRSS after 5 tokens {warm} KiB, "
      f"after {tokens} {end} KiB: +{growth} KiB (cache size {cache_kb} KiB)")
if growth > cache_kb + 1024:
    sys.exit(f"the worker grew by {growth} KiB, more than the cache size plus 1 MiB")
PY
"$nginx" -p "$dir/" -c conf/nginx.conf -s stop
trap - EXIT
sleep 0.5

log "part 2: 50 locations naming one JWK set of 10,000 RSA keys"
dir=$ROOT/build/memory-keys
load_prefix "$dir"
python_minting - "$dir/conf/jwks.json" "$ROOT/testdata/keys/rsa2048.pub" <<'PY'
import importlib, json, sys
key = importlib.import_module("mint-token").rsa_jwk(sys.argv[2])
keys = [{**key, "kid": f"key-{i:05}"} for i in range(10000)]
json.dump({"keys": keys}, open(sys.argv[1], "w"))
PY
{
    printf '    access_log off;\n    server {\n'
    printf '        listen 127.0.0.1:%s;\n        auth_jwt_algorithm RS256;\n' "$port"
    for i in $(seq 1 50); do
        printf '        location /l%s/ { auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/jwks.json; }\n' "$i"
    done
    printf '    }\n'
} | write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 1;'
size=$(du -k "$dir/conf/jwks.json" | cut -f1)
python3 - "$nginx" "$dir" "$size" <<'PY'
import resource, subprocess, sys, time
nginx, prefix, size = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.monotonic()
subprocess.run([nginx, "-p", prefix + "/", "-c", "conf/nginx.conf", "-t", "-q"], check=True)
took = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
subprocess.run([nginx, "-p", prefix + "/", "-c", "conf/nginx.conf"], check=True)
time.sleep(0.5)
master = int(open(prefix + "/logs/nginx.pid").read())
rss = next(int(l.split()[1]) for l in open(f"/proc/{master}/status") if l.startswith("VmRSS:"))
subprocess.run([nginx, "-p", prefix + "/", "-c", "conf/nginx.conf", "-s", "stop"], check=True)
print(f"JWK set {size} KiB; nginx -t {took:.2f} s, peak RSS {peak // 1024} MiB; master VmRSS {rss // 1024} MiB")
if took > 20 or rss > 256 * 1024:
    sys.exit("the key set is not parsed once")
PY
