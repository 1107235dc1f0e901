//! The opening handshake, client side (RFC 6455 section 4.1): a plainly formatted GET request
//! and a strict check of the server's 101 answer, parsed by the harnesses' shared
//! [`Response`].

use std::fmt;

pub use wsport_harness::http::{accept_key, new_key, Response, ResponseError, MAX_RESPONSE_HEAD};

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
    Response::parse(buf).map_err(|e| match e {
        ResponseError::TooLarge => HandshakeError::TooLarge,
        ResponseError::Malformed(why) => HandshakeError::Malformed(why),
        other => HandshakeError::Malformed(other.to_string()),
    })
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
    if !resp.has_token("Upgrade", "websocket") {
        return Err(HandshakeError::Header {
            name: "Upgrade",
            got: resp.header("Upgrade").map(str::to_owned),
            want: "websocket".into(),
        });
    }
    if !resp.has_token("Connection", "upgrade") {
        return Err(HandshakeError::Header {
            name: "Connection",
            got: resp.header("Connection").map(str::to_owned),
            want: "Upgrade".into(),
        });
    }
    let want = accept_key(key);
    match resp.header("Sec-WebSocket-Accept") {
        Some(got) if got == want => {}
        got => {
            return Err(HandshakeError::Header {
                name: "Sec-WebSocket-Accept",
                got: got.map(str::to_owned),
                want,
            })
        }
    }
    if let Some(ext) = resp.header("Sec-WebSocket-Extensions") {
        return Err(HandshakeError::Header {
            name: "Sec-WebSocket-Extensions",
            got: Some(ext.to_owned()),
            want: String::new(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
