//! The opening handshake, client side (RFC 6455 section 4.1): a plainly formatted GET request
//! and a strict check of the server's 101 answer.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID of section 1.3, appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most response bytes read before giving up on finding the end of the headers.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// `Sec-WebSocket-Accept` for a given `Sec-WebSocket-Key` (section 4.2.2 step 5.4).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A `Sec-WebSocket-Key`: 16 random bytes, base64 (section 4.1 point 7).
pub fn new_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// The upgrade request for `path` on `host` (`Host:` value, port included when not the
/// default), with `extra` header lines appended as given.
pub fn request(host: &str, path: &str, key: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         User-Agent: wsport-autobahn/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in extra {
        req.push_str(name);
        req.push_str(": ");
        req.push_str(value);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A parsed HTTP response head.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the head, up to and including the blank line; what follows is WebSocket data.
    pub head_len: usize,
}

impl Response {
    /// The first value of header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
    }

    /// True if a comma-separated header `name` holds `token` (case-insensitive), over all
    /// occurrences of the header.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
    }
}

/// Why a response is not a valid upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The bytes are not an HTTP/1.1 response head.
    Malformed(String),
    /// The head grew past [`MAX_RESPONSE_HEAD`] without ending.
    TooLarge,
    /// Not 101 Switching Protocols.
    Status { status: u16, reason: String },
    /// A header required by section 4.1 (client requirements, points 2-4) is missing or wrong.
    Header {
        name: &'static str,
        got: Option<String>,
        want: String,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(e) => {
                write!(f, "malformed HTTP response from the server: {e}")
            }
            HandshakeError::TooLarge => write!(
                f,
                "server's response head exceeds {MAX_RESPONSE_HEAD} bytes"
            ),
            HandshakeError::Status { status, reason } => {
                write!(
                    f,
                    "server answered the upgrade with HTTP {status} {reason}, not 101"
                )
            }
            HandshakeError::Header {
                name,
                got: Some(got),
                want,
            } => {
                write!(f, "server's 101 has {name}: {got:?}, expected {want:?}")
            }
            HandshakeError::Header {
                name,
                got: None,
                want,
            } => {
                write!(f, "server's 101 lacks {name} (expected {want:?})")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Parses a response head from the front of `buf`; `Ok(None)` while it is incomplete.
pub fn parse_response(buf: &[u8]) -> Result<Option<Response>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => Ok(Some(Response {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            headers: resp
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
            head_len,
        })),
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

/// Checks that `resp` accepts the upgrade requested with `key` (section 4.1, the client's
/// checks on the server's handshake, points 1-6; this client offers no extension and no
/// subprotocol, so the server must not select any).
pub fn check_upgrade(resp: &Response, key: &str) -> Result<(), HandshakeError> {
    if resp.status != 101 {
        return Err(HandshakeError::Status {
            status: resp.status,
            reason: resp.reason.clone(),
        });
    }
    if !resp.header_has_token("Upgrade", "websocket") {
        return Err(HandshakeError::Header {
            name: "Upgrade",
            got: resp.header("Upgrade"),
            want: "websocket".into(),
        });
    }
    if !resp.header_has_token("Connection", "upgrade") {
        return Err(HandshakeError::Header {
            name: "Connection",
            got: resp.header("Connection"),
            want: "Upgrade".into(),
        });
    }
    let want = accept_key(key);
    match resp.header("Sec-WebSocket-Accept") {
        Some(got) if got == want => {}
        got => {
            return Err(HandshakeError::Header {
                name: "Sec-WebSocket-Accept",
                got,
                want,
            })
        }
    }
    if let Some(ext) = resp.header("Sec-WebSocket-Extensions") {
        return Err(HandshakeError::Header {
            name: "Sec-WebSocket-Extensions",
            got: Some(ext),
            want: String::new(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(new_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn request_is_well_formed() {
        let req = request(
            "127.0.0.1:9001",
            "/",
            "dGhlIHNhbXBsZSBub25jZQ==",
            &[("Origin", "http://x")],
        );
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Request::new(&mut headers);
        assert!(r.parse(&req).unwrap().is_complete());
        assert_eq!(r.method, Some("GET"));
        assert!(r.headers.iter().any(|h| h.name == "Origin"));
    }

    fn response(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn accepts_the_rfc_answer_and_keeps_trailing_bytes() {
        let mut bytes = response("");
        let head = bytes.len();
        bytes.extend_from_slice(&[0x81, 0x00]);
        let resp = parse_response(&bytes).unwrap().unwrap();
        assert_eq!(resp.head_len, head);
        check_upgrade(&resp, "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        // Partial heads wait for more.
        assert!(parse_response(&bytes[..head - 1]).unwrap().is_none());
    }

    #[test]
    fn rejects_wrong_accept_status_and_extensions() {
        let resp = parse_response(&response("")).unwrap().unwrap();
        assert!(matches!(
            check_upgrade(&resp, "AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(HandshakeError::Header { .. })
        ));
        let resp = parse_response(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(matches!(
            check_upgrade(&resp, "x"),
            Err(HandshakeError::Status { status: 400, .. })
        ));
        let resp = parse_response(&response(
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        ))
        .unwrap()
        .unwrap();
        assert!(check_upgrade(&resp, "dGhlIHNhbXBsZSBub25jZQ==").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn header_tokens_are_case_insensitive_lists() {
        let resp = parse_response(
            b"HTTP/1.1 101 X\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        check_upgrade(&resp, "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
    }
}
