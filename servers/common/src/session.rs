//! One connection's protocol, from the first byte to the close, with no IO: TLS (rustls) as a
//! byte-buffer layer, the opening handshake with the server's policy, then the echo loop.
//!
//! Every server drives a [`Session`] the same way, whatever its IO model:
//!
//! 1. read bytes, appending them to the connection's buffer (a `Vec<u8>` whose spare
//!    capacity the read fills: tokio's `read_buf`, or io_uring owning it for the read);
//! 2. [`Session::handle_read`] turns them into a [`Step`]: `buf[step.output]` is to be sent
//!    (then, before sending, the connection's [`Faults`](crate::faults::Faults) hook);
//! 3. after sending it, [`Session::after_write`] keeps the unprocessed tail and makes room for
//!    the next read;
//! 4. when `step.end` is set, end the connection as it says.
//!
//! Timers (handshake and idle timeouts, heartbeats) are deadlines: wait for a read or for
//! [`Session::next_deadline`], whichever comes first, and on the deadline call
//! [`Session::handle_deadline`]. The deadline moves with every read; wait for it with the
//! connection's [`Timer`](crate::deadline::Timer), which re-arms the runtime's timer only
//! when it must, not once per message. Graceful shutdown is [`Session::begin_shutdown`]. Their
//! output is a separate small buffer, because the connection buffer may hold an incomplete
//! frame at that moment.
//!
//! Buffers grow only at their end: [`Session::after_write`] leaves at least 16 KiB of spare
//! capacity (and not much more: see there), and a read must append into that spare room.
//! io_uring runtimes must therefore hand the kernel the spare part (`buf.slice(buf.len()..)`),
//! not the whole `Vec`, whose owned-buffer impls read from index 0 and would overwrite a
//! partial frame kept at the front.
//!
//! Plain ws echoes in place in the connection buffer (see
//! [`ServerConnection::echo_in_place`]); wss decrypts the records in place in the connection
//! buffer, takes their plaintext into a second buffer, echoes in place there, and encrypts the
//! replies straight into the connection buffer, in the room the records it read left (see
//! [`tls_layer`](crate::tls_layer), which counts the copies that remain).

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsport_core::conn::{compact, Closing, ServerConnection};
use wsport_core::handshake::{self, Request};
use wsport_core::{CloseCode, Limits, ProtocolError};

use crate::config::ServerConfig;
use crate::counters::{ConnectionLimit, ConnectionPermit, Counters, ErrorKind};
use crate::hub::Frames;
use crate::listen::Scheme;
use crate::publish::Publisher;
use crate::tls_layer::{TlsError, TlsLayer, Wire};

/// Room the next read gets at least: a syscall's worth of small messages.
const READ_CHUNK: usize = 16 * 1024;

/// How long a closing connection waits for the peer's FIN before dropping it.
pub const LINGER: Duration = Duration::from_secs(2);

/// How long a write may wait on a peer that does not read before the connection is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a runtime waits for its connections to finish after shutdown was requested:
/// the close handshake (`--shutdown-timeout`), the linger after it, and a little slack.
pub fn drain_time(config: &ServerConfig) -> Duration {
    config.shutdown_timeout + LINGER + Duration::from_millis(200)
}

/// What to send now, and whether the connection ends after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Step {
    /// Bytes to send, in the connection buffer.
    pub output: Range<usize>,
    /// Input processed up to here (kept by [`Session::after_write`]).
    pub consumed: usize,
    /// Bytes the buffer must be able to hold for the frame under way.
    pub need: Option<usize>,
    /// Complete data messages received (and echoed) in this step.
    pub messages: u64,
    /// Set when the connection ends after sending the output.
    pub end: Option<End>,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Send the output, close our side of TCP (FIN), then read and discard until the peer's
    /// FIN or [`LINGER`], so unread input does not turn our close into a reset that could
    /// destroy the close frame or HTTP answer before the peer reads it (RFC 6455 §7.1.1).
    Linger,
    /// Send the output, then close the socket at once, with neither `shutdown(2)` nor the
    /// linger. Only over ws, once the peer's close frame was the last byte it sent: after it
    /// "the endpoint MUST NOT send any more data frames" (RFC 6455 §5.5.1; §1.4: "a peer does
    /// not send any further data"), so a compliant peer leaves nothing unread for the kernel
    /// to answer with a reset, and the linger would only cost a shutdown, a read and a timer
    /// per connection. Never from a timer or shutdown ([`Control`]).
    Close,
    /// Close at once: the peer is gone or never spoke.
    Drop,
}

/// Output made by a timer or by shutdown, outside the read path.
#[derive(Debug, Default)]
pub struct Control {
    /// Bytes to send (a ping or a close frame, encrypted for wss).
    pub output: Vec<u8>,
    /// Set when the connection ends after sending them.
    pub end: Option<End>,
}

enum Phase {
    Handshake,
    Open(ServerConnection),
    /// The answer is out; nothing more is read into the protocol.
    Done,
}

/// One connection, from accept to close.
pub struct Session {
    config: Arc<ServerConfig>,
    counters: Arc<Counters>,
    tls: Option<Box<TlsLayer>>,
    /// Decrypted bytes (wss only): the WebSocket layer works in place here.
    plain: Vec<u8>,
    phase: Phase,
    /// Refuse with 503 at the handshake: the server is at --max-connections.
    over_capacity: bool,
    /// Our place under --max-connections, given back on drop.
    _permit: Option<ConnectionPermit>,
    accepted_at: Instant,
    last_read: Instant,
    next_ping: Option<Instant>,
    /// A ping was sent and no byte arrived since: the peer must answer by then.
    pong_deadline: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    /// `--broadcast`: where the data messages go instead of back to the peer.
    publisher: Option<Publisher>,
}

impl Session {
    /// A session for a socket just accepted on a `scheme` listener at `now`.
    ///
    /// It counts the connection open until dropped and holds its place against
    /// `--max-connections`; over that limit the handshake is answered 503 rather than the
    /// socket dropped, so clients learn why. Fails only if rustls cannot start a wss session.
    pub fn accept(
        config: &Arc<ServerConfig>,
        counters: &Arc<Counters>,
        limit: &ConnectionLimit,
        scheme: Scheme,
        now: Instant,
    ) -> Result<Self, rustls::Error> {
        let tls = match (scheme, &config.tls) {
            (Scheme::Wss, Some(tls)) => Some(Box::new(TlsLayer::new(Arc::clone(tls))?)),
            (Scheme::Wss, None) => {
                return Err(rustls::Error::General(
                    "wss listener without a TLS config".into(),
                ))
            }
            (Scheme::Ws, _) => None,
        };
        let permit = limit.try_acquire();
        counters.connection_opened();
        Ok(Self {
            config: Arc::clone(config),
            counters: Arc::clone(counters),
            tls,
            plain: Vec::new(),
            phase: Phase::Handshake,
            over_capacity: permit.is_none(),
            _permit: permit,
            accepted_at: now,
            last_read: now,
            next_ping: None,
            pong_deadline: None,
            shutdown_deadline: None,
            publisher: config.broadcast.then(Publisher::default),
        })
    }

    /// A fresh connection buffer with room for the first read.
    pub fn new_buffer() -> Vec<u8> {
        Vec::with_capacity(READ_CHUNK)
    }

    /// Process `buf`, which holds everything received and not yet consumed.
    pub fn handle_read(&mut self, buf: &mut Vec<u8>, now: Instant) -> Step {
        self.last_read = now;
        // Any byte proves the peer alive: heartbeats only go to silent connections.
        self.pong_deadline = None;
        if let Some(interval) = self.config.ping_interval {
            self.next_ping = Some(now + interval);
        }
        if self.tls.is_some() {
            self.handle_tls(buf)
        } else {
            self.handle_plain(buf)
        }
    }

    /// The output of `step` was sent: keep the unprocessed input and make room to read.
    ///
    /// Over wss the room is bounded as well as made: every server's read fills all the spare
    /// capacity it is given, so a buffer left as large as it grew for one big reply (a wss
    /// echo is encrypted into it) would let the next read take in as much again, and a peer that
    /// sends without reading would have each read decrypt and echo more than the last. Given
    /// at most twice the room, a connection whose reply is stuck stops reading after one
    /// bounded read: the rest waits in the peer's socket (TCP flow control), not in memory,
    /// as RFC 6455 §10.4 asks of limits that keep a peer from exhausting the server's memory.
    // Inline: it runs once per read in every server's loop, which it was part of before the
    // bound made it too long for the compiler to inline unasked (+22 instructions a message).
    #[inline]
    pub fn after_write(&mut self, buf: &mut Vec<u8>, step: &Step) {
        compact(buf, step.consumed);
        let room = step
            .need
            .unwrap_or(0)
            .saturating_sub(buf.len())
            .max(READ_CHUNK);
        buf.reserve(room);
        // Over ws the echo is made in place, so the buffer never grows past the largest
        // frame, and a connection sending big messages one after another keeps its buffer
        // rather than freeing and allocating it for each.
        if self.tls.is_some() {
            shrink_oversized(buf, buf.len() + room);
        }
    }

    /// The peer closed its side (read returned 0) or the connection failed.
    pub fn handle_eof(&mut self) {
        if !matches!(self.phase, Phase::Done) {
            self.counters.error(ErrorKind::Io);
        }
        self.phase = Phase::Done;
    }

    /// When the runtime must call [`Session::handle_deadline`] if no read completes first.
    pub fn next_deadline(&self) -> Option<Instant> {
        let config = &self.config;
        let deadlines = match self.phase {
            Phase::Handshake => [
                Some(self.accepted_at + config.handshake_timeout),
                None,
                None,
            ],
            // After our close frame only the wait for the peer's answer is left.
            Phase::Open(ref conn) if conn.close_sent() => [self.shutdown_deadline, None, None],
            Phase::Open(_) => [
                config.idle_timeout.map(|idle| self.last_read + idle),
                self.pong_deadline.or(self.next_ping),
                None,
            ],
            Phase::Done => [None, None, None],
        };
        deadlines.into_iter().flatten().min()
    }

    /// A deadline passed: time out, or send a heartbeat.
    pub fn handle_deadline(&mut self, now: Instant) -> Control {
        let config = Arc::clone(&self.config);
        match &mut self.phase {
            Phase::Handshake if now >= self.accepted_at + config.handshake_timeout => {
                // A slowloris, or a client that never speaks: nothing to answer.
                self.counters.error(ErrorKind::HandshakeTimeout);
                self.phase = Phase::Done;
                Control {
                    output: Vec::new(),
                    end: Some(End::Drop),
                }
            }
            Phase::Open(conn) if conn.close_sent() => {
                if self.shutdown_deadline.is_some_and(|d| now >= d) {
                    self.phase = Phase::Done;
                    return Control {
                        output: Vec::new(),
                        end: Some(End::Drop),
                    };
                }
                Control::default()
            }
            Phase::Open(_) if self.pong_deadline.is_some_and(|d| now >= d) => {
                self.counters.error(ErrorKind::PingTimeout);
                self.close(CloseCode::GOING_AWAY, "ping timeout", now)
            }
            Phase::Open(_)
                if config
                    .idle_timeout
                    .is_some_and(|idle| now >= self.last_read + idle) =>
            {
                self.counters.error(ErrorKind::IdleTimeout);
                self.close(CloseCode::GOING_AWAY, "idle timeout", now)
            }
            Phase::Open(conn) if self.next_ping.is_some_and(|p| now >= p) => {
                let mut frame = Vec::new();
                conn.write_ping(b"wsport", &mut frame);
                self.next_ping = config.ping_interval.map(|interval| now + interval);
                self.pong_deadline = Some(now + config.ping_timeout);
                Control {
                    output: self.encrypt_control(&frame),
                    end: None,
                }
            }
            _ => Control::default(),
        }
    }

    /// Graceful shutdown: close with 1001 and give the peer `shutdown_timeout` to answer.
    pub fn begin_shutdown(&mut self, now: Instant) -> Control {
        match self.phase {
            Phase::Open(ref conn) if !conn.close_sent() => {
                self.close(CloseCode::GOING_AWAY, "server shutdown", now)
            }
            Phase::Open(_) => Control::default(),
            _ => {
                self.phase = Phase::Done;
                Control {
                    output: Vec::new(),
                    end: Some(End::Drop),
                }
            }
        }
    }

    /// Send a close frame we start, then wait for the peer's answer until the shutdown timeout.
    fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Control {
        let Phase::Open(conn) = &mut self.phase else {
            return Control::default();
        };
        let mut frame = Vec::new();
        conn.write_close(code, reason, &mut frame);
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout);
        self.next_ping = None;
        self.pong_deadline = None;
        Control {
            output: self.encrypt_control(&frame),
            end: None,
        }
    }

    fn encrypt_control(&mut self, frame: &[u8]) -> Vec<u8> {
        let Some(tls) = self.tls.as_mut() else {
            return frame.to_vec();
        };
        let mut out = Vec::new();
        // A connection rustls can no longer write to gets nothing; its read path or its
        // timers end it.
        let _ = tls.append(frame, &mut out);
        out
    }

    fn handle_plain(&mut self, buf: &mut Vec<u8>) -> Step {
        self.handle_websocket(buf)
    }

    /// wss: decrypt the complete records in `buf` into `plain`, run the protocol there,
    /// encrypt the answer into `buf` where the records were; a partial record stays.
    fn handle_tls(&mut self, buf: &mut Vec<u8>) -> Step {
        let mut wire = Wire::over_input(buf);
        let tls = self.tls.as_mut().expect("wss session");
        let read = tls.read(&mut wire, &mut self.plain);
        let (messages, end) = match read.and_then(|()| self.answer_plaintext(&mut wire)) {
            Ok(answered) => answered,
            Err(error) => self.fail_tls(&mut wire, &error),
        };
        Step {
            output: wire.output(),
            consumed: wire.consumed(),
            need: None,
            messages,
            end,
        }
    }

    /// The WebSocket layer over the plaintext received so far, once TLS is up; its answer is
    /// encrypted into the wire, followed by our close_notify when the connection ends.
    fn answer_plaintext(&mut self, wire: &mut Wire<'_>) -> Result<(u64, Option<End>), TlsError> {
        let handshaking = self.tls.as_ref().is_some_and(|tls| tls.is_handshaking());
        if self.plain.is_empty() || handshaking {
            return Ok((0, None));
        }
        let mut plain = std::mem::take(&mut self.plain);
        let inner = self.handle_websocket(&mut plain);
        let tls = self.tls.as_mut().expect("wss session");
        let written = tls.write(wire, &plain[inner.output.clone()]);
        compact(&mut plain, inner.consumed);
        if let Some(need) = inner.need {
            plain.reserve(need.saturating_sub(plain.len()));
        }
        // Drained after a big message: back to its usual size (see `after_write`).
        let wants = inner.need.unwrap_or(0).max(plain.len()).max(READ_CHUNK);
        shrink_oversized(&mut plain, wants);
        self.plain = plain;
        written?;
        if inner.end.is_some() {
            tls.close(wire)?;
        }
        Ok((inner.messages, inner.end))
    }

    /// Bad TLS: send the alert rustls queued for the peer, if any, and go.
    fn fail_tls(&mut self, wire: &mut Wire<'_>, error: &TlsError) -> (u64, Option<End>) {
        self.counters.error(ErrorKind::Tls);
        self.phase = Phase::Done;
        if let (TlsError::Peer(_), Some(tls)) = (error, self.tls.as_mut()) {
            tls.flush_alert(wire);
        }
        wire.discard_all();
        (0, Some(End::Linger))
    }

    /// The WebSocket layer over plaintext bytes in `buf`.
    fn handle_websocket(&mut self, buf: &mut Vec<u8>) -> Step {
        match &mut self.phase {
            Phase::Handshake => self.handle_handshake(buf),
            Phase::Open(conn) => {
                let mut echo = conn.echo_in_place(buf, 0..0, 0);
                if let Some(publisher) = self.publisher.as_mut() {
                    echo.output = publisher.take_data(buf, echo.output);
                }
                self.account_echo(&echo);
                Step {
                    output: echo.output,
                    consumed: echo.consumed,
                    need: echo.need,
                    messages: echo.messages,
                    end: self.end_of(echo.closing, echo.consumed == buf.len()),
                }
            }
            Phase::Done => Step {
                output: 0..0,
                consumed: buf.len(),
                need: None,
                messages: 0,
                end: None,
            },
        }
    }

    fn handle_handshake(&mut self, buf: &mut Vec<u8>) -> Step {
        let request = match handshake::parse_request(buf, self.config.max_header_bytes) {
            Ok(None) => {
                return Step {
                    output: 0..0,
                    consumed: 0,
                    need: None,
                    messages: 0,
                    end: None,
                }
            }
            Ok(Some(request)) => request,
            Err(error) => {
                self.counters.error(ErrorKind::HandshakeRejected);
                let mut response = Vec::new();
                handshake::write_rejection(&error, &mut response);
                return self.refuse(buf, response);
            }
        };
        let mut response = Vec::with_capacity(256);
        if let Err(refusal) = self.answer(&request, buf, &mut response) {
            return self.refuse(buf, refusal);
        }
        // 101: the response takes the request's place; frames sent right behind the
        // request (in the same read) stay where they are and are echoed now.
        let response_len = response.len();
        buf.splice(..request.len, response);
        // The first ping's deadline is `handle_read`'s, from the caller's clock: the session
        // reads no clock of its own (sans-IO; a test drives time by hand).
        let limits = Limits {
            max_frame_bytes: self.config.max_frame_bytes,
            max_message_bytes: self.config.max_message_bytes,
        };
        let mut conn = ServerConnection::new(limits);
        let mut echo = conn.echo_in_place(buf, 0..response_len, response_len);
        if let Some(publisher) = self.publisher.as_mut() {
            // The 101 response goes back; frames sent right behind it are published.
            let frames = publisher.take_data(buf, response_len..echo.output.end);
            echo.output.end = frames.end;
        }
        self.phase = Phase::Open(conn);
        self.account_echo(&echo);
        Step {
            output: echo.output,
            consumed: echo.consumed,
            need: echo.need,
            messages: echo.messages,
            end: self.end_of(echo.closing, echo.consumed == buf.len()),
        }
    }

    /// Apply the server's policy to a parsed request: `Ok` with a 101 in `response`, or the
    /// refusal to send.
    fn answer(&self, request: &Request, buf: &[u8], response: &mut Vec<u8>) -> Result<(), Vec<u8>> {
        let config = &self.config;
        let mut refusal = Vec::new();
        let Some(upgrade) = &request.upgrade else {
            // A plain HTTP request: readiness probes, or a client that forgot to upgrade.
            let method = &buf[request.method.clone()];
            let path = request.path(buf);
            if method == b"GET" && (path == b"/healthz" || path.starts_with(b"/healthz?")) {
                handshake::write_response(200, &[], b"ok\n", &mut refusal);
            } else {
                self.counters.error(ErrorKind::HandshakeRejected);
                let body = b"this is a WebSocket endpoint: send a GET with Upgrade: websocket\n";
                handshake::write_response(426, &[("Upgrade", "websocket")], body, &mut refusal);
            }
            return Err(refusal);
        };
        if self.over_capacity {
            self.counters.error(ErrorKind::OverCapacity);
            let body = b"server at --max-connections, retry later\n";
            handshake::write_response(503, &[("Retry-After", "1")], body, &mut refusal);
            return Err(refusal);
        }
        if !config.allow_origins.is_empty() {
            let origin = request.origin(buf).unwrap_or_default();
            if !config
                .allow_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin)
            {
                self.counters.error(ErrorKind::HandshakeRejected);
                handshake::write_response(403, &[], b"origin not allowed\n", &mut refusal);
                return Err(refusal);
            }
        }
        if let Some(token) = &config.auth_token {
            let sent = request
                .authorization(buf)
                .and_then(|value| value.strip_prefix(b"Bearer "));
            if sent != Some(token.as_bytes()) {
                self.counters.error(ErrorKind::HandshakeRejected);
                let headers = [("WWW-Authenticate", "Bearer")];
                handshake::write_response(
                    401,
                    &headers,
                    b"missing or wrong bearer token\n",
                    &mut refusal,
                );
                return Err(refusal);
            }
        }
        // §4.2.2 /subprotocol/: the first protocol the client offers that we support.
        let protocol = (0..request.protocols.len())
            .map(|i| request.protocol(buf, i))
            .find(|offered| {
                config
                    .subprotocols
                    .iter()
                    .any(|ours| ours.as_bytes() == *offered)
            });
        handshake::write_accept(&upgrade.key, protocol, response);
        Ok(())
    }

    /// Replace everything received with a refusal and end after sending it.
    fn refuse(&mut self, buf: &mut Vec<u8>, response: Vec<u8>) -> Step {
        self.phase = Phase::Done;
        buf.clear();
        buf.extend_from_slice(&response);
        Step {
            output: 0..buf.len(),
            consumed: buf.len(),
            need: None,
            messages: 0,
            end: Some(End::Linger),
        }
    }

    fn account_echo(&self, echo: &wsport_core::Echo) {
        let counters = &self.counters;
        if echo.messages > 0 {
            counters.add_messages(echo.messages);
        }
        if let Some(Closing::Failed(error)) = echo.closing {
            counters.error(match error {
                ProtocolError::InvalidUtf8 => ErrorKind::InvalidUtf8,
                ProtocolError::FrameTooBig { .. } | ProtocolError::MessageTooBig { .. } => {
                    ErrorKind::TooBig
                }
                _ => ErrorKind::Protocol,
            });
        }
    }

    /// How the connection ends after `closing`, when the peer's bytes were all processed
    /// (`all_read`) or not.
    fn end_of(&mut self, closing: Option<Closing>, all_read: bool) -> Option<End> {
        let closing = closing?;
        self.phase = Phase::Done;
        Some(end_after(&closing, self.tls.is_none() && all_read))
    }

    /// `--broadcast`: the messages received since the last call, as server frames encoded
    /// once for every subscriber (hand them to [`crate::hub::Subscription::publish`]).
    pub fn take_published(&mut self) -> Option<Frames> {
        let frames = self.publisher.as_mut()?.take_published()?;
        Some(Frames::from(frames))
    }

    /// `--broadcast`: append other connections' publishes to `out` as this connection sends
    /// them — as they are over ws, encrypted over wss. False, appending nothing, when this
    /// connection takes no data: before its upgrade, or once a close frame was sent.
    pub fn deliver(&mut self, frames: &[Frames], out: &mut Vec<u8>) -> bool {
        let Phase::Open(conn) = &self.phase else {
            return false;
        };
        if conn.close_sent() {
            return false;
        }
        match self.tls.as_mut() {
            None => frames.iter().for_each(|f| out.extend_from_slice(f)),
            Some(tls) => {
                // One TLS record run for the whole batch rather than one per publish.
                let plain: Vec<u8> = frames.concat();
                // A connection rustls can no longer write to gets nothing; its read path or
                // its timers end it.
                let _ = tls.append(&plain, out);
            }
        }
        true
    }

    /// `--broadcast`: this connection fell too far behind the publishes (see
    /// [`crate::hub::MAX_QUEUED_BYTES`]): close it with 1008 (RFC 6455 §7.4.1, policy violation).
    pub fn close_too_slow(&mut self, now: Instant) -> Control {
        self.counters.error(ErrorKind::TooSlow);
        self.close(CloseCode::POLICY_VIOLATION, "too slow", now)
    }

    /// Whether the WebSocket handshake completed (for counting open connections).
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.counters.connection_closed();
    }
}

/// How a connection ends after `closing`; `plain_and_all_read`: over ws, with nothing the peer
/// sent left in the buffer behind its close frame.
///
/// A close handshake the peer took part in ([`Closing::Answered`], [`Closing::Completed`])
/// ends with its close frame as the last thing it sends (RFC 6455 §5.5.1), so over ws with no
/// byte behind that frame the socket can be closed at once ([`End::Close`]). Anything else
/// lingers (§7.1.1): a peer we failed may still be sending; a peer that sent bytes behind its
/// close frame breaks §5.5.1 and may send more; over wss, the peer's TLS close_notify may
/// follow its close frame, and arriving unread it would turn our close into a reset.
fn end_after(closing: &Closing, plain_and_all_read: bool) -> End {
    match closing {
        Closing::Answered(_) | Closing::Completed if plain_and_all_read => End::Close,
        _ => End::Linger,
    }
}

/// Shrink `buf` to the capacity it `wants` when it has more than twice that. Twice, so that a
/// buffer growing by doubling (as `Vec` does) is never shrunk in steady state: only one left
/// behind by an unusually large message is.
#[inline]
fn shrink_oversized(buf: &mut Vec<u8>, wants: usize) {
    if buf.capacity() > 2 * wants {
        shrink_to(buf, wants);
    }
}

/// The rare half of [`shrink_oversized`], kept out of the loops that inline the test.
#[cold]
#[inline(never)]
fn shrink_to(buf: &mut Vec<u8>, wants: usize) {
    buf.shrink_to(wants);
}

#[cfg(test)]
mod tests {
    use wsport_core::frame::write_frame;
    use wsport_core::OpCode;

    use super::*;

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn ws_session() -> Session {
        let config = Arc::new(crate::test_config::default_config());
        let limit = ConnectionLimit::new(1);
        Session::accept(
            &config,
            &Counters::new(),
            &limit,
            Scheme::Ws,
            Instant::now(),
        )
        .expect("a ws session")
    }

    /// A session past its upgrade, and its connection buffer.
    fn upgraded() -> (Session, Vec<u8>) {
        let mut session = ws_session();
        let mut buf = UPGRADE.to_vec();
        let step = session.handle_read(&mut buf, Instant::now());
        assert!(buf[step.output.clone()].starts_with(b"HTTP/1.1 101"));
        assert_eq!(step.end, None);
        session.after_write(&mut buf, &step);
        (session, buf)
    }

    fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        write_frame(&mut frame, true, opcode, Some([1, 2, 3, 4]), payload);
        frame
    }

    fn close_1000() -> Vec<u8> {
        client_frame(OpCode::Close, &1000u16.to_be_bytes())
    }

    /// The peer's input `bytes`, read at once by an upgraded session.
    fn end_after_reading(bytes: &[u8]) -> Option<End> {
        let (mut session, mut buf) = upgraded();
        buf.extend_from_slice(bytes);
        session.handle_read(&mut buf, Instant::now()).end
    }

    #[test]
    fn a_ws_close_frame_alone_is_answered_then_closed_at_once() {
        let (mut session, mut buf) = upgraded();
        buf.extend_from_slice(&close_1000());
        let step = session.handle_read(&mut buf, Instant::now());
        assert_eq!(step.end, Some(End::Close));
        assert_eq!(buf[step.output], [0x88, 2, 0x03, 0xe8], "the close answer");
    }

    #[test]
    fn a_close_frame_read_with_the_upgrade_is_closed_at_once() {
        let mut buf = UPGRADE.to_vec();
        buf.extend_from_slice(&close_1000());
        let step = ws_session().handle_read(&mut buf, Instant::now());
        assert_eq!(step.end, Some(End::Close));
        assert!(buf[step.output.clone()].starts_with(b"HTTP/1.1 101"));
        assert!(buf[step.output].ends_with(&[0x88, 2, 0x03, 0xe8]));
    }

    #[test]
    fn the_answer_to_our_close_closes_at_once() {
        let (mut session, mut buf) = upgraded();
        let ours = session.begin_shutdown(Instant::now());
        assert_eq!(ours.end, None, "ours is a close frame, then the wait");
        buf.extend_from_slice(&close_1000());
        let step = session.handle_read(&mut buf, Instant::now());
        assert_eq!(step.end, Some(End::Close));
        assert!(step.output.is_empty(), "the handshake is complete");
    }

    #[test]
    fn bytes_behind_the_close_frame_keep_the_linger() {
        let mut input = close_1000();
        input.extend_from_slice(b"garbage after the close frame");
        assert_eq!(end_after_reading(&input), Some(End::Linger));
        let mut input = close_1000();
        input.extend_from_slice(&client_frame(OpCode::Text, b"too late"));
        assert_eq!(end_after_reading(&input), Some(End::Linger));
    }

    #[test]
    fn a_protocol_failure_lingers() {
        // Unmasked: the peer broke §5.1 and may still be sending.
        let mut unmasked = Vec::new();
        write_frame(&mut unmasked, true, OpCode::Text, None, b"naked");
        assert_eq!(end_after_reading(&unmasked), Some(End::Linger));
        // A malformed close (a one-byte payload) is a failure too, not a close handshake.
        let bad_close = client_frame(OpCode::Close, &[3]);
        assert_eq!(end_after_reading(&bad_close), Some(End::Linger));
    }

    #[test]
    fn a_refused_handshake_lingers() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
        let step = ws_session().handle_read(&mut buf, Instant::now());
        assert!(buf[step.output].starts_with(b"HTTP/1.1 426"));
        assert_eq!(step.end, Some(End::Linger));
    }
}
