//! A minimal blocking HTTP/1.1 client for the node's own API (loopback, JSON), used by the
//! CLI, the local testnet, the benchmark and the process tests. One request per connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// Responses larger than this are refused.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub timeout: Duration,
}

/// A response: status and body (JSON when the node sent JSON).
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Why a request to the node's API failed, by kind (the CLI's exit code follows it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No connection, or it broke before an answer arrived.
    #[error("{0}")]
    Unreachable(String),
    /// The node answered something that is not the API's HTTP/JSON.
    #[error("{0}")]
    Protocol(String),
    /// The node answered with an error status and its `{"code", "message"}`.
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
}

impl ClientError {
    /// A 4xx answer: the request was refused (bad input, not a member, full, no token).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if (400..500).contains(status))
    }
    /// The API's error code, when the node gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        e.to_string()
    }
}

impl Response {
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_str(&self.body).map_err(|e| ClientError::Protocol(format!("the node answered {} with non-JSON: {e}", self.status)))
    }
    /// The JSON body of a 2xx answer, or the node's error.
    pub fn ok_json(&self) -> Result<Value, ClientError> {
        let value = self.json();
        if (200..300).contains(&self.status) {
            return value;
        }
        match value {
            Ok(v) => Err(ClientError::Api {
                status: self.status,
                code: v.get("code").and_then(Value::as_str).unwrap_or("error").to_owned(),
                message: v.get("message").and_then(Value::as_str).unwrap_or("request failed").to_owned(),
            }),
            Err(_) => Err(ClientError::Api { status: self.status, code: "error".into(), message: format!("HTTP {}: {}", self.status, self.body.trim()) }),
        }
    }
}

impl Client {
    pub fn new(addr: SocketAddr, token: Option<String>) -> Client {
        Client { addr, token, timeout: Duration::from_secs(30) }
    }

    pub fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.request("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.request("POST", path, Some(body.to_string()))
    }

    pub fn request(&self, method: &str, path: &str, body: Option<String>) -> Result<Response, ClientError> {
        let unreachable = ClientError::Unreachable;
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| unreachable(format!("cannot reach the node's API at {}: {e}", self.addr)))?;
        stream.set_read_timeout(Some(self.timeout)).map_err(|e| unreachable(e.to_string()))?;
        stream.set_write_timeout(Some(self.timeout)).map_err(|e| unreachable(e.to_string()))?;
        let body = body.unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n", self.addr);
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if method != "GET" {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(|e| unreachable(format!("sending to {}: {e}", self.addr)))?;
        stream.write_all(body.as_bytes()).map_err(|e| unreachable(format!("sending to {}: {e}", self.addr)))?;
        let mut raw = Vec::new();
        stream
            .take(RESPONSE_BYTES_MAX as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| unreachable(format!("reading from {}: {e}", self.addr)))?;
        if raw.len() > RESPONSE_BYTES_MAX {
            return Err(ClientError::Protocol("response too large".into()));
        }
        parse_response(&raw).map_err(ClientError::Protocol)
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("malformed HTTP response")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "malformed HTTP response head")?;
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or("malformed chunked body")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "malformed chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "malformed chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}
