#!/usr/bin/env bash
# What a request costs nginx and the module, in instructions: deterministic, unlike time.
#
#   scripts/perf/instructions.sh [--check]
#
# nginx (release module, one process: master_process off) runs under valgrind's callgrind
# while a client sends one warm-up request and then N requests of one case on a keep-alive
# connection; it is run twice, with N = 20 and N = 120, and the difference of the two counts,
# divided by 100, is the cost of one request with start-up, configuration and the warm-up
# (the cache miss that fills the cache) taken out. Counted: every user-space instruction of
# the process, those run inside the module (its code and what it calls, but for the rest of
# nginx's header filter chain, which the module's filter calls), and the calls the module
# makes to malloc and its kin.
#
# Cases are those of scripts/perf/bench.sh, each against the same request sent to a location
# without auth; rs256-unique sends a never-seen token each time, and is also set against the
# instructions of the RSA verification (aws-lc-rs) within it.
# The profiles stay in build/instructions/CASE.N.callgrind (callgrind_annotate reads them).
#
# --check fails (exit 1) when a request served from the cache makes the module allocate on
# the heap (hs256-header, hs256-cookie, rs256, es256, plus, key-request, revocation), or when a unique RS256
# token costs more than 1.2 times its RSA verification. scripts/test.sh runs it so.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

check=0
[ "${1:-}" = --check ] && check=1
load_test_setup
need_packages valgrind

port=${INSTRUCTIONS_PORT:-18996}
# A revocation list of 1,000 entries: 100,000 take minutes to load under callgrind (the
# throughput benchmark, scripts/perf/bench.sh, has them).
bench_revocations=1000
bench_setup instructions "$port" 'master_process off;' 'daemon off;'
# One for the warm-up and one per request of the longer run.
log "minting tokens"
unique_rs256_tokens 121 > "$dir/unique.tokens"
# The cases of bench_cases, and rs256-unique: a new RS256 token each time ("@unique" as the
# header).
bench_case rs256-unique /rs256/ @unique 200 noauth-rs
cases=(hs256-header hs256-cookie rs256 es256 plus key-request revocation invalid rs256-unique)
hits=(hs256-header hs256-cookie rs256 es256 plus key-request revocation)

# Sends the warm-up request and N more; fails on any unexpected status.
client() { # N URL HEADER STATUS
    "$py" - "$port" "$dir/unique.tokens" "$@" <<'EOF'
import socket, sys
port, unique, n, url, header, status = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
tokens = open(unique).read().split()
s = socket.create_connection(("127.0.0.1", port))
reader = s.makefile("rb")
for i in range(n + 1):
    h = f"Authorization: Bearer {tokens[i]}" if header == "@unique" else header
    s.sendall(f"GET {url} HTTP/1.1\r\nHost: bench\r\n{h}\r\n\r\n".encode())
    line = reader.readline().decode()
    if line.split()[1] != status:
        sys.exit(f"{url} answered {line.strip()}, expected {status}")
    length = 0
    while (field := reader.readline()) not in (b"\r\n", b""):
        name, _, value = field.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    reader.read(length)
EOF
}

# Prints: instructions, module-inclusive instructions, module allocations, RSA verification
# instructions, for one callgrind output file.
tally() {
    "$py" - "$1" <<'EOF'
import sys
MODULE = "libngx_http_auth_jwt_module"
# The RSA verification as the micro-benchmark's verify/RS256 counts it: the module hashes the
# signing input itself, then hands aws-lc-rs the digest.
RSA = ("RsaParameters as aws_lc_rs::signature::ParsedVerificationAlgorithm>::parsed_verify_sig",
       "RsaParameters as aws_lc_rs::signature::ParsedVerificationAlgorithm>::parsed_verify_digest_sig",
       "aws_lc_rs::digest::sha::sha256_digest")
ALLOC = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}
total = inside = allocs = rsa = 0
ob = fn = cob = cfn = None
calls = None
for line in open(sys.argv[1]):
    key, eq, value = line.rstrip("\n").partition("=")
    if eq and key in ("ob", "fn", "cob", "cfn", "calls"):
        if key == "ob": ob = value
        elif key == "fn": fn, cob = value, None
        elif key == "cob": cob = value
        elif key == "cfn": cfn = value
        else: calls = int(value.split()[0])
        continue
    if line.startswith("summary:"):
        total = int(line.split()[1])
        continue
    fields = line.split()
    if len(fields) < 2 or not (fields[0][0].isdigit() or fields[0][0] in "+-*"):
        continue
    if calls is None:
        continue
    cost, here = int(fields[1]), MODULE in (ob or "")
    there = MODULE in (cob or ob or "")
    if there and not here:
        inside += cost  # a call into the module: all it costs, callees included
    if here and not there and (fn or "").endswith(("::header_filter", "::body_filter")):
        inside -= cost  # the module's filters calling the rest of nginx's chain
    if here and cfn in ALLOC:
        allocs += calls
    if here and (cfn or "").endswith(RSA) and not (fn or "").endswith(RSA):
        rsa += cost
    calls, cob = None, None
print(total, inside, allocs, rsa)
EOF
}

# Prints the per-request figures of one case (the four of tally, over 100 requests).
measure() {
    local c=$1 n out pid
    declare -a runs=()
    for n in 20 120; do
        rm -f "$dir"/callgrind.out.*
        valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p" --dump-instr=no \
            --compress-strings=no --compress-pos=no \
            "$nginx" -p "$dir/" -c conf/nginx.conf 2> "$dir/logs/valgrind.log" &
        pid=$!
        for _ in $(seq 150); do
            (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.2
        done
        client "$n" "${url[$c]}" "${hdr[$c]}" "${expect[$c]}" || { kill "$pid"; die "case $c failed"; }
        kill -QUIT "$pid"
        wait "$pid" || true
        out=$(ls "$dir"/callgrind.out.* 2>/dev/null | head -n 1)
        [ -n "$out" ] || die "callgrind wrote nothing for $c (see $dir/logs/valgrind.log)"
        mv "$out" "$dir/$c.$n.callgrind"
        runs+=("$(tally "$dir/$c.$n.callgrind")")
    done
    awk -v a="${runs[0]}" -v b="${runs[1]}" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= 4; i++) printf "%s%.1f", (i > 1 ? " " : ""), (y[i] - x[i]) / 100
        print ""
    }'
}

declare -A figures
for c in "${cases[@]}" noauth noauth-cookie noauth-rs noauth-es noauth-kid noauth-jti; do
    [ -n "${figures[$c]:-}" ] && continue
    log "measuring $c"
    figures[$c]=$(measure "$c")
done

printf '\n%-14s %-13s %14s %14s %8s %14s %13s\n' case 'compared to' 'instr/request' 'baseline' ratio \
    'in the module' 'module mallocs'
failed=()
for c in "${cases[@]}"; do
    read -r total inside allocs rsa <<< "${figures[$c]}"
    read -r btotal _ <<< "${figures[${base[$c]}]}"
    printf '%-14s %-13s %14.0f %14.0f %8.3f %14.0f %13.1f\n' "$c" "${base[$c]}" "$total" "$btotal" \
        "$(awk -v a="$total" -v b="$btotal" 'BEGIN { print b / a }')" "$inside" "$allocs"
    for h in "${hits[@]}"; do
        [ "$c" = "$h" ] && awk -v a="$allocs" 'BEGIN { exit !(a != 0) }' &&
            failed+=("$c: the module allocates $allocs times per request served from the cache")
    done
    if [ "$c" = rs256-unique ]; then
        extra=$(awk -v a="$total" -v b="$btotal" 'BEGIN { print a - b }')
        ratio=$(awk -v e="$extra" -v r="$rsa" 'BEGIN { printf "%.3f", e / r }')
        unique_line=$(printf 'a unique RS256 token: %.0f instructions over no auth, %.0f of them in the RSA verification: %sx' "$extra" "$rsa" "$ratio")
        awk -v x="$ratio" 'BEGIN { exit !(x > 1.2) }' &&
            failed+=("rs256-unique: $ratio times the RSA verification, more than 1.2")
    fi
done
printf '(ratio: baseline / case, as throughput would be if only user-space instructions counted)\n%s\n' "$unique_line"

if [ "$check" = 1 ] && [ ${#failed[@]} -gt 0 ]; then
    printf 'error: %s\n' "${failed[@]}" >&2
    exit 1
fi
