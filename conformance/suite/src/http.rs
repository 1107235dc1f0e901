//! The opening handshake from the client side, byte for byte (RFC 6455 §4.1, §4.2).
//!
//! [`Request`] starts as a valid upgrade request and is bent with builder methods for the
//! negative cases; [`Response`] parses the server's answer with httparse.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::frame::next_random;
use crate::server::Endpoint;

/// The GUID of RFC 6455 §1.3.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 step 5.4).
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WS_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes (§4.1).
pub fn random_key() -> String {
    let bytes = [next_random().to_le_bytes(), next_random().to_le_bytes()].concat();
    BASE64.encode(bytes)
}

/// An HTTP/1.1 request head, with headers kept in order and sent verbatim.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
    /// Still exactly what [`Request::upgrade`] built: shown as "valid upgrade request".
    pristine: bool,
}

impl Request {
    /// A valid upgrade request for `ep` with a fresh key.
    pub fn upgrade(ep: &Endpoint) -> Self {
        let mut req = Self::get(ep, "/")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", &random_key())
            .header("Sec-WebSocket-Version", "13");
        req.pristine = true;
        req
    }

    /// `GET path HTTP/1.1` with only a Host header.
    pub fn get(ep: &Endpoint, path: &str) -> Self {
        Request {
            method: "GET".into(),
            path: path.into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), ep.authority())],
            pristine: false,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.pristine = false;
        self.method = method.into();
        self
    }

    pub fn version(mut self, version: &str) -> Self {
        self.pristine = false;
        self.version = version.into();
        self
    }

    /// Set a header, replacing any existing one with the same name (case-insensitive).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.pristine = false;
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.into(),
            None => self.headers.push((name.into(), value.into())),
        }
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.pristine = false;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} {}\r\n", self.method, self.path, self.version);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

impl fmt::Display for Request {
    /// One line: `GET / HTTP/1.1 [Host: .., Upgrade: websocket, ..]`, long values elided.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pristine {
            return write!(f, "valid upgrade request");
        }
        write!(
            f,
            "request `{} {} {}` [",
            self.method, self.path, self.version
        )?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match value.len() {
                0..=60 => write!(f, "{sep}{name}: {value}")?,
                n => write!(f, "{sep}{name}: <{n} bytes>")?,
            }
        }
        write!(f, "]")
    }
}

/// A parsed HTTP response head.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// Parse a complete head (through the blank line).
    pub fn parse(head: &[u8]) -> Result<Response, String> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err("incomplete HTTP response head".into()),
            Err(e) => {
                let shown = crate::frame::preview(head);
                return Err(format!("malformed HTTP response head ({e}): {shown}"));
            }
        }
        Ok(Response {
            status: response.code.unwrap_or_default(),
            reason: response.reason.unwrap_or_default().to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Does any `name` header list `token` (comma-separated, case-insensitive)?
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {} [", self.status, self.reason)?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name}: {value}")?;
        }
        write!(f, "]")
    }
}

/// Is `resp` a correct 101 answer to `req` (§4.2.2 step 5, §4.1 client checks 1-4)?
pub fn check_switching(req: &Request, resp: &Response) -> Result<(), String> {
    let mut problems = Vec::new();
    if resp.status != 101 {
        problems.push(format!("status {} instead of 101", resp.status));
    }
    if !resp.has_token("Upgrade", "websocket") {
        problems.push("no `Upgrade: websocket`".to_string());
    }
    if !resp.has_token("Connection", "upgrade") {
        problems.push("no `Connection: Upgrade`".to_string());
    }
    let key = req.get_header("Sec-WebSocket-Key").unwrap_or_default();
    let expected = accept_key(key);
    match resp.header("Sec-WebSocket-Accept") {
        Some(got) if got.trim() == expected => {}
        Some(got) => problems.push(format!(
            "Sec-WebSocket-Accept {got:?}, expected {expected:?}"
        )),
        None => problems.push("no Sec-WebSocket-Accept".to_string()),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "sent {req}; expected a valid 101; got {resp}: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 6455 §1.3.
    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_are_base64_of_16_bytes() {
        let key = random_key();
        assert_eq!(BASE64.decode(&key).unwrap().len(), 16);
        assert_ne!(key, random_key());
    }

    #[test]
    fn tokens_are_case_insensitive_and_comma_separated() {
        let resp = Response::parse(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive, UPGRADE\r\n\r\n",
        )
        .unwrap();
        assert_eq!(resp.status, 101);
        assert!(resp.has_token("connection", "upgrade"));
        assert!(!resp.has_token("connection", "close"));
    }
}
