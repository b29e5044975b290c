#!/usr/bin/env python3
"""Runs kjdev/nginx-auth-jwt's own test blocks that use only NGINX Plus directives against
this module: an outside check of the Plus family (docs/PLUS.md).

    scripts/test/kjdev-suite.py [KJDEV_REPO] [-v]

KJDEV_REPO (or env KJDEV_REPO; default the read-only mirror /work/.mirror/kjdev+nginx-auth-jwt/
repo) is a checkout of kjdev/nginx-auth-jwt: a work tree, or a git directory without one (files
of HEAD). Its t/*.t files (Test::Nginx blocks) are read, never copied into this repository; its
t/conf and t/data go to a scratch directory under build/, removed on exit.

Test::Nginx is not packaged for Debian, so this script reads the blocks itself. It runs a block
when its configuration names no directive outside auth_jwt, auth_jwt_key_file, auth_jwt_require,
auth_jwt_claim_set, auth_jwt_header_set, auth_jwt_leeway and auth_jwt_type, and it has only the
sections read here (http_config, config, request, more_headers, error_code, response_headers,
must_die, and the log sections, which are not compared: log lines are each module's own). For
each block: nginx -t (a must_die block passes when it fails), then nginx started with the block's
configuration on 127.0.0.1, the request sent, the status and the response headers compared.

It uses the nginx and module of `cargo build` (target/debug). It prints one line per failed
block (-v: every block) and a summary, and exits 0: kjdev's semantics differ from Plus's in
places (docs/PLUS.md), so failures are read, not counted as regressions.
"""
import glob
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPPORTED = {
    "auth_jwt", "auth_jwt_key_file", "auth_jwt_require", "auth_jwt_claim_set",
    "auth_jwt_header_set", "auth_jwt_leeway", "auth_jwt_type",
}
READ = {"http_config", "config", "request", "more_headers", "error_code", "response_headers",
        "must_die", "error_log", "no_error_log", "log_level"}


def extract(repo, into):
    """t/ of the checkout into `into`."""
    if os.path.isdir(os.path.join(repo, "t")):
        shutil.copytree(os.path.join(repo, "t"), os.path.join(into, "t"))
        return
    data = subprocess.run(["git", "--git-dir", repo, "archive", "HEAD", "t"],
                          check=True, capture_output=True).stdout
    tarfile.open(fileobj=io.BytesIO(data)).extractall(into)


def blocks(path):
    """(name, {section: text}) of each block of a .t file."""
    text = open(path).read().split("__DATA__", 1)[-1]
    for chunk in re.split(r"^=== ", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        sections = {}
        for part in re.split(r"^--- ", body, flags=re.M)[1:]:
            head, _, content = part.partition("\n")
            # `--- error_code: 401` holds its value on the section's own line.
            key, colon, inline = head.partition(":")
            sections[key.strip()] = inline.strip() if colon else content.strip("\n")
        yield name.strip(), sections


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, req, more_headers):
    line = req.strip().splitlines()[0]
    if not re.search(r" HTTP/\d\.\d$", line):
        line += " HTTP/1.1"
    head = line + "\r\nHost: localhost\r\nConnection: close\r\n"
    for h in more_headers.splitlines():
        if h.strip():
            head += h.strip() + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    header_text = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(header_text[0].split()[1])
    headers = {}
    for h in header_text[1:]:
        k, _, v = h.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers


def compare(sections, status, headers):
    """Why the response is not what the block expects, or None."""
    want = sections.get("error_code", "200").strip()
    if want and int(want) != status:
        return f"status {status}, expected {want}"
    for line in sections.get("response_headers", "").splitlines():
        if not line.strip():
            continue
        if line.startswith("!"):
            if line[1:].strip().lower() in headers:
                return f"header {line[1:].strip()} present"
            continue
        k, _, v = line.partition(":")
        got = headers.get(k.strip().lower(), [])
        if v.strip() == "":
            if any(x for x in got):
                return f"header {k.strip()}: {got[0]!r}, expected none"
        elif v.strip() not in got:
            return f"header {k.strip()}: {got[:1]!r}, expected {v.strip()!r}"
    return None


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv[1:]
    repo = args[0] if args else os.environ.get(
        "KJDEV_REPO", "/work/.mirror/kjdev+nginx-auth-jwt/repo")
    nginx = max(glob.glob(f"{ROOT}/target/debug/build/nginx-sys-*/out/objs/nginx"),
                key=os.path.getmtime, default=None)
    module = f"{ROOT}/target/debug/libngx_http_auth_jwt_module.so"
    if not nginx or not os.path.exists(module):
        sys.exit("run `cargo build` first: no nginx or module under target/debug")
    os.makedirs(f"{ROOT}/build", exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="kjdev-", dir=f"{ROOT}/build")
    try:
        extract(repo, scratch)
        run(scratch, nginx, module, verbose)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(scratch, nginx, module, verbose):
    conf_dir, data_dir = f"{scratch}/t/conf", f"{scratch}/t/data"
    counts = {"pass": 0, "fail": 0, "skipped": 0}
    for path in sorted(glob.glob(f"{scratch}/t/*.t")):
        for name, sec in blocks(path):
            config = sec.get("http_config", "") + "\n" + sec.get("config", "")
            used = set(re.findall(r"\b(auth_jwt\w*)", config))
            eval_sections = any(k.endswith(" eval") for k in sec)
            if used - SUPPORTED or eval_sections or set(sec) - READ or "request" not in sec \
                    and "must_die" not in sec:
                counts["skipped"] += 1
                continue
            label = f"{os.path.basename(path)}: {name}"
            why = run_block(sec, conf_dir, data_dir, nginx, module, f"{scratch}/prefix")
            counts["fail" if why else "pass"] += 1
            if why or verbose:
                print(f"{'FAIL' if why else 'ok  '}  {label}" + (f": {why}" if why else ""))
    total = counts["pass"] + counts["fail"]
    print(f"\nkjdev blocks run: {total} ({counts['pass']} pass, {counts['fail']} fail); "
          f"skipped (other directives or sections): {counts['skipped']}")


def run_block(sec, conf_dir, data_dir, nginx, module, prefix):
    shutil.rmtree(prefix, ignore_errors=True)
    os.makedirs(f"{prefix}/logs")
    port, upstream = free_port(), free_port()

    def subst(text):
        text = text.replace("$TEST_NGINX_CONF_DIR", f"{prefix}/conf")
        text = text.replace("$TEST_NGINX_DATA_DIR", data_dir)
        return re.sub(r"\b8080\b", str(upstream), text)

    shutil.copytree(conf_dir, f"{prefix}/conf")
    for f in glob.glob(f"{prefix}/conf/*"):
        with open(f) as fh:
            text = fh.read()
        with open(f, "w") as fh:
            fh.write(subst(text))
    conf = (f"load_module {module};\nerror_log {prefix}/logs/error.log info;\n"
            f"pid {prefix}/logs/nginx.pid;\nmaster_process off;\ndaemon off;\n"
            "events { worker_connections 64; }\n"
            f"http {{\naccess_log off;\n{subst(sec.get('http_config', ''))}\n"
            f"server {{\nlisten 127.0.0.1:{port};\nserver_name localhost;\n"
            f"{subst(sec.get('config', ''))}\n}}\n}}\n")
    with open(f"{prefix}/conf/nginx.conf", "w") as fh:
        fh.write(conf)
    base = [nginx, "-p", prefix + "/", "-c", f"{prefix}/conf/nginx.conf"]
    test = subprocess.run(base + ["-t"], capture_output=True, text=True)
    if "must_die" in sec:
        return None if test.returncode != 0 else "nginx -t accepted a configuration that must fail"
    if test.returncode != 0:
        return "nginx -t failed: " + test.stderr.strip().splitlines()[-2 if len(
            test.stderr.strip().splitlines()) > 1 else -1]
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        try:
            status, headers = request(port, sec["request"], sec.get("more_headers", ""))
        except (OSError, ValueError, IndexError) as e:
            return f"request failed: {e}"
        return compare(sec, status, headers)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


main()
