#!/usr/bin/env python3
"""Mints JWTs: for trying the examples, and for every script under scripts/ that needs tokens.

    scripts/mint-token.py alice                    # sub=alice, HS256, valid 1 hour, quickstart secret
    scripts/mint-token.py alice --ttl -60          # already expired
    scripts/mint-token.py alice --claim role=admin --secret 'my-64-char-secret...'
    scripts/mint-token.py alice --alg RS256 --key testdata/keys/rsa2048.pk8.pem --header kid=A
    scripts/mint-token.py bench --count 1000 ...   # 1000 tokens, one a line, each with its own jti

The default secret is the one nginx-conf/quickstart.conf and nginx-conf/deployment.conf are
configured with (hex-encoded there, as nginx-conf/deployment.conf takes the login service's secret).
HS256/384/512 need the Python standard library only; the other algorithms (RS*, PS*, ES*, EdDSA,
signed with --key, a PEM private key) use PyJWT and cryptography.

The scripts' Python code imports it (importlib.import_module("mint-token") with scripts/ on
sys.path) for b64url, load_key, sign, mint, and rsa_jwk for key sets.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import time
import uuid

DEMO_SECRET = "quickstart-demo-secret-change-me-0123456789abcdefghijklmnopqrstu"
HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _text(part) -> bytes:
    """A header or payload: a dict as compact JSON, or the raw JSON text (str or bytes) as given."""
    if isinstance(part, dict):
        return json.dumps(part, separators=(",", ":")).encode()
    return part if isinstance(part, bytes) else part.encode()


def _pyjwt(alg: str):
    import jwt.algorithms  # PyJWT, with cryptography

    return jwt.algorithms.get_default_algorithms()[alg]


def load_key(alg: str, key):
    """The signing key of ALG: the HMAC secret as bytes, else the PEM private key at path KEY,
    parsed once (handing PyJWT the PEM text would parse it again for every token)."""
    if alg in HMAC:
        return key if isinstance(key, bytes) else key.encode()
    with open(key, "rb") as f:
        return _pyjwt(alg).prepare_key(f.read())


def sign(header, payload, alg: str, key) -> str:
    """A token of the header and payload given (dicts, or raw JSON texts to mint malformed ones),
    signed with ALG and KEY (from load_key)."""
    signing_input = f"{b64url(_text(header))}.{b64url(_text(payload))}".encode()
    if alg in HMAC:
        signature = hmac.new(key, signing_input, HMAC[alg]).digest()
    else:
        signature = _pyjwt(alg).sign(signing_input, key)
    return f"{signing_input.decode()}.{b64url(signature)}"


def mint(claims: dict, alg: str = "HS256", key=DEMO_SECRET, headers: dict = None) -> str:
    """A token of CLAIMS, with typ JWT and the HEADERS given; KEY: the secret (HS*) or the PEM
    path as text, or what load_key returned."""
    if isinstance(key, str):
        key = load_key(alg, key)
    return sign({"alg": alg, "typ": "JWT", **(headers or {})}, claims, alg, key)


def rsa_jwk(path: str, **fields) -> dict:
    """The RSA public key of the PEM file PATH as a JWK, with the FIELDS given (kid, alg...)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    with open(path, "rb") as f:
        numbers = load_pem_public_key(f.read()).public_numbers()
    b64 = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    return {"kty": "RSA", **fields, "n": b64(numbers.n), "e": b64(numbers.e)}


def _pairs(items, parse_json):
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = json.loads(value) if parse_json else value
        except ValueError:
            out[name] = value
    return out


# The --count tokens, minted by a pool of processes for the slow algorithms: each process
# loads the key once (_start) and signs its share (_one).
_job = None


def _start(args):
    global _job
    _job = args[:1] + (load_key(args[0], args[1]),) + args[2:]


def _one(_):
    alg, key, claims, headers = _job
    return sign({"alg": alg, "typ": "JWT", **headers}, {**claims, "jti": str(uuid.uuid4())}, alg, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sub")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until exp (negative: expired)")
    parser.add_argument("--alg", default="HS256", help="signature algorithm (default HS256)")
    parser.add_argument("--secret", default=DEMO_SECRET, help="HMAC secret (HS*), as text")
    parser.add_argument("--key", metavar="PEM", help="private key file, for every algorithm but HS*")
    parser.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                        help="extra claim; VALUE is parsed as JSON when it can be")
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                        help="extra JOSE header field (a string), e.g. kid=A")
    parser.add_argument("--count", type=int, default=0,
                        help="print COUNT tokens, one a line, each with its own jti claim")
    args = parser.parse_args()
    if args.alg not in HMAC and not args.key:
        parser.error(f"--alg {args.alg} signs with --key PEM")
    now = int(time.time())
    claims = {"sub": args.sub, "iat": now, "exp": now + args.ttl, **_pairs(args.claim, True)}
    headers = _pairs(args.header, False)
    key = args.secret if args.alg in HMAC else args.key
    if not args.count:
        print(mint(claims, args.alg, key, headers))
        return
    job = (args.alg, key, claims, headers)
    if args.alg in HMAC or args.count < 1000:
        _start(job)
        tokens = map(_one, range(args.count))
        print("\n".join(tokens))
        return
    from multiprocessing import Pool

    with Pool(os.cpu_count(), initializer=_start, initargs=(job,)) as pool:
        print("\n".join(pool.imap(_one, range(args.count), chunksize=500)))


if __name__ == "__main__":
    main()
