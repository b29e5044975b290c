//! The client side: a tiny HTTP/1.1 client on [`Nginx`] (one request per connection,
//! `Connection: close`), the [`Response`] it reads (chunked bodies decoded), what the echo
//! upstream saw of the request, and `percent_decode` for redirect URLs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::nginx::Nginx;

impl Nginx {
    /// The `Host` value a client sends by default.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers)
    }

    /// A request with `Host: 127.0.0.1:PORT` (unless given) and `Connection: close`.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            raw.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" || method == "PUT" {
            raw.push_str("Content-Length: 0\r\n");
        }
        raw.push_str("Connection: close\r\n\r\n");
        self.raw(raw.as_bytes(), method == "HEAD")
    }

    /// A request with a body (`Content-Length` set), `Host: 127.0.0.1:PORT` and
    /// `Connection: close`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host());
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw, method == "HEAD")
    }

    /// Sends raw bytes (a complete request) and reads the response until the server closes.
    pub fn raw(&self, request: &[u8], head: bool) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to nginx");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut buf = Vec::new();
        if let Err(e) = s.read_to_end(&mut buf) {
            if buf.is_empty() {
                panic!(
                    "reading the response: {e}\nerror log:\n{}",
                    self.error_log()
                );
            }
        }
        Response::parse(&buf, head).unwrap_or_else(|| {
            panic!(
                "bad response {:?}\nerror log:\n{}",
                String::from_utf8_lossy(&buf),
                self.error_log()
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    fn parse(buf: &[u8], head: bool) -> Option<Response> {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next()?;
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let rest = &buf[end + 4..];
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let body = if head {
            Vec::new()
        } else if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Some(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// First value of a response header, case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a response header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The request headers the echo upstream received (lowercase names), in order.
    pub fn upstream_headers(&self) -> Vec<(String, String)> {
        assert!(
            self.header("x-echo-upstream").is_some(),
            "response did not come from the echo upstream: {self:?}"
        );
        self.body
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Values of one request header as received by the echo upstream.
    pub fn upstream(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.upstream_headers()
            .into_iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// The single value of a request header at the upstream (None when absent; panics on several).
    pub fn upstream_one(&self, name: &str) -> Option<String> {
        let v = self.upstream(name);
        assert!(
            v.len() <= 1,
            "{name} reached the upstream {} times: {v:?}",
            v.len()
        );
        v.into_iter().next()
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

/// Percent-decodes a string (RFC 3986; `+` stays `+`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("bad percent escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("decoded return_url is not UTF-8")
}
