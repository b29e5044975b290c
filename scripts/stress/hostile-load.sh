#!/usr/bin/env bash
# Hostile traffic at full load against one nginx worker with the module (release build).
#
#   scripts/stress/hostile-load.sh [SECONDS]        # default 60
#
# wrk (HOSTILE_THREADS threads, default 2; HOSTILE_CONNECTIONS connections, default 32) cycles
# through ~160 pre-minted cases (scripts/stress/hostile-load.py → build/hostile-load/hostile.lua):
# valid HS256/RS256 tokens, expired, forged signatures, alg none, algorithm confusion (HS256
# signed with the RS256 public key on the RS256 location), garbage bytes, oversized (> 16 KiB,
# large_client_header_buffers raised so nginx hands them to the module), CRLF-laden values,
# non-string claims, duplicate-key JSON, each over the Authorization header and the auth
# cookie. Every request carries ?case=N, echoed as X-Case, so the Lua response callback counts
# the statuses per case; X-Sub echoes $http_jwt_sub (auth_jwt_extract_request_claims sub).
#
# Fails (exit 1) when: the error log shows `exited on signal`, `[alert]`, `[crit]` or `[emerg]`;
# the worker pid changed; the worker's VmRSS grew by 1 MiB or more between the warm-up point
# (5 s into the load) and the end; any case got another status (or X-Sub) than expected, or
# none at all; valid tokens do not answer 200 afterwards.
#
# The error log (level error: one line per refused token) is rotated every few seconds
# (mv + SIGUSR1), each chunk scanned for bad lines and deleted, so the disk does not fill.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

seconds=${1:-60}
threads=${HOSTILE_THREADS:-2}
conns=${HOSTILE_CONNECTIONS:-32}
warmup=5
[ "$seconds" -ge 10 ] || warmup=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
rss_limit_kb=1024

load_test_setup

dir=$ROOT/build/hostile-load
load_prefix "$dir"
port=${HOSTILE_PORT:-18998}
secret=hostile-secret-hostile-secret-hostile-secret-hostile-0123456789
hex=$(printf '%s' "$secret" | od -An -tx1 | tr -d ' \n')
keys=$ROOT/testdata/keys

write_nginx_conf "$dir/conf/nginx.conf" "$module" 'worker_processes 1;' <<EOF
    access_log off;
    keepalive_requests 1000000;
    large_client_header_buffers 4 64k;
    root html;
    server {
        listen 127.0.0.1:$port;
        add_header X-Case \$arg_case always;
        add_header X-Sub \$http_jwt_sub always;
        auth_jwt_key "$hex";
        location /h/ {
            alias html/a/;
            auth_jwt_extract_request_claims sub;
        }
        location /c/ {
            alias html/a/;
            auth_jwt_location COOKIE=auth;
            auth_jwt_validate_sub on;
            auth_jwt_extract_request_claims sub;
        }
        location /r/ {
            alias html/a/;
            auth_jwt_algorithm RS256;
            auth_jwt_use_keyfile on;
            auth_jwt_keyfile_path $keys/rsa2048.pub;
            auth_jwt_location HEADER=Authorization COOKIE=auth;
        }
    }
EOF

log "minting the cases"
ncases=$(${PYTHON:-python3} scripts/stress/hostile-load.py "$secret" "$keys" "$dir/cases.lua")
cat "$dir/cases.lua" scripts/stress/hostile-load.lua > "$dir/hostile.lua"

start_nginx "$dir"
worker_pid() { pgrep -P "$master" | head -n 1; }
worker=$(worker_pid)
[ -n "$worker" ] || die "no worker process under master $master"
[ "$(pgrep -P "$master" | wc -l)" = 1 ] || die "expected one worker"

valid_hdr=$(sed -n 's/.*name="hs256\/hdr".*"Authorization", "\([^"]*\)".*/\1/p' "$dir/cases.lua")
valid_rs=$(sed -n 's/.*name="rs256\/hdr".*"Authorization", "\([^"]*\)".*/\1/p' "$dir/cases.lua")
check_valid() { # prints the three statuses of valid tokens (header, cookie, RS256)
    local tok=${valid_hdr#Bearer }
    printf '%s %s %s' \
        "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $valid_hdr" "http://127.0.0.1:$port/h/")" \
        "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: auth=$tok" "http://127.0.0.1:$port/c/")" \
        "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $valid_rs" "http://127.0.0.1:$port/r/")"
}
before=$(check_valid)
[ "$before" = "200 200 200" ] || die "valid tokens answered $before before the load"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

bad_pattern='exited on signal|\[alert\]|\[crit\]|\[emerg\]'
: > "$dir/bad-lines.log"
log_lines=0
scan_log() { # rotate the error log, scan the old chunk, delete it
    local chunk=$dir/logs/error.log.scan
    mv "$dir/logs/error.log" "$chunk" 2>/dev/null || return 0
    kill -USR1 "$master"
    sleep 0.2 # let master and worker reopen before the chunk is read
    grep -E "$bad_pattern" "$chunk" >> "$dir/bad-lines.log" || true
    log_lines=$(( log_lines + $(wc -l < "$chunk") ))
    # keep the reason words the module logged, for the summary
    grep -o 'auth_jwt: [a-z_]*' "$chunk" | sort | uniq -c >> "$dir/reasons.raw" || true
    rm -f "$chunk"
}

log "hostile load: $ncases cases, ${seconds}s, wrk -t$threads -c$conns, worker pid $worker"
rss_start=$(rss "$worker")
HL_OUT=$dir/result.txt wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s \
    -s "$dir/hostile.lua" "http://127.0.0.1:$port/" > "$dir/wrk.out" 2>&1 &
wrk_pid=$!
start=$(date +%s)
rss_warm="" samples=""
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 1
    t=$(( $(date +%s) - start ))
    if [ -z "$rss_warm" ] && [ "$t" -ge "$warmup" ]; then
        rss_warm=$(rss "$worker")
        samples="${t}s:${rss_warm}"
    elif [ $(( t % 5 )) = 0 ] && [ -n "$rss_warm" ]; then
        samples="$samples ${t}s:$(rss "$worker")"
    fi
    [ $(( t % 4 )) = 0 ] && scan_log
done
wait "$wrk_pid" || die "wrk failed: $(cat "$dir/wrk.out")"
rss_end=$(rss "$worker")
samples="$samples end:$rss_end"
sleep 0.5
scan_log
worker_after=$(worker_pid)
after=$(check_valid)
scan_log

# -- summary ---------------------------------------------------------------------------------
fails=()
[ -s "$dir/result.txt" ] || die "wrk wrote no result (wrk output: $(cat "$dir/wrk.out"))"
echo
echo "hostile load: ${seconds}s, $ncases cases, wrk -t$threads -c$conns, $("$nginx" -v 2>&1 | sed 's/.*: //'), release module"
grep '^TOTAL' "$dir/result.txt" | sed 's/^TOTAL /  /'
printf '\n  %-12s %5s %10s %10s  %s\n' class cases responses unexpected statuses
awk '/^CLASS/ { split($3, a, "="); split($4, b, "="); split($5, c, "="); split($6, d, "=");
                printf "  %-12s %5s %10s %10s  %s\n", $2, a[2], b[2], c[2], d[2] }' "$dir/result.txt"
echo
echo "  module log reasons (error level, whole run):"
awk '{ n[$3] += $1 } END { for (r in n) printf "    %-14s %d\n", r, n[r] }' "$dir/reasons.raw" 2>/dev/null | sort
echo "  error-log lines scanned: $log_lines; alert/crit/emerg/signal lines: $(wc -l < "$dir/bad-lines.log")"
echo "  worker pid: before $worker, after ${worker_after:-none}"
echo "  worker VmRSS (KiB): start $rss_start, warm-up (${warmup}s) $rss_warm, end $rss_end, growth $(( rss_end - rss_warm ))"
echo "  RSS samples: $samples"
echo "  valid tokens (hdr cookie rs256): before [$before] after [$after]"
echo

grep '^FAIL' "$dir/result.txt" | head -n 40 | sed 's/^/  /' || true
grep -q '^VERDICT PASS' "$dir/result.txt" || fails+=("per-case statuses (see FAIL lines above, $dir/result.txt)")
[ -s "$dir/bad-lines.log" ] && { head -n 20 "$dir/bad-lines.log" | sed 's/^/  /'; fails+=("alert/crit/emerg/crash lines in the error log ($dir/bad-lines.log)"); }
[ "$worker" = "${worker_after:-}" ] || fails+=("worker pid changed: $worker -> ${worker_after:-none}")
[ $(( rss_end - rss_warm )) -lt $rss_limit_kb ] || fails+=("worker RSS grew $(( rss_end - rss_warm )) KiB after warm-up (limit $rss_limit_kb)")
[ "$after" = "200 200 200" ] || fails+=("valid tokens answered [$after] after the load")

if [ ${#fails[@]} -gt 0 ]; then
    printf 'FAILED:\n' >&2
    printf '  - %s\n' "${fails[@]}" >&2
    exit 1
fi
echo "PASS"
