#!/usr/bin/env python3
"""Regenerates the committed seed corpus in seeds/<target>/ (stdlib + openssl CLI).

    python3 jwt-core/fuzz/mint_seeds.py

Tokens are signed with the test keys of testdata/keys/, expire in 2100 and are
valid at the fuzz targets' fixed clock (1_700_000_000). The first byte of each
seed is the target's selector byte (see the doc comment of each target).
"""
import base64
import hashlib
import hmac
import json
import pathlib
import shutil
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
KEYS = HERE.parent.parent / "testdata" / "keys"
SEEDS = HERE / "seeds"
SECRET = b"fuzz-secret-for-hs256-0123456789"  # jwt_core_fuzz::HMAC_SECRET
EXP = 4102444800  # 2100-01-01


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def js(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def openssl(*args, data: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def der_len(data: bytes, i: int):
    first = data[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    return int.from_bytes(data[i + 1:i + 1 + n], "big"), i + 1 + n


def ecdsa_raw(der: bytes, size: int) -> bytes:
    """ECDSA-Sig-Value DER -> r || s, as JWS wants."""
    _, i = der_len(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        length, i = der_len(der, i + 1)
        out += der[i:i + length].lstrip(b"\0").rjust(size, b"\0")
        i += length
    return out


def sign(alg: str, key: str, data: bytes) -> bytes:
    if alg == "HS256":
        return hmac.new(SECRET, data, hashlib.sha256).digest()
    path = str(KEYS / key)
    if alg == "EdDSA":
        # OpenSSL 3.0 signs Ed25519 one-shot only from a file, not from stdin.
        with tempfile.NamedTemporaryFile() as message:
            message.write(data)
            message.flush()
            return openssl("pkeyutl", "-sign", "-rawin", "-inkey", path, "-in", message.name)
    digest = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}[alg[2:]]
    extra = []
    if alg.startswith("PS"):
        extra = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    sig = openssl("dgst", digest, "-sign", path, *extra, data=data)
    if alg.startswith("ES"):
        return ecdsa_raw(sig, 32 if alg == "ES256" else 48)
    return sig


def token(alg: str, claims: dict, key: str = "", **header) -> bytes:
    head = {"alg": alg, "typ": "JWT", **header}
    signing_input = f"{b64url(js(head))}.{b64url(js(claims))}".encode()
    return signing_input + b"." + b64url(sign(alg, key, signing_input)).encode()


def spki_der(name: str) -> bytes:
    text = (KEYS / name).read_text()
    return base64.b64decode("".join(l for l in text.splitlines() if not l.startswith("-----")))


def jwks() -> bytes:
    n = bytes.fromhex(openssl("rsa", "-pubin", "-in", str(KEYS / "rsa2048.pub"), "-noout",
                              "-modulus").decode().strip().split("=", 1)[1])
    ec = spki_der("ec256.pub")[-64:]
    return js({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64url(n), "e": "AQAB"},
        {"kty": "OKP", "kid": "ed-1", "alg": "EdDSA", "crv": "Ed25519",
         "x": b64url(spki_der("ed25519.pub")[-32:])},
        {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64url(ec[:32]), "y": b64url(ec[32:])},
        {"kty": "oct", "kid": "hs-1", "alg": "HS256", "k": b64url(SECRET)},
    ]})


def main() -> None:
    claims = {"sub": "alice", "iss": "https://issuer.example", "aud": ["api", "x"],
              "iat": 1_699_999_000, "nbf": 1_699_999_000, "exp": EXP, "role": "admin"}
    hs = token("HS256", claims)
    seeds: dict[str, dict[str, bytes]] = {
        "sources": {
            "header": b"\x00  Bearer " + hs + b"\t",
            "cookie": b"\x04auth" + b"a=1; auth=\"Bearer " + hs + b"\";;b=2",
            "cookie_plain": b"\x03jwt" + b"jwt=" + hs,
            "query": b"\x05token" + b"x=1&&token=" + hs + b"&token=2&y",
            "spec": b"HEADER=Authorization",
            "spec_cookie": b"cookie=auth",
        },
        "verify_hmac": {
            "valid": b"\x00" + hs,
            "valid_policy": b"\x07" + hs,
            "expired": b"\x00" + token("HS256", {"exp": 1_600_000_000}),
            "kid_float": b"\x00" + token("HS256", {"exp": 1.7e9 + 0.5, "nbf": 1.5e9}, kid="k"),
            "struct_payload": b"\x87" + js(claims),
            "struct_both": b"\x87" + js({"alg": "HS256", "kid": "x"}) + b"\0"
                           + js({"exp": EXP, "aud": "web", "sub": "", "iss": 1}),
            "struct_nested": b"\x80" + js({"exp": EXP, "a": [1, "b", None, {"c": [True]}],
                                           "n": 18446744073709551615, "f": -1.5e300}),
        },
        "verify_asym": {
            "rs256": b"\x00" + token("RS256", claims, "rsa2048.key"),
            "ps256": b"\x01" + token("PS256", claims, "rsa2048.key"),
            "es256": b"\x02" + token("ES256", claims, "ec256.key"),
            "es384": b"\x03" + token("ES384", claims, "ec384.key"),
            "eddsa": b"\x04" + token("EdDSA", claims, "ed25519.key"),
            "jwks_rsa": b"\x05" + token("RS256", claims, "rsa2048.key", kid="rsa-1"),
            "jwks_ed": b"\x05" + token("EdDSA", {"exp": EXP}, "ed25519.key", kid="ed-1"),
            "struct_ed": b"\x3e" + js(claims),
            "struct_jwks": b"\x3f" + js({"alg": "EdDSA", "kid": "ed-1"}) + b"\0" + js(claims),
        },
        "key_material": {
            "rsa_pem": b"\x03" + (KEYS / "rsa2048.pub").read_bytes(),
            "rsa_pkcs1_pem": b"\x06" + (KEYS / "rsa2048.pkcs1.pub").read_bytes(),
            "rsa_der": b"\x03" + spki_der("rsa2048.pub"),
            "rsa_pkcs1_der": b"\x04" + spki_der("rsa2048.pkcs1.pub"),
            "ec256_pem": b"\x09" + (KEYS / "ec256.pub").read_bytes(),
            "ec384_der": b"\x0a" + spki_der("ec384.pub"),
            "ed25519_pem": b"\x0b" + (KEYS / "ed25519.pub").read_bytes(),
            "ed25519_der": b"\x0b" + spki_der("ed25519.pub"),
            "private_pem": b"\x0b" + (KEYS / "ed25519.pk8.pem").read_bytes(),
            "jwks": b"\x03" + jwks(),
            "jwk_oct": b"\x00" + js({"kty": "oct", "k": b64url(SECRET), "use": "sig",
                                     "key_ops": ["verify"]}),
            "secret_hex": b"\x10" + SECRET.hex().encode(),
            "secret_b64": b"\x20" + base64.b64encode(SECRET),
            "secret_b64url": b"\x21" + b64url(b"\xfb\xff\xfe" * 11).encode(),
            "secret_utf8": b"\x02" + "s\u00e9cret".encode(),
        },
        "render": {
            "claims": js(claims),
            "scalars": b'[1,-2,3.5e10,true,false,null,"s\\u00e9\\"\\\\"]',
            "nested": b'{"a":{"b":[[],{}],"c":"\\r\\n"},"d":18446744073709551616}',
            "text": "realm \"x\\y\"\r\n\x7f caf\u00e9 ~-._".encode(),
        },
    }
    shutil.rmtree(SEEDS, ignore_errors=True)
    for target, files in seeds.items():
        (SEEDS / target).mkdir(parents=True)
        for name, data in files.items():
            (SEEDS / target / name).write_bytes(data)
    total = sum(f.stat().st_size for f in SEEDS.rglob("*") if f.is_file())
    print(f"wrote {sum(map(len, seeds.values()))} seeds, {total} bytes")


if __name__ == "__main__":
    main()
