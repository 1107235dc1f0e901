//! One fuzzing connection: Autobahn's `FuzzingClientProtocol` on a blocking-free socket.
//!
//! A case script drives a [`Session`] in sequence: send frames, wait, send more, and end with
//! `kill_after` or `close_after`. Every wait pumps the connection, and incoming frames are
//! handled as Autobahn's protocol handles them, so the script sees the same state Autobahn's
//! timers would:
//!
//! * messages (reassembled), pings and pongs are appended to `received`; after each, if the
//!   events match every expected outcome and the case expects to close first, a close with
//!   the first expected code is sent (`Case.finishWhenDone`);
//! * pings are answered with pongs; the server's close is answered with close 1000 (Autobahn
//!   does not echo the code by default);
//! * after we send a close, the server has [`CLOSE_HANDSHAKE_TIMEOUT`] to answer; after the
//!   closing handshake it has [`SERVER_DROP_TIMEOUT`] to drop TCP (RFC 6455 section 7.1.1:
//!   the server closes the TCP connection first). Missing either, we drop and the close is
//!   unclean;
//! * `kill_after` is Autobahn's `failConnection` with `failByDrop = False`: if the connection
//!   is still open it sends close 1001 and runs the closing handshake; if it is closing, it
//!   drops TCP.
//!
//! A frame the server should never send (masked, RSV set, reserved opcode, fragmented or
//! oversized control frame, invalid close payload, invalid UTF-8 text) is a *violation*:
//! recorded, answered like Autobahn answers it (close 1002 / 1007), and it fails the case.
//!
//! Sends are asynchronous as in Twisted: a plain send queues the bytes and returns; the next
//! wait writes them while reading. `sync` frames are flushed to the kernel on their own and
//! followed by a 1 ms pause; `chop` frames are written in pieces that way, so the server
//! sees partial frames. (Autobahn pauses one reactor turn.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rustls::ClientConfig;

use crate::handshake;
use crate::transport::{Conn, Target};
use crate::verdict::{Behavior, Event, ExpectedClose, Observed};
use wsport_harness::frame::{self, opcode, Header, LengthForm, ServerFrame};
use wsport_harness::rng::Rng;

/// Autobahn's `closeHandshakeTimeout` default.
pub const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Autobahn's `serverConnectionDropTimeout` default.
pub const SERVER_DROP_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest server frame this client buffers (the servers' messages top out at 64 MiB).
const MAX_SERVER_PAYLOAD: u64 = 256 << 20;
/// Pause after a `sync` frame or a chop, so the server reads it on its own. (9.5.x and 9.6.x
/// write 1 MiB in chops of 64 to 2048 octets without it: 16k pauses would measure the
/// pauses, not the server.)
const CHOP_PAUSE: Duration = Duration::from_millis(1);

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const TOO_BIG: u16 = 1009;

/// What every case against one URL shares.
pub struct Env {
    pub target: Target,
    pub tls: Option<Arc<ClientConfig>>,
    /// Connect + opening handshake limit, and the slack added to each case's own time budget.
    pub timeout: Duration,
}

/// A frame to send, Autobahn's `sendFrame` arguments.
#[derive(Clone, Debug)]
pub struct Frame {
    pub opcode: u8,
    pub fin: bool,
    pub rsv: u8,
    pub payload: Vec<u8>,
    pub chop: Option<usize>,
    /// Write the chops back to back, flushing each but without the pause (9.5.x / 9.6.x).
    pub chop_unpaused: bool,
    pub sync: bool,
    pub masked: bool,
    pub form: LengthForm,
}

impl Frame {
    pub fn new(opcode: u8, payload: impl AsRef<[u8]>) -> Frame {
        Frame {
            opcode,
            fin: true,
            rsv: 0,
            payload: payload.as_ref().to_vec(),
            chop: None,
            chop_unpaused: false,
            sync: false,
            masked: true,
            form: LengthForm::Minimal,
        }
    }
    pub fn text(p: impl AsRef<[u8]>) -> Frame {
        Frame::new(opcode::TEXT, p)
    }
    pub fn binary(p: impl AsRef<[u8]>) -> Frame {
        Frame::new(opcode::BINARY, p)
    }
    pub fn cont(p: impl AsRef<[u8]>) -> Frame {
        Frame::new(opcode::CONTINUATION, p)
    }
    pub fn ping(p: impl AsRef<[u8]>) -> Frame {
        Frame::new(opcode::PING, p)
    }
    pub fn pong(p: impl AsRef<[u8]>) -> Frame {
        Frame::new(opcode::PONG, p)
    }
    pub fn fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }
    pub fn rsv(mut self, rsv: u8) -> Frame {
        self.rsv = rsv;
        self
    }
    pub fn chop(mut self, chop: usize) -> Frame {
        self.chop = Some(chop);
        self
    }
    pub fn chop_opt(mut self, chop: Option<usize>) -> Frame {
        self.chop = chop;
        self
    }
    /// Chops of `chop` octets, each flushed, with no pause between them.
    pub fn chop_unpaused(mut self, chop: usize) -> Frame {
        self.chop = Some(chop);
        self.chop_unpaused = true;
        self
    }
    pub fn sync(mut self, sync: bool) -> Frame {
        self.sync = sync;
        self
    }
    pub fn unmasked(mut self) -> Frame {
        self.masked = false;
        self
    }
    pub fn form(mut self, form: LengthForm) -> Frame {
        self.form = form;
        self
    }
}

/// A frame being written piece by piece (Autobahn's `beginMessageFrame` /
/// `sendMessageFrameData`).
pub struct FrameWriter {
    mask: [u8; 4],
    offset: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Closing,
    Closed,
}

pub struct Session {
    conn: Conn,
    state: State,
    rng: Rng,
    /// When the connection opened (the case's clock starts here, as Autobahn's).
    pub started: Instant,
    ended: Option<Instant>,
    watchdog: Instant,

    pub expected: Vec<(Behavior, Vec<Event>)>,
    pub expected_close: ExpectedClose,
    suppress_close: bool,
    manual: bool,
    /// The script's own behavior and result (9.x), see [`crate::verdict::Rule::Manual`].
    pub manual_result: Option<(Behavior, String)>,
    pub received: Vec<Event>,
    cursor: usize,

    closed_by_me: bool,
    dropped_by_me: bool,
    was_clean: bool,
    close_received: bool,
    pub remote_close_code: Option<u16>,
    pub remote_close_reason: Option<Vec<u8>>,
    close_deadline: Option<Instant>,
    drop_deadline: Option<Instant>,
    server_drop_timeout: bool,

    fragments: Option<(u8, Vec<u8>)>,
    /// Frames the server must never send; any fails the case.
    pub violations: Vec<String>,
    /// Facts for the report (timeouts hit, resets, ...).
    pub notes: Vec<String>,
}

impl Session {
    /// Connects and runs the opening handshake; `pipelined` bytes go out in the same write as
    /// the request. `budget` is how long the case may take once open (plus the runner's
    /// timeout as slack) before a watchdog drops the connection.
    pub fn open(env: &Env, pipelined: Option<&[u8]>, budget: Duration) -> Result<Session> {
        let deadline = Instant::now() + env.timeout;
        let mut conn = Conn::connect(&env.target, env.tls.as_ref(), deadline)?;
        let mut rng = Rng::new();
        let key = handshake::new_key(rng.bytes16());
        let mut request = handshake::request(&env.target.host_header, &env.target.path, &key, &[]);
        if let Some(bytes) = pipelined {
            request.extend_from_slice(bytes);
        }
        conn.queue(&request);
        let response = read_response(&mut conn, deadline)?;
        handshake::check_upgrade(&response, &key)?;
        let started = Instant::now();
        Ok(Session {
            conn,
            state: State::Open,
            rng,
            started,
            ended: None,
            watchdog: started + budget + env.timeout,
            expected: Vec::new(),
            expected_close: ExpectedClose::by_me(&[NORMAL]),
            suppress_close: false,
            manual: false,
            manual_result: None,
            received: Vec::new(),
            cursor: 0,
            closed_by_me: false,
            dropped_by_me: false,
            was_clean: false,
            close_received: false,
            remote_close_code: None,
            remote_close_reason: None,
            close_deadline: None,
            drop_deadline: None,
            server_drop_timeout: false,
            fragments: None,
            violations: Vec::new(),
            notes: Vec::new(),
        })
    }

    // ---- what a script declares -------------------------------------------------------

    /// Adds an expected outcome: if the events received equal `events`, the case behaves as
    /// `behavior`. Outcomes are tried in the order added.
    pub fn expect(&mut self, behavior: Behavior, events: Vec<Event>) {
        self.expected.push((behavior, events));
    }

    pub fn expect_close(&mut self, close: ExpectedClose) {
        self.expected_close = close;
    }

    /// Autobahn's `suppressClose`: do not close when the expected events are complete.
    pub fn suppress_close(&mut self) {
        self.suppress_close = true;
    }

    /// The script judges the events itself (9.x): no automatic close; `result` is the
    /// behavior unless the script changes it.
    pub fn manual(&mut self, behavior: Behavior, result: impl Into<String>) {
        self.manual = true;
        self.manual_result = Some((behavior, result.into()));
    }

    pub fn set_result(&mut self, behavior: Behavior, result: impl Into<String>) {
        self.manual_result = Some((behavior, result.into()));
    }

    /// Records Autobahn's `("timeout", tag)` event.
    pub fn timeout_event(&mut self, tag: &'static str) {
        self.received.push(Event::Timeout(tag));
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    // ---- sending ----------------------------------------------------------------------

    /// Autobahn's `sendFrame`: writes the frame whatever the protocol state, unless the TCP
    /// connection is gone.
    pub fn send(&mut self, f: Frame) {
        if self.state == State::Closed {
            return;
        }
        let mask = if f.masked {
            Some(self.rng.mask())
        } else {
            None
        };
        let header = Header {
            fin: f.fin,
            rsv: f.rsv,
            opcode: f.opcode,
            mask,
            len: 0,
            form: f.form,
        };
        let bytes = frame::encode_frame(header, &f.payload);
        self.write(&bytes, f.chop, f.sync, !f.chop_unpaused);
    }

    /// Writes raw bytes, as `send` writes an encoded frame.
    pub fn send_raw(&mut self, bytes: &[u8], chop: Option<usize>, sync: bool) {
        if self.state != State::Closed {
            self.write(bytes, chop, sync, true);
        }
    }

    /// Autobahn's `sendMessage`: one frame, or frames of `fragment_size` bytes (the first
    /// with the message opcode, the rest continuations).
    pub fn send_message(&mut self, payload: &[u8], binary: bool, fragment_size: Option<usize>) {
        let op = if binary { opcode::BINARY } else { opcode::TEXT };
        match fragment_size {
            Some(size) if payload.len() > size => {
                let chunks: Vec<&[u8]> = payload.chunks(size).collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    let op = if i == 0 { op } else { opcode::CONTINUATION };
                    self.send(Frame::new(op, chunk).fin(i + 1 == chunks.len()));
                }
            }
            _ => self.send(Frame::new(op, payload)),
        }
    }

    /// Writes the header of a frame whose `len` payload bytes follow in
    /// [`Session::frame_data`] calls.
    pub fn begin_frame(&mut self, op: u8, fin: bool, len: u64) -> FrameWriter {
        let mask = self.rng.mask();
        let mut header = Vec::new();
        Header {
            fin,
            rsv: 0,
            opcode: op,
            mask: Some(mask),
            len,
            form: LengthForm::Minimal,
        }
        .encode(&mut header);
        self.send_raw(&header, None, false);
        FrameWriter { mask, offset: 0 }
    }

    pub fn frame_data(&mut self, w: &mut FrameWriter, data: &[u8]) {
        let mut bytes = data.to_vec();
        frame::apply_mask(&mut bytes, w.mask, w.offset);
        w.offset += data.len();
        self.send_raw(&bytes, None, false);
    }

    /// Autobahn's `sendClose`: starts the closing handshake if the connection is open.
    pub fn send_close(&mut self, code: Option<u16>, reason: Option<&[u8]>) {
        self.send_close_frame(code, reason, false);
    }

    /// Autobahn's `sendCloseFrame`: the payload is written as given (any code, any reason,
    /// any length), and the state becomes closing, if the connection is open.
    pub fn send_close_frame(&mut self, code: Option<u16>, reason: Option<&[u8]>, is_reply: bool) {
        if self.state != State::Open {
            return;
        }
        let payload = frame::close_payload(code, reason.unwrap_or_default());
        self.send(Frame::new(opcode::CLOSE, payload));
        self.state = State::Closing;
        self.closed_by_me = !is_reply;
        if self.closed_by_me {
            self.close_deadline = Some(Instant::now() + CLOSE_HANDSHAKE_TIMEOUT);
        }
    }

    fn write(&mut self, bytes: &[u8], chop: Option<usize>, sync: bool, pause: bool) {
        match chop {
            Some(n) if n > 0 => {
                for piece in bytes.chunks(n) {
                    if self.state == State::Closed {
                        return;
                    }
                    self.conn.queue(piece);
                    self.flush();
                    if pause {
                        self.pause(CHOP_PAUSE);
                    }
                }
            }
            _ if sync => {
                self.conn.queue(bytes);
                self.flush();
                self.pause(CHOP_PAUSE);
            }
            _ => {
                self.conn.queue(bytes);
                let _ = self.conn.try_io();
            }
        }
    }

    /// Waits until everything queued is in the kernel's hands.
    fn flush(&mut self) {
        let far = self.watchdog;
        self.pump(far, |s| s.conn.pending_out() == 0);
    }

    fn pause(&mut self, d: Duration) {
        self.pump(Instant::now() + d, |_| false);
    }

    // ---- waiting ----------------------------------------------------------------------

    /// Autobahn's `continueLater`: waits `secs`; true if the connection is not closed by then
    /// (it may be closing).
    pub fn continue_later(&mut self, secs: f64) -> bool {
        self.pump(Instant::now() + Duration::from_secs_f64(secs), |_| false);
        self.state != State::Closed
    }

    /// Autobahn's `killAfter`: after `secs`, fail the connection if it is still there.
    pub fn kill_after(&mut self, secs: f64) {
        self.pump(Instant::now() + Duration::from_secs_f64(secs), |_| false);
        match self.state {
            State::Open => self.fail_connection(GOING_AWAY, "Going Away"),
            State::Closing => self.drop_connection(),
            State::Closed => {}
        }
        self.finish();
    }

    /// Autobahn's `closeAfter`: after `secs`, start the closing handshake (an empty close
    /// frame) if the connection is still open.
    pub fn close_after(&mut self, secs: f64) {
        self.pump(Instant::now() + Duration::from_secs_f64(secs), |_| false);
        if self.state == State::Open {
            self.send_close(None, None);
        }
        self.finish();
    }

    /// Waits up to `until` for the next event not returned yet (manual scripts).
    pub fn next_event(&mut self, until: Instant) -> Option<Event> {
        self.pump(until, |s| s.received.len() > s.cursor);
        let e = self.received.get(self.cursor).cloned();
        if e.is_some() {
            self.cursor += 1;
        }
        e
    }

    /// Runs the connection to its end: a still-open connection is failed (close 1001), a
    /// closing one gets its closing handshake and server-drop timeouts.
    pub fn finish(&mut self) {
        if self.state == State::Open {
            self.notes
                .push("the case script ended with the connection still open".into());
            self.fail_connection(GOING_AWAY, "Going Away");
        }
        let far = self.watchdog + Duration::from_secs(3600);
        self.pump(far, |_| false);
    }

    /// Time from open to TCP close (or now).
    pub fn duration(&self) -> Duration {
        self.ended
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.started)
    }

    pub fn observed(&self) -> Observed {
        Observed {
            received: self.received.clone(),
            connection_was_open: true,
            closed_by_me: self.closed_by_me,
            was_clean: self.was_clean,
            dropped_by_me: self.dropped_by_me,
            close_received: self.close_received,
            remote_close_code: self.remote_close_code,
            server_drop_timeout: self.server_drop_timeout,
        }
    }

    pub fn closed_by_me(&self) -> bool {
        self.closed_by_me
    }

    pub fn dropped_by_me(&self) -> bool {
        self.dropped_by_me
    }

    pub fn was_clean(&self) -> bool {
        self.was_clean
    }

    /// Moves bytes, handles frames and timers until `stop` holds, `until` passes or the
    /// connection is gone.
    fn pump(&mut self, until: Instant, stop: impl Fn(&Session) -> bool) {
        loop {
            // Non-blocking progress first, so that a stop condition met by it (everything
            // flushed, an event arrived) ends the pump without waiting in poll.
            let moved = self.state != State::Closed && self.conn.try_io();
            self.process_input();
            if self.state != State::Closed && self.conn.input_closed() {
                self.connection_lost();
            }
            let now = Instant::now();
            // Timers fire in deadline order, as Twisted's would: when the caller's deadline
            // passed first, it gets control back before a later internal timer fires.
            self.check_timers(now.min(until));
            if self.state == State::Closed || stop(self) || now >= until {
                return;
            }
            let wake = [
                Some(until),
                self.close_deadline,
                self.drop_deadline,
                Some(self.watchdog),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(until);
            if !moved {
                self.conn.io(wake);
            }
        }
    }

    fn check_timers(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.state == State::Closing && self.close_deadline.is_some_and(|d| now >= d) {
            self.notes.push(format!(
                "closing handshake timeout: no close frame from the server within {} ms of ours",
                CLOSE_HANDSHAKE_TIMEOUT.as_millis()
            ));
            self.was_clean = false;
            self.drop_connection();
        } else if self.drop_deadline.is_some_and(|d| now >= d) {
            self.notes.push(format!(
                "the server did not drop TCP within {} ms of the closing handshake",
                SERVER_DROP_TIMEOUT.as_millis()
            ));
            self.was_clean = false;
            self.server_drop_timeout = true;
            self.drop_connection();
        } else if now >= self.watchdog {
            self.violations.push(format!(
                "the case did not finish within its time budget ({} s in all)",
                self.watchdog
                    .saturating_duration_since(self.started)
                    .as_secs()
            ));
            self.drop_connection();
        }
    }

    // ---- receiving --------------------------------------------------------------------

    fn process_input(&mut self) {
        while self.state != State::Closed && !self.close_received {
            match frame::decode_frame(self.conn.data(), MAX_SERVER_PAYLOAD) {
                Ok(None) => return,
                Ok(Some((frame, used))) => {
                    self.conn.consume(used);
                    self.handle_frame(frame);
                }
                Err(e) => {
                    self.violation(e.to_string());
                    self.fail_connection(TOO_BIG, "server frame too large");
                    return;
                }
            }
        }
    }

    fn handle_frame(&mut self, f: ServerFrame) {
        if f.mask.is_some() {
            self.violation("the server masked a frame (RFC 6455 5.1: a server MUST NOT mask)");
        }
        if f.non_minimal_length {
            self.violation(format!(
                "the server encoded a {}-byte payload length in a longer form than needed (RFC 6455 5.2)",
                f.payload.len()
            ));
        }
        if f.rsv != 0 {
            self.violation(format!(
                "the server set RSV bits {:03b} with no extension negotiated",
                f.rsv
            ));
            return self.fail_connection(PROTOCOL_ERROR, "RSV set");
        }
        if opcode::is_control(f.opcode) {
            if !f.fin {
                self.violation(format!(
                    "the server fragmented a control frame (opcode {})",
                    f.opcode
                ));
                return self.fail_connection(PROTOCOL_ERROR, "fragmented control frame");
            }
            if f.payload.len() > 125 {
                self.violation(format!(
                    "the server sent a {}-byte control frame (max 125)",
                    f.payload.len()
                ));
                return self.fail_connection(PROTOCOL_ERROR, "control frame too long");
            }
        }
        match f.opcode {
            opcode::CONTINUATION => match self.fragments.take() {
                None => {
                    self.violation(
                        "the server sent a continuation frame with no message to continue",
                    );
                    self.fail_connection(PROTOCOL_ERROR, "unexpected continuation");
                }
                Some((op, mut buf)) => {
                    buf.extend_from_slice(&f.payload);
                    if f.fin {
                        self.on_message(op, buf);
                    } else {
                        self.fragments = Some((op, buf));
                    }
                }
            },
            opcode::TEXT | opcode::BINARY => {
                if self.fragments.is_some() {
                    self.violation("the server started a new message inside a fragmented one");
                    self.fail_connection(PROTOCOL_ERROR, "message inside message");
                } else if f.fin {
                    self.on_message(f.opcode, f.payload);
                } else {
                    self.fragments = Some((f.opcode, f.payload));
                }
            }
            opcode::CLOSE => self.on_close(f.payload),
            opcode::PING => {
                if self.state == State::Open {
                    self.send(Frame::pong(&f.payload));
                }
                self.received.push(Event::Ping(f.payload));
                self.finish_when_done();
            }
            opcode::PONG => {
                self.received.push(Event::Pong(f.payload));
                self.finish_when_done();
            }
            op => {
                self.violation(format!("the server used reserved opcode {op}"));
                self.fail_connection(PROTOCOL_ERROR, "reserved opcode");
            }
        }
    }

    fn on_message(&mut self, op: u8, payload: Vec<u8>) {
        let binary = op == opcode::BINARY;
        if !binary && std::str::from_utf8(&payload).is_err() {
            self.violation(format!(
                "the server sent a text message of {} bytes that is not valid UTF-8",
                payload.len()
            ));
            return self.fail_connection(INVALID_PAYLOAD, "invalid UTF-8");
        }
        self.received.push(Event::Message { binary, payload });
        self.finish_when_done();
    }

    fn on_close(&mut self, payload: Vec<u8>) {
        self.close_received = true;
        let (code, reason) = match payload.len() {
            0 => (None, Vec::new()),
            1 => {
                self.violation(
                    "the server sent a close frame with a 1-byte payload (RFC 6455 5.5.1)",
                );
                (None, payload)
            }
            _ => (
                Some(u16::from_be_bytes([payload[0], payload[1]])),
                payload[2..].to_vec(),
            ),
        };
        if let Some(c) = code.filter(|c| !frame::is_valid_close_code(*c)) {
            self.violation(format!(
                "the server sent close code {c}, which may not be sent (RFC 6455 7.4)"
            ));
        }
        if std::str::from_utf8(&reason).is_err() {
            self.violation("the server's close reason is not valid UTF-8 (RFC 6455 5.5.1)");
        }
        self.remote_close_code = code;
        self.remote_close_reason = Some(reason);
        match self.state {
            State::Open => {
                self.was_clean = true;
                self.send_close_frame(Some(NORMAL), None, true);
                self.drop_deadline = Some(Instant::now() + SERVER_DROP_TIMEOUT);
            }
            State::Closing => {
                self.was_clean = true;
                self.close_deadline = None;
                self.drop_deadline = Some(Instant::now() + SERVER_DROP_TIMEOUT);
            }
            State::Closed => {}
        }
    }

    /// `Case.finishWhenDone`.
    fn finish_when_done(&mut self) {
        if self.manual
            || self
                .expected
                .iter()
                .any(|(_, events)| *events != self.received)
        {
            return;
        }
        if self.expected_close.closed_by_me && !self.suppress_close {
            let code = self.expected_close.codes.first().copied();
            self.send_close(code, None);
        }
    }

    fn violation(&mut self, what: impl Into<String>) {
        self.violations.push(what.into());
    }

    /// Autobahn's `failConnection` (with `failByDrop = False`).
    fn fail_connection(&mut self, code: u16, reason: &str) {
        match self.state {
            State::Open => self.send_close_frame(Some(code), Some(reason.as_bytes()), false),
            State::Closing => self.drop_connection(),
            State::Closed => {}
        }
    }

    /// We close TCP.
    fn drop_connection(&mut self) {
        if self.state != State::Closed {
            self.dropped_by_me = true;
            self.end();
        }
    }

    /// The server closed TCP (or reset it, or ended TLS).
    fn connection_lost(&mut self) {
        if self.conn.was_reset() {
            self.notes
                .push("the server reset the TCP connection".into());
        } else if let Some(e) = self.conn.error() {
            self.notes.push(format!("connection ended: {e}"));
        }
        self.end();
    }

    fn end(&mut self) {
        self.state = State::Closed;
        self.ended = Some(Instant::now());
        self.close_deadline = None;
        self.drop_deadline = None;
        self.conn.abort();
    }
}

/// Reads and parses the response head of an opening handshake; the bytes after it stay in
/// `conn` as WebSocket data.
pub fn read_response(conn: &mut Conn, deadline: Instant) -> Result<handshake::Response> {
    loop {
        if let Some(resp) = handshake::parse_response(conn.data()).context("opening handshake")? {
            conn.consume(resp.head_len);
            return Ok(resp);
        }
        if conn.input_closed() {
            anyhow::bail!(
                "the server closed the connection during the opening handshake{}",
                conn.error().map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            anyhow::bail!("no complete opening handshake response in time");
        }
        conn.io(deadline);
    }
}
