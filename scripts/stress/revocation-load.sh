#!/usr/bin/env bash
# The revocation list changed through its API while two workers check tokens at full load
# (release build): no crash, no growth, every answer the list says.
#
#   scripts/stress/revocation-load.sh [SECONDS]        # default 30
#
# Two nginx workers check HS256 tokens against `auth_jwt_revocation` (a 4m zone with a state
# file). wrk (2 threads, 64 connections) cycles through the tokens of 100 users, each with a
# jti; meanwhile a client revokes and un-revokes users through the API as fast as it is
# answered (POST {"sub"}, POST {"jti","exp"}, DELETE), so that every request races a change.
#
# Fails (exit 1) when: the error log shows `exited on signal`, `[alert]`, `[crit]` or
# `[emerg]`; a worker pid changed; a worker's VmRSS grew by 1 MiB or more after the warm-up;
# an API change was not answered 200 (404 for a DELETE of what the other half removed); or,
# after the load, a token is not answered as the list then says (401 for a listed user or
# jti, 200 otherwise), or the state file differs from the list.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

seconds=${1:-30}
[ "$seconds" -ge 10 ] || die "SECONDS must be at least 10"
load_test_setup

dir=$ROOT/build/revocation-load
load_prefix "$dir"
port=${REVOCATION_PORT:-18993}
api_port=${REVOCATION_API_PORT:-18992}
# The workers write the state file: started as root, they run as nobody.
mkdir -p "$dir/state"
rm -f "$dir/state/"*
[ "$(id -u)" -ne 0 ] || chown nobody "$dir/state"

# One token per user, each with its own jti, tokens.txt: "USER JTI TOKEN" a line.
python_minting - "$bench_secret" > "$dir/tokens.txt" <<'EOF_PY'
import importlib, sys, time
mint = importlib.import_module("mint-token")
secret, now = sys.argv[1], int(time.time())
for i in range(100):
    claims = {"sub": f"user-{i}", "jti": f"jti-{i}", "iat": now - 60, "exp": now + 3600}
    print(claims["sub"], claims["jti"], mint.mint(claims, "HS256", secret))
EOF_PY
awk '{ print $3 }' "$dir/tokens.txt" | bearer_cycle_lua > "$dir/load.lua"

write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 2;' <<EOF
    access_log off;
    auth_jwt_revocation_zone zone=load:4m state=$dir/state/revoked.json;
    server {
        listen 127.0.0.1:$port;
        auth_jwt_key "$bench_hex"; auth_jwt_revocation load;
        location / { alias html/a/; }
    }
    server {
        listen 127.0.0.1:$api_port;
        location = /revoke { auth_jwt_revocation_api load; }
    }
EOF
start_nginx "$dir"
workers() { pgrep -f "nginx: worker process" -P "$master" | sort | tr '\n' ' '; }
# Private memory only (RssAnon): the zone's shared pages count in VmRSS as a worker touches them.
rss() { local t=0 p; for p in $(workers); do t=$((t + $(awk '/RssAnon/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
pids0=$(workers)

log "warming up for 5 s"
wrk -t2 -c64 -d5s -s "$dir/load.lua" "http://127.0.0.1:$port/" > /dev/null
rss0=$(rss)

# The changes, for as long as the load runs: prints the count of each answer status.
changes() { # SECONDS
    "${PYTHON:-python3}" - "$api_port" "$1" <<'EOF_PY'
import collections, http.client, json, random, sys, time
port, until = int(sys.argv[1]), time.time() + float(sys.argv[2])
seen = collections.Counter()
conn = http.client.HTTPConnection("127.0.0.1", port)
while time.time() < until:
    i = random.randrange(100)
    body = random.choice([
        {"sub": f"user-{i}"},
        {"jti": f"jti-{i}", "exp": int(time.time()) + 3600},
    ])
    method = random.choice(["POST", "POST", "DELETE"])
    if method == "DELETE":
        body = {k: v for k, v in body.items() if k in ("sub", "jti")}
    conn.request(method, "/revoke", json.dumps(body), {"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    seen[f"{method} {answer.status}"] += 1
print(" ".join(f"{k.replace(' ', ':')}={v}" for k, v in sorted(seen.items())))
EOF_PY
}

log "loading for $seconds s while the list changes"
changes "$seconds" > "$dir/changes.txt" &
changer=$!
out=$(wrk -t2 -c64 -d"${seconds}s" -s "$dir/load.lua" "http://127.0.0.1:$port/")
wait "$changer"
rss1=$(rss)
pids1=$(workers)
echo "$out" | sed -n '/requests in/,$p'
echo "  API changes: $(cat "$dir/changes.txt")"
echo "  workers $pids0-> $pids1, RssAnon (both) ${rss0} -> ${rss1} KiB"

fails=()
[ "$pids0" = "$pids1" ] || fails+=("a worker changed")
[ $((rss1 - rss0)) -lt 1024 ] || fails+=("the workers grew by $((rss1 - rss0)) KiB")
for answer in $(cat "$dir/changes.txt"); do
    case "$answer" in
        POST:200=*|DELETE:200=*|DELETE:404=*) ;;
        *) fails+=("an API change was answered ${answer%%=*}") ;;
    esac
done
# Every token answered as the final list says, and the state file is that list.
list=$(curl -s "http://127.0.0.1:$api_port/revoke")
wrong=$("${PYTHON:-python3}" - "$port" "$dir/tokens.txt" "$dir/state/revoked.json" "$list" <<'EOF_PY'
import json, sys, urllib.request
port, tokens, state, listed = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
subs = {e["sub"] for e in listed if "sub" in e}
jtis = {e["jti"] for e in listed if "jti" in e}
wrong = []
for line in open(tokens):
    sub, jti, token = line.split()
    want = 401 if sub in subs or jti in jtis else 200
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {token}"})
    try:
        got = urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        got = e.code
    if got != want:
        wrong.append(f"{sub}: {got}, not {want}")
saved = json.load(open(state))
key = lambda e: json.dumps(e, sort_keys=True)
if sorted(map(key, saved)) != sorted(map(key, listed)):
    wrong.append(f"the state file holds {len(saved)} entries, the list {len(listed)}")
print("; ".join(wrong))
EOF_PY
)
echo "  final list: $(grep -o '"sub"' <<< "$list" | wc -l) subjects, $(grep -o '"jti"' <<< "$list" | wc -l) token ids"
[ -z "$wrong" ] || fails+=("after the load: $wrong")
if grep -E 'exited on signal|\[alert\]|\[crit\]|\[emerg\]' "$dir/logs/error.log" | grep -q .; then
    fails+=("the error log has a crash or an alert")
fi
[ ${#fails[@]} -eq 0 ] || { printf 'FAILED: %s\n' "${fails[@]}" >&2; exit 1; }
echo "PASS"
