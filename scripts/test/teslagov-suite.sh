#!/usr/bin/env bash
# Runs the C module's own public test suite (TeslaGov/ngx-http-auth-jwt-module: test/test.sh,
# 59 curl cases, and its nginx configuration test/etc/nginx/conf.d/test.conf) against this
# module, to show where the drop-in replacement answers differently.
#
#   scripts/test/teslagov-suite.sh [C_MODULE_REPO]
#
# C_MODULE_REPO (or env TESLAGOV_REPO; default the read-only mirror
# /work/.mirror/TeslaGov+ngx-http-auth-jwt-module/repo) is a checkout of the C module: a normal
# work tree (its files are used as they are on disk) or a git directory without work tree
# (files of TESLAGOV_REF, default HEAD). Their files are read and run, never copied into this
# repository: they go to a private scratch directory under build/, removed on exit
# (TESLAGOV_KEEP=1 keeps it and prints its path, for the logs).
#
# What it does:
# - builds the release module and its nginx (load_test_setup of scripts/lib/common.sh);
# - makes their test.conf load in a scratch nginx prefix by textual substitution only:
#   %{PORT} and %{SSL_PORT} become 127.0.0.1:PORT and 127.0.0.1:SSL_PORT, /etc/nginx/ the scratch
#   copy of their test/etc/nginx/, /usr/share/nginx/html/ a directory holding the index.html
#   their test image serves, /var/log/nginx/ the prefix's logs/; every other byte stays as
#   they wrote it. nginx.conf around it gives what their image's nginx.conf gives at http level;
# - runs `nginx -t` (failing with its output), starts nginx, runs their test.sh with PORT and
#   SSL_PORT exported and a `curl` wrapper first in PATH that resolves their host name `nginx`
#   to 127.0.0.1 (no /etc/hosts change), stops nginx;
# - prints their summary line, the failed case names (marked expected or unexpected) and the
#   error logs' [emerg]/[alert]/[crit]/"exited on signal" lines.
#
# PORT is the first port free on 127.0.0.1 from 8000 up and SSL_PORT the next free one after
# it, as their scripts/get_port picks them: their case "redirect based on claim" expects the
# literal Location http://nginx:8000/..., so any other PORT fails it whatever the module does.
#
# Exit status 0 only when exactly the expected cases fail, nginx loads their configuration, and
# no error log has an alert, crit, emerg or crash line: a regression check. The expected
# failures are the built-in list below, or the case names in the file EXPECTED_FAILURES (one a
# line; blank lines and lines starting with # ignored; EXPECTED_FAILURES=/dev/null expects all
# to pass).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$ROOT"

# The cases this module fails on purpose, with why.
builtin_expected=(
    # The location is configured `auth_jwt_algorithm RS384` (RS512) and the case sends an
    # RS256 token: this module pins the configured algorithm and refuses a token signed with
    # another one (algorithm confusion); the C module never compares the two.
    'when auth enabled with RS384 algorithm via file and valid JWT in Authorization header, returns 200'
    'when auth enabled with RS512 algorithm via file and valid JWT in Authorization header, returns 200'
    # Their regexes expect return_url=http://nginx... unencoded; this module percent-encodes
    # return_url as an RFC 3986 query component (return_url=http%3A%2F%2Fnginx%3A8000%2F...),
    # so that a login service parsing the query gets the URL back whole.
    'adds return_url to login URL when redirected to login'
    'return_url includes port when redirected to login'
    'return_url includes query when redirected to login'
)
# (Their test.sh prints a failed case's response inside printf's format string, so the
# percent-encoded Location shows mangled, as http0X0P+00.000000..., and the query case adds
# "printf: `D': invalid format character": the response itself is as described above.)

repo=${1:-${TESLAGOV_REPO:-/work/.mirror/TeslaGov+ngx-http-auth-jwt-module/repo}}
ref=${TESLAGOV_REF:-}
[ -d "$repo" ] || die "no C module checkout at $repo"

need_packages curl
real_curl=$(command -v curl) || die "curl not found"

mkdir -p "$ROOT/build"
scratch=$(mktemp -d "$ROOT/build/teslagov-suite.XXXXXX")
# nginx's worker (nobody when run as root) reads index.html under it: mktemp's 0700 would
# answer their 200 cases with 403.
chmod 755 "$scratch"
prefix=$scratch/prefix
# nginx is stopped by the pid in its pid file: `nginx -s stop` would parse the configuration
# once more and repeat its warnings.
stop_nginx() {
    [ -s "$prefix/logs/nginx.pid" ] && kill -TERM "$(cat "$prefix/logs/nginx.pid")" 2>/dev/null
}
cleanup() {
    stop_nginx || true
    if [ "${TESLAGOV_KEEP:-0}" = 1 ]; then
        log "scratch directory kept: $scratch"
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT

# Their files, into $scratch/c/: from the work tree as it is, or from git for a git directory
# without one (or when TESLAGOV_REF names a revision).
if [ -z "$ref" ] && [ -f "$repo/test/test.sh" ]; then
    mkdir -p "$scratch/c/test/etc"
    cp "$repo/test/test.sh" "$scratch/c/test/"
    cp -R "$repo/test/etc/nginx" "$scratch/c/test/etc/"
    revision="work tree"
    if git -C "$repo" rev-parse --verify -q HEAD >/dev/null 2>&1; then
        revision="work tree at $(git -C "$repo" describe --always --dirty --tags 2>/dev/null || true)"
    fi
else
    ref=${ref:-HEAD}
    git -C "$repo" rev-parse --verify -q "$ref^{commit}" >/dev/null \
        || die "$repo is neither a work tree with test/test.sh nor a git directory with $ref"
    mkdir -p "$scratch/c"
    git -C "$repo" archive "$ref" test/test.sh test/etc/nginx | tar -x -C "$scratch/c"
    revision="$ref = $(git -C "$repo" log -1 --format='%h %ad %s' --date=short "$ref")"
fi
c=$scratch/c/test
if [ ! -f "$c/test.sh" ] || [ ! -f "$c/etc/nginx/conf.d/test.conf" ]; then
    die "$repo has no test/test.sh or test/etc/nginx/conf.d/test.conf"
fi
log "C module suite: $repo ($revision)"

load_test_setup

# A port free on 127.0.0.1: a bind succeeds with SO_REUSEADDR, as nginx binds, so that the
# TIME-WAIT connections of a previous run do not count as taken and a listener does.
port_free() { "${PYTHON:-python3}" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()' "$1" 2>/dev/null; }
# The first free port from START up.
free_port() { # START
    local p
    for ((p = $1; p <= $1 + 100; p++)); do
        port_free "$p" && { echo "$p"; return 0; }
    done
    die "no free port on 127.0.0.1 in $1..$(($1 + 100))"
}
port=$(free_port 8000)
ssl_port=$(free_port $((port + 1)))
[ "$port" = 8000 ] || log "warning: port 8000 is taken, PORT=$port: their case 'redirect based on claim' expects http://nginx:8000/ and fails for that alone"

# The prefix: their test.conf with the substitutions above, the html their image serves.
mkdir -p "$prefix"/{conf,logs,html} "$scratch/bin"
cat > "$prefix/html/index.html" <<'EOF'
<html>
  <head>Test</head>
  <body>
    <h1>NGINX Auth-JWT Module Test</h1>
  </body>
</html>
EOF
conf=$(cat "$c/etc/nginx/conf.d/test.conf"; echo .)
conf=${conf%.}
# A placeholder or a path of their image that these substitutions miss would have nginx read
# the host's /etc/nginx or listen on all interfaces: checked on their text with the
# substituted strings taken out.
rest=$conf
for s in '%{PORT}' '%{SSL_PORT}' /etc/nginx/ /usr/share/nginx/html/ /var/log/nginx/; do
    rest=${rest//"$s"/}
done
if leftover=$(grep -n -E '%\{|/etc/nginx|/usr/share/nginx|/var/log/nginx' <<< "$rest"); then
    die "their test.conf has placeholders or image paths this script does not substitute:
$leftover"
fi
# Replacements quoted: bash 5.2 would otherwise read a & in them as the matched text.
conf=${conf//'%{PORT}'/"127.0.0.1:$port"}
conf=${conf//'%{SSL_PORT}'/"127.0.0.1:$ssl_port"}
conf=${conf//'/etc/nginx/'/"$c/etc/nginx/"}
conf=${conf//'/usr/share/nginx/html/'/"$prefix/html/"}
conf=${conf//'/var/log/nginx/'/"$prefix/logs/"}
printf '%s' "$conf" > "$prefix/conf/test.conf"

# Their image's nginx.conf gives the http block mime types and default_type (application/
# octet-stream); a two-type table stands in for nginx's mime.types, which nothing here checks.
write_nginx_conf "$prefix/conf/nginx.conf" "$module" 'worker_processes 1;' <<EOF
    types { text/html html htm; text/plain txt; }
    default_type application/octet-stream;
    include $prefix/conf/test.conf;
EOF

# Their curl calls go to http(s)://nginx:PORT: the wrapper resolves that name to 127.0.0.1 for
# both ports. -q (first) skips any ~/.curlrc and --noproxy keeps a proxy from the environment
# out of the way, so that each request reaches this nginx exactly as their runner sends it.
cat > "$scratch/bin/curl" <<EOF
#!/bin/sh
exec '$real_curl' -q --noproxy '*' --resolve 'nginx:$port:127.0.0.1' --resolve 'nginx:$ssl_port:127.0.0.1' "\$@"
EOF
chmod 755 "$scratch/bin/curl"

log "nginx -t with their test.conf ($("$nginx" -v 2>&1 | sed 's/.*: //'))"
if ! out=$("$nginx" -p "$prefix/" -c conf/nginx.conf -t 2>&1); then
    printf '%s\n' "$out" >&2
    die "nginx does not load their test.conf with this module"
fi
printf '%s\n' "$out" >&2

log "starting nginx on 127.0.0.1:$port (PORT) and 127.0.0.1:$ssl_port (SSL_PORT, TLS)"
# Its output (the warnings nginx -t printed above, again) only when it fails.
out=$("$nginx" -p "$prefix/" -c conf/nginx.conf 2>&1) || die "nginx does not start: $out"
# Their compose file waits on /ping the same way before starting the runner.
for ((i = 0; ; i++)); do
    [ "$("$real_curl" -q -s --noproxy '*' "http://127.0.0.1:$port/ping" || true)" = pong ] && break
    [ "$i" -lt 100 ] || die "nginx does not answer /ping on 127.0.0.1:$port: $(tail -n 5 "$prefix/logs/error.log")"
    sleep 0.1
done

log "running their test.sh"
status=0
PATH="$scratch/bin:$PATH" PORT=$port SSL_PORT=$ssl_port bash "$c/test.sh" 2>&1 \
    | tee "$scratch/test.out" || status=$?

log "stopping nginx"
stop_nginx || log "warning: no nginx to stop (pid file $prefix/logs/nginx.pid)"
for ((i = 0; i < 100; i++)); do
    [ -e "$prefix/logs/nginx.pid" ] || break
    sleep 0.1
done
[ ! -e "$prefix/logs/nginx.pid" ] || log "warning: nginx has not exited after 10 s"

# Their output without colours: a case is "N<tab>NAME", or "N<tab>NAME -- WHY" when it fails.
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$scratch/test.out")
summary=$(grep -E '^Ran [0-9]+ tests' <<< "$plain" | tail -n 1 || true)
failed=$(sed -n -E 's/^[0-9]+\t(.*) -- (unexpected exit code from cURL|unexpected status code|regex not found in response)$/\1/p' <<< "$plain" | sort -u)
cases=$(sed -n -E 's/^[0-9]+\t(.*)$/\1/p' <<< "$plain" \
    | sed -E 's/ -- (unexpected exit code from cURL|unexpected status code|regex not found in response)$//' | sort -u)
if [ -n "${EXPECTED_FAILURES:-}" ]; then
    [ -r "$EXPECTED_FAILURES" ] || die "EXPECTED_FAILURES=$EXPECTED_FAILURES is not a readable file"
    expected=$(grep -v -E '^[[:space:]]*(#|$)' "$EXPECTED_FAILURES" | sort -u || true)
    expected_from=$EXPECTED_FAILURES
else
    expected=$(printf '%s\n' "${builtin_expected[@]}" | sort -u)
    expected_from="the built-in list"
fi

ok=1
echo
echo "their summary: ${summary:-none (test.sh exited with $status before its summary)}"
ncases=$(grep -c . <<< "$cases" || true)
nfailed=$(grep -c . <<< "$failed" || true)
echo "cases run: $ncases"
# Their counts against the case lines read here: a mismatch means their output changed and
# the names below are not to be trusted; skipped cases mean a DEBUG left set in their test.sh.
read -r their_total their_failed their_skipped < <(sed -n -E \
    -e 's/^Ran ([0-9]+) tests successfully \(skipped ([0-9]+)\)\.$/\1 0 \2/p' \
    -e 's/^Ran ([0-9]+) tests: [0-9]+ passed; ([0-9]+) failed; ([0-9]+) skipped$/\1 \2 \3/p' \
    <<< "$summary") || true
if [ -z "${their_total:-}" ]; then
    echo "their summary is missing or not in the form this script reads"
    ok=0
elif [ "$their_total" != $((ncases + their_skipped)) ] || [ "$their_failed" != "$nfailed" ] \
    || [ "$their_skipped" != 0 ]; then
    echo "their counts ($their_total run, $their_failed failed, $their_skipped skipped) differ from the $ncases case lines and $nfailed failures read here, or cases were skipped"
    ok=0
fi
echo "failed cases ($nfailed; expected failures from $expected_from):"
while IFS= read -r name; do
    [ -n "$name" ] || continue
    if grep -qxF -- "$name" <<< "$expected"; then
        echo "  expected    $name"
    else
        echo "  UNEXPECTED  $name"
        ok=0
    fi
done <<< "$failed"
while IFS= read -r name; do
    [ -n "$name" ] || continue
    if ! grep -qxF -- "$name" <<< "$cases"; then
        echo "expected to fail but not a case of their suite: $name"
        ok=0
    elif ! grep -qxF -- "$name" <<< "$failed"; then
        echo "expected to fail but passed: $name"
        ok=0
    fi
done <<< "$expected"

# The error logs: ours (logs/error.log) and the one their test.conf names (logs/debug.log);
# the access logs hold request lines, not nginx's messages.
alerts=$(grep -H -E '\[(emerg|alert|crit)\]|exited on signal' "$prefix"/logs/*.log \
    | grep -v -E '/(test_)?access\.log:' || true)
if [ -n "$alerts" ]; then
    echo "error log alert/crit/emerg/crash lines:"
    while IFS= read -r line; do
        printf '  %s\n' "${line#"$prefix/logs/"}"
    done <<< "$alerts"
    ok=0
else
    echo "error log alert/crit/emerg/crash lines: none"
fi

if [ "$ok" = 1 ]; then
    echo "result: OK (exactly the expected cases fail)"
else
    [ "${TESLAGOV_KEEP:-0}" = 1 ] || echo "(TESLAGOV_KEEP=1 keeps the scratch directory with nginx's logs)"
    echo "result: FAIL"
    exit 1
fi
