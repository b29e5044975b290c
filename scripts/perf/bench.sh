#!/usr/bin/env bash
# Throughput of nginx with the module against the same nginx without auth, in one run.
#
#   scripts/perf/bench.sh [ROUNDS] [SECONDS]   # default: 12 rounds, 2 s per measurement
#                                              # (a case and its baseline: 2 x SECONDS together)
#   scripts/perf/bench.sh 1 1                  # a short run, about a minute
#
# One nginx worker pinned to CPU 0, wrk (1 thread, 32 keep-alive connections) pinned to CPU 1,
# a small static file, default error_log level (error), access_log off.
#
# Each case is measured against its baseline, the same request sent to a location without
# auth (noauth, noauth-cookie, noauth-rs, noauth-es, noauth-kid), so that only the module
# differs: nginx's own cost of parsing a 600-byte header is not the module's. The two are interleaved within one
# wrk run (scripts/perf/interleave.lua): wrk sends one of them for 20 ms, then the other, in pairs
# of slices whose order is drawn at random, and counts the responses of each slice. On this
# shared VM two runs of a few seconds of the very same request, one after the other, differ by
# up to 20%; 20 ms apart, the case and its baseline see the same machine. Every round runs each
# case once, in a rotated order; the ratio printed is that of the responses of all rounds.
#
# Cases: hs256-header, hs256-cookie, rs256, es256, plus (HS256 configured as NGINX Plus has
# it: auth_jwt and auth_jwt_key_file), key-request (the same keys fetched by
# auth_jwt_key_request), revocation (HS256 with a jti, looked up by jti and sub in a revocation
# zone of 100,000 entries) (the same token repeated: cache hits), invalid (a bad
# signature: 401 and one error-log line each), and control: noauth against itself, the noise
# floor.
#
# Printed per case: the median over the rounds of its requests/s; its ratio to the baseline
# over all rounds and the interquartile range of the rounds' ratios; the 20 ms pairs counted;
# how busy the nginx worker was (near 100%: nginx, not wrk, is the bottleneck).
#
# Then the cost of a unique RS256 token, a different pre-minted token per request (a Lua
# script), against the same script replaying one token, run back to back, not interleaved
# (scripts/perf/interleave.lua sends two fixed requests): 1/rs256-unique - 1/rs256-same, set
# against the raw RSA-2048 signature check of the core's micro-benchmark (criterion,
# verify/RS256), which runs on the worker's CPU just before and just after the two runs of
# every round, so that each round's ratio is taken within seconds, against the mean of the two:
# this VM's speed drifts by up to 20% within a minute. The wall time also holds what nginx and
# the kernel spend more per request at the lower request rate (fewer requests per event-loop
# pass, more wake-ups of wrk), which no module can remove. For what a unique token costs in the
# module itself, run scripts/perf/instructions.sh (callgrind: instructions in the module against
# those of its RSA verification).
#
# On a guest whose idle CPUs halt at once (haltpoll with guest_halt_poll_ns 0, as on this
# project's VMs), every response that wakes an idle wrk costs the worker a cross-CPU interrupt,
# some 15 us here: it taxes the slower cases more and swamps what the module does. With
# BENCH_TUNE=1 the script lets idle CPUs poll 200 us before halting for the run (restored on
# exit), like pyperf's "system tune".
#
# Environment: BENCH_TUNE=1 (above; without it no host setting is changed), BENCH_PORT (default
# 18999), PYTHON.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

rounds=${1:-12} seconds=${2:-2}
load_test_setup

port=${BENCH_PORT:-18999}
bench_setup bench "$port" 'worker_processes 1;' 'worker_cpu_affinity 01;'
log "building the micro-benchmark"
verify_bench=$(cargo bench -p jwt-core --bench verify --no-run --message-format=json 2>/dev/null | "$py" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "verify" and m.get("executable"):
        print(m["executable"])')
[ -x "$verify_bench" ] || die "the micro-benchmark did not build"

# rs256-unique: wrk sends a different pre-minted token with each request. Fifty thousand: more
# than one run sends (some 16,000 a second for 2 s), and many times what a worker's cache holds,
# so every request verifies in full.
log "minting unique RS256 tokens"
{
    echo "tokens = {"
    unique_rs256_tokens 50000 | sed 's/.*/"&",/'
    echo "}"
    echo "i = 0"
    echo 'request = function() i = i % #tokens + 1; return wrk.format("GET", "/rs256/", {["Authorization"] = "Bearer " .. tokens[i]}) end'
} > "$dir/tokens.lua"
# The same script with its first token only.
awk 'NR == 1 || !/^"/ || !seen++' "$dir/tokens.lua" > "$dir/same.lua"

# Idle polling for the run (see the top of this file), restored on exit.
poll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
poll_was=
cleanup() {
    "$nginx" -p "$dir" -c conf/nginx.conf -s stop 2>/dev/null || true
    [ -z "$poll_was" ] || echo "$poll_was" > "$poll" || true
}
trap cleanup EXIT
tuning="machine left as it is"
if [ "${BENCH_TUNE:-0}" = 1 ] && [ -w "$poll" ]; then
    poll_was=$(cat "$poll")
    echo 200000 > "$poll"
    tuning="haltpoll.guest_halt_poll_ns $poll_was -> 200000 for the run"
fi

"$nginx" -p "$dir" -c conf/nginx.conf
sleep 0.5

# Each case, compared with its baseline (bench_cases), in the order printed; control is the
# baseline against itself.
bench_case control /noauth/ "${hdr[noauth]}" 200 noauth
cases=(hs256-header hs256-cookie rs256 es256 plus key-request revocation invalid control)

# Every request once, checking it answers what it should before timing it.
for c in "${!url[@]}"; do
    got=$(curl -s -o /dev/null -w '%{http_code}' -H "${hdr[$c]}" "http://127.0.0.1:$port${url[$c]}")
    [ "$got" = "${expect[$c]}" ] || die "case $c answered $got, expected ${expect[$c]}"
done

worker=$(pgrep -f "nginx: worker process" -P "$(cat "$dir/logs/nginx.pid")" | head -n 1)
[ -n "$worker" ] || die "no nginx worker"
ticks_per_s=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }

# Prints: requests/s, the worker's CPU time per request in microseconds.
run_case() { # CASE
    local c=$1 args=(-t1 -c32 -d"${seconds}s")
    case "$c" in
        rs256-unique) args+=(-s "$dir/tokens.lua" "http://127.0.0.1:$port/rs256/") ;;
        rs256-same) args+=(-s "$dir/same.lua" "http://127.0.0.1:$port/rs256/") ;;
        *) args+=(-H "${hdr[$c]}" "http://127.0.0.1:$port${url[$c]}") ;;
    esac
    local before after out
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk "${args[@]}")
    after=$(cpu_ticks)
    awk -v t=$((after - before)) -v hz="$ticks_per_s" '
        / requests in / { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END { printf "%s %.2f\n", rps, t * 1e6 / hz / n }' <<< "$out"
}

# A case and its baseline interleaved in one wrk run of 2 x SECONDS (scripts/perf/interleave.lua).
# Prints: the responses counted for each, the pairs of slices, each one's requests/s, the
# responses with an unexpected status, and how busy the worker was.
run_interleaved() { # CASE
    local c=$1 b=${base[$1]} d=$((2 * seconds)) before after out
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t1 -c32 -d"${d}s" -s "$ROOT/scripts/perf/interleave.lua" "http://127.0.0.1:$port/" -- \
        "${url[$c]}" "${hdr[$c]}" "${expect[$c]}" "${url[$b]}" "${hdr[$b]}" "${expect[$b]}")
    after=$(cpu_ticks)
    awk -v t=$((after - before)) -v hz="$ticks_per_s" -v d="$d" '
        $1 == "interleave" { printf "%s %s %s %s %s %s %.0f\n", $2, $3, $4, $5, $6, $7, 100 * t / hz / d }' <<< "$out"
}

# The micro-benchmark's time for one RSA-2048 signature check, in microseconds, on the
# worker's CPU (idle meanwhile): verify/RS256, then verify/RS256-prehashed (the same check the
# way the module makes it, the signing input hashed first), on one line.
micro_verify() {
    (cd "$ROOT" && taskset -c 0 "$verify_bench" --bench 'verify/RS256(-prehashed)?$' \
        --warm-up-time 0.5 --measurement-time "$seconds" --noplot 2>/dev/null) \
        | awk '$1 ~ /^verify\// { name = $1 }
            /time:/ { for (i = 1; i <= NF; i++) if ($i == "time:") { v = $(i + 3); u = $(i + 4) }
                if (u == "ns") v /= 1000; if (u == "ms") v *= 1000; t[name] = v }
            END { if (t["verify/RS256"] != "" && t["verify/RS256-prehashed"] != "")
                print t["verify/RS256"], t["verify/RS256-prehashed"] }'
}

declare -A rps cpu busy ratios sum_a sum_b pairs
micro='' prehashed='' wall_ratios=''
n=${#cases[@]}
for ((r = 0; r < rounds; r++)); do
    for ((k = 0; k < n; k++)); do
        c=${cases[$(((k + r) % n))]}
        read -r a b p rate_a rate_b unexpected cpu_busy <<< "$(run_interleaved "$c")"
        [ -n "${cpu_busy:-}" ] && [ "$p" -gt 0 ] || die "case $c: wrk printed no interleaved counts"
        [ "$unexpected" = 0 ] || die "case $c: $unexpected responses with an unexpected status"
        sum_a[$c]=$((${sum_a[$c]:-0} + a)) sum_b[$c]=$((${sum_b[$c]:-0} + b)) pairs[$c]=$((${pairs[$c]:-0} + p))
        ratios[$c]="${ratios[$c]:-} $(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
        rps[$c]="${rps[$c]:-} $rate_a" busy[$c]="${busy[$c]:-} $cpu_busy"
        printf '  round %2d  %-13s %8.0f req/s  %-13s %8.0f req/s  ratio %.3f\n' "$((r + 1))" \
            "$c" "$rate_a" "${base[$c]}" "$rate_b" "${ratios[$c]##* }" >&2
    done

    # A never-seen RS256 token each request against one repeated token, wall time, between two
    # runs of the micro-benchmark.
    order=(rs256-same rs256-unique)
    ((r % 2 == 0)) || order=(rs256-unique rs256-same)
    declare -A got=() got_cpu=()
    read -r before pre_before <<< "$(micro_verify)"
    for m in "${order[@]}"; do
        read -r "got[$m]" "got_cpu[$m]" <<< "$(run_case "$m")"
        rps[$m]="${rps[$m]:-} ${got[$m]}"
        cpu[$m]="${cpu[$m]:-} ${got_cpu[$m]}"
    done
    read -r after pre_after <<< "$(micro_verify)"
    [ -n "$before" ] && [ -n "$after" ] || die "the micro-benchmark printed no time"
    v=$(awk -v a="$before" -v b="$after" 'BEGIN { print (a + b) / 2 }')
    micro+=" $v"
    prehashed+=" $(awk -v a="$pre_before" -v b="$pre_after" -v v="$v" 'BEGIN { print (a + b) / 2 / v }')"
    wall_ratios+=" $(awk -v u="${got[rs256-unique]}" -v s="${got[rs256-same]}" -v v="$v" 'BEGIN { print (1 / u - 1 / s) * 1e6 / v }')"
    printf '  round %2d  RSA-2048 check %.1f us (%.1f before, %.1f after); a unique token %.0f req/s, a repeated one %.0f req/s\n' \
        "$((r + 1))" "$v" "$before" "$after" "${got[rs256-unique]}" "${got[rs256-same]}" >&2
done

# quantile P: of the numbers on stdin.
quantile() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk -v p="$1" '{ a[NR] = $1 }
        END { i = 1 + p * (NR - 1); lo = int(i); f = i - lo; print (lo < NR) ? a[lo] + f * (a[lo + 1] - a[lo]) : a[lo] }'
}
median() { quantile 0.5; }
printf '\n%-14s %-13s %12s %7s %13s %8s %6s\n' case 'compared to' 'median req/s' ratio \
    'round IQR' '20ms pairs' busy
for c in "${cases[@]}"; do
    printf '%-14s %-13s %12.0f %7.3f %6.3f-%-6.3f %8d %5.0f%%\n' "$c" "${base[$c]}" \
        "$(median <<< "${rps[$c]}")" "$(awk -v a="${sum_a[$c]}" -v b="${sum_b[$c]}" 'BEGIN { print a / b }')" \
        "$(quantile 0.25 <<< "${ratios[$c]}")" "$(quantile 0.75 <<< "${ratios[$c]}")" \
        "${pairs[$c]}" "$(median <<< "${busy[$c]}")"
done
printf '(%d rounds x %ds per case, interleaved with its baseline every 20 ms; %s, wrk -t1 -c32 keep-alive, one worker; %s)\n' \
    "$rounds" "$((2 * seconds))" "$("$nginx" -v 2>&1 | sed 's/.*: //')" "$tuning"
alerts=$(grep -c -E '\[alert\]|\[crit\]|exited on signal' "$dir/logs/error.log" || true)
[ "$alerts" = 0 ] || die "the error log has $alerts alert/crit/crash lines"

iqr() { printf '%.3f-%.3f' "$(quantile 0.25 <<< "$1")" "$(quantile 0.75 <<< "$1")"; }
printf '\nunique RS256 tokens against the RSA-2048 check of the micro-benchmark (medians of the rounds):\n'
printf '  RSA-2048 signature check, micro-benchmark:              %6.1f us\n' "$(median <<< "$micro")"
printf '    the same check prehashed, as the module makes it:               %.3fx  IQR %s\n' \
    "$(median <<< "$prehashed")" "$(iqr "$prehashed")"
printf '  a unique token over a repeated one, wall time:          %6.1f us  %.3fx  IQR %s\n' \
    "$(awk -v u="$(median <<< "${rps[rs256-unique]}")" -v s="$(median <<< "${rps[rs256-same]}")" 'BEGIN { print (1 / u - 1 / s) * 1e6 }')" \
    "$(median <<< "$wall_ratios")" "$(iqr "$wall_ratios")"
printf '  same, worker CPU time:                                  %6.1f us\n' \
    "$(awk -v u="$(median <<< "${cpu[rs256-unique]}")" -v s="$(median <<< "${cpu[rs256-same]}")" 'BEGIN { print u - s }')"
printf '(for what a unique token costs in the module itself: scripts/perf/instructions.sh)\n'
