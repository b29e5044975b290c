#!/usr/bin/env python3
"""Mints an HS256 JWT for trying the examples (standard library only).

    scripts/mint-token.py alice                    # sub=alice, valid 1 hour, quickstart secret
    scripts/mint-token.py alice --ttl -60          # already expired
    scripts/mint-token.py alice --claim role=admin --secret 'my-64-char-secret...'

The default secret is the one nginx-conf/quickstart.conf and nginx-conf/deployment.conf are
configured with (hex-encoded there, as nginx-conf/deployment.conf takes the login service's secret).
"""
import argparse
import base64
import hashlib
import hmac
import json
import time

DEMO_SECRET = "quickstart-demo-secret-change-me-0123456789abcdefghijklmnopqrstu"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sub")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until exp (negative: expired)")
    parser.add_argument("--secret", default=DEMO_SECRET)
    parser.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                        help="extra claim; VALUE is parsed as JSON when it can be")
    args = parser.parse_args()
    now = int(time.time())
    claims = {"sub": args.sub, "iat": now, "exp": now + args.ttl}
    for item in args.claim:
        name, _, value = item.partition("=")
        try:
            claims[name] = json.loads(value)
        except ValueError:
            claims[name] = value
    print(mint(args.secret, claims))


if __name__ == "__main__":
    main()
