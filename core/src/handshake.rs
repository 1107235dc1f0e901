//! The opening handshake (RFC 6455 §4), server and client side, sans-IO.
//!
//! Nothing here reads a socket or keeps state between calls: the caller accumulates the bytes
//! received so far in its own buffer and calls a `parse_*` function on all of them after each
//! read. A parse either needs more (`Ok(None)`, nothing consumed), fails (the error says what
//! was received and, server side, which HTTP status answers it), or returns the length of the
//! head plus [`Range`]s into that same buffer. Bytes after the head are the peer's first frames
//! and stay the caller's.
//!
//! Server, per connection:
//! 1. [`parse_request`] on everything received so far, until it returns `Some` or an error.
//! 2. `Err(e)`: [`write_rejection`]`(&e, out)`, send, close.
//! 3. `Some(req)` with `req.upgrade == None`: a plain HTTP request; answer it with
//!    [`write_response`] (e.g. `200 ok` for `GET /healthz`, `426` otherwise) and close.
//! 4. `Some(req)` with an [`Upgrade`]: check path, [`Request::origin`], [`Request::authorization`]
//!    and pick at most one of [`Request::protocols`], then [`write_accept`]. Frames start at
//!    `buf[req.len..]`.
//!
//! Client: [`write_request`] with 16 random bytes from the caller, send, then [`parse_response`]
//! with the key it returned until `Some`; frames start at `buf[resp.len..]`.
//!
//! The only allocations are [`Request::protocols`] (once per connection, only when the client
//! offers subprotocols), the growth of the caller's `out` vectors, and a short `String` for the
//! body of a rejection.

use std::ops::Range;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Default limit on the size of a request or response head, in bytes, CRLFCRLF included.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// Most header fields a head may carry; one more is answered with 431 like an oversize head
/// (RFC 6585 §5).
pub const MAX_HEADERS: usize = 64;

/// The GUID of RFC 6455 §1.3 that the server appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2 step 5.4):
/// base64(SHA-1(key ++ GUID)).
///
/// `key` is the header value as sent, base64 text with surrounding whitespace removed
/// (§1.3: "not base64-decoded"), e.g. [`Upgrade::key`].
#[must_use]
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    let mut accept = [0u8; 28];
    // 20 bytes encode to exactly 28 base64 characters, so this cannot run out of room.
    let written = STANDARD.encode_slice(digest, &mut accept);
    debug_assert_eq!(written, Ok(28));
    accept
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an opening handshake failed.
///
/// From [`parse_request`] (server side) every variant is the client's fault and
/// [`HandshakeError::status`] is the HTTP status to answer with; [`write_rejection`] writes the
/// whole answer. From [`parse_response`] (client side) every variant is the server's fault: the
/// client fails the WebSocket connection (RFC 6455 §4.1) and sends nothing.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// More bytes than the limit arrived without the head ending within them (431, RFC 6585 §5).
    /// Reported both for a complete head over the limit and for an incomplete one.
    #[error("received more than {limit} bytes without the end of the HTTP head")]
    HeaderTooLarge {
        /// The `max_header_bytes` the head was parsed with.
        limit: usize,
    },
    /// The head has more than [`MAX_HEADERS`] header fields (431, RFC 6585 §5).
    #[error("received more than {limit} header fields")]
    TooManyHeaders {
        /// [`MAX_HEADERS`].
        limit: usize,
    },
    /// The head is not HTTP/1.x syntax (RFC 9112 §2-§5); the text names the part (400).
    #[error("received a malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// An HTTP/1.0 upgrade request or response; the handshake needs HTTP/1.1 or later
    /// (RFC 6455 §4.2.1 item 1, 400).
    #[error("received HTTP/1.0; the WebSocket handshake needs HTTP/1.1")]
    UnsupportedHttpVersion,
    /// An upgrade request whose method is not `GET` (RFC 6455 §4.2.1 item 1; 405 with
    /// `Allow: GET`).
    #[error("received an upgrade request whose method is not GET")]
    MethodNotAllowed,
    /// An upgrade request without a `Host` header (RFC 6455 §4.2.1 item 2, RFC 9112 §3.2; 400).
    #[error("received an upgrade request without a Host header")]
    MissingHost,
    /// An `Upgrade` header without the token `websocket` (RFC 6455 §4.2.1 item 3, §4.1; 400).
    #[error("received an Upgrade header without the token `websocket`")]
    NotWebSocketUpgrade,
    /// No `Connection` header with the token `Upgrade` (RFC 6455 §4.2.1 item 4, §4.1; 400).
    #[error("received no Connection header with the token `Upgrade`")]
    MissingConnectionUpgrade,
    /// An upgrade request without `Sec-WebSocket-Version` (RFC 6455 §4.2.1 item 6; 400).
    #[error("received an upgrade request without Sec-WebSocket-Version")]
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than `13` (RFC 6455 §4.2.2, §4.4; 426 with
    /// `Sec-WebSocket-Version: 13`).
    #[error("received a Sec-WebSocket-Version other than 13")]
    UnsupportedVersion,
    /// An upgrade request without `Sec-WebSocket-Key` (RFC 6455 §4.2.1 item 5; 400).
    #[error("received an upgrade request without Sec-WebSocket-Key")]
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not the canonical base64 of 16 bytes
    /// (RFC 6455 §4.1 item 7, §4.2.1 item 5; 400).
    #[error("received a Sec-WebSocket-Key that is not base64 of 16 bytes")]
    BadKey,
    /// A `Sec-WebSocket-Protocol` element that is not an RFC 9110 §5.6.2 token, or, from a
    /// server, more than one element (RFC 6455 §4.1 item 10, §4.2.2 step 5.5; 400).
    #[error("received a Sec-WebSocket-Protocol value that is not a single token list")]
    BadProtocol,
    /// A header that may appear once appeared twice (RFC 9110 §5.3, RFC 6455 §11.3; 400).
    #[error("received the {0} header more than once")]
    DuplicateHeader(&'static str),
    /// Client side: the server answered with a status other than 101 (RFC 6455 §4.1, §4.2.2).
    #[error("received status {status} instead of 101 Switching Protocols")]
    BadStatus {
        /// The status code the server sent.
        status: u16,
    },
    /// Client side: `Sec-WebSocket-Accept` missing or not [`accept_key`] of the key sent
    /// (RFC 6455 §4.1, server response item 4).
    #[error("received a missing or wrong Sec-WebSocket-Accept")]
    BadAccept,
    /// Client side: the server selected an extension, but none was offered (RFC 6455 §4.1,
    /// server response item 5).
    #[error("received Sec-WebSocket-Extensions though no extension was offered")]
    UnexpectedExtension,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with: 431 for size limits, 405 for a
    /// method other than GET, 426 for an unsupported `Sec-WebSocket-Version`, 400 otherwise.
    ///
    /// Client-side variants are never answered (the client just fails the connection); they
    /// report 400 so that this function is total.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::HeaderTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------------------------

/// A parsed request head. Every range indexes the buffer given to [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the head, the final CRLFCRLF included. Bytes after it are the client's first
    /// frames and belong to the caller.
    pub len: usize,
    /// The method token, e.g. `GET` (RFC 9112 §3.1).
    pub method: Range<usize>,
    /// The request-target, query included (RFC 9112 §3.2).
    pub path: Range<usize>,
    /// `None`: a plain HTTP request (no `Upgrade` header at all), which the caller answers with
    /// [`write_response`] (e.g. 200 for a health check, 426 otherwise). `Some`: a validated
    /// WebSocket upgrade request.
    pub upgrade: Option<Upgrade>,
    /// The `Origin` header value, trimmed (RFC 6455 §4.2.1 item 7, §10.2).
    pub origin: Option<Range<usize>>,
    /// The `Authorization` header value, trimmed (RFC 9110 §11.6.2). An upgrade request with
    /// two `Origin` or two `Authorization` headers is rejected; for a plain request these
    /// fields hold the first.
    pub authorization: Option<Range<usize>>,
    /// Every element of every `Sec-WebSocket-Protocol` header, trimmed, in the order offered
    /// (RFC 6455 §4.1 item 10); empty list elements are skipped (RFC 9110 §5.6.1). For an
    /// upgrade request each is a token.
    pub protocols: Vec<Range<usize>>,
}

/// The part of a [`Request`] that only a valid WebSocket upgrade request has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The validated `Sec-WebSocket-Key` as sent (base64 text, whitespace trimmed); pass it to
    /// [`write_accept`].
    pub key: [u8; 24],
}

impl Request {
    /// The method, e.g. `b"GET"`; empty if `buf` is not the parsed buffer.
    #[must_use]
    pub fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.method)
    }

    /// The request-target, query included; empty if `buf` is not the parsed buffer.
    #[must_use]
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.path)
    }

    /// The `Origin` value, if sent.
    #[must_use]
    pub fn origin<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.origin.as_ref().map(|r| slice(buf, r))
    }

    /// The `Authorization` value, if sent.
    #[must_use]
    pub fn authorization<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.authorization.as_ref().map(|r| slice(buf, r))
    }

    /// The `i`th offered subprotocol; empty if `i` is out of range.
    #[must_use]
    pub fn protocol<'a>(&self, buf: &'a [u8], i: usize) -> &'a [u8] {
        self.protocols.get(i).map_or(&[], |r| slice(buf, r))
    }
}

/// Parse a client's opening handshake from `buf`, everything received so far.
///
/// `Ok(None)`: the head is incomplete, read more and call again with the longer buffer. Once
/// more than `max_header_bytes` have arrived without the head ending within them, the answer
/// is [`HandshakeError::HeaderTooLarge`], whether or not the end has arrived since.
///
/// Size limits (431) and HTTP syntax (400) are checked first. Then RFC 6455 §4.2.1: a request
/// with no `Upgrade` header at all is returned as a plain request (`upgrade: None`), whatever
/// its method and HTTP version; with one, the first failing check wins, in this order:
/// HTTP/1.1, method GET (405), `Host` once, `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Version` once and `13` (426 if not 13),
/// `Sec-WebSocket-Key` once and valid, `Origin` and `Authorization` at most once, protocols
/// tokens. Peer input never panics.
pub fn parse_request(
    buf: &[u8],
    max_header_bytes: usize,
) -> Result<Option<Request>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(within_limit(buf, max_header_bytes));
    let Some(len) = head_len(parsed, buf.len(), max_header_bytes)? else {
        return Ok(None);
    };
    // httparse fills these in before it reports Complete; the else arm is unreachable.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HandshakeError::Malformed("incomplete request line"));
    };
    let mut fields = RequestFields::collect(buf, req.headers);
    let mut request = Request {
        len,
        method: range_in(buf, method.as_bytes()),
        path: range_in(buf, path.as_bytes()),
        upgrade: None,
        origin: fields.origin.value.map(|v| range_in(buf, v)),
        authorization: fields.authorization.value.map(|v| range_in(buf, v)),
        protocols: std::mem::take(&mut fields.protocols),
    };
    if fields.upgrade.is_some() {
        request.upgrade = Some(fields.validate_upgrade(method, version)?);
    }
    Ok(Some(request))
}

/// Header fields of a request head that the handshake looks at, as slices of the buffer
/// (the protocols already as ranges, to move into the [`Request`]).
#[derive(Default)]
struct RequestFields<'b> {
    host: Single<'b>,
    /// `None`: no `Upgrade` header; `Some(found)`: whether any had the token `websocket`.
    upgrade: Option<bool>,
    connection_upgrade: bool,
    version: Single<'b>,
    key: Single<'b>,
    origin: Single<'b>,
    authorization: Single<'b>,
    protocols: Vec<Range<usize>>,
    /// Whether an element of `protocols` is not a token.
    bad_protocol: bool,
}

impl<'b> RequestFields<'b> {
    fn collect(buf: &'b [u8], headers: &[httparse::Header<'b>]) -> Self {
        let mut fields = Self::default();
        for header in headers {
            let name = header.name.as_bytes();
            let value = trim_ows(header.value);
            if name.eq_ignore_ascii_case(b"host") {
                fields.host.see(value);
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                // RFC 9110 §7.8: Upgrade is a list of protocols; several fields may be sent.
                let found = has_token(value, b"websocket");
                fields.upgrade = Some(fields.upgrade.unwrap_or(false) | found);
            } else if name.eq_ignore_ascii_case(b"connection") {
                // RFC 9110 §7.6.1: a list of options, e.g. `keep-alive, Upgrade` (Firefox).
                fields.connection_upgrade |= has_token(value, b"upgrade");
            } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
                fields.version.see(value);
            } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
                fields.key.see(value);
            } else if name.eq_ignore_ascii_case(b"origin") {
                fields.origin.see(value);
            } else if name.eq_ignore_ascii_case(b"authorization") {
                fields.authorization.see(value);
            } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
                // RFC 6455 §11.3.4: may appear several times, each a comma list.
                for protocol in list_elements(value) {
                    fields.bad_protocol |= !is_token(protocol);
                    fields.protocols.push(range_in(buf, protocol));
                }
            }
        }
        fields
    }

    /// The RFC 6455 §4.2.1 checks of a request that carries an `Upgrade` header.
    fn validate_upgrade(&self, method: &str, minor_version: u8) -> Result<Upgrade, HandshakeError> {
        use HandshakeError as E;
        // Item 1: "An HTTP/1.1 or higher GET request". httparse only parses HTTP/1.0 and 1.1.
        // Only an upgrade needs 1.1: plain HTTP/1.0 requests (e.g. HAProxy's default health
        // check) are the caller's to answer.
        if minor_version < 1 {
            return Err(E::UnsupportedHttpVersion);
        }
        // Methods are case-sensitive (RFC 9110 §9.1).
        if method != "GET" {
            return Err(E::MethodNotAllowed);
        }
        // Item 2: a Host header (RFC 9112 §3.2: exactly one, else 400).
        self.host.get("Host")?.ok_or(E::MissingHost)?;
        // Item 3: an Upgrade header containing "websocket" (ASCII case-insensitive).
        if self.upgrade != Some(true) {
            return Err(E::NotWebSocketUpgrade);
        }
        // Item 4: a Connection header containing the token "Upgrade" (case-insensitive).
        if !self.connection_upgrade {
            return Err(E::MissingConnectionUpgrade);
        }
        // Item 6: Sec-WebSocket-Version 13. A version we do not speak gets 426 and the version
        // we do (§4.2.2, §4.4); a missing one is a malformed request.
        let version = self.version.get("Sec-WebSocket-Version")?;
        if version.ok_or(E::MissingVersion)? != b"13" {
            return Err(E::UnsupportedVersion);
        }
        // Item 5: Sec-WebSocket-Key, base64 that decodes to 16 bytes (§4.1 item 7). At most
        // once (§11.3.1): which of two keys the accept should prove is undefined.
        let key = self.key.get("Sec-WebSocket-Key")?.ok_or(E::MissingKey)?;
        let key = valid_key(key).ok_or(E::BadKey)?;
        // Origin (RFC 6454 §7.3) and Authorization (RFC 9110 §5.3) are single-valued; two of
        // them would let a proxy and this server check different ones.
        self.origin.get("Origin")?;
        self.authorization.get("Authorization")?;
        // §4.1 item 10: each protocol is a token (RFC 9110 §5.6.2), so one echoed in our
        // response cannot carry anything but a token.
        if self.bad_protocol {
            return Err(E::BadProtocol);
        }
        Ok(Upgrade { key })
    }
}

/// A header that may appear at most once: the first value, and whether another followed.
#[derive(Default)]
struct Single<'b> {
    value: Option<&'b [u8]>,
    repeated: bool,
}

impl<'b> Single<'b> {
    fn see(&mut self, value: &'b [u8]) {
        self.repeated |= self.value.is_some();
        self.value.get_or_insert(value);
    }

    fn get(&self, name: &'static str) -> Result<Option<&'b [u8]>, HandshakeError> {
        if self.repeated {
            return Err(HandshakeError::DuplicateHeader(name));
        }
        Ok(self.value)
    }
}

/// The key as sent, if it is canonical base64 of exactly 16 bytes (RFC 6455 §4.1 item 7):
/// 24 characters ending in `==`. The base64 engine also rejects non-zero trailing bits.
fn valid_key(value: &[u8]) -> Option<[u8; 24]> {
    let key: [u8; 24] = value.try_into().ok()?;
    // 24 characters may decode to up to 18 bytes; only exactly 16 is a key.
    let mut decoded = [0u8; 18];
    match STANDARD.decode_slice(key, &mut decoded) {
        Ok(16) => Some(key),
        _ => None,
    }
}

/// Write the `101 Switching Protocols` answer to a valid upgrade (RFC 6455 §4.2.2 step 5):
/// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` for `key` and, if given,
/// `Sec-WebSocket-Protocol` with the one subprotocol chosen. Appends to `out`.
///
/// `protocol` must be one the client offered ([`Request::protocol`]); those are tokens, so they
/// cannot break the header block.
pub fn write_accept(key: &[u8; 24], protocol: Option<&[u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(&accept_key(key));
    out.extend_from_slice(b"\r\n");
    if let Some(protocol) = protocol {
        debug_assert!(is_token(protocol), "subprotocol must be a token");
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Write the answer to a failed handshake (RFC 6455 §4.2.1: "an appropriate HTTP error code
/// (such as 400 Bad Request)"): the status of [`HandshakeError::status`], `Content-Type`,
/// `Content-Length`, `Connection: close`, plus `Allow: GET` for 405 (RFC 9110 §15.5.6) and
/// `Sec-WebSocket-Version: 13` with `Upgrade: websocket` for 426 (RFC 6455 §4.4, RFC 9110
/// §15.5.22), and a one-line body naming the problem. Appends to `out`.
pub fn write_rejection(err: &HandshakeError, out: &mut Vec<u8>) {
    let extra: &[(&str, &str)] = match err {
        HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
        HandshakeError::UnsupportedVersion => {
            &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")]
        }
        _ => &[],
    };
    let body = format!("{err}\n");
    write_response(err.status(), extra, body.as_bytes(), out);
}

/// Write a complete plain HTTP/1.1 response: the status line with its reason phrase, the
/// `extra_headers` as given, `Content-Type: text/plain`, `Content-Length`, `Connection: close`
/// and `body`. Appends to `out`.
///
/// Examples: 200 `ok\n` for a health check, 401 with `WWW-Authenticate: Bearer`, 403, 503,
/// and 426 with `Upgrade: websocket` for a plain request. When an `Upgrade` header is among
/// the extras, `Connection` becomes `Upgrade, close` (RFC 9110 §7.8: a sender of Upgrade also
/// sends the `upgrade` connection option).
///
/// Header names and values come from the caller and must not contain CR or LF.
pub fn write_response(status: u16, extra_headers: &[(&str, &str)], body: &[u8], out: &mut Vec<u8>) {
    debug_assert!(
        (100..=999).contains(&status),
        "status must have three digits"
    );
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut sends_upgrade = false;
    for (name, value) in extra_headers {
        sends_upgrade |= name.eq_ignore_ascii_case("upgrade");
        put_header(out, name.as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"Content-Type: text/plain\r\nContent-Length: ");
    put_decimal(out, body.len());
    out.extend_from_slice(b"\r\n");
    if sends_upgrade {
        out.extend_from_slice(b"Connection: Upgrade, close\r\n\r\n");
    } else {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    }
    out.extend_from_slice(body);
}

/// The RFC 9110 §15 reason phrase of the statuses a WebSocket server answers with; empty for
/// others, which RFC 9112 §4 allows ("A client SHOULD ignore the reason-phrase content").
#[must_use]
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// Append a `GET` upgrade request (RFC 6455 §4.1) for `path` with `Host: host` (e.g.
/// `127.0.0.1:8080`), the caller's 16 random `key` bytes base64-encoded as
/// `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, the offered `protocols` as one
/// `Sec-WebSocket-Protocol` list (omitted when empty) and the `extra_headers` as given.
///
/// Returns the 24-byte key as sent, for [`parse_response`]. `key` must be fresh randomness
/// (§4.1 item 7, §10.3); this crate has no random source. No extension is offered, so
/// `extra_headers` must not offer one either. Names and values must not contain CR or LF.
#[must_use = "parse_response needs the key that was sent"]
pub fn write_request(
    host: &str,
    path: &str,
    key: [u8; 16],
    protocols: &[&str],
    extra_headers: &[(&str, &str)],
    out: &mut Vec<u8>,
) -> [u8; 24] {
    let mut sent = [0u8; 24];
    // 16 bytes encode to exactly 24 base64 characters, so this cannot run out of room.
    let written = STANDARD.encode_slice(key, &mut sent);
    debug_assert_eq!(written, Ok(24));

    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    put_header(out, b"Host", host.as_bytes());
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    put_header(out, b"Sec-WebSocket-Key", &sent);
    out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    if let Some((first, rest)) = protocols.split_first() {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(first.as_bytes());
        for protocol in rest {
            out.extend_from_slice(b", ");
            out.extend_from_slice(protocol.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra_headers {
        put_header(out, name.as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    sent
}

/// A parsed `101` response head. The range indexes the buffer given to [`parse_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Bytes of the head, the final CRLFCRLF included. Bytes after it are the server's first
    /// frames and belong to the caller.
    pub len: usize,
    /// The subprotocol the server selected (a token), if any. The caller checks that it is one
    /// it offered (RFC 6455 §4.1, server response item 6).
    pub protocol: Option<Range<usize>>,
}

impl Response {
    /// The selected subprotocol, if any.
    #[must_use]
    pub fn protocol<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.protocol.as_ref().map(|r| slice(buf, r))
    }
}

/// Parse the server's answer to [`write_request`], `buf` being everything received so far.
///
/// `Ok(None)`: incomplete, read more and call again; the size limits are those of
/// [`parse_request`]. Then the checks of RFC 6455 §4.1 ("the client MUST validate the
/// server's response"): status 101 ([`HandshakeError::BadStatus`] otherwise, e.g. for 403),
/// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` equal to
/// [`accept_key`]`(sent_key)`, no `Sec-WebSocket-Extensions`, and at most one
/// `Sec-WebSocket-Protocol` with a single token. Peer input never panics.
pub fn parse_response(
    buf: &[u8],
    sent_key: &[u8; 24],
    max_header_bytes: usize,
) -> Result<Option<Response>, HandshakeError> {
    use HandshakeError as E;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let parsed = resp.parse(within_limit(buf, max_header_bytes));
    let Some(len) = head_len(parsed, buf.len(), max_header_bytes)? else {
        return Ok(None);
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(E::Malformed("incomplete status line"));
    };
    if version < 1 {
        return Err(E::UnsupportedHttpVersion);
    }
    // Item 1: "If the status code received from the server is not 101, the client handles the
    // response per HTTP procedures" - for a benchmark client, that is a failed connection.
    if status != 101 {
        return Err(E::BadStatus { status });
    }

    let mut upgrade = false;
    let mut connection_upgrade = false;
    let mut accept = Single::default();
    let mut protocol = Single::default();
    for header in resp.headers.iter() {
        let name = header.name.as_bytes();
        let value = trim_ows(header.value);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_upgrade |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-accept") {
            accept.see(value);
        } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
            protocol.see(value);
        } else if name.eq_ignore_ascii_case(b"sec-websocket-extensions") {
            // Item 5: we never offer an extension, so any in the answer fails the connection.
            return Err(E::UnexpectedExtension);
        }
    }
    // Items 2 and 3: Upgrade "websocket" and Connection "Upgrade", ASCII case-insensitive.
    if !upgrade {
        return Err(E::NotWebSocketUpgrade);
    }
    if !connection_upgrade {
        return Err(E::MissingConnectionUpgrade);
    }
    // Item 4: the accept proves the server read this connection's key.
    let accept = accept.get("Sec-WebSocket-Accept")?.ok_or(E::BadAccept)?;
    if accept != accept_key(sent_key) {
        return Err(E::BadAccept);
    }
    // Item 6: the server selects one of the offered protocols: a single token (§4.2.2 5.5).
    let protocol = protocol.get("Sec-WebSocket-Protocol")?;
    if protocol.is_some_and(|p| !is_token(p)) {
        return Err(E::BadProtocol);
    }
    Ok(Some(Response {
        len,
        protocol: protocol.map(|p| range_in(buf, p)),
    }))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: head length and limits, field syntax, output
// ---------------------------------------------------------------------------------------------

/// The part of `buf` the head must end within: a head longer than the limit then shows up as
/// incomplete, and is reported once more than `limit` bytes have arrived. Parsing only this
/// prefix bounds the work per call, and makes the verdict the same whether the end of an
/// oversize head has arrived or not.
fn within_limit(buf: &[u8], limit: usize) -> &[u8] {
    &buf[..buf.len().min(limit)]
}

/// The head length from an httparse result over [`within_limit`]; `Ok(None)`: need more.
fn head_len(
    parsed: httparse::Result<usize>,
    received: usize,
    limit: usize,
) -> Result<Option<usize>, HandshakeError> {
    use httparse::Error as H;
    let malformed = |what| Err(HandshakeError::Malformed(what));
    match parsed {
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if received > limit => {
            Err(HandshakeError::HeaderTooLarge { limit })
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(H::TooManyHeaders) => Err(HandshakeError::TooManyHeaders { limit: MAX_HEADERS }),
        Err(H::HeaderName) => malformed("invalid header name"),
        Err(H::HeaderValue) => malformed("invalid header value"),
        Err(H::NewLine) => malformed("invalid line ending"),
        Err(H::Status) => malformed("invalid status code"),
        Err(H::Token) => malformed("invalid method or request-target"),
        Err(H::Version) => malformed("invalid HTTP version"),
    }
}

/// Where `part`, a subslice of `buf` that httparse (or a trim of its output) returned, lies
/// in `buf`. httparse hands out slices, the API hands out ranges; the address difference is
/// the offset. An empty slice may point anywhere, and maps to `0..0`.
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if part.is_empty() || start > buf.len() || part.len() > buf.len() - start {
        debug_assert!(part.is_empty(), "a slice outside the parsed buffer");
        return 0..0;
    }
    start..start + part.len()
}

/// `buf[range]`, or empty when the range does not fit (the caller passed another buffer).
fn slice<'a>(buf: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    buf.get(range.clone()).unwrap_or(&[])
}

/// `value` without the optional whitespace (SP, HTAB) around it (RFC 9110 §5.5, §5.6.3).
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// The non-empty elements of a comma-separated list, trimmed (RFC 9110 §5.6.1: recipients
/// accept and ignore empty elements such as `a, , b`).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether the list `value` has an element equal to `token`, ASCII case-insensitively.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    list_elements(value).any(|e| e.eq_ignore_ascii_case(token))
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(value: &[u8]) -> bool {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    !value.is_empty() && value.iter().all(tchar)
}

/// Append `name: value` CRLF.
fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(
        !name.iter().chain(value).any(|b| *b == b'\r' || *b == b'\n'),
        "header names and values must not contain CR or LF"
    );
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Append `n` in decimal, without going through `fmt` and its `io::Write` plumbing.
fn put_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20]; // usize::MAX has 20 digits
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::io::{self, Read, Write};

    /// The key of the RFC 6455 §1.3 example and its accept value.
    const RFC_KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &[u8; 28] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// The request of RFC 6455 §1.2, one header per line.
    const RFC_LINES: &[&str] = &[
        "GET /chat HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Version: 13",
    ];

    /// What Chrome 124 sends (one `Connection: Upgrade`, extensions offered).
    const CHROME: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost:8080\r\nConnection: Upgrade\r\n\
        Pragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) \
        AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
        Upgrade: websocket\r\nOrigin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\n\
        Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
        Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

    /// What Firefox 125 sends (`Connection: keep-alive, Upgrade`).
    const FIREFOX: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost:8080\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n\
        Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n\
        Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
        Connection: keep-alive, Upgrade\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: websocket\r\n\
        Sec-Fetch-Site: same-origin\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
        Upgrade: websocket\r\n\r\n";

    /// A masked client text frame "Hello" (RFC 6455 §5.7), as if sent right behind the head.
    const FRAME: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

    fn head(lines: &[&str]) -> Vec<u8> {
        format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
    }

    /// The RFC request with every header named in `drop` removed and `add` appended.
    fn rfc_with(drop: &[&str], add: &[&str]) -> Vec<u8> {
        let kept = RFC_LINES.iter().copied().filter(|line| {
            !drop.iter().any(|name| {
                let name = format!("{name}:");
                line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(&name)
            })
        });
        head(&kept.chain(add.iter().copied()).collect::<Vec<_>>())
    }

    /// The RFC request with a different request line.
    fn rfc_request_line(line: &str) -> Vec<u8> {
        let mut lines = RFC_LINES.to_vec();
        lines[0] = line;
        head(&lines)
    }

    fn parse(buf: &[u8]) -> Result<Option<Request>, HandshakeError> {
        parse_request(buf, DEFAULT_MAX_HEADER_BYTES)
    }

    fn parse_ok(buf: &[u8]) -> Request {
        match parse(buf) {
            Ok(Some(req)) => req,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn protocols<'a>(req: &Request, buf: &'a [u8]) -> Vec<&'a [u8]> {
        (0..req.protocols.len())
            .map(|i| req.protocol(buf, i))
            .collect()
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(&accept_key(RFC_KEY), RFC_ACCEPT);
    }

    #[test]
    fn accept_key_matches_tungstenite() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let key = STANDARD.encode(rng.gen::<[u8; 16]>());
            let theirs = tungstenite::handshake::derive_accept_key(key.as_bytes());
            assert_eq!(accept_key(key.as_bytes()), theirs.as_bytes());
        }
    }

    #[test]
    fn parses_the_rfc_request() {
        let buf = head(RFC_LINES);
        let req = parse_ok(&buf);
        assert_eq!(req.len, buf.len());
        assert_eq!(req.method(&buf), b"GET");
        assert_eq!(req.path(&buf), b"/chat");
        assert_eq!(req.upgrade, Some(Upgrade { key: *RFC_KEY }));
        assert_eq!(req.origin(&buf), Some(&b"http://example.com"[..]));
        assert_eq!(req.authorization(&buf), None);
        assert_eq!(protocols(&req, &buf), [&b"chat"[..], b"superchat"]);
        assert_eq!(req.protocol(&buf, 2), b"");
    }

    #[test]
    fn parses_browser_requests() {
        for buf in [CHROME, FIREFOX] {
            let req = parse_ok(buf);
            assert_eq!(req.len, buf.len());
            assert_eq!(req.path(buf), b"/chat");
            assert_eq!(
                req.upgrade,
                Some(Upgrade {
                    key: *b"x3JJHMbDL1EzLkh9GBhXDw=="
                })
            );
            assert_eq!(req.origin(buf), Some(&b"http://localhost:8080"[..]));
            assert!(req.protocols.is_empty());
        }
    }

    #[test]
    fn accepts_list_and_case_variants() {
        let variants: &[(&[&str], &[&str])] = &[
            (&["Connection"], &["Connection: keep-alive, Upgrade"]),
            (&["Connection"], &["connection: upgrade"]),
            (
                &["Connection"],
                &["CONNECTION: keep-alive", "Connection: UPGRADE"],
            ),
            (&["Connection"], &["Connection: ,keep-alive,,Upgrade ,"]),
            (&["Upgrade"], &["UPGRADE: WebSocket"]),
            (&["Upgrade"], &["Upgrade: h2c, websocket"]),
            (&["Upgrade"], &["Upgrade: h2c", "upgrade: websocket"]),
            (&["Upgrade"], &["upgrade: websocket", "Upgrade: h2c"]),
            (
                &["Connection"],
                &["Connection: Upgrade", "Connection: keep-alive"],
            ),
            (
                &["Sec-WebSocket-Version"],
                &["sec-websocket-version:\t13 \t"],
            ),
            (
                &["Sec-WebSocket-Key"],
                &["SEC-WEBSOCKET-KEY:   dGhlIHNhbXBsZSBub25jZQ==  "],
            ),
            (&["Host"], &["host: "]),
        ];
        for (drop, add) in variants {
            let buf = rfc_with(drop, add);
            let req = parse_ok(&buf);
            assert_eq!(req.upgrade, Some(Upgrade { key: *RFC_KEY }), "{add:?}");
        }
    }

    #[test]
    fn collects_protocols_from_every_header_in_order() {
        let buf = rfc_with(
            &["Sec-WebSocket-Protocol"],
            &[
                "Sec-WebSocket-Protocol: a, ,b",
                "sec-websocket-protocol:  c.v2 ",
                "Sec-WebSocket-Protocol:",
            ],
        );
        let req = parse_ok(&buf);
        assert_eq!(protocols(&req, &buf), [&b"a"[..], b"b", b"c.v2"]);
    }

    #[test]
    fn plain_requests_pass_through_whatever_the_method() {
        for (buf, method, path) in [
            (
                &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                &b"GET"[..],
                &b"/healthz"[..],
            ),
            (
                b"POST /submit?a=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                b"POST",
                b"/submit?a=1",
            ),
            (b"OPTIONS / HTTP/1.0\r\n\r\n", b"OPTIONS", b"/"),
            (
                b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                b"GET",
                b"/",
            ),
        ] {
            let req = parse_ok(buf);
            assert_eq!(
                (req.method(buf), req.path(buf), req.upgrade),
                (method, path, None)
            );
            assert_eq!(req.len, buf.len());
        }
    }

    #[test]
    fn plain_request_reports_the_first_authorization() {
        // Upgrade requests reject a second one; for plain ones the first is reported.
        let buf =
            b"GET /healthz HTTP/1.1\r\nAuthorization:  Bearer t0k3n \r\nAuthorization: x\r\n\r\n";
        assert_eq!(parse_ok(buf).authorization(buf), Some(&b"Bearer t0k3n"[..]));
    }

    /// `buf` is rejected with `want`, which a server answers with `status`.
    #[track_caller]
    fn rejected(buf: &[u8], want: HandshakeError, status: u16) {
        let text = String::from_utf8_lossy(buf);
        assert_eq!(parse(buf), Err(want.clone()), "{text:?}");
        assert_eq!(want.status(), status, "{want:?}");
    }

    #[test]
    fn rejects_each_violation_with_its_status() {
        use HandshakeError as E;
        let too_many: Vec<String> = (0..MAX_HEADERS).map(|i| format!("X-{i}: y")).collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        rejected(
            &rfc_with(&[], &too_many),
            E::TooManyHeaders { limit: MAX_HEADERS },
            431,
        );

        let malformed = |what| E::Malformed(what);
        rejected(
            &rfc_with(&[], &["Bad Name: x"]),
            malformed("invalid header name"),
            400,
        );
        rejected(
            &rfc_with(&[], &["NoColon"]),
            malformed("invalid header name"),
            400,
        );
        rejected(
            &rfc_with(&[], &["X-Nul: a\0b"]),
            malformed("invalid header value"),
            400,
        );
        let double_space = rfc_request_line("GET  /chat HTTP/1.1");
        rejected(
            &double_space,
            malformed("invalid method or request-target"),
            400,
        );
        let http2 = rfc_request_line("GET /chat HTTP/2.0");
        rejected(&http2, malformed("invalid HTTP version"), 400);
        let http10 = rfc_request_line("GET /chat HTTP/1.0");
        rejected(&http10, E::UnsupportedHttpVersion, 400);

        rejected(
            &rfc_request_line("POST /chat HTTP/1.1"),
            E::MethodNotAllowed,
            405,
        );
        rejected(
            &rfc_request_line("get /chat HTTP/1.1"),
            E::MethodNotAllowed,
            405,
        );

        rejected(&rfc_with(&["Host"], &[]), E::MissingHost, 400);
        rejected(
            &rfc_with(&[], &["Host: b.example"]),
            E::DuplicateHeader("Host"),
            400,
        );

        for upgrade in ["Upgrade: h2c", "Upgrade:", "Upgrade: websocket/13"] {
            rejected(
                &rfc_with(&["Upgrade"], &[upgrade]),
                E::NotWebSocketUpgrade,
                400,
            );
        }
        for connection in [
            None,
            Some("Connection: keep-alive"),
            Some("Connection: Upgrade-x"),
        ] {
            let buf = rfc_with(&["Connection"], connection.as_slice());
            rejected(&buf, E::MissingConnectionUpgrade, 400);
        }

        rejected(
            &rfc_with(&["Sec-WebSocket-Version"], &[]),
            E::MissingVersion,
            400,
        );
        for version in ["8", "13, 8", "013", ""] {
            let line = format!("Sec-WebSocket-Version: {version}");
            let buf = rfc_with(&["Sec-WebSocket-Version"], &[&line]);
            rejected(&buf, E::UnsupportedVersion, 426);
        }
        let twice = rfc_with(&[], &["Sec-WebSocket-Version: 13"]);
        rejected(&twice, E::DuplicateHeader("Sec-WebSocket-Version"), 400);

        rejected(&rfc_with(&["Sec-WebSocket-Key"], &[]), E::MissingKey, 400);
        let twice = rfc_with(&[], &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="]);
        rejected(&twice, E::DuplicateHeader("Sec-WebSocket-Key"), 400);
        for key in [
            "dGhl",                         // too short
            "",                             // empty
            "AAAAAAAAAAAAAAAAAAAAAAAA",     // 24 characters without padding: 18 bytes
            "dGhlIHNhbXBsZSBub25jZR==",     // non-zero trailing bits: not canonical
            "dGhlIHNhbXBsZSBub25jZ!==",     // not base64
            "dGhlIHNhbXBsZSBub25jZQ==AAAA", // 16 bytes and more
        ] {
            let line = format!("Sec-WebSocket-Key: {key}");
            rejected(&rfc_with(&["Sec-WebSocket-Key"], &[&line]), E::BadKey, 400);
        }

        let twice = rfc_with(&[], &["Origin: http://b.example"]);
        rejected(&twice, E::DuplicateHeader("Origin"), 400);
        let twice = rfc_with(&[], &["Authorization: a", "Authorization: b"]);
        rejected(&twice, E::DuplicateHeader("Authorization"), 400);
        for protocol in [
            "Sec-WebSocket-Protocol: chat v2",
            "Sec-WebSocket-Protocol: chat/2",
        ] {
            rejected(&rfc_with(&[], &[protocol]), E::BadProtocol, 400);
        }
    }

    #[test]
    fn first_failing_check_wins() {
        // A POST without Host, key or version is a 405, not a 400.
        let buf = b"POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(parse(buf), Err(HandshakeError::MethodNotAllowed));
        // A wrong version is reported before a bad key.
        let buf = rfc_with(
            &["Sec-WebSocket-Version", "Sec-WebSocket-Key"],
            &["Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: x"],
        );
        assert_eq!(parse(&buf), Err(HandshakeError::UnsupportedVersion));
    }

    #[test]
    fn leaves_bytes_after_the_head_to_the_caller() {
        let bare = head(RFC_LINES);
        let mut buf = bare.clone();
        buf.extend_from_slice(FRAME);
        let req = parse_ok(&buf);
        assert_eq!(req.len, bare.len());
        assert_eq!(&buf[req.len..], FRAME);
        assert_eq!(req, parse_ok(&bare));

        // A second request pipelined behind a plain one is not consumed either.
        let mut buf = b"GET /healthz HTTP/1.1\r\n\r\n".to_vec();
        let first = buf.len();
        buf.extend_from_slice(&bare);
        assert_eq!(parse_ok(&buf).len, first);
    }

    /// Feed `stream` as a reader would, appending one chunk at a time (the chunk lengths come
    /// from `chunks`) and parsing everything received after each. Returns the first answer
    /// that is not "need more" and how many bytes had arrived then.
    fn feed<T>(
        stream: &[u8],
        mut chunks: impl FnMut() -> usize,
        parse: impl Fn(&[u8]) -> Result<Option<T>, HandshakeError>,
    ) -> (Result<T, HandshakeError>, usize) {
        let mut received = Vec::new();
        while received.len() < stream.len() {
            let n = chunks().clamp(1, stream.len() - received.len());
            received.extend_from_slice(&stream[received.len()..received.len() + n]);
            match parse(&received) {
                Ok(None) => continue,
                Ok(Some(t)) => return (Ok(t), received.len()),
                Err(e) => return (Err(e), received.len()),
            }
        }
        panic!("{:?} never completed", String::from_utf8_lossy(stream));
    }

    /// Whole, byte by byte and in random splits, `stream` gives one answer, which is returned.
    fn same_answer_however_split<T: PartialEq + std::fmt::Debug>(
        stream: &[u8],
        parse: impl Fn(&[u8]) -> Result<Option<T>, HandshakeError> + Copy,
    ) -> Result<T, HandshakeError> {
        let (whole, _) = feed(stream, || stream.len(), parse);
        // Byte by byte: every prefix before the decisive byte is "need more".
        let (bytewise, decided_at) = feed(stream, || 1, parse);
        assert_eq!(bytewise, whole);
        for n in 0..decided_at {
            assert!(
                matches!(parse(&stream[..n]), Ok(None)),
                "prefix of {n} bytes"
            );
        }
        let mut rng = StdRng::seed_from_u64(stream.len() as u64);
        for _ in 0..200 {
            let max_chunk = rng.gen_range(1..=stream.len());
            let (split, _) = feed(stream, || rng.gen_range(1..=max_chunk), parse);
            assert_eq!(split, whole);
        }
        whole
    }

    #[test]
    fn requests_parse_the_same_however_split() {
        let with_frame = [head(RFC_LINES), FRAME.to_vec()].concat();
        let req = same_answer_however_split(&with_frame, parse).unwrap();
        assert_eq!(req.len, with_frame.len() - FRAME.len());
        for buf in [CHROME, FIREFOX, b"GET /healthz HTTP/1.1\r\n\r\n"] {
            let req = same_answer_however_split(buf, parse).unwrap();
            assert_eq!(req.len, buf.len());
        }
        let post = rfc_request_line("POST /chat HTTP/1.1");
        assert_eq!(
            same_answer_however_split(&post, parse),
            Err(HandshakeError::MethodNotAllowed)
        );
        let bad_key = rfc_with(&["Sec-WebSocket-Key"], &["Sec-WebSocket-Key: x"]);
        assert_eq!(
            same_answer_however_split(&bad_key, parse),
            Err(HandshakeError::BadKey)
        );
        let limited = |buf: &[u8]| parse_request(buf, 100);
        assert_eq!(
            same_answer_however_split(CHROME, limited),
            Err(HandshakeError::HeaderTooLarge { limit: 100 })
        );
    }

    #[test]
    fn oversize_heads_are_431_complete_or_not() {
        let buf = head(RFC_LINES);
        let too_large = Err(HandshakeError::HeaderTooLarge {
            limit: buf.len() - 1,
        });
        // Exactly at the limit is fine; one byte over is not, complete or not.
        assert!(matches!(parse_request(&buf, buf.len()), Ok(Some(_))));
        assert_eq!(parse_request(&buf, buf.len() - 1), too_large);
        assert_eq!(
            parse_request(&buf[..buf.len() - 1], buf.len() - 1),
            Ok(None)
        );
        assert_eq!(
            parse_request(&buf[..buf.len() - 1], buf.len() - 2)
                .unwrap_err()
                .status(),
            431
        );
        // With the default limit: a complete 9 KiB head, and 9 KiB of one unfinished header.
        let long = format!("X-Long: {}", "a".repeat(9 * 1024));
        assert_eq!(parse(&rfc_with(&[], &[&long])).unwrap_err().status(), 431);
        let mut unfinished = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        unfinished.resize(DEFAULT_MAX_HEADER_BYTES, b'a');
        assert_eq!(parse(&unfinished), Ok(None));
        unfinished.push(b'a');
        assert_eq!(
            parse(&unfinished),
            Err(HandshakeError::HeaderTooLarge { limit: 8192 })
        );
        // Bytes after a head within the limit do not count against it.
        let mut buf = head(RFC_LINES);
        let len = buf.len();
        buf.resize(len + 10_000, 0);
        assert_eq!(parse_request(&buf, len).unwrap().unwrap().len, len);
    }

    #[test]
    fn exactly_max_headers_is_fine() {
        let extra: Vec<String> = (RFC_LINES.len() - 1..MAX_HEADERS)
            .map(|i| format!("X-{i}: y"))
            .collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let buf = rfc_with(&[], &extra);
        assert!(parse_ok(&buf).upgrade.is_some());
        let one_more = rfc_with(&[], &[&extra[..], &["X-last: y"]].concat());
        assert_eq!(parse(&one_more).unwrap_err().status(), 431);
    }

    /// The head and body of a response written by this module, checked for HTTP/1.1 framing.
    fn response_parts(out: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = resp.parse(out).unwrap() else {
            panic!("partial")
        };
        assert_eq!(resp.version, Some(1));
        assert_eq!(resp.reason, Some(reason_phrase(resp.code.unwrap())));
        let headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        (resp.code.unwrap(), headers, &out[len..])
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} twice");
        first
    }

    #[test]
    fn writes_the_rfc_accept() {
        let mut out = b"kept".to_vec();
        write_accept(RFC_KEY, None, &mut out);
        assert_eq!(
            out,
            &b"keptHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..]
        );
        out.clear();
        write_accept(RFC_KEY, Some(b"chat"), &mut out);
        let (status, headers, body) = response_parts(&out);
        assert_eq!((status, body), (101, &b""[..]));
        assert_eq!(header(&headers, "Sec-WebSocket-Protocol"), Some("chat"));
    }

    #[test]
    fn rejections_carry_status_headers_and_body() {
        use HandshakeError as E;
        let errors = [
            E::HeaderTooLarge { limit: 8192 },
            E::TooManyHeaders { limit: MAX_HEADERS },
            E::Malformed("invalid header name"),
            E::UnsupportedHttpVersion,
            E::MethodNotAllowed,
            E::MissingHost,
            E::NotWebSocketUpgrade,
            E::MissingConnectionUpgrade,
            E::MissingVersion,
            E::UnsupportedVersion,
            E::MissingKey,
            E::BadKey,
            E::BadProtocol,
            E::DuplicateHeader("Host"),
        ];
        for err in errors {
            let mut out = Vec::new();
            write_rejection(&err, &mut out);
            let (status, headers, body) = response_parts(&out);
            assert_eq!(status, err.status());
            assert_eq!(body, format!("{err}\n").as_bytes());
            assert_eq!(
                header(&headers, "Content-Length"),
                Some(body.len().to_string().as_str())
            );
            assert_eq!(header(&headers, "Content-Type"), Some("text/plain"));
            assert_eq!(header(&headers, "Allow"), (status == 405).then_some("GET"));
            assert_eq!(
                header(&headers, "Sec-WebSocket-Version"),
                (status == 426).then_some("13")
            );
            assert_eq!(
                header(&headers, "Upgrade"),
                (status == 426).then_some("websocket")
            );
            let connection = if status == 426 {
                "Upgrade, close"
            } else {
                "close"
            };
            assert_eq!(header(&headers, "Connection"), Some(connection));
            assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        }
    }

    #[test]
    fn writes_plain_responses() {
        let mut out = Vec::new();
        write_response(200, &[], b"ok\n", &mut out);
        assert_eq!(
            out,
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
               Connection: close\r\n\r\nok\n"[..]
        );
        out.clear();
        write_response(401, &[("WWW-Authenticate", "Bearer")], b"", &mut out);
        let (status, headers, body) = response_parts(&out);
        assert_eq!((status, body), (401, &b""[..]));
        assert_eq!(header(&headers, "WWW-Authenticate"), Some("Bearer"));
        assert_eq!(header(&headers, "Content-Length"), Some("0"));
        out.clear();
        write_response(
            426,
            &[("Upgrade", "websocket")],
            b"upgrade required\n",
            &mut out,
        );
        let (_, headers, _) = response_parts(&out);
        assert_eq!(header(&headers, "Connection"), Some("Upgrade, close"));
        // A status without a phrase here still makes a valid status line.
        out.clear();
        write_response(418, &[], b"", &mut out);
        assert!(out.starts_with(b"HTTP/1.1 418 \r\n"));
        assert_eq!(response_parts(&out).0, 418);
    }

    #[test]
    fn put_decimal_writes_every_magnitude() {
        for n in [0, 7, 10, 99, 100, 8192, 123_456_789, usize::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn client_request_round_trips() {
        let key_bytes = *b"0123456789abcdef";
        let mut out = Vec::new();
        let key = write_request(
            "127.0.0.1:8080",
            "/echo?x=1",
            key_bytes,
            &["chat", "superchat"],
            &[
                ("Authorization", "Bearer t"),
                ("Origin", "http://127.0.0.1:8080"),
            ],
            &mut out,
        );
        assert_eq!(STANDARD.decode(key).unwrap(), key_bytes);
        let req = parse_ok(&out);
        assert_eq!(req.len, out.len());
        assert_eq!(req.path(&out), b"/echo?x=1");
        assert_eq!(req.upgrade, Some(Upgrade { key }));
        assert_eq!(protocols(&req, &out), [&b"chat"[..], b"superchat"]);
        assert_eq!(req.authorization(&out), Some(&b"Bearer t"[..]));
        assert_eq!(req.origin(&out), Some(&b"http://127.0.0.1:8080"[..]));

        let mut out = Vec::new();
        let _key = write_request("h", "/", [0; 16], &[], &[], &mut out);
        assert!(!String::from_utf8(out.clone()).unwrap().contains("Protocol"));
        assert!(parse_ok(&out).protocols.is_empty());
    }

    /// A response to the RFC key, with `lines` after the status line.
    fn response(lines: &[&str]) -> Vec<u8> {
        head(&[&["HTTP/1.1 101 Switching Protocols"], lines].concat())
    }

    const GOOD_RESPONSE: &[&str] = &[
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    ];

    #[test]
    fn client_accepts_write_accept() {
        let mut buf = Vec::new();
        write_accept(RFC_KEY, Some(b"chat"), &mut buf);
        let len = buf.len();
        buf.extend_from_slice(b"\x81\x05Hello");
        let resp = parse_response(&buf, RFC_KEY, DEFAULT_MAX_HEADER_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(resp.len, len);
        assert_eq!(resp.protocol(&buf), Some(&b"chat"[..]));
        let parse = |b: &[u8]| parse_response(b, RFC_KEY, DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(same_answer_however_split(&buf, parse), Ok(resp));

        let lenient = response(&[
            "upgrade: WebSocket",
            "connection: keep-alive, upgrade",
            "sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= ",
        ]);
        let resp = parse(&lenient).unwrap().unwrap();
        assert_eq!((resp.len, resp.protocol), (lenient.len(), None));
    }

    #[test]
    fn client_rejects_bad_responses() {
        use HandshakeError as E;
        #[track_caller]
        fn rejected(buf: &[u8], want: HandshakeError) {
            let got = parse_response(buf, RFC_KEY, DEFAULT_MAX_HEADER_BYTES);
            assert_eq!(got, Err(want), "{:?}", String::from_utf8_lossy(buf));
        }
        let mut forbidden = Vec::new();
        write_response(403, &[], b"forbidden\n", &mut forbidden);
        rejected(&forbidden, E::BadStatus { status: 403 });
        let mut rejection = Vec::new();
        write_rejection(&E::UnsupportedVersion, &mut rejection);
        rejected(&rejection, E::BadStatus { status: 426 });
        let mut wrong_key = Vec::new();
        write_accept(b"AAAAAAAAAAAAAAAAAAAAAA==", None, &mut wrong_key);
        rejected(&wrong_key, E::BadAccept);

        let [upgrade, connection, accept] = GOOD_RESPONSE else {
            unreachable!()
        };
        let truncated = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo";
        rejected(&response(&[upgrade, connection]), E::BadAccept);
        rejected(&response(&[upgrade, connection, truncated]), E::BadAccept);
        let twice = response(&[upgrade, connection, accept, accept]);
        rejected(&twice, E::DuplicateHeader("Sec-WebSocket-Accept"));
        rejected(&response(&[connection, accept]), E::NotWebSocketUpgrade);
        rejected(
            &response(&["Upgrade: h2c", connection, accept]),
            E::NotWebSocketUpgrade,
        );
        rejected(&response(&[upgrade, accept]), E::MissingConnectionUpgrade);

        let with = |extra: &[&str]| response(&[GOOD_RESPONSE, extra].concat());
        let deflate = "Sec-WebSocket-Extensions: permessage-deflate";
        rejected(&with(&[deflate]), E::UnexpectedExtension);
        rejected(
            &with(&["Sec-WebSocket-Protocol: chat, superchat"]),
            E::BadProtocol,
        );
        rejected(&with(&["Sec-WebSocket-Protocol:"]), E::BadProtocol);
        let twice = with(&["Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"]);
        rejected(&twice, E::DuplicateHeader("Sec-WebSocket-Protocol"));

        let http10 = head(&[
            "HTTP/1.0 101 Switching Protocols",
            upgrade,
            connection,
            accept,
        ]);
        rejected(&http10, E::UnsupportedHttpVersion);
        rejected(
            b"HTTP/1.1 1O1 Switching\r\n\r\n",
            E::Malformed("invalid status code"),
        );

        let good = response(GOOD_RESPONSE);
        let limited = parse_response(&good, RFC_KEY, 20);
        assert_eq!(limited, Err(E::HeaderTooLarge { limit: 20 }));
        let partial = parse_response(&good[..good.len() - 1], RFC_KEY, DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(partial, Ok(None));
    }

    // Differential tests against tungstenite, an independent implementation of both sides.

    /// Turns what a peer wrote into what it reads next.
    type Answer = fn(&[u8]) -> Vec<u8>;

    /// A byte stream for a handshake in memory: reads come from `incoming`, writes collect in
    /// `outgoing`, and `answer` (if any) turns what was written into what is read next.
    struct Loopback {
        incoming: Vec<u8>,
        read: usize,
        outgoing: Vec<u8>,
        answer: Option<Answer>,
    }

    impl Read for Loopback {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read == self.incoming.len() {
                if let Some(answer) = self.answer.take() {
                    self.incoming = answer(&self.outgoing);
                }
            }
            let n = buf.len().min(self.incoming.len() - self.read);
            buf[..n].copy_from_slice(&self.incoming[self.read..self.read + n]);
            self.read += n;
            Ok(n)
        }
    }

    impl Write for Loopback {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.outgoing.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Our server side: accept what the client wrote, choosing its first protocol.
    fn our_server(request: &[u8]) -> Vec<u8> {
        let req = parse_ok(request);
        assert_eq!(req.len, request.len());
        let key = req.upgrade.expect("an upgrade request").key;
        let mut out = Vec::new();
        write_accept(
            &key,
            req.protocols.first().map(|p| &request[p.clone()]),
            &mut out,
        );
        out
    }

    #[test]
    fn tungstenite_requests_are_accepted() {
        use tungstenite::client::{ClientRequestBuilder, IntoClientRequest};
        use tungstenite::handshake::client::generate_request;
        let uri: tungstenite::http::Uri = "ws://localhost:8080/chat?room=1".parse().unwrap();
        let builders = [
            ClientRequestBuilder::new(uri.clone()),
            ClientRequestBuilder::new(uri)
                .with_sub_protocol("chat")
                .with_sub_protocol("superchat")
                .with_header("Authorization", "Bearer t")
                .with_header("Origin", "http://localhost:8080"),
        ];
        for builder in builders {
            let (buf, key) = generate_request(builder.into_client_request().unwrap()).unwrap();
            let req = parse_ok(&buf);
            assert_eq!(req.len, buf.len());
            assert_eq!(req.path(&buf), b"/chat?room=1");
            assert_eq!(
                req.upgrade.as_ref().map(|u| &u.key[..]),
                Some(key.as_bytes())
            );
            if !req.protocols.is_empty() {
                assert_eq!(protocols(&req, &buf), [&b"chat"[..], b"superchat"]);
                assert_eq!(req.authorization(&buf), Some(&b"Bearer t"[..]));
            }
        }
    }

    #[test]
    fn tungstenite_client_accepts_our_server() {
        use tungstenite::client::{ClientRequestBuilder, IntoClientRequest};
        let uri: tungstenite::http::Uri = "ws://localhost:8080/echo".parse().unwrap();
        for protocol in [None, Some("chat")] {
            let mut builder = ClientRequestBuilder::new(uri.clone());
            if let Some(p) = protocol {
                builder = builder.with_sub_protocol(p);
            }
            let stream = Loopback {
                incoming: Vec::new(),
                read: 0,
                outgoing: Vec::new(),
                answer: Some(our_server),
            };
            let (_, response) = tungstenite::client(builder.into_client_request().unwrap(), stream)
                .unwrap_or_else(|e| panic!("tungstenite refused our 101: {e}"));
            assert_eq!(response.status(), 101);
            let chosen = response.headers().get("Sec-WebSocket-Protocol");
            assert_eq!(chosen.map(|v| v.to_str().unwrap()), protocol);
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // tungstenite's callback type, not ours
    fn our_client_accepts_tungstenite_server() {
        use tungstenite::handshake::server::{Request as TReq, Response as TResp};
        let mut request = Vec::new();
        let key = write_request(
            "localhost:8080",
            "/echo",
            *b"fedcba9876543210",
            &["chat"],
            &[],
            &mut request,
        );
        let stream = Loopback {
            incoming: request,
            read: 0,
            outgoing: Vec::new(),
            answer: None,
        };
        let choose_chat = |_: &TReq, mut resp: TResp| {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
            Ok(resp)
        };
        let ws = tungstenite::accept_hdr(stream, choose_chat)
            .unwrap_or_else(|e| panic!("tungstenite refused our request: {e}"));
        let answer = &ws.get_ref().outgoing;
        let resp = parse_response(answer, &key, DEFAULT_MAX_HEADER_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(resp.len, answer.len());
        assert_eq!(resp.protocol(answer), Some(&b"chat"[..]));
    }

    // Properties over arbitrary input: no panic, ranges inside the head, and a verdict that
    // does not change when more bytes arrive.

    fn check_request_invariants(buf: &[u8], max: usize) {
        let verdict = parse_request(buf, max);
        if let Ok(Some(req)) = &verdict {
            assert!(req.len <= buf.len() && req.len <= max);
            let ranges = [&req.method, &req.path]
                .into_iter()
                .chain(&req.origin)
                .chain(&req.authorization);
            for r in ranges.chain(&req.protocols) {
                assert!(
                    r.start <= r.end && r.end <= req.len,
                    "{r:?} outside head of {}",
                    req.len
                );
            }
            if let Some(up) = &req.upgrade {
                assert_eq!(STANDARD.decode(up.key).map(|k| k.len()), Ok(16));
                assert!(req.protocols.iter().all(|p| is_token(&buf[p.clone()])));
                // Whatever we accept, our own client accepts our answer to it.
                let chosen = req.protocols.last().map(|p| &buf[p.clone()]);
                let mut out = Vec::new();
                write_accept(&up.key, chosen, &mut out);
                let resp = parse_response(&out, &up.key, DEFAULT_MAX_HEADER_BYTES);
                assert_eq!(
                    resp.map(|r| r.map(|r| r.protocol(&out) == chosen)),
                    Ok(Some(true))
                );
            }
        }
        // What a prefix decided, the whole buffer decides the same way.
        for cut in [buf.len() / 3, buf.len() / 2, buf.len().saturating_sub(1)] {
            match parse_request(&buf[..cut], max) {
                Ok(None) => {}
                decided => assert_eq!(decided, verdict, "prefix of {cut} bytes"),
            }
        }
        if let Err(e) = &verdict {
            let mut out = Vec::new();
            write_rejection(e, &mut out);
            assert_eq!(response_parts(&out).0, e.status());
        }
    }

    fn check_response_invariants(buf: &[u8], max: usize) {
        let verdict = parse_response(buf, RFC_KEY, max);
        if let Ok(Some(resp)) = &verdict {
            assert!(resp.len <= buf.len() && resp.len <= max);
            assert!(resp.protocol.iter().all(|p| p.end <= resp.len));
        }
        for cut in [buf.len() / 2, buf.len().saturating_sub(1)] {
            match parse_response(&buf[..cut], RFC_KEY, max) {
                Ok(None) => {}
                decided => assert_eq!(decided, verdict, "prefix of {cut} bytes"),
            }
        }
    }

    /// One edit of a valid head: overwrite, insert or delete a byte.
    #[derive(Debug, Clone)]
    enum Edit {
        Set(usize, u8),
        Insert(usize, u8),
        Delete(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        // Bytes that matter to HTTP syntax, more often than chance would pick them.
        let byte = prop_oneof![any::<u8>(), prop::sample::select(b"\r\n:, \t=/aA".to_vec())];
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
        ]
    }

    fn apply(mut buf: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for edit in edits {
            let n = buf.len();
            match *edit {
                Edit::Set(i, b) if n > 0 => buf[i % n] = b,
                Edit::Insert(i, b) => buf.insert(i % (n + 1), b),
                Edit::Delete(i) if n > 0 => {
                    buf.remove(i % n);
                }
                _ => {}
            }
        }
        buf
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..1024), max in 0usize..2048) {
            check_request_invariants(&buf, max);
            check_response_invariants(&buf, max);
        }

        #[test]
        fn edited_requests_never_panic(
            which in 0usize..3,
            edits in prop::collection::vec(edit(), 1..8),
            tail in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let valid = [head(RFC_LINES), CHROME.to_vec(), FIREFOX.to_vec()][which].clone();
            let buf = [apply(valid, &edits), tail].concat();
            check_request_invariants(&buf, DEFAULT_MAX_HEADER_BYTES);
            check_request_invariants(&buf, 300);
        }

        #[test]
        fn edited_responses_never_panic(edits in prop::collection::vec(edit(), 1..8)) {
            let mut valid = Vec::new();
            write_accept(RFC_KEY, Some(b"chat"), &mut valid);
            check_response_invariants(&apply(valid, &edits), DEFAULT_MAX_HEADER_BYTES);
        }
    }
}
