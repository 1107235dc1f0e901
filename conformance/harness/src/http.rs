//! The HTTP side of the opening handshake, from the client (RFC 6455 §4.1, §4.2.2): the key
//! and its expected accept value, and the server's response head parsed with httparse. What a
//! harness *concludes* from a response is its own business.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::rng::Rng;

/// The GUID of §1.3, appended to the key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most response bytes read before giving up on finding the end of the head.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 step 5.4).
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WS_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// A `Sec-WebSocket-Key`: 16 given bytes, base64 (§4.1 point 7).
pub fn new_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// A fresh `Sec-WebSocket-Key` from 16 random bytes.
pub fn random_key() -> String {
    new_key(Rng::new().bytes16())
}

/// A parsed HTTP response head.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// In arrival order; values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, up to and including the blank line; what follows is WebSocket data.
    pub head_len: usize,
}

/// Why the bytes are not a response head.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not an HTTP/1.x response head (httparse's reason).
    Malformed(String),
    /// More than [`MAX_RESPONSE_HEAD`] bytes without the blank line that ends a head.
    TooLarge,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed(e) => write!(f, "malformed HTTP response head ({e})"),
            ResponseError::TooLarge => write!(
                f,
                "HTTP response head exceeds {MAX_RESPONSE_HEAD} bytes without ending"
            ),
        }
    }
}

impl std::error::Error for ResponseError {}

impl Response {
    /// Parses a response head from the front of `buf`; `Ok(None)` while it is incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<Response>, ResponseError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => head_len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
                return Err(ResponseError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ResponseError::Malformed(e.to_string())),
        };
        Ok(Some(Response {
            status: response.code.unwrap_or_default(),
            reason: response.reason.unwrap_or_default().to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value);
                    (h.name.to_string(), value.into_owned())
                })
                .collect(),
            head_len,
        }))
    }

    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
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
        assert_eq!(new_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn keys_are_base64_of_16_bytes() {
        let key = random_key();
        assert_eq!(BASE64.decode(&key).unwrap().len(), 16);
        assert_ne!(key, random_key());
    }

    #[test]
    fn parses_a_head_and_leaves_what_follows() {
        let mut bytes =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade:  websocket \r\n\r\n".to_vec();
        let head = bytes.len();
        bytes.extend_from_slice(&[0x81, 0x00]);
        let resp = Response::parse(&bytes).unwrap().unwrap();
        assert_eq!((resp.status, resp.head_len), (101, head));
        assert_eq!(resp.header("upgrade"), Some("websocket"));
        assert_eq!(
            resp.to_string(),
            "HTTP 101 Switching Protocols [Upgrade: websocket]"
        );
        assert!(Response::parse(&bytes[..head - 1]).unwrap().is_none());
    }

    #[test]
    fn tokens_are_case_insensitive_and_comma_separated() {
        let resp = Response::parse(
            b"HTTP/1.1 101 X\r\nConnection: keep-alive, UPGRADE\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(resp.has_token("connection", "upgrade"));
        assert!(resp.has_token("connection", "close"));
        assert!(!resp.has_token("connection", "keep"));
    }

    #[test]
    fn garbage_and_endless_heads_are_errors() {
        assert!(matches!(
            Response::parse(b"garbage\r\n\r\n"),
            Err(ResponseError::Malformed(_))
        ));
        let mut endless = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        endless.resize(MAX_RESPONSE_HEAD + 1, b'a');
        assert_eq!(
            Response::parse(&endless).unwrap_err(),
            ResponseError::TooLarge
        );
    }
}
