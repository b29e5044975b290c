//! An identity provider's JWKS endpoint on 127.0.0.1: a real HTTP server whose answer a test
//! sets (status, body, headers, a delay, or a closed connection) and which records every
//! request it receives, so that a test counts nginx's fetches and sees what they carried.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::upstream::read_head;

/// What the provider answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status, body and extra headers.
    Serve {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Waits this long, then answers `then`.
    Slow(Duration, Box<Answer>),
    /// Closes the connection without answering.
    Hang,
}

impl Answer {
    pub fn ok(body: &str) -> Answer {
        Answer::Serve {
            status: 200,
            body: body.to_owned(),
            headers: Vec::new(),
        }
    }

    pub fn status(status: u16, body: &str) -> Answer {
        Answer::Serve {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
        }
    }
}

/// One request the provider received: its request line and headers (lowercase names).
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Seen {
    /// The values of the header `name` (lowercase) the request carried.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct Provider {
    pub port: u16,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Provider {
    pub fn start(answer: Answer) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(answer));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, flag) = (answer.clone(), seen.clone(), stop.clone());
        let handle = thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let (a, s) = (a.clone(), s.clone());
                    thread::spawn(move || serve(conn, &a, &s));
                }
            }
        });
        Provider {
            port,
            answer,
            seen,
            stop,
            handle: Some(handle),
        }
    }

    /// What it answers from now on.
    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn fetches(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = h.join();
        }
    }
}

fn serve(mut conn: TcpStream, answer: &Mutex<Answer>, seen: &Mutex<Vec<Seen>>) {
    let Some((buf, end)) = read_head(&mut conn) else {
        return;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    seen.lock().unwrap().push(Seen {
        line,
        headers,
        at: Instant::now(),
    });
    let mut answer = answer.lock().unwrap().clone();
    loop {
        match answer {
            Answer::Slow(delay, then) => {
                thread::sleep(delay);
                answer = *then;
            }
            Answer::Hang => {
                let _ = conn.shutdown(Shutdown::Both);
                return;
            }
            Answer::Serve {
                status,
                body,
                headers,
            } => {
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&body);
                let _ = conn.write_all(resp.as_bytes());
                let _ = conn.shutdown(Shutdown::Write);
                return;
            }
        }
    }
}
