//! A minimal HTTP/1.1 client for this crate's own API: the CLI's `set-desired --api` and the
//! tests use it. One request per connection (`Connection: close`), the response read to the
//! end; it handles what the API sends (a body with `Content-Length`) and refuses chunked
//! bodies. Not a general-purpose client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("HTTP I/O with {addr}: {source}")]
    Io {
        /// The server.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// No complete answer within the timeout.
    #[error("HTTP request to {addr} timed out after {secs} s")]
    Timeout {
        /// The server.
        addr: String,
        /// The timeout.
        secs: u64,
    },
    /// The answer is not an HTTP/1.x response this client understands.
    #[error("malformed HTTP response from {addr}")]
    Malformed {
        /// The server.
        addr: String,
    },
}

/// Sends one request to `addr` (`host:port`) and reads the whole response.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let secs = timeout.as_secs();
    match tokio::time::timeout(timeout, exchange(addr, method, path, body)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout { addr: addr.to_owned(), secs }),
    }
}

async fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<HttpResponse, HttpError> {
    let io = |source| HttpError::Io { addr: addr.to_owned(), source };
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).await.map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(io)?;
    parse(&raw).ok_or_else(|| HttpError::Malformed { addr: addr.to_owned() })
}

fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let mut body = raw[end + 4..].to_vec();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = value.parse().ok()?;
            if body.len() < len {
                return None;
            }
            body.truncate(len);
        }
    }
    Some(HttpResponse { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let r = parse(b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r, HttpResponse { status: 409, body: b"{}".to_vec() });
        assert!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").is_none());
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}").is_none());
    }
}
