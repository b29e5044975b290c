//! The nginx under test: which binary and module it runs (and the check that the module is not
//! older than its sources), a fresh prefix and port per start, the configuration it is given
//! (placeholders substituted), `nginx -t` on a configuration, and [`Nginx`], a running master
//! with one worker that starts, reloads, exposes its logs and stops in `Drop`.
//!
//! Configuration placeholders substituted in every text given to the harness:
//! `{{PORT}}` (nginx's port), `{{UPSTREAM}}` (the echo upstream's port), `{{PREFIX}}` (the
//! nginx prefix, absolute, no trailing slash) and `{{KEYS}}` (testdata/keys, absolute).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::tokens::keys_dir;
use super::upstream::Upstream;

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

const MODULE_FILE: &str = "libngx_http_auth_jwt_module.so";

/// The nginx binary under test.
pub fn nginx_bin() -> PathBuf {
    match std::env::var_os("NGX_JWT_NGINX") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("NGX_JWT_BUILD_DIR")).join("nginx"),
    }
}

/// The module under test (absolute path).
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NGX_JWT_MODULE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "NGX_JWT_MODULE={} does not exist", p.display());
        return fs::canonicalize(&p).unwrap();
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/libngx_http_auth_jwt_module.so
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps");
    let so = profile_dir.join(MODULE_FILE);
    assert!(
        so.is_file(),
        "module {} not found: run `cargo build` (or set NGX_JWT_MODULE)",
        so.display()
    );
    check_fresh(&so);
    so
}

fn newest_mtime(dir: &Path, newest: &mut SystemTime, newest_path: &mut PathBuf) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            newest_mtime(&p, newest, newest_path);
        } else if p.extension().is_some_and(|x| x == "rs") {
            if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                if m > *newest {
                    *newest = m;
                    *newest_path = p;
                }
            }
        }
    }
}

/// Fails when the default module is older than the sources it is built from: `cargo test`
/// is expected to rebuild the package's cdylib before it runs the tests.
fn check_fresh(so: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = UNIX_EPOCH;
    let mut newest_path = PathBuf::new();
    for dir in ["src", "jwt-core/src"] {
        newest_mtime(&root.join(dir), &mut newest, &mut newest_path);
    }
    let built = fs::metadata(so).and_then(|m| m.modified()).unwrap();
    assert!(
        built >= newest,
        "module {} is older than {}: it was not rebuilt; run `cargo build` before the tests \
         (or set NGX_JWT_MODULE)",
        so.display(),
        newest_path.display()
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory under CARGO_TARGET_TMPDIR.
fn fresh_prefix() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let test = exe.file_name().unwrap().to_string_lossy().into_owned();
    let test = test.split('-').next().unwrap_or("t").to_string();
    let thread = thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", ".");
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "ngx-{test}-{}-{n}-{}",
        std::process::id(),
        thread
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
            .take(60)
            .collect::<String>()
    ));
    let _ = fs::remove_dir_all(&dir);
    for sub in ["conf", "logs", "html", "tmp"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::write(dir.join("html/index.html"), "static index\n").unwrap();
    dir
}

/// A port for nginx to listen on, below the kernel's ephemeral range (32768 and up), where the
/// echo upstreams take theirs: a port probed free, released, then taken by another test's
/// upstream before nginx binds it would cost a failed start (nginx retries its bind for 2.5 s)
/// and another try. Within a test binary each start gets its own port from a counter; the pid
/// spreads binaries apart.
fn free_port() -> u16 {
    const BASE: usize = 20_000;
    const SPAN: usize = 10_000;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let offset = std::process::id() as usize * 7_919;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (BASE + (offset + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {BASE}..{}", BASE + SPAN);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Line of `nginx.conf` where the http body given to the harness starts (1-based), when no
/// main-context text is given.
pub const HTTP_BODY_FIRST_LINE: usize = 13;

fn substitute(text: &str, prefix: &Path, port: u16, upstream: u16) -> String {
    text.replace("{{PORT}}", &port.to_string())
        .replace("{{UPSTREAM}}", &upstream.to_string())
        .replace("{{PREFIX}}", prefix.to_str().unwrap())
        .replace("{{KEYS}}", keys_dir().to_str().unwrap())
}

/// The whole nginx.conf. `main` goes after the fixed main-context lines (it shifts the http
/// body by its number of lines).
fn render_conf(prefix: &Path, main: &str, http_body: &str) -> String {
    let p = prefix.to_str().unwrap();
    let module = module_path();
    let mut s = String::new();
    s.push_str(&format!("load_module {};\n", module.display())); // 1
                                                                 // A test that sets its own number of workers keeps the lines below where they are.
    if main.contains("worker_processes") {
        s.push_str("# worker_processes: below\n"); // 2
    } else {
        s.push_str("worker_processes 1;\n"); // 2
    }
    s.push_str("daemon off;\n"); // 3
    s.push_str("master_process on;\n"); // 4
    s.push_str(&format!("pid {p}/nginx.pid;\n")); // 5
    s.push_str(&format!("error_log {p}/logs/error.log info;\n")); // 6
    s.push_str("events { worker_connections 256; }\n"); // 7
    if !main.is_empty() {
        s.push_str(main);
        if !main.ends_with('\n') {
            s.push('\n');
        }
    }
    s.push_str("http {\n"); // 8
    s.push_str(&format!("access_log {p}/logs/access.log;\n")); // 9
    s.push_str(&format!("client_body_temp_path {p}/tmp/client_body;\n")); // 10
    s.push_str(&format!("proxy_temp_path {p}/tmp/proxy;\n")); // 11
    s.push_str("default_type text/plain;\n"); // 12
    s.push_str(http_body); // 13…
    if !http_body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str("}\n");
    s
}

/// Line number (1-based) in nginx.conf of the first line of `http_body` containing `needle`
/// (no main-context text).
pub fn conf_line(http_body: &str, needle: &str) -> usize {
    let idx = http_body
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the configuration"));
    HTTP_BODY_FIRST_LINE + idx
}

fn write_files(prefix: &Path, files: &[(&str, &str)], port: u16, upstream: u16) {
    for (name, content) in files {
        let path = prefix.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, substitute(content, prefix, port, upstream)).unwrap();
    }
}

/// `nginx -t` on a configuration with this http body; returns (success, stderr+stdout).
pub fn nginx_t(http_body: &str) -> (bool, String) {
    nginx_t_full("", http_body, &[])
}

/// `nginx -t` with main-context text and files placed in the prefix.
pub fn nginx_t_full(main: &str, http_body: &str, files: &[(&str, &str)]) -> (bool, String) {
    let prefix = fresh_prefix();
    let port = free_port();
    write_files(&prefix, files, port, 1);
    let conf = substitute(&render_conf(&prefix, main, http_body), &prefix, port, 1);
    fs::write(prefix.join("conf/nginx.conf"), &conf).unwrap();
    let out = Command::new(nginx_bin())
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .arg("-e")
        .arg(prefix.join("logs/error.log"))
        .args(["-c", "conf/nginx.conf", "-t"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx_bin().display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    // The output says everything; -t leaves nothing worth keeping.
    let _ = fs::remove_dir_all(&prefix);
    (out.status.success(), text)
}

/// Asserts `nginx -t` fails with an `[emerg]` naming nginx.conf and the line of `http_body`
/// that contains `needle`; returns the output.
pub fn expect_emerg_at(http_body: &str, needle: &str) -> String {
    let (ok, out) = nginx_t(http_body);
    assert!(
        !ok,
        "nginx -t accepted the configuration:\n{http_body}\n{out}"
    );
    assert!(out.contains("[emerg]"), "no [emerg] in:\n{out}");
    let line = conf_line(http_body, needle);
    assert!(
        out.contains(&format!("nginx.conf:{line}")),
        "expected the error at nginx.conf:{line} (line with {needle:?}), got:\n{out}"
    );
    out
}

/// Asserts `nginx -t` accepts the configuration.
pub fn expect_valid(http_body: &str) {
    let (ok, out) = nginx_t(http_body);
    assert!(ok, "nginx -t rejected:\n{http_body}\n{out}");
}

/// `server { listen 127.0.0.1:{{PORT}}; <body> }`
pub fn server(body: &str) -> String {
    format!("server {{\nlisten 127.0.0.1:{{{{PORT}}}};\n{body}\n}}\n")
}

/// `proxy_pass` to the echo upstream.
pub const PROXY: &str = "proxy_pass http://127.0.0.1:{{UPSTREAM}};";

// ---------------------------------------------------------------------------------------------
// Running nginx
// ---------------------------------------------------------------------------------------------

/// A running nginx (master + one worker) in its own prefix, with its own echo upstream.
pub struct Nginx {
    pub prefix: PathBuf,
    pub port: u16,
    pub upstream: Upstream,
    child: Option<Child>,
    /// Skip the error-log check in Drop (nginx failed to start: the caller reports why).
    failed_start: bool,
}

impl Nginx {
    /// Starts nginx with this http body (servers use `listen 127.0.0.1:{{PORT}};`).
    pub fn start(http_body: &str) -> Nginx {
        Nginx::start_full("", http_body, &[])
    }

    /// Starts nginx with main-context text and files placed in the prefix (paths relative to it).
    pub fn start_full(main: &str, http_body: &str, files: &[(&str, &str)]) -> Nginx {
        let mut last = String::new();
        for _ in 0..3 {
            match Nginx::try_start(main, http_body, files) {
                Ok(n) => return n,
                // Another test may have taken the port between our probe and nginx's bind.
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}");
    }

    fn try_start(main: &str, http_body: &str, files: &[(&str, &str)]) -> Result<Nginx, String> {
        let prefix = fresh_prefix();
        let upstream = Upstream::start();
        let port = free_port();
        write_files(&prefix, files, port, upstream.port);
        let conf = substitute(
            &render_conf(&prefix, main, http_body),
            &prefix,
            port,
            upstream.port,
        );
        fs::write(prefix.join("conf/nginx.conf"), &conf).unwrap();
        let stderr = fs::File::create(prefix.join("logs/stderr.log")).unwrap();
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(format!("{}/", prefix.display()))
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .args(["-c", "conf/nginx.conf"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx_bin().display()));
        let mut n = Nginx {
            prefix,
            port,
            upstream,
            child: Some(child),
            failed_start: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = n.child.as_mut().unwrap().try_wait().unwrap() {
                n.child = None;
                n.failed_start = true;
                let msg = format!(
                    "nginx exited at start ({status}).\nconfig:\n{conf}\nerror log:\n{}\nstderr:\n{}",
                    n.error_log(),
                    fs::read_to_string(n.prefix.join("logs/stderr.log")).unwrap_or_default()
                );
                return Err(msg);
            }
            // The master logs a worker's start only after binding every listen socket, and
            // nginx does not share ports, so from then on a connect reaches this nginx alone;
            // a connect alone once reached some other socket and was reset.
            if !n.workers_started().is_empty() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(n);
            }
            if Instant::now() > deadline {
                let msg = format!(
                    "nginx started no worker listening within 10 s.\nerror log:\n{}",
                    n.error_log()
                );
                n.failed_start = true;
                n.stop();
                panic!("{msg}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master process id.
    pub fn master_pid(&self) -> u32 {
        self.child.as_ref().expect("nginx is running").id()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.prefix.join("logs/access.log")).unwrap_or_default()
    }

    /// Pids of the worker processes the master has started so far.
    pub fn workers_started(&self) -> Vec<String> {
        self.error_log()
            .lines()
            .filter_map(|l| l.split_once("start worker process "))
            .map(|(_, pid)| pid.trim().to_string())
            .collect()
    }

    /// `nginx -s reload` on a running harness nginx; returns once a new worker has started and every
    /// old worker has exited, so that each later request is answered with the new configuration.
    pub fn reload(&self) {
        let old = self.workers_started();
        assert!(
            !old.is_empty(),
            "no worker in the error log:\n{}",
            self.error_log()
        );
        let out = Command::new(nginx_bin())
            .arg("-p")
            .arg(format!("{}/", self.prefix.display()))
            .arg("-e")
            .arg(self.prefix.join("logs/error.log"))
            .args(["-c", "conf/nginx.conf", "-s", "reload"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nginx -s reload failed: {}{}\nerror log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.error_log()
        );
        self.wait_for("a new worker and the old ones' exit", || {
            let log = self.error_log();
            self.workers_started().len() > old.len()
                && old
                    .iter()
                    // `PID#TID: exit`: the TID is the pid with --with-threads, 0 without.
                    .all(|pid| {
                        let me = format!(" {pid}#");
                        log.lines()
                            .any(|l| l.contains(&me) && l.ends_with(": exit"))
                    })
        });
    }

    /// Polls until `ok()` holds (the reloaded worker answers), at most 15 s.
    #[track_caller]
    pub fn wait_for(&self, what: &str, ok: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nerror log:\n{}",
                self.error_log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Contents of a file in the prefix (empty when it does not exist).
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.prefix.join(name)).unwrap_or_default()
    }

    /// Error-log lines mentioning `auth_jwt`.
    pub fn jwt_log_lines(&self) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| l.contains("auth_jwt"))
            .map(str::to_string)
            .collect()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: plain kill(2) of the master we started.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        // Workers exit with the master; make sure none is left behind.
        if let Ok(pid) = fs::read_to_string(self.prefix.join("nginx.pid")) {
            if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
                if pid != child.id() as libc::pid_t {
                    // SAFETY: only a pid this nginx wrote, still ours if it exists.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }

    /// Asserts the error log shows no crash and nothing at alert/crit/emerg level.
    pub fn assert_clean_log(&self) {
        let log = self.error_log();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("exited on signal")
                    || l.contains("[alert]")
                    || l.contains("[crit]")
                    || l.contains("[emerg]")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "nginx error log has crashes/alerts:\n{}\n--- full log ---\n{log}",
            bad.join("\n")
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        self.upstream.stop();
        if !thread::panicking() && !self.failed_start {
            self.assert_clean_log();
            let _ = fs::remove_dir_all(&self.prefix);
        }
    }
}
