//! The opening handshake from the client side, byte for byte (RFC 6455 §4.1, §4.2).
//!
//! [`Request`] starts as a valid upgrade request and is bent with builder methods for the
//! negative cases; [`check_switching`] judges the server's answer, parsed by the harnesses'
//! shared [`Response`].

use std::fmt;

pub use wsport_harness::http::{accept_key, random_key, Response};

use crate::frame::preview;
use crate::server::Endpoint;

/// Parse a complete response head (through the blank line), as the suite's clients read it.
pub fn parse_head(head: &[u8]) -> Result<Response, String> {
    match Response::parse(head) {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err("incomplete HTTP response head".into()),
        Err(e) => Err(format!("{e}: {}", preview(head))),
    }
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
        Some(got) if got == expected => {}
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
    use crate::server::Scheme;

    fn request() -> Request {
        let ep = Endpoint {
            server: "none",
            scheme: Scheme::Ws,
            addr: "127.0.0.1:9".parse().unwrap(),
            tls: None,
        };
        Request::upgrade(&ep).header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn accepts_the_rfc_answer_with_token_lists() {
        let resp = parse_head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\
              Connection: keep-alive, UPGRADE\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .unwrap();
        check_switching(&request(), &resp).unwrap();
    }

    #[test]
    fn names_every_problem_at_once() {
        let resp = parse_head(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n").unwrap();
        let why = check_switching(&request(), &resp).unwrap_err();
        for problem in [
            "status 400",
            "no `Upgrade: websocket`",
            "no `Connection: Upgrade`",
            "no Sec-WebSocket-Accept",
        ] {
            assert!(why.contains(problem), "{problem} missing from: {why}");
        }
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
