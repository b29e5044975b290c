#!/usr/bin/env python3
"""A small login service for nginx's auth_jwt, shaped like the ones real sites run (Python
standard library only).

    # a users file, one user a line (the password is read from stdin, never from arguments)
    examples/login-service/login.py add-user alice --users users.txt
    # the service, behind nginx-conf/logout-everywhere.conf
    examples/login-service/login.py serve --users users.txt \\
        --key-file nginx-conf/keys/logout-demo.jwk --cookie-domain example.localhost \\
        --default-url http://app.example.localhost:8090/ \\
        --revoke-url http://127.0.0.1:8091/revoke --listen 127.0.0.1:8092

GET /login?return_url=URL shows the form; POST /login checks the user name and password and,
when they match, sets cookie "auth" (HttpOnly, SameSite=Lax, Path=/, Domain=the parent domain,
Secure when the page came over https) to an HS256 JWT {"sub", "iat", "exp", "jti"} and sends
the browser back to return_url. return_url is honoured only when it is an http or https URL on the
parent domain or one of its subdomains (no user info, no backslash, no control character):
anything else, "//evil.example" and "javascript:" included, goes to --default-url.

POST /logout is "log out everywhere": it reads the user from the request's own valid cookie,
posts {"sub": USER} to the module's revocation API (--revoke-url, a location with
auth_jwt_revocation_api), which from then on refuses every token of that user issued before
that second, in every server that has auth_jwt_revocation, then clears the cookie (same
Domain and Path, Max-Age=0). POST /logout-device ends this session only: it posts the
token's {"jti", "exp"}, which the module refuses until that exp, and clears the cookie; the
user's other sessions stay. When the revocation API does not answer 200, either logout says
so, with a 502, and leaves the cookie: the session may still be valid, and the user can try
again.

The revocation works by the second: tokens whose iat is before the logout's second are refused,
tokens issued within that second or later are accepted (so a new login right after a logout
works). A token issued in the very second of the logout is therefore still accepted; real users
log out long after they logged in, and the browser test waits a second in between.

The HS256 secret is the "k" of the JWK file --key-file ({"kty": "oct", "k": ...}), the very
file nginx verifies the cookie with (auth_jwt_keyfile_path). Passwords are stored as salted
PBKDF2-SHA256 hashes and never logged; the log has one line per request (method, path, status)
and one per login, failed login and logout, with the user name.
"""
import argparse
import base64
import getpass
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COOKIE = "auth"
# The revocation API is nginx on this host or the local network: never through an HTTP proxy.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PBKDF2_ITERATIONS = 200_000
# A URL a browser may be sent back to: no control character, space or backslash anywhere.
URL_CHARS = re.compile(r"^[\x21-\x5b\x5d-\x7e]+$")
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


# --- tokens ------------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_secret(path: str) -> bytes:
    """The HMAC secret of the JWK file PATH (kty "oct"), as nginx's auth_jwt_keyfile_path reads it."""
    with open(path, encoding="utf-8") as f:
        jwk = json.load(f)
    if jwk.get("kty") != "oct" or not jwk.get("k"):
        raise ValueError(f"{path}: not an HMAC JWK (kty \"oct\" with \"k\")")
    secret = b64url_decode(jwk["k"])
    if len(secret) < 32:
        raise ValueError(f"{path}: an HS256 secret needs 32 bytes or more, this one has {len(secret)}")
    return secret


def sign_token(secret: bytes, sub: str, ttl: int, now: int = None) -> str:
    """An HS256 JWT {"sub", "iat", "exp", "jti"} for SUB, valid TTL seconds from NOW, with a
    jti of its own (so that this one session can be revoked)."""
    now = int(time.time()) if now is None else now
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "iat": now, "exp": now + ttl, "jti": secrets.token_urlsafe(16)}
    parts = [b64url(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    signing_input = ".".join(parts).encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(signature)}"


def verified_claims(secret: bytes, token: str):
    """The claims of TOKEN when it is an HS256 JWT signed with SECRET, not expired, with a string
    sub, else None."""
    try:
        head, body, signature = token.split(".")
        if json.loads(b64url_decode(head)).get("alg") != "HS256":
            return None
        expected = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64url_decode(signature)):
            return None
        claims = json.loads(b64url_decode(body))
    except (ValueError, AttributeError):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= time.time():
        return None
    return claims


# --- users -------------------------------------------------------------------------------------

def hash_password(password: str, salt: bytes = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2-sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2-sha256":
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


# Compared with when a user name is unknown, so that the answer takes as long as for a known one.
UNKNOWN_USER = hash_password("", b"\0" * 16)


def read_users(path: str) -> dict:
    """The users file: one `name:hash` a line (hash from add-user); # comments and blank lines."""
    users = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, stored = line.partition(":")
            if not sep or not name or not stored:
                raise ValueError(f"{path}:{number}: expected name:hash")
            users[name] = stored
    return users


def add_user(path: str, name: str, password: str):
    if not name or ":" in name or any(c.isspace() for c in name):
        raise ValueError("a user name has no colon and no white space")
    if not password:
        raise ValueError("empty password")
    users = read_users(path) if os.path.exists(path) else {}
    users[name] = hash_password(password)
    # Password hashes are the owner's only; written whole, then put in place.
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(f"{n}:{h}\n" for n, h in users.items())
    os.replace(tmp, path)


# --- the rules ---------------------------------------------------------------------------------

def on_site(host: str, parent: str) -> bool:
    """Whether HOST is the parent domain or one of its subdomains."""
    return host == parent or host.endswith("." + parent)


def safe_return_url(url: str, parent: str):
    """URL when the browser may be sent there: http(s), on the site, nothing odd in it; else None."""
    if not url or not URL_CHARS.match(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or "@" in parts.netloc:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not HOST_NAME.match(host) or not on_site(host, parent):
        return None
    if port is not None and not 0 < port < 65536:
        return None
    return url


def cookie_value(header: str, name: str):
    """The first non-empty value of cookie NAME in a Cookie header, or None."""
    for item in (header or "").split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key == name and value:
            return value.strip('"')
    return None


def revoke(url: str, entry: dict, timeout: float = 5.0):
    """Posts ENTRY ({"sub": …} or {"jti": …, "exp": …}) to the revocation API; None when it
    answered 200, else what went wrong."""
    body = json.dumps(entry).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with NO_PROXY.open(request, timeout=timeout) as response:
            answer = response.read(4096).decode(errors="replace")
            if response.status != 200:
                return f"the revocation API answered {response.status}: {answer[:200]}"
            return None
    except urllib.error.HTTPError as e:
        answer = e.read(4096).decode(errors="replace")
        return f"the revocation API answered {e.code}: {answer[:200]}"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return f"the revocation API could not be reached: {reason}"


# --- pages -------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:34em;margin:3em auto}} label{{display:block;margin:.6em 0}}
.error{{color:#b00}}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def page(title: str, body: str) -> bytes:
    return PAGE.format(title=html.escape(title), body=body).encode()


def login_form(return_url: str, message: str = "") -> bytes:
    note = f'<p class="error" id="message">{html.escape(message)}</p>' if message else ""
    return page("Sign in", f"""{note}
<form method="post" action="/login">
<input type="hidden" name="return_url" value="{html.escape(return_url)}">
<label>User <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="sign-in">Sign in</button>
</form>""")


def link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url)}">{html.escape(text)}</a>'


# --- the HTTP service --------------------------------------------------------------------------

class LoginHandler(BaseHTTPRequestHandler):
    server_version = "login-service"
    sys_version = ""
    config = None  # the parsed serve arguments, with .secret and .users

    # A connection that sends nothing for this long is closed (a slow client holds a thread).
    timeout = 10

    def log_message(self, fmt, *args):
        # The default line holds the request line only: no body, so no password.
        self.note(fmt % args)

    def note(self, text: str):
        # Control characters of a client's request line or user name are escaped.
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
        sys.stderr.write(f"login-service: {text}\n")

    # Responses

    def send(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, url: str, headers=()):
        self.send(303, page("Redirecting", link(url, "Continue")), [("Location", url), *headers])

    def cookie(self, value: str, max_age: int) -> str:
        c = self.config
        attributes = f"{COOKIE}={value}; Domain={c.cookie_domain}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        if self.headers.get("X-Forwarded-Proto", "").lower() == "https":
            attributes += "; Secure"
        return attributes

    # Requests

    def form(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return {}
        if not 0 <= length <= 16384:
            return {}
        text = self.rfile.read(length).decode(errors="replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}

    def query(self) -> dict:
        query = urllib.parse.urlsplit(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}

    def route(self):
        return urllib.parse.urlsplit(self.path).path

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if self.route() in ("/", "/login"):
            self.send(200, login_form(self.query().get("return_url", "")))
        elif self.route() == "/logout":
            self.send(200, page("Log out", """<form method="post" action="/logout">
<button type="submit" id="logout">Log out everywhere</button>
<button type="submit" id="logout-device" formaction="/logout-device">Log out on this device</button>
</form>"""))
        else:
            self.send(404, page("Not found", "<p>No such page.</p>"))

    def same_site(self) -> bool:
        """Whether a form was posted from a page of the parent domain, when the browser says
        where from (Origin): a page of another site cannot sign a user in or out."""
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        host = urllib.parse.urlsplit(origin).hostname or ""
        return on_site(host.lower(), self.config.cookie_domain)

    def do_POST(self):
        if not self.same_site():
            self.note("refused a form posted from another site")
            self.send(403, page("Refused", "<p>This form can only be sent from this site.</p>"))
        elif self.route() == "/login":
            self.login(self.form())
        elif self.route() in ("/logout", "/logout-device"):
            self.form()
            self.logout(everywhere=self.route() == "/logout")
        else:
            self.send(404, page("Not found", "<p>No such page.</p>"))

    def login(self, form: dict):
        c = self.config
        user, password = form.get("username", ""), form.get("password", "")
        return_url = form.get("return_url", "")
        stored = c.users.get(user)
        matches = password_matches(password, stored or UNKNOWN_USER)
        if stored is None or not matches:
            self.note(f"failed login for user {user!r}")
            self.send(401, login_form(return_url, "Wrong user name or password."))
            return
        token = sign_token(c.secret, user, c.ttl)
        target = safe_return_url(return_url, c.cookie_domain) or c.default_url
        self.note(f"login: {user}")
        self.redirect(target, [("Set-Cookie", self.cookie(token, c.ttl))])

    def logout(self, everywhere: bool):
        """Revokes every session of the cookie's user (EVERYWHERE), or the cookie's own."""
        c = self.config
        token = cookie_value(self.headers.get("Cookie"), COOKIE)
        claims = verified_claims(c.secret, token) if token else None
        back = f"<p>{link(c.default_url, 'Back to the site')}</p>"
        if claims is None:
            self.send(200, page("Signed out", f'<p id="message">You were not signed in.</p>{back}'),
                      [("Set-Cookie", self.cookie("", 0))])
            return
        user = claims["sub"]
        if everywhere:
            failure = revoke(c.revoke_url, {"sub": user})
        elif isinstance(claims.get("jti"), str):
            failure = revoke(c.revoke_url, {"jti": claims["jti"], "exp": claims["exp"]})
        else:
            failure = "this session has no jti, so it cannot be ended alone: log out everywhere"
        what = "every session" if everywhere else "this session"
        if failure:
            self.note(f"logout of {user} ({what}) failed: {failure}")
            self.send(502, page("Logout failed", f"""<p class="error" id="message">Logout failed: the
revocation of {what} was not confirmed ({html.escape(failure)}). It may still be valid, and this
browser keeps its cookie: try again later.</p>{back}"""))
            return
        self.note(f"logout: {user}, {what} revoked")
        if everywhere:
            title, text = "Signed out everywhere", f"every session of {html.escape(user)} has been revoked."
        else:
            title, text = "Signed out on this device", "this session has been revoked; your other sessions go on."
        self.send(200, page(title, f'<p id="message">{title}: {text}</p>{back}'),
                  [("Set-Cookie", self.cookie("", 0))])


# --- command line ------------------------------------------------------------------------------

def host_port(text: str):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user", help="add or replace a user (password read from stdin)")
    add.add_argument("name")
    add.add_argument("--users", required=True, help="the users file")
    serve = commands.add_parser("serve", help="run the login service")
    serve.add_argument("--users", required=True, help="the users file (see add-user)")
    serve.add_argument("--key-file", required=True, help="the HS256 secret as a JWK (kty oct), shared with nginx")
    serve.add_argument("--cookie-domain", required=True, help="the parent domain, e.g. example.localhost")
    serve.add_argument("--default-url", required=True, help="where to go when return_url is missing or refused")
    serve.add_argument("--revoke-url", required=True, help="the module's revocation API, e.g. http://127.0.0.1:8091/revoke")
    serve.add_argument("--listen", type=host_port, default=("127.0.0.1", 8092), help="HOST:PORT (127.0.0.1:8092)")
    serve.add_argument("--ttl", type=int, default=8 * 3600, help="token and cookie lifetime in seconds (8 hours)")
    return parser.parse_args(argv)


def read_password(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {name}: ")
    return sys.stdin.readline().rstrip("\n")


def serve(args):
    args.secret = read_secret(args.key_file)
    args.users = read_users(args.users)
    args.cookie_domain = args.cookie_domain.lower().lstrip(".")
    if not args.users:
        raise ValueError("the users file has no user: add one with add-user")
    if not safe_return_url(args.default_url, args.cookie_domain):
        raise ValueError(f"--default-url {args.default_url} is not on {args.cookie_domain}")
    LoginHandler.config = args
    server = ThreadingHTTPServer(args.listen, LoginHandler)
    host, port = server.server_address[:2]
    print(f"login-service: listening on http://{host}:{port}, cookie for {args.cookie_domain}, "
          f"{len(args.users)} user(s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "add-user":
            add_user(args.users, args.name, read_password(args.name))
            print(f"user {args.name} written to {args.users}", file=sys.stderr)
        else:
            serve(args)
    except (OSError, ValueError) as e:
        sys.exit(f"login-service: {e}")


if __name__ == "__main__":
    main()
