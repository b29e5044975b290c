#!/usr/bin/env bash
# Key rotation by `nginx -s reload` under load (release build): no request refused or dropped.
#
#   scripts/stress/reload-load.sh [SECONDS]        # default 20
#
# nginx (one worker) serves an RS256 location whose key file is a JWKS. wrk (2 threads,
# RELOAD_CONNECTIONS connections, default 16, `Connection: close` so that every request is a
# fresh connection and none is lost to the keep-alive close race of a graceful shutdown) sends
# RS256 tokens with kid A and with kid B, round robin, for SECONDS. During the run:
#
#   phase 1  [0, 0.3 S)      conf/jwks.json = {A}       A: 200 only   B: 401 only
#   reload 1 at 0.3 S     -> {A, B}                     A: 200 only (valid under both) B: either while the old worker drains
#   phase 2                  {A, B}                     A: 200 only   B: 200 only
#   reload 2 at 0.65 S    -> {B}   (A removed)          B: 200 only (valid under both) A: either while the old worker drains
#   phase 3                  {B}                        A: 401 only   B: 200 only
#
# The Lua response callback counts statuses per token class and wall-clock second; the script
# checks them against the phase each second belongs to (a reload "window" runs from the second
# the reload was signalled to the second the last old worker had exited, both inclusive).
# Also fails on socket errors or timeouts (dropped requests), a reload that did not replace the
# worker, alert/crit/emerg/crash lines in the error log, and when afterwards (curl) an A-token
# is not refused with 401 or a B-token not accepted with 200.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

seconds=${1:-20}
conns=${RELOAD_CONNECTIONS:-16}
[ "$seconds" -ge 6 ] || die "SECONDS must be at least 6"

load_test_setup

dir=$ROOT/build/reload-load
load_prefix "$dir"
port=${RELOAD_PORT:-18997}
keys=$ROOT/testdata/keys

write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 1;' <<EOF
    access_log off;
    root html;
    server {
        listen 127.0.0.1:$port;
        add_header X-Case \$arg_case always;
        location /api/ {
            alias html/a/;
            auth_jwt_algorithm RS256;
            auth_jwt_use_keyfile on;
            auth_jwt_keyfile_path conf/jwks.json;
        }
    }
EOF

log "making the key sets and tokens"
python_minting - "$keys" "$dir" <<'EOF'
import importlib, json, sys
rsa_jwk = importlib.import_module("mint-token").rsa_jwk
keys, dir = sys.argv[1], sys.argv[2]
A = rsa_jwk(f"{keys}/rsa2048.pub", kid="A", use="sig", alg="RS256")
B = rsa_jwk(f"{keys}/rsa2048-b.pub", kid="B", use="sig", alg="RS256")
for name, ks in [("jwks-A", [A]), ("jwks-AB", [A, B]), ("jwks-B", [B])]:
    json.dump({"keys": ks}, open(f"{dir}/{name}.json", "w"))
EOF
# RS256 tokens of kid A (rsa2048) and kid B (rsa2048-b): eight of each, alternating, for wrk,
# and one of each for curl.
mint() { # KID KEY [ARG...]
    mint_token "user-$1" --ttl 86400 --alg RS256 --key "$keys/$2.pk8.pem" --header "kid=$1" "${@:3}"
}
{
    echo "tokens = {"
    paste -d '\n' <(mint A rsa2048 --count 8 | sed 's/.*/  {cls="A", tok="&"},/') \
        <(mint B rsa2048-b --count 8 | sed 's/.*/  {cls="B", tok="&"},/')
    echo "}"
} > "$dir/tokens.lua"
tok_a=$(mint A rsa2048) tok_b=$(mint B rsa2048-b)
cp "$dir/jwks-A.json" "$dir/conf/jwks.json"

cat "$dir/tokens.lua" - > "$dir/reload.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
   reqs = {}
   for i, t in ipairs(tokens) do
      reqs[i] = wrk.format("GET", "/api/?case=" .. i,
                           {["Authorization"] = "Bearer " .. t.tok, ["Connection"] = "close"})
   end
   n = math.random(#reqs) - 1
   counts = {}   -- "class second status" -> count
end
function request()
   n = n % #reqs + 1
   return reqs[n]
end
function response(status, headers, body)
   local t = tokens[tonumber(headers["X-Case"] or "")]
   local k = (t and t.cls or "?") .. " " .. os.time() .. " " .. status
   counts[k] = (counts[k] or 0) + 1
end
function done(summary, latency, requests)
   local out = assert(io.open(os.getenv("RL_OUT"), "w"))
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("counts")) do out:write("COUNT ", k, " ", v, "\n") end
   end
   local e = summary.errors
   out:write(string.format("TOTAL %d %d %d %d %d %d\n", summary.requests,
                           e.connect, e.read, e.write, e.timeout, e.status))
   out:close()
end
EOF

start_nginx "$dir"

status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$port/api/"; }
initial="$(status "$tok_a") $(status "$tok_b")"
[ "$initial" = "200 401" ] || die "before the run A/B answered $initial, expected 200 401"

# Switches conf/jwks.json to $1 and reloads; prints "issued_second done_second old_pid new_pid"
# once the old worker has exited.
reload_to() {
    local old new t0 t1
    old=$(pgrep -P "$master" | tr '\n' ' ')
    cp "$dir/$1" "$dir/conf/jwks.json.new" && mv "$dir/conf/jwks.json.new" "$dir/conf/jwks.json"
    "$nginx" -p "$dir/" -c conf/nginx.conf -t -q || die "nginx -t failed on $1"
    t0=$(date +%s)
    "$nginx" -p "$dir/" -c conf/nginx.conf -s reload
    for _ in $(seq 300); do
        local alive=0 p
        for p in $old; do kill -0 "$p" 2>/dev/null && alive=1; done
        new=$(pgrep -P "$master" | tr '\n' ' ')
        [ "$alive" = 0 ] && [ -n "$new" ] && [ "$new" != "$old" ] && break
        sleep 0.1
    done
    t1=$(date +%s)
    [ "$alive" = 0 ] || die "old worker(s) $old still alive 30 s after the reload to $1"
    echo "$t0 $t1 ${old% } ${new% }"
}

log "load for ${seconds}s (wrk -t2 -c$conns), reloads at $(( seconds * 3 / 10 ))s and $(( seconds * 65 / 100 ))s"
RL_OUT=$dir/result.txt wrk -t2 -c"$conns" -d"${seconds}s" --timeout 5s \
    -s "$dir/reload.lua" "http://127.0.0.1:$port/" > "$dir/wrk.out" 2>&1 &
wrk_pid=$!
start=$(date +%s)
sleep $(( seconds * 3 / 10 ))
read -r r1_t0 r1_t1 r1_old r1_new < <(reload_to jwks-AB.json)
log "reload 1 ({A} -> {A,B}): signalled at +$(( r1_t0 - start ))s, old worker $r1_old gone by +$(( r1_t1 - start ))s, new worker $r1_new"
sleep $(( start + seconds * 65 / 100 - $(date +%s) > 0 ? start + seconds * 65 / 100 - $(date +%s) : 0 ))
read -r r2_t0 r2_t1 r2_old r2_new < <(reload_to jwks-B.json)
log "reload 2 ({A,B} -> {B}): signalled at +$(( r2_t0 - start ))s, old worker $r2_old gone by +$(( r2_t1 - start ))s, new worker $r2_new"
wait "$wrk_pid" || die "wrk failed: $(cat "$dir/wrk.out")"
final="$(status "$tok_a") $(status "$tok_b")"

# -- evaluate --------------------------------------------------------------------------------
[ -s "$dir/result.txt" ] || die "wrk wrote no result ($(cat "$dir/wrk.out"))"
# phase of a second: 1 before reload 1, w1 in its window, 2 between, w2 in reload 2's window, 3 after
report=$(awk -v a0="$r1_t0" -v a1="$r1_t1" -v b0="$r2_t0" -v b1="$r2_t1" -v start="$start" '
function phase(s) { return s < a0 ? "1" : s <= a1 ? "w1" : s < b0 ? "2" : s <= b1 ? "w2" : "3" }
function expect(cls, ph) {   # "200", "401" or "any"
    if (cls == "A") return (ph == "1" || ph == "w1" || ph == "2") ? "200" : ph == "w2" ? "any" : "401"
    if (cls == "B") return ph == "1" ? "401" : ph == "w1" ? "any" : "200"
    return "none"
}
$1 == "COUNT" {
    cls = $2; s = $3; st = $4; n = $5; ph = phase(s)
    cell[cls " " ph " " st] += n; phases[ph] = 1
    e = expect(cls, ph)
    if (e != "any" && e != st) { bad += n; badtxt = badtxt sprintf("  %d %s-token responses with %s at +%ds (phase %s, expected %s)\n", n, cls, st, s - start, ph, e) }
}
$1 == "TOTAL" { total = $2; errs = $3 + $4 + $5 + $6; printf "requests %d, socket errors connect %d read %d write %d, timeouts %d\n", $2, $3, $4, $5, $6 }
END {
    split("1 w1 2 w2 3", order, " ")
    printf "\n  %-6s %-18s %-18s\n", "phase", "A-tokens", "B-tokens"
    for (i = 1; i <= 5; i++) {
        ph = order[i]; line = ""
        for (c = 1; c <= 2; c++) {
            cls = c == 1 ? "A" : "B"; txt = ""
            for (k in cell) { split(k, p, " "); if (p[1] == cls && p[2] == ph) txt = txt (txt ? "," : "") p[3] ":" cell[k] }
            line = line sprintf(" %-18s", txt ? txt : "-")
        }
        printf "  %-6s%s\n", ph, line
    }
    for (k in cell) { split(k, p, " "); if (p[1] == "?") { bad += cell[k]; badtxt = badtxt sprintf("  %d responses without X-Case (status %s)\n", cell[k], p[3]) } }
    printf "BAD %d %d\n%s", bad + 0, errs + 0, badtxt
}' "$dir/result.txt")

alerts=$(grep -E -c 'exited on signal|\[alert\]|\[crit\]|\[emerg\]' "$dir/logs/error.log" || true)
echo
echo "reload under load: ${seconds}s, wrk -t2 -c$conns (Connection: close), $("$nginx" -v 2>&1 | sed 's/.*: //'), release module"
echo "  $(echo "$report" | head -n 1)"
echo "  reload 1 {A}->{A,B}: signalled +$(( r1_t0 - start ))s, drained by +$(( r1_t1 - start ))s; worker $r1_old -> $r1_new"
echo "  reload 2 {A,B}->{B}: signalled +$(( r2_t0 - start ))s, drained by +$(( r2_t1 - start ))s; worker $r2_old -> $r2_new"
echo "$report" | sed -n '2,/^BAD/p' | grep -v '^BAD'
echo "  (status:count per phase; w1/w2 = the seconds from a reload signal to the old worker's exit)"
echo "  after the run (curl): A-token $(echo "$final" | cut -d' ' -f1), B-token $(echo "$final" | cut -d' ' -f2)"
echo "  error log alert/crit/emerg/crash lines: $alerts"
echo

read -r _ bad errs < <(echo "$report" | grep '^BAD')
fails=()
[ "$bad" = 0 ] || { echo "$report" | sed -n '/^BAD/,$p' | tail -n +2 | head -n 30; fails+=("$bad responses with an unexpected status"); }
[ "$errs" = 0 ] || fails+=("$errs socket errors/timeouts (dropped requests)")
[ "$r1_old" != "$r1_new" ] && [ "$r2_old" != "$r2_new" ] || fails+=("a reload did not replace the worker")
[ "$final" = "401 200" ] || fails+=("after the final reload A/B answered [$final], expected [401 200]")
[ "$alerts" = 0 ] || { grep -E 'exited on signal|\[alert\]|\[crit\]|\[emerg\]' "$dir/logs/error.log" | head; fails+=("alert/crit/emerg/crash lines in the error log"); }
# each phase must have been exercised
for ph in 1 2 3; do
    echo "$report" | grep -q "^  $ph  *[^ -]" || fails+=("phase $ph got no responses")
done

if [ ${#fails[@]} -gt 0 ]; then
    printf 'FAILED:\n' >&2
    printf '  - %s\n' "${fails[@]}" >&2
    exit 1
fi
echo "PASS"
