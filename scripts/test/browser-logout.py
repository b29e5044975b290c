#!/usr/bin/env python3
""""Log out everywhere" in a real browser: headless Chromium, driven by Selenium, against a real
nginx with the module serving nginx-conf/logout-everywhere.conf and the real login service of
examples/login-service/login.py, all on 127.0.0.1 (free ports) under names of example.localhost.

    scripts/test/browser.sh          # installs Chromium, chromedriver and Selenium, then runs this
    scripts/test/browser-logout.py --nginx PATH --module PATH --artifacts DIR

The steps, each checked (status, URL, cookie attributes, page content), failing at the first
one that misbehaves:
  page on app → 302 to the login page → sign in → back on the exact page (path and query) →
  a page on wiki without signing in again → the API answers 200 → log out on app → app and
  wiki send the browser to the login page again, and the API answers 401 (revoked) even to
  the old cookie replayed by curl → signing in again works → "log out on this device" ends
  that session only: its cookie is refused, another session of alice goes on.
Before the browser: the login service's return_url rules and wrong passwords, over HTTP. After
it: a logout whose revocation API is down says so (502) and keeps the cookie; the login
service never logged the password; nginx logged no crash, [alert], [crit] or [emerg].

DIR gets the screenshots (screenshots/NN-step.png), the nginx prefix with its logs
(prefix/logs/) and the login service's log (login.log); a failure adds failure.png.
"""
import argparse
import base64
import http.client
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "nginx-conf" / "logout-everywhere.conf"
LOGIN = ROOT / "examples" / "login-service" / "login.py"
DOMAIN = "example.localhost"
USER = "alice"
TTL = 3600
# The ports of logout-everywhere.conf: nginx's sites, the revocation API, the login service.
CONF_PORTS = {"front": 8090, "revoke": 8091, "login": 8092}
STARTUP_SECONDS = 10


class StepFailed(Exception):
    pass


def check(condition, message: str):
    if not condition:
        raise StepFailed(message)


def ok(text: str):
    print(f"    ok  {text}", flush=True)


# --- processes and ports -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        check(process.poll() is None, f"{name} exited with status {process.returncode} on start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StepFailed(f"{name} does not listen on 127.0.0.1:{port} after {STARTUP_SECONDS} s")


def stop(process: subprocess.Popen):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- nginx and the login service ---------------------------------------------------------------

def state_dir(path: Path):
    """The directory of the revocation state file, which the workers write in: started as root,
    they run as nobody."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)


def write_conf(prefix: Path, ports: dict):
    """The prefix: nginx-conf/ as build-nginx.sh installs it, the example on the ports given."""
    shutil.copytree(ROOT / "nginx-conf", prefix / "conf")
    (prefix / "logs").mkdir()
    state_dir(prefix / "state")
    text = CONF.read_text()
    for name, port in CONF_PORTS.items():
        check(str(port) in text, f"{CONF.name} no longer uses port {port} ({name})")
        text = text.replace(str(port), str(ports[name]))
    (prefix / "conf" / CONF.name).write_text(text)


def start_nginx(nginx: str, module: str, prefix: Path, ports: dict) -> subprocess.Popen:
    write_conf(prefix, ports)
    (prefix / "modules").mkdir()
    shutil.copy(module, prefix / "modules" / "ngx_http_auth_jwt_module.so")
    command = [nginx, "-p", f"{prefix}/", "-c", f"conf/{CONF.name}"]
    test = subprocess.run(command + ["-t", "-q"], capture_output=True, text=True)
    check(test.returncode == 0, f"nginx -t fails for {CONF.name}:\n{test.stderr}")
    process = subprocess.Popen(command + ["-g", "daemon off;"], stderr=subprocess.DEVNULL)
    wait_for_port(ports["front"], process, "nginx")
    wait_for_port(ports["revoke"], process, "nginx")
    return process


def write_users(path: Path, password: str):
    subprocess.run([sys.executable, str(LOGIN), "add-user", USER, "--users", str(path)],
                   input=password + "\n", text=True, check=True, capture_output=True)


def start_login(work: Path, port: int, front: int, revoke_url: str, log_name: str) -> subprocess.Popen:
    command = [sys.executable, str(LOGIN), "serve", "--users", str(work / "users.txt"),
               "--key-file", str(ROOT / "nginx-conf" / "keys" / "logout-demo.jwk"),
               "--cookie-domain", DOMAIN, "--default-url", f"http://app.{DOMAIN}:{front}/",
               "--revoke-url", revoke_url, "--listen", f"127.0.0.1:{port}", "--ttl", str(TTL)]
    log = open(work / log_name, "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process, "the login service")
    return process


# --- HTTP without the browser ------------------------------------------------------------------

def request(port: int, host: str, method: str, path: str, body: str = None, headers: dict = None):
    """(status, headers as a dict of lower-case names, body text) of one request to 127.0.0.1."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def form_post(port: int, host: str, path: str, fields: dict, headers: dict = None):
    body = urllib.parse.urlencode(fields)
    return request(port, host, "POST", path, body,
                   {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def curl(url: str, port: int, cookie: str):
    """(status, headers text) of curl GET URL with the cookie, its host resolved to 127.0.0.1."""
    host = urllib.parse.urlsplit(url).hostname
    result = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}",
         "--resolve", f"{host}:{port}:127.0.0.1", "--cookie", f"auth={cookie}", url],
        capture_output=True, text=True, timeout=20)
    check(result.returncode == 0, f"curl {url} failed: {result.stderr.strip()}")
    return int(result.stdout[-3:]), result.stdout[:-3]


def token_claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def page_url(ports: dict) -> str:
    """The page of app the browser asks for first, and comes back to after signing in."""
    return f"http://app.{DOMAIN}:{ports['front']}/orders/42?tab=items&sort=-date"


def check_redirect_to_login(location: str, ports: dict, return_url: str, what: str):
    parts = urllib.parse.urlsplit(location or "")
    check(f"{parts.scheme}://{parts.netloc}{parts.path}" == f"http://login.{DOMAIN}:{ports['front']}/login",
          f"{what}: redirected to {location!r}, not to the login page")
    asked = urllib.parse.parse_qs(parts.query).get("return_url")
    check(asked == [return_url], f"{what}: return_url is {asked}, not [{return_url!r}]")


# --- the checks over HTTP ----------------------------------------------------------------------

def check_refusals(ports: dict, page: str):
    front, path = ports["front"], urllib.parse.urlsplit(page)
    status, headers, _ = request(front, path.netloc, "GET", f"{path.path}?{path.query}")
    check(status == 302, f"app page without cookie: {status}, not 302")
    check_redirect_to_login(headers.get("location"), ports, page, "app page without cookie")
    ok(f"app page without cookie: 302 to the login page, return_url {page}")
    status, headers, _ = request(front, f"api.{DOMAIN}:{front}", "GET", "/v1/me")
    check(status == 401, f"API without cookie: {status}, not 401")
    check(headers.get("www-authenticate", "").startswith("Bearer "), "API 401 without a Bearer challenge")
    ok("API without cookie: 401 with a Bearer challenge")


def check_login_rules(ports: dict, password: str):
    front = ports["front"]
    host = f"login.{DOMAIN}:{front}"
    default = f"http://app.{DOMAIN}:{front}/"
    status, headers, body = form_post(front, host, "/login", {"username": USER, "password": password + "x",
                                                                "return_url": default})
    check(status == 401 and "set-cookie" not in headers, f"wrong password: {status}, cookie set: {'set-cookie' in headers}")
    check("Wrong user name or password" in body, "wrong password: no message on the form")
    ok("wrong password: 401, the form again, no cookie")
    good = [f"http://wiki.{DOMAIN}:{front}/a/b?c=1&d=%2F#top", f"https://{DOMAIN}/", f"http://api.{DOMAIN}:{front}/v1/me"]
    bad = ["https://evil.example/", "//evil.example/", "javascript:alert(1)", f"http://{DOMAIN}.evil.example/",
           f"http://evil.example\\@app.{DOMAIN}/", "http://user@evil.example/", f"http://x@app.{DOMAIN}/",
           "/\\evil.example/", "ftp://app.example.localhost/", f"http://app.{DOMAIN}/\r\nSet-Cookie: x=1",
           f"http://evil{DOMAIN}/", "", "data:text/html,hi", "http:/\\evil.example/", " http://evil.example/"]
    for url, expected in [(u, u) for u in good] + [(u, default) for u in bad]:
        status, headers, _ = form_post(front, host, "/login", {"username": USER, "password": password, "return_url": url})
        check(status == 303, f"login with return_url {url!r}: {status}, not 303")
        check(headers.get("location") == expected,
              f"login with return_url {url!r}: sent to {headers.get('location')!r}, not {expected!r}")
    ok(f"return_url: {len(good)} same-site URLs honoured, {len(bad)} others sent to {default}")


def check_failed_logout(work: Path, ports: dict, password: str):
    """A logout whose revocation API is down: 502, says so, keeps the cookie."""
    port, dead = free_port(), free_port()
    service = start_login(work, port, ports["front"], f"http://127.0.0.1:{dead}/revoke", "login-revoke-down.log")
    try:
        host = f"login.{DOMAIN}:{port}"
        _, headers, _ = form_post(port, host, "/login", {"username": USER, "password": password, "return_url": ""})
        cookie = headers.get("set-cookie", "").split(";")[0]
        check(cookie.startswith("auth=ey"), f"login gave no auth cookie: {headers.get('set-cookie')!r}")
        status, headers, body = form_post(port, host, "/logout", {}, {"Cookie": cookie})
    finally:
        stop(service)
    check(status == 502, f"logout with the revocation API down: {status}, not 502")
    check("Logout failed" in body and "could not be reached" in body,
          "logout with the revocation API down does not say it failed")
    check("set-cookie" not in headers, "logout with the revocation API down cleared the cookie anyway")
    ok("logout with the revocation API down: 502 'Logout failed', cookie kept")


def check_logs(work: Path, prefix: Path, password: str):
    for log in sorted(work.glob("login*.log")):
        check(password not in log.read_text(), f"{log.name} holds the password")
    ok("the login service logged no password")
    errors = (prefix / "logs" / "error.log").read_text()
    for bad in ("exited on signal", "[alert]", "[crit]", "[emerg]"):
        check(bad not in errors, f"nginx error.log has {bad!r}")
    ok("nginx logged no crash, [alert], [crit] or [emerg]")


# --- the browser -------------------------------------------------------------------------------

class Browser:
    """Headless Chromium through chromedriver, with screenshots numbered in DIR."""

    def __init__(self, chromium: str, chromedriver: str, shots: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
                         "--window-size=1000,700", "--disable-gpu", "--no-first-run"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        self.driver.set_page_load_timeout(20)
        self.shots, self.count = shots, 0
        shots.mkdir(parents=True, exist_ok=True)

    def quit(self):
        self.driver.quit()

    def shot(self, name: str):
        self.count += 1
        self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}.png"))

    def get(self, url: str):
        self.driver.get(url)

    def url(self) -> str:
        return self.driver.current_url

    def status(self) -> int:
        """The HTTP status of the document shown (after redirects)."""
        return self.driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].responseStatus")

    def text(self, element_id: str) -> str:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""

    def body(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def submit(self, fields: dict, button: str):
        """Types FIELDS (id: text), clicks BUTTON and waits for the next page."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        for element_id, value in fields.items():
            self.driver.find_element(By.ID, element_id).send_keys(value)
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.ID, button).click()
        WebDriverWait(self.driver, 20).until(lambda d: self._gone(old) and
                                             d.execute_script("return document.readyState") == "complete")

    @staticmethod
    def _gone(element) -> bool:
        from selenium.common.exceptions import StaleElementReferenceException

        try:
            element.tag_name
            return False
        except StaleElementReferenceException:
            return True

    def cookies(self) -> list:
        return self.driver.get_cookies()

    def script_cookies(self) -> str:
        return self.driver.execute_script("return document.cookie")


def check_page(browser: Browser, url: str, what: str):
    check(browser.url() == url, f"{what}: the browser is at {browser.url()}, not {url}")
    check(browser.status() == 200, f"{what}: status {browser.status()}, not 200")
    check(browser.text("user") == f"Signed in as {USER}.", f"{what}: page says {browser.text('user')!r}")
    asked = urllib.parse.urlsplit(url)
    check(browser.text("page") == f"This page: {asked.path}?{asked.query}",
          f"{what}: page shows {browser.text('page')!r}")


def check_at_login(browser: Browser, ports: dict, return_url: str, what: str):
    check_redirect_to_login(browser.url(), ports, return_url, what)
    check(browser.status() == 200, f"{what}: login page status {browser.status()}")
    check(browser.text("sign-in") == "Sign in", f"{what}: no sign-in form")


def sign_in(browser: Browser, password: str):
    browser.submit({"username": USER, "password": password}, "sign-in")


def the_cookie(browser: Browser, start: float) -> str:
    """The auth cookie: its attributes checked; its value."""
    cookies = [c for c in browser.cookies() if c["name"] == "auth"]
    check(len(cookies) == 1, f"{len(cookies)} auth cookies in the browser")
    c = cookies[0]
    check(c["domain"] == f".{DOMAIN}", f"cookie domain {c['domain']!r}, not .{DOMAIN}")
    check(c["path"] == "/", f"cookie path {c['path']!r}")
    check(c["httpOnly"] is True, "cookie not HttpOnly")
    check(c.get("sameSite") == "Lax", f"cookie SameSite {c.get('sameSite')!r}")
    check(c["secure"] is False, "cookie Secure on a plain-http site: the browser would not send it")
    check("auth=" not in browser.script_cookies(), "page scripts can read the auth cookie")
    claims = token_claims(c["value"])
    check(claims.get("sub") == USER, f"token sub {claims.get('sub')!r}")
    check(int(start) <= claims.get("iat", 0) <= time.time(), f"token iat {claims.get('iat')} not of this login")
    check(claims.get("exp") == claims["iat"] + TTL, f"token exp {claims.get('exp')} is not iat + {TTL}")
    check(isinstance(claims.get("jti"), str) and len(claims["jti"]) >= 16, f"token jti {claims.get('jti')!r}")
    check(abs(c.get("expiry", 0) - claims["exp"]) <= 2, f"cookie expiry {c.get('expiry')} is not the token's exp")
    ok(f"cookie auth: Domain=.{DOMAIN}, Path=/, HttpOnly, SameSite=Lax, not readable by scripts; "
       f"JWT sub={USER}, exp=iat+{TTL}, a jti")
    return c["value"]


def browser_flow(browser: Browser, ports: dict, password: str):
    front = ports["front"]
    page_a = page_url(ports)
    page_b = f"http://wiki.{DOMAIN}:{front}/handbook/start?lang=en"
    api = f"http://api.{DOMAIN}:{front}/v1/me"

    start = time.time()
    browser.get(page_a)
    check_at_login(browser, ports, page_a, "app page, signed out")
    browser.shot("login-form")
    ok("browser: app page → login page, with return_url = the page")

    sign_in(browser, password)
    check_page(browser, page_a, "after signing in")
    browser.shot("app-signed-in")
    ok("browser: signed in → back on the exact page, path and query, as alice")
    token = the_cookie(browser, start)
    iat = token_claims(token)["iat"]

    browser.get(page_b)
    check_page(browser, page_b, "wiki page")
    browser.shot("wiki-signed-in")
    ok("browser: wiki page served at once, no second login")

    browser.get(api)
    check(browser.url() == api and browser.status() == 200, f"API: {browser.url()} status {browser.status()}")
    me = json.loads(browser.body())
    check(me.get("sub") == USER and me.get("iat") == iat, f"API answered {me}")
    browser.shot("api-200")
    ok(f"browser: API 200 {json.dumps(me)}")

    status, _ = curl(api, front, token)
    check(status == 200, f"curl with the browser's cookie, before logout: {status}, not 200")
    ok("curl with the browser's cookie: API 200")

    # The revocation refuses tokens issued before the logout's second: log out a second later.
    time.sleep(max(0.0, iat + 1.1 - time.time()))
    browser.get(page_a)
    check_page(browser, page_a, "app page before logout")
    browser.submit({}, "logout")
    check(browser.url() == f"http://login.{DOMAIN}:{front}/logout", f"logout: at {browser.url()}")
    check(browser.status() == 200, f"logout: status {browser.status()} ({browser.text('message')!r})")
    check(browser.text("message").startswith("Signed out everywhere"), f"logout says {browser.text('message')!r}")
    check(not [c for c in browser.cookies() if c["name"] == "auth"], "the auth cookie is still in the browser")
    browser.shot("logged-out")
    ok("browser: logout on app → 'Signed out everywhere', cookie gone")

    for page, what in ((page_a, "app"), (page_b, "wiki")):
        browser.get(page)
        check_at_login(browser, ports, page, f"{what} page after logout")
        browser.shot(f"{what}-after-logout")
    ok("browser: app and wiki pages → login page again")
    browser.get(api)
    check(browser.status() == 401, f"API after logout: status {browser.status()}, not 401")
    browser.shot("api-after-logout")
    ok("browser: API 401")
    return token, page_a, iat


def check_replay(ports: dict, token: str, page_a: str, iat: int, logout_time: float):
    front = ports["front"]
    status, headers = curl(f"http://api.{DOMAIN}:{front}/v1/me", front, token)
    check(status == 401, f"curl with the old cookie after logout: API {status}, not 401")
    check("x-jwt-error: revoked" in headers.lower(), f"API 401 not for a revoked token:\n{headers}")
    ok("curl with the old cookie: API 401, X-JWT-Error: revoked")
    status, headers = curl(page_a, front, token)
    check(status == 302, f"curl with the old cookie after logout: app page {status}, not 302")
    location = next((line.split(":", 1)[1].strip() for line in headers.splitlines()
                     if line.lower().startswith("location:")), "")
    check_redirect_to_login(location, ports, page_a, "app page, old cookie")
    ok("curl with the old cookie: app page 302 to the login page")
    status, _, body = request(ports["revoke"], "127.0.0.1", "GET", "/revoke")
    check(status == 200, f"GET /revoke: {status}")
    entries = [e for e in json.loads(body) if e.get("sub") == USER]
    check(len(entries) == 1 and iat < entries[0].get("cutoff", 0) <= logout_time + 1,
          f"GET /revoke lists {body}, not alice with a cutoff after iat {iat}")
    ok(f"GET /revoke: {json.dumps(entries[0])}")


def sign_in_again(browser: Browser, ports: dict, page_a: str, password: str):
    browser.get(page_a)
    check_at_login(browser, ports, page_a, "app page, signing in again")
    sign_in(browser, password)
    check_page(browser, page_a, "after signing in again")
    browser.shot("signed-in-again")
    ok("browser: signing in again after the logout works")


def check_stolen_logout(browser: Browser, ports: dict, old_token: str, page_a: str):
    """The revoked cookie, a stolen copy say, cannot log alice out of her new session."""
    front = ports["front"]
    status, headers, _ = form_post(front, f"login.{DOMAIN}:{front}", "/logout", {},
                                   {"Cookie": f"auth={old_token}"})
    check(status == 302, f"POST /logout with the revoked cookie: {status}, not 302 to the login page")
    check(not [e for e in json.loads(request(ports["revoke"], "127.0.0.1", "GET", "/revoke")[2])
               if e.get("sub") == USER and e.get("cutoff", 0) > token_claims(old_token)["iat"] + 1],
          "the revoked cookie moved alice's cutoff on")
    check_page(browser, page_a, "the new session, after a logout with the revoked cookie")
    ok("POST /logout with the revoked cookie: 302 to the login page, the new session still served")


def check_cross_site_posts(ports: dict, password: str):
    """A form posted from a page of another site signs no one in, nor out."""
    front = ports["front"]
    evil = {"Origin": "http://evil.example"}
    status, headers, _ = form_post(front, f"login.{DOMAIN}:{front}", "/login",
                                   {"username": USER, "password": password, "return_url": ""}, evil)
    check(status == 403 and "set-cookie" not in headers, f"cross-site POST /login: {status}")
    ok("a login form posted from another site: 403, no cookie")


def device_logout(browser: Browser, ports: dict, page_a: str, password: str):
    """Log out on this device: the browser's session ends, another session of alice goes on."""
    front, api = ports["front"], f"http://api.{DOMAIN}:{ports['front']}/v1/me"
    token = the_cookie(browser, time.time() - 5)
    claims = token_claims(token)
    _, headers, _ = form_post(front, f"login.{DOMAIN}:{front}", "/login",
                              {"username": USER, "password": password, "return_url": ""})
    other = headers.get("set-cookie", "").split(";")[0].removeprefix("auth=")
    check(other.startswith("ey") and other != token, "a second login over HTTP gave no token of its own")
    check(curl(api, front, other)[0] == 200, "the second session is refused before any device logout")
    check_page(browser, page_a, "app page before logging out on this device")
    browser.submit({}, "logout-device")
    check(browser.url() == f"http://login.{DOMAIN}:{front}/logout-device", f"device logout: at {browser.url()}")
    check(browser.status() == 200, f"device logout: status {browser.status()} ({browser.text('message')!r})")
    check(browser.text("message").startswith("Signed out on this device"),
          f"device logout says {browser.text('message')!r}")
    check(not [c for c in browser.cookies() if c["name"] == "auth"], "the auth cookie is still in the browser")
    browser.shot("logged-out-on-this-device")
    status, headers = curl(api, front, token)
    check(status == 401 and "x-jwt-error: revoked" in headers.lower(),
          f"the browser's old cookie after the device logout: API {status}\n{headers}")
    check(curl(api, front, other)[0] == 200, "the other session was ended by the device logout")
    browser.get(page_a)
    check_at_login(browser, ports, page_a, "app page after the device logout")
    status, _, body = request(ports["revoke"], "127.0.0.1", "GET", "/revoke")
    check({"jti": claims["jti"], "exp": claims["exp"]} in json.loads(body),
          f"GET /revoke does not list the session's jti: {body}")
    ok("browser: log out on this device → its cookie refused (revoked, jti listed), "
       "another session of alice still served")


# --- main --------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nginx", required=True, help="the nginx binary")
    parser.add_argument("--module", required=True, help="the module .so built for it")
    parser.add_argument("--artifacts", required=True, help="directory for screenshots and logs (emptied)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    return parser.parse_args()


def run(args, work: Path, processes: list, browser_slot: list):
    ports = {name: free_port() for name in CONF_PORTS}
    prefix = work / "prefix"
    password = secrets.token_urlsafe(12)
    write_users(work / "users.txt", password)
    processes.append(start_nginx(args.nginx, args.module, prefix, ports))
    processes.append(start_login(work, ports["login"], ports["front"],
                                 f"http://127.0.0.1:{ports['revoke']}/revoke", "login.log"))
    ok(f"nginx on 127.0.0.1:{ports['front']} and :{ports['revoke']}, login service on :{ports['login']}")
    check_refusals(ports, page_url(ports))
    check_login_rules(ports, password)
    check_cross_site_posts(ports, password)
    browser_slot.append(Browser(args.chromium, args.chromedriver, work / "screenshots"))
    browser = browser_slot[0]
    token, page_a, iat = browser_flow(browser, ports, password)
    check_replay(ports, token, page_a, iat, time.time())
    sign_in_again(browser, ports, page_a, password)
    check_stolen_logout(browser, ports, token, page_a)
    device_logout(browser, ports, page_a, password)
    check_failed_logout(work, ports, password)
    check_logs(work, prefix, password)


def main():
    args = parse_args()
    work = Path(args.artifacts).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    processes, browser_slot = [], []
    started = time.monotonic()
    try:
        run(args, work, processes, browser_slot)
    except StepFailed as failure:
        if browser_slot:
            browser_slot[0].driver.save_screenshot(str(work / "failure.png"))
            print(f"browser at {browser_slot[0].url()}", file=sys.stderr)
        print(f"FAILED: {failure}\n(screenshots and logs: {work})", file=sys.stderr)
        sys.exit(1)
    finally:
        for browser in browser_slot:
            browser.quit()
        for process in reversed(processes):
            stop(process)
    print(f"logout everywhere in Chromium: every step passed in {time.monotonic() - started:.1f} s "
          f"(screenshots: {work / 'screenshots'})")


if __name__ == "__main__":
    main()
