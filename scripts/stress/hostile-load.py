#!/usr/bin/env python3
"""Mints the hostile-load cases into a wrk Lua script (used by scripts/stress/hostile-load.sh).

    hostile-load.py SECRET KEYS_DIR OUT.lua

Every case is one request: a location, one or more request headers, the status it must get
and, for the HS locations, the value the response header X-Sub (= $http_jwt_sub, the request
header the module sets from `auth_jwt_extract_request_claims sub`) must have ("" = absent).
Each request carries ?case=N; nginx echoes it as X-Case, so the Lua `response` callback can
attribute every response to its case even with many connections per thread.
"""
import importlib
import json
import os
import random
import sys
import time

# scripts/mint-token.py, the scripts' token minter
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
mint_token = importlib.import_module("mint-token")

secret, keys, out = sys.argv[1], sys.argv[2], sys.argv[3]
sec = secret.encode()
now = int(time.time())
rsa_priv = mint_token.load_key("RS256", f"{keys}/rsa2048.pk8.pem")
rsa_pub = open(f"{keys}/rsa2048.pub", "rb").read()
rsa_pub_pkcs1 = open(f"{keys}/rsa2048.pkcs1.pub", "rb").read()
rnd = random.Random(1234)


b64 = mint_token.b64url


def raw(header, payload, key=sec):
    """A token from raw JSON texts, HS256-signed with key."""
    return mint_token.sign(header, payload, "HS256", key)


def claims(**extra):
    c = {"sub": "alice", "iat": now, "exp": now + 86400}
    c.update(extra)
    return c


def hs(c, key=sec):
    return raw('{"alg":"HS256","typ":"JWT"}', json.dumps(c, separators=(",", ":")), key)


def rs(c):
    return mint_token.mint(c, "RS256", rsa_priv)


def forge(tok):
    """Flips a character in the middle of the signature (the last one may only change padding bits)."""
    h, p, s = tok.split(".")
    i = len(s) // 2
    s = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    return f"{h}.{p}.{s}"


HS = '{"alg":"HS256","typ":"JWT"}'
valid = hs(claims())
valid_rs = rs(claims(sub="rs-user"))

cases = []  # (class, name, path, [(header, value)], expected status, expected X-Sub or None)


def add(cls, name, path, headers, status, xsub=None):
    cases.append((cls, name, path, headers, status, xsub))


def both(cls, name, tok, status, xsub=None, hs_paths=True, bearer="Bearer "):
    """The token in the Authorization header on /h/ and in cookie auth on /c/."""
    add(cls, name + "/hdr", "/h/", [("Authorization", bearer + tok)], status, xsub)
    add(cls, name + "/cookie", "/c/", [("Cookie", f"theme=dark; auth={tok}; lang=en")], status, xsub)


# -- valid (200) -----------------------------------------------------------------------------
both("valid", "hs256", valid, 200, "alice")
add("valid", "hs256-lowercase-bearer", "/h/", [("Authorization", "bearer " + valid)], 200, "alice")
add("valid", "hs256-quoted-cookie", "/c/", [("Cookie", f'auth="Bearer {valid}"')], 200, "alice")
add("valid", "rs256/hdr", "/r/", [("Authorization", "Bearer " + valid_rs)], 200)
add("valid", "rs256/cookie", "/r/", [("Cookie", "auth=" + valid_rs)], 200)
for i in range(16):  # distinct tokens: the verified-token cache holds several entries
    add("valid", f"hs256-distinct-{i}", "/h/", [("Authorization", "Bearer " + hs(claims(sub=f"user{i}", jti=str(i))))], 200, f"user{i}")
# a kid is not a path: with a single (non-set) key it is ignored
both("valid", "kid-traversal", raw('{"alg":"HS256","kid":"../../../../etc/passwd"}', json.dumps(claims())), 200, "alice")
# a client-sent JWT-Sub is replaced by the token's sub
add("valid", "hs256+spoofed-JWT-Sub", "/h/", [("Authorization", "Bearer " + valid), ("JWT-Sub", "root")], 200, "alice")

# -- expired (401) ---------------------------------------------------------------------------
both("expired", "exp-past", hs(claims(exp=now - 3600)), 401, "")
both("expired", "nbf-future", hs(claims(nbf=now + 86400)), 401, "")
add("expired", "rs256-exp-past", "/r/", [("Authorization", "Bearer " + rs(claims(exp=now - 10)))], 401)

# -- forged signature (401) ------------------------------------------------------------------
both("forged", "flipped-sig", forge(valid), 401, "")
both("forged", "other-secret", hs(claims(), key=b"not-the-secret"), 401, "")
both("forged", "sub-swapped", f"{valid.split('.')[0]}.{b64(json.dumps(claims(sub='root')).encode())}.{valid.split('.')[2]}", 401, "")
both("forged", "empty-sig", valid.rsplit(".", 1)[0] + ".", 401, "")
add("forged", "rs256-flipped", "/r/", [("Authorization", "Bearer " + forge(valid_rs))], 401)
# (X-Sub not checked: on a refused request the client's own JWT-Sub is still in $http_jwt_sub;
# it never reaches an upstream unless another access module admits the request, see satisfy any)
add("forged", "invalid+spoofed-JWT-Sub", "/h/", [("Authorization", "Bearer " + forge(valid)), ("JWT-Sub", "root")], 401)

# -- alg none (401) --------------------------------------------------------------------------
body = b64(json.dumps(claims(sub="root")).encode())
for alg in ["none", "None", "NONE", "nOnE"]:
    tok = f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{body}."
    both("alg_none", f"alg={alg}", tok, 401, "")
    add("alg_none", f"alg={alg}/rs", "/r/", [("Authorization", "Bearer " + tok)], 401)
none_hdr = b64(b'{"alg":"none"}')
both("alg_none", "alg=none+sig", f"{none_hdr}.{body}.{valid.split('.')[2]}", 401, "")

# -- algorithm confusion: HS256 signed with the RS256 public key bytes, on the RS256 location --
for name, kb in [("pem", rsa_pub), ("pem-stripped", rsa_pub.strip()), ("pkcs1-pem", rsa_pub_pkcs1)]:
    tok = hs(claims(sub="root"), key=kb)
    add("alg_confused", name + "/hdr", "/r/", [("Authorization", "Bearer " + tok)], 401)
    add("alg_confused", name + "/cookie", "/r/", [("Cookie", "auth=" + tok)], 401)
# an RS256 token on the HS256 locations
both("alg_confused", "rs256-on-hs", valid_rs, 401, "")

# -- garbage (401) ---------------------------------------------------------------------------
def noise(n):
    return bytes(rnd.choice([b for b in range(1, 256) if b not in (10, 13, 0x3b)]) for _ in range(n))


garbage = {
    "random-bytes": noise(300),
    "high-bytes": bytes(rnd.randrange(0x80, 0x100) for _ in range(200)),
    "dots": b"....",
    "a.b.c": b"a.b.c",
    "four-segments": (valid + ".x").encode(),
    "two-segments": ".".join(valid.split(".")[:2]).encode(),
    "padded-b64": (valid.split(".")[0] + "==." + ".".join(valid.split(".")[1:])).encode(),
    "std-b64-chars": valid.replace("-", "+").replace("_", "/").encode() + b"+/+/",
    "header-not-object": raw("[1,2,3]", json.dumps(claims())).encode(),
    "header-not-json": raw("{alg:HS256}", json.dumps(claims())).encode(),
    "payload-not-object": raw(HS, '"just a string"').encode(),
    "payload-array": raw(HS, "[]").encode(),
    "payload-bad-utf8": raw(HS, b'{"sub":"\xff\xfe","exp":9999999999}').encode(),
    "deep-nesting-header": raw('{"alg":"HS256","x":' + "[" * 5000 + "]" * 5000 + "}", json.dumps(claims())).encode(),
    "deep-nesting-payload": raw(HS, '{"exp":9999999999,"x":' + "[" * 5000 + "]" * 5000 + "}").encode(),
    "crit-header": raw('{"alg":"HS256","crit":["exp"]}', json.dumps(claims())).encode(),
    "alg-number": raw('{"alg":256}', json.dumps(claims())).encode(),
    "unknown-alg": raw('{"alg":"HS257"}', json.dumps(claims())).encode(),
    "nul-in-json": raw(HS, '{"sub":"a\\u0000b","exp":9999999999}', key=b"x").encode(),
}
for name, g in garbage.items():
    add("garbage", name + "/hdr", "/h/", [("Authorization", b"Bearer " + g)], 401, "")
    add("garbage", name + "/cookie", "/c/", [("Cookie", b"auth=" + g)], 401, "")
add("garbage", "bearer-only", "/h/", [("Authorization", "Bearer")], 401, "")
add("garbage", "bearer-space", "/h/", [("Authorization", "Bearer ")], 401, "")
add("garbage", "basic-auth", "/h/", [("Authorization", "Basic YWxpY2U6c2VjcmV0")], 401, "")
add("garbage", "empty-cookie", "/c/", [("Cookie", "auth=")], 401, "")
add("garbage", "random-bytes/rs", "/r/", [("Authorization", b"Bearer " + garbage["random-bytes"])], 401)

# -- oversized (> 16 KiB: the module's limit; nginx passes up to large_client_header_buffers) --
big = hs(claims(pad="x" * 20000))
both("oversized", "valid-sig-20k", big, 401, "")
both("oversized", "garbage-17k", "A" * 17000, 401, "")
add("oversized", "exactly-16k+1", "/h/", [("Authorization", "Bearer " + "B" * 16385)], 401, "")
add("oversized", "rs256-20k", "/r/", [("Authorization", "Bearer " + rs(claims(pad="y" * 20000)))], 401)
# many cookies before auth (a long Cookie header the module must scan)
add("oversized", "cookie-crowd", "/c/", [("Cookie", "; ".join(f"c{i}=v{i}" for i in range(2000)) + f"; auth={valid}")], 200, "alice")

# -- CRLF-laden values -----------------------------------------------------------------------
# a claim with CR/LF in a valid token: 200, but never copied into a request header
both("crlf", "sub-with-crlf", hs(claims(sub="alice\r\nX-Evil: 1")), 200, "")
both("crlf", "sub-with-lf", hs(claims(sub="alice\nX-Evil: 1")), 200, "")
both("crlf", "sub-with-nul", hs(claims(sub="al\u0000ice")), 200, "")
# header values wrk sends with raw CR/LF in them (they split the header; nginx parses what
# results: a bare LF ends the line, the rest becomes a header without a value; a bare CR is a 400)
add("crlf", "crlf-after-forged", "/h/", [("Authorization", "Bearer " + forge(valid) + "\r\nX-Injected: 1")], 401, "")
add("crlf", "crlf-after-valid", "/h/", [("Authorization", "Bearer " + valid + "\r\nJWT-Sub: root")], 200, "alice")
add("crlf", "cookie-crlf-second-cookie", "/c/", [("Cookie", "auth=" + forge(valid) + "\r\nCookie: auth=" + valid)], 401, "")
add("crlf", "lf-inside-token", "/h/", [("Authorization", "Bearer " + valid[:40] + "\n" + valid[40:])], 401, "")
add("crlf", "cr-inside-token", "/h/", [("Authorization", "Bearer " + valid[:40] + "\r" + valid[40:])], 400, "")
add("crlf", "tab-inside-token", "/h/", [("Authorization", "Bearer " + valid[:40] + "\t" + valid[40:])], 401, "")

# -- non-string / mistyped claims ------------------------------------------------------------
# /h/ has no validate_sub: a number or object sub passes (rendered as JSON text);
# /c/ has auth_jwt_validate_sub on: only a non-empty string sub passes.
add("nonstring", "sub-number/hdr", "/h/", [("Authorization", "Bearer " + hs(claims(sub=42)))], 200, "42")
add("nonstring", "sub-number/cookie", "/c/", [("Cookie", "auth=" + hs(claims(sub=42)))], 401, "")
add("nonstring", "sub-object/hdr", "/h/", [("Authorization", "Bearer " + hs(claims(sub={"a": 1})))], 200, '{"a":1}')
add("nonstring", "sub-object/cookie", "/c/", [("Cookie", "auth=" + hs(claims(sub={"a": 1})))], 401, "")
add("nonstring", "sub-empty/cookie", "/c/", [("Cookie", "auth=" + hs(claims(sub="")))], 401, "")
add("nonstring", "sub-null/cookie", "/c/", [("Cookie", "auth=" + hs(claims(sub=None)))], 401, "")
both("nonstring", "exp-string", hs(claims(exp=str(now + 86400))), 401, "")
both("nonstring", "exp-null", hs(claims(exp=None)), 401, "")
both("nonstring", "exp-bool", hs(claims(exp=True)), 401, "")
both("nonstring", "exp-missing", hs({"sub": "alice"}), 401, "")
both("nonstring", "exp-object", hs(claims(exp={"t": now + 86400})), 401, "")
both("nonstring", "nbf-string", hs(claims(nbf="0")), 401, "")
both("nonstring", "exp-huge", raw(HS, '{"sub":"alice","exp":1e308}'), 200, "alice")
both("nonstring", "exp-overflow", raw(HS, '{"sub":"alice","exp":1e400}'), 401, "")
both("nonstring", "exp-negative", raw(HS, '{"sub":"alice","exp":-1}'), 401, "")

# -- duplicate keys (401, malformed) ---------------------------------------------------------
both("dupkey", "payload-dup-sub", raw(HS, f'{{"sub":"alice","sub":"root","exp":{now + 86400}}}'), 401, "")
both("dupkey", "payload-dup-exp", raw(HS, f'{{"sub":"alice","exp":{now - 10},"exp":{now + 86400}}}'), 401, "")
both("dupkey", "header-dup-alg", raw('{"alg":"HS256","alg":"none"}', json.dumps(claims())), 401, "")
both("dupkey", "nested-dup", raw(HS, f'{{"sub":"alice","exp":{now + 86400},"o":{{"a":1,"a":2}}}}'), 401, "")
both("dupkey", "escaped-dup", raw(HS, f'{{"sub":"alice","s\\u0075b":"root","exp":{now + 86400}}}'), 401, "")


def lua_str(v):
    b = v if isinstance(v, bytes) else v.encode()
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\%03d" % c for c in b) + '"'


with open(out, "w") as f:
    f.write("-- generated by scripts/stress/hostile-load.py\ncases = {\n")
    for cls, name, path, headers, status, xsub in cases:
        hdrs = ", ".join(f"{{{lua_str(k)}, {lua_str(v)}}}" for k, v in headers)
        xs = "nil" if xsub is None else lua_str(xsub)
        f.write(f"  {{cls={lua_str(cls)}, name={lua_str(name)}, path={lua_str(path)}, headers={{{hdrs}}}, status={status}, xsub={xs}}},\n")
    f.write("}\n")
print(len(cases))
