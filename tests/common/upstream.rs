//! The echo upstream every harness nginx proxies to: it answers each request with the request
//! headers it received, so that a test sees what reached the backend.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// An HTTP server answering 200 with the request headers it received, one `name: value` per
/// line (lowercase names); the request line is in the response header `X-Echo-Request`.
pub struct Upstream {
    pub port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    thread::spawn(move || serve_echo(conn));
                }
            }
        });
        Upstream {
            port,
            stop,
            handle: Some(handle),
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = h.join();
        }
    }
}

/// Reads a request's head from `conn` (10 s at most): what was read, and where the head ends
/// (the blank line); `None` when the peer closes first.
pub(crate) fn read_head(conn: &mut TcpStream) -> Option<(Vec<u8>, usize)> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some((buf, end));
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn serve_echo(mut conn: TcpStream) {
    let Some((buf, end)) = read_head(&mut conn) else {
        return;
    };
    let mut chunk = [0u8; 8192];
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut body = String::new();
    let mut content_length = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                content_length = v.parse().unwrap_or(0);
            }
            body.push_str(&format!("{k}: {v}\n"));
        }
    }
    // Drain a request body, if any.
    let mut have = buf.len() - end - 4;
    while have < content_length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Echo-Upstream: 1\r\nX-Echo-Request: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        request_line,
        body
    );
    let _ = conn.write_all(resp.as_bytes());
    let _ = conn.shutdown(Shutdown::Write);
}
