//! The raw client: a socket (plain TCP or TLS), the frame codec of [`crate::frame`] (wsport-harness), and
//! expectations that explain themselves.
//!
//! [`RawConn`] keeps a log of everything it sent, so a failed expectation reads as "sent X;
//! expected Y; got Z". Every read has a deadline ([`READ_TIMEOUT`] unless a case says
//! otherwise): a server that never answers fails the case instead of hanging the suite.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::frame::{self, opcode, preview, Frame, ServerFrame};
use crate::http::{check_switching, parse_head, Request, Response};
use crate::server::Endpoint;
use crate::tcp::{self, Tcp};
use crate::{tls, Outcome};

/// How long any single expectation waits for the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest server frame the suite buffers: comfortably above the 16 MiB echo case.
pub const MAX_SERVER_FRAME: u64 = 64 << 20;

/// Plain TCP or TLS over TCP, both blocking with timeouts.
pub enum Stream {
    Plain(Tcp),
    Tls(Box<StreamOwned<ClientConnection, Tcp>>),
}

impl Stream {
    /// Connect to `ep`, TLS included (the TLS handshake is completed here so its failures
    /// are reported as such).
    pub fn connect(ep: &Endpoint) -> Result<Stream, String> {
        let tcp = tcp_connect(ep.addr).map_err(|e| format!("connect to {ep}: {e}"))?;
        match &ep.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(config) => Stream::tls(tcp, config.clone())
                .map_err(|e| format!("TLS handshake with {ep}: {e}")),
        }
    }

    pub fn tls(mut tcp: Tcp, config: Arc<ClientConfig>) -> io::Result<Stream> {
        let mut conn =
            ClientConnection::new(config, tls::server_name()).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.tcp()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A TCP connection with `TCP_NODELAY` and [`READ_TIMEOUT`] on reads and writes.
/// Reads and writes retry on `EINTR` ([`crate::tcp`]).
pub fn tcp_connect(addr: SocketAddr) -> io::Result<Tcp> {
    tcp::connect(addr, READ_TIMEOUT)
}

/// What the next read brought.
#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    /// The server closed the connection (FIN, or TLS close_notify / EOF).
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing arrived before the deadline.
    Timeout(Duration),
    /// Anything else: a read error, a frame the suite refuses to buffer, EOF mid-frame.
    Error(String),
}

impl Event {
    /// Did the server end the connection (either way)?
    pub fn is_closed(&self) -> bool {
        matches!(self, Event::Eof | Event::Reset)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Frame(frame) => write!(f, "{frame}"),
            Event::Eof => write!(f, "EOF (connection closed)"),
            Event::Reset => write!(f, "connection reset"),
            Event::Timeout(after) => write!(f, "nothing within {after:.1?}"),
            Event::Error(e) => write!(f, "{e}"),
        }
    }
}

/// A complete data message reassembled from server frames.
#[derive(Debug)]
pub struct Message {
    pub opcode: u8,
    pub payload: Vec<u8>,
    /// How many frames carried it.
    pub frames: usize,
    /// Control frames (ping/pong) that arrived before or between its frames.
    pub controls: Vec<ServerFrame>,
}

/// How a read attempt ended without data.
enum ReadEnd {
    Eof,
    Reset,
    Timeout,
    Failed(io::Error),
}

/// A raw WebSocket (or pre-WebSocket) connection with a transcript of what it sent.
pub struct RawConn {
    stream: Stream,
    inbuf: Vec<u8>,
    sent: Vec<String>,
}

impl RawConn {
    /// Connect (and do TLS for wss), nothing else.
    pub fn connect(ep: &Endpoint) -> Result<RawConn, String> {
        Ok(Self::over(Stream::connect(ep)?))
    }

    /// Wrap an already connected stream.
    pub fn over(stream: Stream) -> RawConn {
        RawConn {
            stream,
            inbuf: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Connect and complete a valid opening handshake.
    pub fn upgrade(ep: &Endpoint) -> Result<RawConn, String> {
        Self::upgrade_with(ep, &Request::upgrade(ep)).map(|(conn, _)| conn)
    }

    /// Connect, send `req` and require a correct 101.
    pub fn upgrade_with(ep: &Endpoint, req: &Request) -> Result<(RawConn, Response), String> {
        let mut conn = Self::connect(ep)?;
        conn.send_request(req)?;
        let resp = conn.read_response()?;
        check_switching(req, &resp)?;
        Ok((conn, resp))
    }

    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    // ---- sending -------------------------------------------------------------------------

    pub fn send_request(&mut self, req: &Request) -> Outcome {
        self.send_bytes(&req.to_bytes(), &req.to_string())
    }

    pub fn send(&mut self, frame: &Frame) -> Outcome {
        self.send_bytes(&frame.encode(), &frame.to_string())
    }

    /// Several frames in a single write.
    pub fn send_all(&mut self, frames: &[Frame]) -> Outcome {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let what: Vec<_> = frames.iter().map(Frame::to_string).collect();
        self.send_bytes(&bytes, &format!("in one write: {}", what.join(" + ")))
    }

    /// Only the header (and mask) of `frame`, none of its payload.
    pub fn send_header(&mut self, frame: &Frame) -> Outcome {
        self.send_bytes(&frame.header_bytes(), &format!("header only: {frame}"))
    }

    /// Arbitrary bytes, logged as `what`.
    pub fn send_bytes(&mut self, bytes: &[u8], what: &str) -> Outcome {
        self.sent.push(what.to_string());
        let result = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        result.map_err(|e| self.fail(format!("to write {} bytes ({what})", bytes.len()), e))
    }

    /// `bytes` in writes of the given sizes (cycled), `pause` apart, logged as `what`.
    pub fn send_in_pieces(
        &mut self,
        bytes: &[u8],
        sizes: &[usize],
        pause: Duration,
        what: &str,
    ) -> Outcome {
        self.sent
            .push(format!("{what} (split into writes of {sizes:?} bytes)"));
        let mut at = 0;
        for &size in sizes.iter().cycle() {
            let end = (at + size.max(1)).min(bytes.len());
            let result = self
                .stream
                .write_all(&bytes[at..end])
                .and_then(|()| self.stream.flush());
            result.map_err(|e| self.fail(format!("to write bytes {at}..{end} of {what}"), e))?;
            at = end;
            if at == bytes.len() {
                return Ok(());
            }
            thread::sleep(pause);
        }
        Ok(())
    }

    // ---- receiving -----------------------------------------------------------------------

    /// The next frame, EOF, reset or timeout, waiting at most `within`.
    pub fn next_event(&mut self, within: Duration) -> Event {
        let deadline = Instant::now() + within;
        loop {
            match frame::decode_frame(&self.inbuf, MAX_SERVER_FRAME) {
                Ok(Some((frame, used))) => {
                    self.inbuf.drain(..used);
                    return Event::Frame(frame);
                }
                Ok(None) => {}
                Err(frame::DecodeError::TooLarge { len, .. }) => {
                    return Event::Error(format!("a frame header announcing {len} bytes"))
                }
                Err(other) => return Event::Error(other.to_string()),
            }
            match self.fill(deadline) {
                Ok(_) => {}
                Err(end) => return self.ended(end, within),
            }
        }
    }

    fn ended(&self, end: ReadEnd, within: Duration) -> Event {
        let partial = self.inbuf.len();
        match end {
            ReadEnd::Timeout => Event::Timeout(within),
            ReadEnd::Failed(e) => Event::Error(format!("read error: {e}")),
            _ if partial > 0 => Event::Error(format!(
                "connection closed after {partial} bytes of an incomplete frame: {}",
                preview(&self.inbuf)
            )),
            ReadEnd::Eof => Event::Eof,
            ReadEnd::Reset => Event::Reset,
        }
    }

    /// The next frame, which must be a well-formed server frame (unmasked, RSV clear).
    pub fn read_frame(&mut self) -> Result<ServerFrame, String> {
        match self.next_event(READ_TIMEOUT) {
            Event::Frame(frame) => {
                if frame.is_masked() {
                    return Err(self.fail("unmasked server frames (RFC 6455 §5.1)", &frame));
                }
                if frame.rsv != 0 {
                    return Err(self.fail("RSV bits clear (no extension was negotiated)", &frame));
                }
                Ok(frame)
            }
            other => Err(self.fail("a frame", other)),
        }
    }

    /// The next complete data message; pings and pongs on the way are collected.
    pub fn read_message(&mut self) -> Result<Message, String> {
        let mut message: Option<Message> = None;
        let mut controls = Vec::new();
        loop {
            let frame = self.read_frame()?;
            match (frame.opcode, &mut message) {
                (opcode::PING | opcode::PONG, _) => {
                    controls.push(frame);
                    continue;
                }
                (opcode::TEXT | opcode::BINARY, None) => {
                    message = Some(Message {
                        opcode: frame.opcode,
                        payload: frame.payload,
                        frames: 1,
                        controls: Vec::new(),
                    })
                }
                (opcode::CONTINUATION, Some(started)) => {
                    started.payload.extend_from_slice(&frame.payload);
                    started.frames += 1;
                }
                _ => {
                    let expected = match &message {
                        None => "a text or binary message".to_string(),
                        Some(m) => {
                            format!("a continuation of the {} message", opcode::name(m.opcode))
                        }
                    };
                    return Err(self.fail(expected, &frame));
                }
            }
            if frame.fin {
                let mut message = message.expect("set above");
                message.controls = controls;
                return Ok(message);
            }
        }
    }

    /// The next message must be exactly `opcode`/`payload`, with no control frame before it.
    pub fn expect_echo(&mut self, opcode: u8, payload: &[u8]) -> Outcome {
        let expected = format!(
            "the echo: {} message of {} bytes",
            opcode::name(opcode),
            payload.len()
        );
        let message = self
            .read_message()
            .map_err(|e| format!("{e} (waiting for {expected})"))?;
        if let Some(control) = message.controls.first() {
            return Err(self.fail(&expected, format!("{control} first")));
        }
        self.check_message(&message, opcode, payload, &expected)
    }

    /// Compare a message with what was expected.
    pub fn check_message(
        &self,
        message: &Message,
        opcode: u8,
        payload: &[u8],
        expected: &str,
    ) -> Outcome {
        if message.opcode != opcode {
            let got = format!("a {} message", opcode::name(message.opcode));
            return Err(self.fail(expected, got));
        }
        if message.payload != payload {
            return Err(self.fail(expected, describe_difference(&message.payload, payload)));
        }
        Ok(())
    }

    /// The server must send a close frame with one of `codes`, then close the connection
    /// (RFC 6455 §7.1.7: fail the connection without waiting for the client). Fragments of
    /// an unfinished message may be echoed first (a streaming echo is allowed); anything
    /// else before the close is a failure.
    pub fn expect_close(&mut self, codes: &[u16]) -> Result<ServerFrame, String> {
        let close = self.expect_close_frame(codes)?;
        self.expect_closed(
            READ_TIMEOUT,
            &format!("EOF after the close frame ({close})"),
        )?;
        Ok(close)
    }

    /// For a close the server starts (shutdown, idle timeout): expect the close frame, answer
    /// it like a well-behaved client, then expect the connection to end.
    pub fn expect_close_and_reply(&mut self, codes: &[u16]) -> Result<ServerFrame, String> {
        let close = self.expect_close_frame(codes)?;
        let reply = match close.close_code() {
            Some(code) => Frame::close(code, b""),
            None => Frame::close_raw(Vec::new()),
        };
        // The server may close TCP right away (§7.1.1 lets it); a failed reply is fine.
        let _ = self.send(&reply);
        self.expect_closed(
            READ_TIMEOUT,
            &format!("EOF after the close frame ({close})"),
        )?;
        Ok(close)
    }

    /// The server's answer to a client close (§5.5.1): a close frame, then the end of the
    /// connection. "Any valid code, normally 1000": accepted are no payload, 1000, 1001 or the
    /// code `sent`, with a UTF-8 reason.
    pub fn expect_close_reply(&mut self, sent: Option<u16>) -> Result<ServerFrame, String> {
        let close = self.expect_close_reply_frame(sent)?;
        self.expect_closed(
            READ_TIMEOUT,
            &format!("EOF after the close reply ({close})"),
        )?;
        Ok(close)
    }

    /// The close frame of [`RawConn::expect_close_reply`], and nothing about what follows.
    pub fn expect_close_reply_frame(&mut self, sent: Option<u16>) -> Result<ServerFrame, String> {
        let mut codes = vec![1000, 1001];
        codes.extend(sent);
        let expected = format!("a close reply (no payload, or a code in {codes:?})");
        self.expect_close_matching(&expected, |frame| match frame.close_code() {
            None => frame.payload.is_empty(),
            Some(code) => {
                codes.contains(&code) && std::str::from_utf8(frame.close_reason()).is_ok()
            }
        })
    }

    fn expect_close_frame(&mut self, codes: &[u16]) -> Result<ServerFrame, String> {
        let expected = match codes {
            [code] => format!("a close frame with code {code}"),
            _ => format!("a close frame with one of the codes {codes:?}"),
        };
        self.expect_close_matching(&expected, |frame| {
            frame.close_code().is_some_and(|code| codes.contains(&code))
        })
    }

    /// Skip fragments of an unfinished message (a streaming echo may have sent them); the
    /// next frame must be a close that `accept` likes.
    fn expect_close_matching(
        &mut self,
        expected: &str,
        accept: impl Fn(&ServerFrame) -> bool,
    ) -> Result<ServerFrame, String> {
        loop {
            let frame = match self.next_event(READ_TIMEOUT) {
                Event::Frame(frame) => frame,
                other => return Err(self.fail(expected, other)),
            };
            let unfinished_fragment = !frame.fin
                && matches!(
                    frame.opcode,
                    opcode::TEXT | opcode::BINARY | opcode::CONTINUATION
                );
            if unfinished_fragment {
                continue;
            }
            if frame.opcode == opcode::CLOSE && accept(&frame) {
                return Ok(frame);
            }
            return Err(self.fail(expected, &frame));
        }
    }

    /// Nothing more may arrive: the server must close the connection within `within`.
    pub fn expect_closed(&mut self, within: Duration, expected: &str) -> Outcome {
        match self.next_event(within) {
            event if event.is_closed() => Ok(()),
            other => Err(self.fail(expected, other)),
        }
    }

    /// Nothing more may arrive, and the server must close the connection cleanly (a FIN, or
    /// TLS close_notify) within `within`: a reset fails.
    pub fn expect_eof(&mut self, within: Duration, expected: &str) -> Outcome {
        match self.next_event(within) {
            Event::Eof => Ok(()),
            other => Err(self.fail(expected, other)),
        }
    }

    /// Read and discard whatever arrives until the server closes the connection. Returns how
    /// many bytes were discarded.
    pub fn drain_until_closed(&mut self, within: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + within;
        let mut discarded = std::mem::take(&mut self.inbuf).len();
        loop {
            match self.fill(deadline) {
                Ok(n) => {
                    discarded += n;
                    self.inbuf.clear();
                }
                Err(ReadEnd::Eof | ReadEnd::Reset) => return Ok(discarded),
                Err(ReadEnd::Timeout) => {
                    let got = format!(
                        "the connection still open after {within:?} ({discarded} bytes read)"
                    );
                    return Err(self.fail("the server to close the connection", got));
                }
                Err(ReadEnd::Failed(e)) => {
                    return Err(self.fail("the server to close the connection", e))
                }
            }
        }
    }

    /// Read an HTTP response head; the bytes after it stay buffered (they are frames).
    pub fn read_response(&mut self) -> Result<Response, String> {
        self.try_read_response()
            .map_err(|event| match event {
                // Closing a socket with unread input sends RST, which can destroy the answer.
                Event::Reset => self.fail(
                    "an HTTP response",
                    "connection reset (a server that closes with unread request bytes resets \
                     the connection and may lose its answer: shut down writing, then drain)",
                ),
                other => self.fail("an HTTP response", other),
            })?
            .map_err(|malformed| self.fail("a well-formed HTTP response", malformed))
    }

    /// Like [`Self::read_response`], but hands back how the read ended when no head came, so a
    /// case can accept "closed without an answer". The inner error is a malformed head.
    pub fn try_read_response(&mut self) -> Result<Result<Response, String>, Event> {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some(end) = find(&self.inbuf, b"\r\n\r\n") {
                let head: Vec<u8> = self.inbuf.drain(..end + 4).collect();
                return Ok(parse_head(&head));
            }
            if self.inbuf.len() > wsport_harness::http::MAX_RESPONSE_HEAD {
                let got = format!("{} bytes without a blank line", self.inbuf.len());
                return Ok(Err(got));
            }
            if let Err(end) = self.fill(deadline) {
                if self.inbuf.is_empty() {
                    return Err(self.ended(end, READ_TIMEOUT));
                }
                let got = format!(
                    "an incomplete head before the connection ended: {}",
                    preview(&self.inbuf)
                );
                return Ok(Err(got));
            }
        }
    }

    /// Slowloris: write `bytes` one at a time, `pause` apart, until the server closes the
    /// connection; returns when that happened, measured from the call. Bytes the server
    /// sends meanwhile (a 408, say) are ignored. Fails if the connection outlives `limit`.
    pub fn trickle_until_closed(
        &mut self,
        bytes: &[u8],
        pause: Duration,
        limit: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        self.sent.push(format!(
            "{} bytes one per {pause:?}: {}",
            bytes.len(),
            preview(bytes)
        ));
        for (sent, byte) in bytes.iter().enumerate() {
            if self
                .stream
                .write_all(&[*byte])
                .and_then(|()| self.stream.flush())
                .is_err()
            {
                return Ok(start.elapsed());
            }
            let next = Instant::now() + pause;
            loop {
                match self.fill(next) {
                    Ok(_) => self.inbuf.clear(),
                    Err(ReadEnd::Timeout) => break,
                    Err(ReadEnd::Eof | ReadEnd::Reset) => return Ok(start.elapsed()),
                    Err(ReadEnd::Failed(e)) => return Err(self.fail("EOF", e)),
                }
            }
            if start.elapsed() > limit {
                let got = format!(
                    "the connection still open after {:?} and {} bytes",
                    start.elapsed(),
                    sent + 1
                );
                return Err(self.fail(
                    format!("the server to close the connection within {limit:?}"),
                    got,
                ));
            }
        }
        Err(self.fail(
            "the server to close the connection",
            "all bytes sent, connection still open",
        ))
    }

    /// Read more bytes into the buffer, waiting until `deadline` at most.
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReadEnd> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadEnd::Timeout);
        }
        self.stream
            .set_read_timeout(left.min(READ_TIMEOUT))
            .map_err(ReadEnd::Failed)?;
        let start = self.inbuf.len();
        self.inbuf.resize(start + 64 * 1024, 0);
        // (`EINTR` is retried below, in `Tcp`.)
        let result = self.stream.read(&mut self.inbuf[start..]);
        self.inbuf.truncate(start + *result.as_ref().unwrap_or(&0));
        match result {
            Ok(0) => Err(ReadEnd::Eof),
            Ok(n) => Ok(n),
            Err(e) => Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadEnd::Timeout,
                // rustls reports a TCP FIN without close_notify this way.
                io::ErrorKind::UnexpectedEof => ReadEnd::Eof,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => ReadEnd::Reset,
                _ => ReadEnd::Failed(e),
            }),
        }
    }

    /// A failure message: `expected ...; got ...; sent: ...`.
    pub fn fail(&self, expected: impl fmt::Display, got: impl fmt::Display) -> String {
        format!(
            "expected {expected}; got {got}; sent: {}",
            self.transcript()
        )
    }

    /// What this connection sent, in order.
    pub fn transcript(&self) -> String {
        const SHOWN: usize = 12;
        if self.sent.is_empty() {
            return "nothing".into();
        }
        let mut items: Vec<_> = self
            .sent
            .iter()
            .take(SHOWN)
            .map(|s| format!("[{s}]"))
            .collect();
        if self.sent.len() > SHOWN {
            items.push(format!("... {} more", self.sent.len() - SHOWN));
        }
        items.join(" ")
    }
}

/// "N bytes differing from byte K (\"...\" instead of \"...\")".
pub fn describe_difference(got: &[u8], expected: &[u8]) -> String {
    let first = got.iter().zip(expected).position(|(a, b)| a != b);
    let at = first.unwrap_or(got.len().min(expected.len()));
    let window = |b: &[u8]| preview(&b[at.min(b.len())..(at + 16).min(b.len())]);
    format!(
        "{} bytes differing from byte {at} of {} expected ({} instead of {})",
        got.len(),
        expected.len(),
        window(got),
        window(expected)
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
