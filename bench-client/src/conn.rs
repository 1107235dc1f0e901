//! One client connection as a state machine over caller-driven IO, shared by both engines.
//!
//! The engine owns the socket and moves bytes; the connection owns every buffer and decides
//! what the bytes mean. Per connection, in order:
//! 1. the engine connects, then calls [`Conn::on_connected`] (which queues the upgrade
//!    request, through TLS for wss);
//! 2. whenever bytes arrive in [`Conn::recv_buf`], [`Conn::on_recv`]; at EOF, [`Conn::on_eof`];
//! 3. whenever the connection is in `Ctx::dirty`, the engine sends [`Conn::pending`], stamps
//!    the messages in it with [`Conn::stamp`] just before handing them to the kernel, and
//!    reports progress with [`Conn::on_sent`]. What is being sent is never touched until
//!    `on_sent` says it went: new frames go to a second buffer. That is what lets io_uring own
//!    the bytes of a send in flight without a copy.
//!
//! Bytes come in at most twice per message, both in buffers allocated once per connection:
//! plain ws frames are received straight into `rx` and decoded in place by
//! [`wsport_core::ClientConnection`]; for wss, ciphertext lands in `net` and rustls decrypts
//! into `rx`.
//!
//! Every echo is checked: message `n` of a connection carries `n` in hex in its first 16 bytes
//! (fewer for short payloads) and fixed per-connection bytes after, so a reordered, lost,
//! duplicated or corrupted echo shows up as a mismatch (`verify`).
//!
//! `broadcast` gives each connection a [`Role`]: a publisher sends on the open-loop schedule
//! and expects no echo (the server sends its messages to everyone else), a subscriber never
//! sends and checks each delivery's order per publisher ([`crate::broadcast`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use wsport_core::handshake::{self, HandshakeError};
use wsport_core::{ClientConnection, CloseCode, Decoded, FrameKind, Limits, OpCode};

use crate::broadcast::{Arrival, Stamp, Subscriber};
use crate::ctx::Ctx;
use crate::endings::Ending;
use crate::error::{Cause, ConnError};

/// rustls' client connection; boxed so the `Conn` array stays dense for plain ws.
type Tls = Box<rustls::ClientConnection>;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// TLS handshake and/or upgrade in progress (the request is queued behind TLS).
    Handshaking,
    /// The server answered the upgrade with `status`; waiting for the first line of the body
    /// to put it in the error.
    Rejected {
        /// The HTTP status received.
        status: u16,
    },
    /// Upgraded; messages flow.
    Open,
    /// Our close frame is queued or sent; waiting for the server's.
    Closing,
    /// Finished, cleanly or not. The engine closes the socket.
    Done,
}

impl Phase {
    /// For messages about connections that did not open in time: where it was stuck, and
    /// the likely reason.
    pub fn describe(self, tls: bool) -> &'static str {
        match self {
            Self::Connecting => "stuck in the TCP connect: is the server overloaded or its listen backlog full?",
            Self::Handshaking if tls => {
                "stuck in the TLS handshake or the upgrade: the server accepted the connection but did not answer"
            }
            Self::Handshaking => {
                "stuck in the upgrade: the server accepted the connection but did not answer the request \
                 (is it a WebSocket server?)"
            }
            Self::Rejected { .. } => "reading the server's refusal",
            Self::Open | Self::Closing | Self::Done => "open",
        }
    }
}

/// A send timestamp not yet known: the message is queued behind a send in flight.
const UNSTAMPED: u64 = u64::MAX;

/// Bytes of the sequence stamp at the start of each payload (hex digits of the message number).
const STAMP_LEN: usize = 16;

/// What a connection does with messages.
#[derive(Debug)]
pub enum Role {
    /// Sends messages and checks their echoes (every workload but `broadcast`).
    Echo,
    /// `broadcast`: publisher number `n`; sends on schedule, reads and discards what the
    /// other publishers publish.
    Publisher(u32),
    /// `broadcast`: sends nothing, checks every delivery (boxed: one order per publisher).
    Subscriber(Box<Subscriber>),
}

/// One connection; see the module doc for the calling order.
pub struct Conn {
    /// Index of this connection in its worker (the engine's `user_data`).
    pub slot: usize,
    /// Index of this connection in the whole run (connection `id` goes to target
    /// `id % targets`).
    pub id: usize,
    /// Index into `Ctx::targets`.
    pub target: usize,
    /// `--source-ip`: the local address the engine binds the socket to.
    pub source: Option<std::net::IpAddr>,
    phase: Phase,
    tls: Option<Tls>,
    ws: ClientConnection,
    /// The `Sec-WebSocket-Key` sent, for checking the accept.
    sent_key: [u8; 24],
    /// Plaintext received and not yet decoded: `rx[..rx_len]`.
    rx: Box<[u8]>,
    rx_len: usize,
    /// wss only: ciphertext as received.
    net: Box<[u8]>,
    /// Bytes handed to the kernel: `out[out_pos..]` is still to go. Not touched while a send
    /// is in flight.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes produced while `out` is busy; swapped in when it drains.
    queued: Vec<u8>,
    /// wss only: a frame before encryption.
    scratch: Vec<u8>,
    /// Intended and actual send time of each message in flight, oldest first. In the closed
    /// loop both are the actual time; in the open loop the intended time is the schedule's.
    times: VecDeque<(u64, u64)>,
    /// Messages in `queued` (the newest entries of `times`), unstamped.
    queued_msgs: usize,
    /// Messages moved to `out` and not yet stamped (just before the entries of `queued_msgs`).
    unstamped: usize,
    send_seq: u64,
    recv_seq: u64,
    /// Open loop: intended send time of the next message.
    next_due: u64,
    /// Open loop: messages are due but `max_in_flight` are unanswered.
    blocked: bool,
    /// The payload bytes after the stamp, per connection.
    template: Box<[u8]>,
    /// In `Ctx::dirty` already.
    dirty: bool,
    /// First byte received, to tell TLS from HTTP when a handshake fails.
    first_byte: Option<u8>,
    /// `Done` was reported to the worker.
    reported_done: bool,
    /// `connect`: when this connection's cycle was due to start (the schedule's time with
    /// `--rate`), when it actually started, TCP connected, TLS finished (ns since the epoch;
    /// 0 = not yet).
    t_start: u64,
    t_actual: u64,
    t_tcp: u64,
    t_tls: u64,
    /// The upgrade completed (for `connect`'s accounting of failed attempts).
    upgraded: bool,
    /// When the upgrade completed (ns since the epoch), for the life in [`Conn::ending`].
    opened_at: u64,
    /// How the connection ended, once known; see [`crate::endings`].
    ending: Option<Ending>,
    /// The server's close frame (code, reason) that arrived while messages were flowing.
    peer_close: Option<(Option<u16>, String)>,
    /// Echo, or which side of a broadcast.
    role: Role,
}

impl Conn {
    /// A connection to `ctx.targets[target]`, not yet connected.
    pub fn new(
        slot: usize,
        id: usize,
        target: usize,
        ctx: &mut Ctx,
    ) -> Result<Self, rustls::Error> {
        let max = ctx.load.sizes.iter().copied().max().unwrap_or(0);
        let role = match ctx.load.publishers {
            None => Role::Echo,
            Some(p) if id < p => Role::Publisher(id as u32),
            Some(p) => Role::Subscriber(Box::new(Subscriber::new(p))),
        };
        // A server echo has a header of at most 10 bytes. Room for a few echoes lets one
        // recv take in a whole pipelined burst; one full frame is the minimum, and the
        // largest upgrade answer accepted (8 KiB) too.
        let frame = max + 10;
        let rx_cap = (frame * ctx.pace.max_in_flight.min(4))
            .max(frame)
            .max(handshake::DEFAULT_MAX_HEADER_BYTES);
        let tls = new_tls(target, ctx)?;
        // One whole TLS record (16 KiB + overhead) per recv; less when messages are small.
        let net_cap = if tls.is_some() {
            rx_cap.clamp(4096, 16 * 1024 + 512)
        } else {
            0
        };
        // A subscriber sends only its upgrade request, pongs and a close frame.
        let sending = if matches!(role, Role::Subscriber(_)) {
            1
        } else {
            ctx.pace.max_in_flight.min(64)
        };
        let send_cap = sending * (max + 14 + if tls.is_some() { 64 } else { 0 }) + 512;
        let mut template = vec![0u8; max].into_boxed_slice();
        fill_template(&mut template, ctx.load.text, &mut ctx.rng);
        Ok(Self {
            slot,
            id,
            target,
            source: None,
            phase: Phase::Connecting,
            tls,
            // Frames larger than rx are reported by `process_frames` with the buffer size in the
            // message; the core's limits stay at their defaults.
            ws: ClientConnection::new(Limits::default()),
            sent_key: [0; 24],
            rx: vec![0u8; rx_cap].into_boxed_slice(),
            rx_len: 0,
            net: vec![0u8; net_cap].into_boxed_slice(),
            out: Vec::with_capacity(send_cap),
            out_pos: 0,
            queued: Vec::with_capacity(send_cap),
            scratch: Vec::with_capacity(if ctx.targets[target].tls.is_some() {
                send_cap
            } else {
                0
            }),
            times: VecDeque::with_capacity(ctx.pace.max_in_flight.min(1024)),
            queued_msgs: 0,
            unstamped: 0,
            send_seq: 0,
            recv_seq: 0,
            next_due: u64::MAX,
            blocked: false,
            template,
            dirty: false,
            first_byte: None,
            reported_done: false,
            t_start: 0,
            t_actual: 0,
            t_tcp: 0,
            t_tls: 0,
            upgraded: false,
            opened_at: 0,
            ending: None,
            peer_close: None,
            role,
        })
    }

    /// `connect`: make a finished connection new again, its buffers kept, for the next
    /// cycle, which was due at `intended` and starts at `actual`.
    pub fn reset(
        &mut self,
        intended: u64,
        actual: u64,
        ctx: &mut Ctx,
    ) -> Result<(), rustls::Error> {
        self.tls = new_tls(self.target, ctx)?;
        self.ws = ClientConnection::new(Limits::default());
        self.phase = Phase::Connecting;
        self.rx_len = 0;
        self.out.clear();
        self.out_pos = 0;
        self.queued.clear();
        self.times.clear();
        self.queued_msgs = 0;
        self.unstamped = 0;
        self.send_seq = 0;
        self.recv_seq = 0;
        self.first_byte = None;
        self.reported_done = false;
        (self.t_start, self.t_actual, self.t_tcp, self.t_tls) = (intended, actual, 0, 0);
        self.upgraded = false;
        (self.opened_at, self.ending, self.peer_close) = (0, None, None);
        Ok(())
    }

    /// `connect`: the cycle that starts with the next TCP connect was due at `intended` and
    /// starts at `actual`.
    pub fn start_cycle(&mut self, intended: u64, actual: u64) {
        (self.t_start, self.t_actual) = (intended, actual);
    }

    /// `connect --rate`: a slot that never had an attempt is done, with nothing to account.
    pub fn retire(&mut self) {
        self.phase = Phase::Done;
    }

    /// Echo, publisher or subscriber.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// `broadcast`: a publisher's number and how many messages it has published (queued
    /// ones included: they leave before its close frame).
    pub fn published(&self) -> Option<(usize, u64)> {
        match self.role {
            Role::Publisher(n) => Some((n as usize, self.send_seq)),
            _ => None,
        }
    }

    /// Where the connection is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// wss.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Messages sent whose echo has not come back.
    pub fn in_flight(&self) -> usize {
        self.times.len()
    }

    /// Whether the engine should keep a receive posted.
    pub fn wants_recv(&self) -> bool {
        !matches!(self.phase, Phase::Connecting | Phase::Done)
    }

    /// TCP is up: queue the upgrade request (RFC 6455 §4.1), behind the TLS handshake for wss.
    pub fn on_connected(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        self.phase = Phase::Handshaking;
        self.t_tcp = ctx.now;
        if ctx.load.raw {
            return self.open_raw(ctx);
        }
        let t = &ctx.targets[self.target];
        let mut request = std::mem::take(&mut self.scratch);
        request.clear();
        self.sent_key = handshake::write_request(
            &t.host_header,
            &t.path,
            ctx.rng.bytes16(),
            &[],
            &[],
            &mut request,
        );
        let result = match &mut self.tls {
            // rustls holds plaintext written during the handshake and sends it right after.
            Some(tls) => tls
                .writer()
                .write_all(&request)
                .map_err(|e| ConnError::new(Cause::Tls, e.to_string())),
            None => {
                self.queued.extend_from_slice(&request);
                Ok(())
            }
        };
        self.scratch = request;
        result?;
        self.flush_tls()?;
        self.mark(ctx);
        Ok(())
    }

    /// `--raw`: TCP is all there is to open; messages may flow at once.
    fn open_raw(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        self.phase = Phase::Open;
        self.upgraded = true;
        self.opened_at = ctx.now;
        ctx.stats.open += 1;
        self.fill(ctx)
    }

    /// The buffer the next receive should fill. Never empty while [`Self::wants_recv`].
    pub fn recv_buf(&mut self) -> &mut [u8] {
        if self.tls.is_some() {
            &mut self.net
        } else {
            &mut self.rx[self.rx_len..]
        }
    }

    /// `n > 0` bytes arrived at the start of [`Self::recv_buf`].
    pub fn on_recv(&mut self, n: usize, ctx: &mut Ctx) -> Result<(), ConnError> {
        if self.tls.is_none() {
            if self.first_byte.is_none() {
                self.first_byte = Some(self.rx[self.rx_len]);
            }
            self.rx_len += n;
            return self.process(ctx);
        }
        if self.first_byte.is_none() {
            self.first_byte = Some(self.net[0]);
        }
        // Lend the ciphertext buffer out of `self` while decoding, so decoding may borrow `self`.
        let net = std::mem::take(&mut self.net);
        let result = self.on_recv_tls(&net[..n], ctx);
        self.net = net;
        result
    }

    fn on_recv_tls(&mut self, mut input: &[u8], ctx: &mut Ctx) -> Result<(), ConnError> {
        let received = input;
        let mut peer_closed = false;
        while !input.is_empty() {
            let tls = self.tls.as_mut().expect("wss");
            tls.read_tls(&mut input)
                .map_err(|e| ConnError::new(Cause::Tls, format!("TLS: {e}")))?;
            let state = match tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => return Err(self.tls_error(e, received)),
            };
            if self.t_tls == 0 && !tls.is_handshaking() {
                self.t_tls = ctx.now;
            }
            peer_closed |= state.peer_has_closed();
            // Decrypt into rx, decoding whenever it fills (a burst may exceed it).
            loop {
                if self.rx_len == self.rx.len() {
                    self.process(ctx)?;
                    if self.rx_len == self.rx.len() {
                        return Err(self.frame_too_big(None));
                    }
                }
                let tls = self.tls.as_mut().expect("wss");
                match tls.reader().read(&mut self.rx[self.rx_len..]) {
                    Ok(0) => break,
                    Ok(k) => self.rx_len += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(ConnError::new(Cause::Tls, format!("TLS: {e}"))),
                }
            }
            self.process(ctx)?;
        }
        // Handshake messages, alerts and key updates go out with the next send.
        self.flush_tls()?;
        if !self.queued.is_empty() {
            self.mark(ctx);
        }
        if peer_closed {
            return self.on_eof(ctx);
        }
        Ok(())
    }

    /// Bytes arrived in a buffer that is not the connection's (io_uring provided buffers):
    /// the same as [`Self::on_recv`], with one copy into `rx` for plain ws (none for wss,
    /// where rustls reads the ciphertext from `data` directly).
    pub fn on_bytes(&mut self, mut data: &[u8], ctx: &mut Ctx) -> Result<(), ConnError> {
        let Some(&first) = data.first() else {
            return Ok(());
        };
        self.first_byte.get_or_insert(first);
        if self.tls.is_some() {
            return self.on_recv_tls(data, ctx);
        }
        while !data.is_empty() && self.phase != Phase::Done {
            let space = self.rx.len() - self.rx_len;
            if space == 0 {
                return Err(self.frame_too_big(None));
            }
            let k = space.min(data.len());
            self.rx[self.rx_len..self.rx_len + k].copy_from_slice(&data[..k]);
            self.rx_len += k;
            data = &data[k..];
            self.process(ctx)?;
        }
        Ok(())
    }

    /// The server closed TCP. Clean after our close frame; an error otherwise.
    pub fn on_eof(&mut self, _ctx: &mut Ctx) -> Result<(), ConnError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let error = match phase {
            Phase::Closing | Phase::Done => return Ok(()),
            Phase::Connecting => ConnError::new(Cause::Connect, "the connection closed while connecting"),
            Phase::Handshaking if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) => {
                match self.first_byte {
                    None => ConnError::new(
                        Cause::NotTls,
                        "the server closed the connection during the TLS handshake without a word — \
                         is it a plain port? did you mean ws://?",
                    ),
                    Some(_) => self.tls_error(rustls::Error::HandshakeNotComplete, &[]),
                }
            }
            Phase::Handshaking if self.first_byte.is_none() => ConnError::new(
                Cause::Handshake,
                "the server closed the connection without answering the upgrade request \
                 (a TLS port? did you mean wss://?)",
            ),
            Phase::Handshaking if self.looks_like_tls() => not_websocket(),
            Phase::Handshaking => ConnError::new(
                Cause::Handshake,
                format!(
                    "the server closed the connection in the middle of its answer to the upgrade: {:?}",
                    preview(&self.rx[..self.rx_len])
                ),
            ),
            Phase::Rejected { status } => self.rejected(status),
            Phase::Open => ConnError::new(Cause::Eof, "the server closed the connection without a close frame"),
        };
        Err(error)
    }

    /// A socket error (an errno from recv, send or connect).
    pub fn io_error(&self, errno: i32, op: &'static str, ctx: &Ctx) -> ConnError {
        let error = io::Error::from_raw_os_error(errno);
        match errno {
            libc::ECONNREFUSED => ConnError::new(
                Cause::Refused,
                format!("nothing listens on {} (connection refused)", ctx.targets[self.target].addr),
            ),
            libc::ECONNRESET | libc::EPIPE if self.phase == Phase::Handshaking && self.tls.is_none() && self.first_byte.is_none() => {
                ConnError::new(Cause::Reset, format!("the server reset the connection during the upgrade ({error}; a TLS port? did you mean wss://?)"))
            }
            libc::ECONNRESET | libc::EPIPE => ConnError::new(Cause::Reset, format!("the server reset the connection ({op}: {error})")),
            // The 4-tuples from this source address to the target are used up.
            libc::EADDRNOTAVAIL | libc::EADDRINUSE if self.phase == Phase::Connecting => {
                let from = self.source.map_or_else(|| "this host".to_owned(), |ip| ip.to_string());
                ConnError::new(
                    Cause::Connect,
                    format!(
                        "no local port left to connect from {from} to {} ({op}: {error}): spread the \
                         connections over more source addresses with --source-ip 127.0.0.1-127.0.0.250",
                        ctx.targets[self.target].addr
                    ),
                )
            }
            _ if self.phase == Phase::Connecting => ConnError::new(
                Cause::Connect,
                format!("cannot connect to {}: {error}", ctx.targets[self.target].addr),
            ),
            _ => ConnError::new(Cause::Io, format!("{op}: {error}")),
        }
    }

    /// The connection failed: account its messages in flight as lost and mark it done.
    pub fn fail(&mut self, ctx: &mut Ctx) {
        // `connect` counts attempts: one that failed before its upgrade is lost.
        ctx.stats.totals.lost +=
            self.times.len() as u64 + u64::from(ctx.load.storm && !self.upgraded);
        self.times.clear();
        self.phase = Phase::Done;
    }

    /// Abandon the connection at the end of the drain: what is in flight stays in flight.
    pub fn abandon(&mut self, ctx: &mut Ctx) {
        self.ending.get_or_insert(Ending::Abandoned);
        let attempt = ctx.load.storm && !self.upgraded && self.phase != Phase::Done;
        ctx.stats.totals.in_flight += self.times.len() as u64 + u64::from(attempt);
        self.times.clear();
        self.phase = Phase::Done;
    }

    /// The connection failed with `e` (the worker calls this beside [`Conn::fail`]): a close
    /// frame from the server is filed by its code and reason, anything else by cause.
    pub fn note_failure(&mut self, e: &ConnError) {
        let ending = match (&self.peer_close, e.cause) {
            (Some((code, reason)), Cause::ClosedByServer) => Ending::ServerClose {
                code: *code,
                reason: reason.clone(),
            },
            _ => Ending::Failed(e.cause, e.detail.clone()),
        };
        self.ending.get_or_insert(ending);
    }

    /// How the finished connection ended and how long after its upgrade (`now`: the end);
    /// `None` for a slot that never made an attempt. A connection that finished without a
    /// failure did the client's close handshake.
    pub fn ending(&self, now: u64) -> Option<(Ending, Option<u64>)> {
        let life = self.upgraded.then(|| now.saturating_sub(self.opened_at));
        match &self.ending {
            Some(e) => Some((e.clone(), life)),
            None if self.upgraded => Some((Ending::ClientClose, life)),
            None => None,
        }
    }

    /// Start the close handshake (RFC 6455 §7.1.2): send a close frame, keep reading until the
    /// server's close comes back. Echoes that arrive meanwhile are counted, not measured.
    pub fn start_close(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        match self.phase {
            // `--raw` has no close message: wait for the echoes in flight, then hang up.
            Phase::Open if ctx.load.raw => {
                self.phase = Phase::Closing;
                self.end_raw_when_answered();
            }
            Phase::Open => {
                let key = ctx.rng.mask_key();
                self.encode(OpCode::Close, Payload::Close(CloseCode::NORMAL), key)?;
                self.phase = Phase::Closing;
                self.mark(ctx);
            }
            Phase::Closing | Phase::Done => {}
            // Still opening (`connect`): abandoned, and accounted as in flight.
            _ => self.abandon(ctx),
        }
        Ok(())
    }

    /// Send what the pacing allows now: closed loop, until `max_in_flight` are in flight;
    /// open loop, every message whose intended time has come, up to `max_in_flight`.
    pub fn fill(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        if !ctx.window.sending
            || self.phase != Phase::Open
            || matches!(self.role, Role::Subscriber(_))
        {
            return Ok(());
        }
        let before = self.send_seq;
        match ctx.pace.open_loop {
            None => {
                while self.times.len() < ctx.pace.max_in_flight {
                    self.send_message(UNSTAMPED, ctx)?;
                }
            }
            Some(open) => {
                while open.intended(self.next_due) <= ctx.now
                    && self.times.len() < ctx.pace.max_in_flight
                {
                    self.send_message(open.intended(self.next_due), ctx)?;
                    self.next_due += open.interval_ns;
                }
                let blocked = open.intended(self.next_due) <= ctx.now;
                if self.blocked && !blocked {
                    ctx.queues.unblocked.push(self.slot);
                }
                self.blocked = blocked;
            }
        }
        if self.send_seq != before {
            self.mark(ctx);
        }
        Ok(())
    }

    /// Open loop: the first message is due at `at`.
    pub fn schedule_from(&mut self, at: u64) {
        self.next_due = at;
    }

    /// Open loop: when the next message is due; `None` while blocked by `max_in_flight` or
    /// finished (an echo or the end unblocks or retires it).
    pub fn next_due(&self) -> Option<u64> {
        let sends = !matches!(self.role, Role::Subscriber(_));
        (self.phase == Phase::Open && !self.blocked && sends).then_some(self.next_due)
    }

    fn send_message(&mut self, intended: u64, ctx: &mut Ctx) -> Result<(), ConnError> {
        let opcode = match (ctx.load.ping, ctx.load.text) {
            (true, _) => OpCode::Ping,
            (false, true) => OpCode::Text,
            (false, false) => OpCode::Binary,
        };
        let seq = self.send_seq;
        let size = ctx.load.sizes[(seq % ctx.load.sizes.len() as u64) as usize];
        match self.role {
            // The intended publish time goes inside: the subscribers' clock is the same.
            Role::Publisher(publisher) => Stamp {
                publisher,
                seq,
                published_ns: intended,
            }
            .write(&mut self.template[..size]),
            _ => stamp(&mut self.template[..size], seq),
        }
        if ctx.load.raw {
            self.queued.extend_from_slice(&self.template[..size]);
        } else {
            let key = ctx.rng.mask_key();
            self.encode(opcode, Payload::Template(size), key)?;
        }
        self.times.push_back((intended, UNSTAMPED));
        self.queued_msgs += 1;
        self.send_seq += 1;
        ctx.count_sent();
        Ok(())
    }

    /// The bytes to send now: the rest of the send in progress, or else everything queued.
    /// Empty when there is nothing to send.
    pub fn pending(&mut self) -> &[u8] {
        if self.out_pos == self.out.len() && !self.queued.is_empty() {
            self.out.clear();
            self.out_pos = 0;
            std::mem::swap(&mut self.out, &mut self.queued);
            self.unstamped += self.queued_msgs;
            self.queued_msgs = 0;
        }
        &self.out[self.out_pos..]
    }

    /// Whether anything is left to send.
    pub fn has_pending(&self) -> bool {
        self.out_pos < self.out.len() || !self.queued.is_empty()
    }

    /// Stamp the messages of [`Self::pending`] with their send time, just before the engine
    /// hands them to the kernel.
    pub fn stamp(&mut self, now: u64, ctx: &mut Ctx) {
        if self.unstamped == 0 {
            return;
        }
        let end = self.times.len() - self.queued_msgs;
        for (intended, sent) in self.times.range_mut(end - self.unstamped..end) {
            *sent = now;
            if *intended == UNSTAMPED {
                *intended = now;
            } else {
                ctx.on_send(*intended, now);
            }
        }
        self.unstamped = 0;
        if let Role::Publisher(_) = self.role {
            // No echo will answer a published message: once its send lag is measured it is
            // no longer in flight, and a publisher that filled its queue may go on.
            self.times.drain(..end);
            if self.blocked {
                self.blocked = false;
                ctx.queues.unblocked.push(self.slot);
            }
        }
    }

    /// `n` bytes of [`Self::pending`] were sent.
    pub fn on_sent(&mut self, n: usize) {
        self.out_pos += n;
        debug_assert!(self.out_pos <= self.out.len());
    }

    /// True once, the first time it is called on a `Done` connection.
    pub fn take_done(&mut self) -> bool {
        let first = self.phase == Phase::Done && !self.reported_done;
        self.reported_done |= first;
        first
    }

    /// Called by the engine when it took the connection out of `Ctx::dirty`.
    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    /// Put the connection in `Ctx::dirty` (once) so the engine sends what it has.
    pub fn mark(&mut self, ctx: &mut Ctx) {
        if !self.dirty {
            self.dirty = true;
            ctx.queues.dirty.push(self.slot);
        }
    }

    /// Decode what is in `rx[..rx_len]` according to the phase.
    fn process(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        if self.phase == Phase::Handshaking && self.tls.as_ref().is_some_and(|t| t.is_handshaking())
        {
            return Ok(());
        }
        match self.phase {
            Phase::Handshaking => self.process_handshake(ctx),
            Phase::Rejected { status } => {
                if body_line(&self.rx[..self.rx_len]).is_some() {
                    self.phase = Phase::Done;
                    return Err(self.rejected(status));
                }
                Ok(())
            }
            Phase::Open | Phase::Closing if ctx.load.raw => self.process_raw(ctx),
            Phase::Open | Phase::Closing => self.process_frames(ctx),
            Phase::Connecting | Phase::Done => Ok(()),
        }
    }

    /// `--raw`: with no frames, the echo of message `n` is simply the next `size(n)` bytes.
    /// Bytes beyond what was sent are the server's fault.
    fn process_raw(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        let mut pos = 0;
        let mut result = Ok(());
        while self.sent_unanswered() > 0 && result.is_ok() {
            let size = ctx.load.sizes[(self.recv_seq % ctx.load.sizes.len() as u64) as usize];
            if self.rx_len - pos < size {
                break;
            }
            result = self.on_answer(true, pos..pos + size, ctx);
            pos += size;
        }
        if result.is_ok() && self.sent_unanswered() == 0 && self.rx_len > pos {
            result = Err(ConnError::new(
                Cause::Unexpected,
                format!(
                    "the server sent {} bytes more than it was sent (is it in --raw-tcp mode?)",
                    self.rx_len - pos
                ),
            ));
        }
        self.rx.copy_within(pos..self.rx_len, 0);
        self.rx_len -= pos;
        self.end_raw_when_answered();
        result
    }

    /// Messages handed to the kernel and not answered yet: the oldest entries of `times`
    /// (the newest are still queued, or in `out` and not yet stamped). Only those can be
    /// echoed; a raw server that sends bytes for the others is making them up.
    fn sent_unanswered(&self) -> usize {
        self.times
            .len()
            .saturating_sub(self.queued_msgs + self.unstamped)
    }

    /// `--raw`, closing: done once every message in flight was answered.
    fn end_raw_when_answered(&mut self) {
        if self.phase == Phase::Closing && self.times.is_empty() {
            self.phase = Phase::Done;
        }
    }

    /// RFC 6455 §4.1: validate the server's answer; frames may follow it in the same read.
    fn process_handshake(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        let head = &self.rx[..self.rx_len];
        match handshake::parse_response(head, &self.sent_key, handshake::DEFAULT_MAX_HEADER_BYTES) {
            Ok(None) if self.looks_like_tls() => Err(not_websocket()),
            Ok(None) => Ok(()),
            Ok(Some(response)) => {
                self.rx.copy_within(response.len..self.rx_len, 0);
                self.rx_len -= response.len;
                self.phase = Phase::Open;
                self.upgraded = true;
                self.opened_at = ctx.now;
                ctx.stats.open += 1;
                if ctx.load.storm {
                    // `connect`: this connection's work is done; close it cleanly (§7.1.2).
                    let tls = (self.tls.is_some()).then_some(self.t_tls);
                    ctx.on_connection(self.t_start, self.t_actual, self.t_tcp, tls);
                    return self.start_close(ctx);
                }
                self.fill(ctx)?;
                self.process_frames(ctx)
            }
            Err(HandshakeError::BadStatus { status }) => {
                if body_line(head).is_some() {
                    self.phase = Phase::Done;
                    Err(self.rejected(status))
                } else {
                    // The body may be in the next segment; report once it (or EOF) arrives.
                    self.phase = Phase::Rejected { status };
                    Ok(())
                }
            }
            Err(_) if self.looks_like_tls() => Err(not_websocket()),
            Err(e) => Err(ConnError::new(
                Cause::Handshake,
                format!(
                    "invalid answer to the upgrade request: {e} (it began {:?})",
                    preview(head)
                ),
            )),
        }
    }

    /// Decode every complete frame in `rx`, then move the incomplete tail to the front.
    fn process_frames(&mut self, ctx: &mut Ctx) -> Result<(), ConnError> {
        let mut pos = 0;
        let result = loop {
            if self.phase == Phase::Done {
                break Ok(());
            }
            match self.ws.handle_frame(&mut self.rx[pos..self.rx_len]) {
                Ok(Decoded::Frame(frame)) => {
                    let payload = pos + frame.payload.start..pos + frame.payload.end;
                    pos += frame.len;
                    if let Err(e) = self.on_frame(frame.kind, frame.fin, payload, ctx) {
                        break Err(e);
                    }
                }
                Ok(Decoded::NeedMore {
                    frame_len: Some(len),
                }) if len > self.rx.len() => {
                    break Err(self.frame_too_big(Some(len)));
                }
                Ok(Decoded::NeedMore { .. }) => break Ok(()),
                Err(e) => {
                    break Err(ConnError::new(
                        Cause::Protocol,
                        format!("the server broke the WebSocket protocol: {e}"),
                    ));
                }
            }
        };
        self.rx.copy_within(pos..self.rx_len, 0);
        self.rx_len -= pos;
        result
    }

    fn on_frame(
        &mut self,
        kind: FrameKind,
        fin: bool,
        payload: std::ops::Range<usize>,
        ctx: &mut Ctx,
    ) -> Result<(), ConnError> {
        match kind {
            FrameKind::Text | FrameKind::Binary if fin && !matches!(self.role, Role::Echo) => {
                self.on_delivery(kind == FrameKind::Text, payload, ctx);
                Ok(())
            }
            FrameKind::Text | FrameKind::Binary if fin && !ctx.load.ping => {
                let same_kind = (kind == FrameKind::Text) == ctx.load.text;
                self.on_answer(same_kind, payload, ctx)
            }
            // `hold`: the pong answers our ping (§5.5.3: with the ping's payload).
            FrameKind::Pong if ctx.load.ping => self.on_answer(true, payload, ctx),
            FrameKind::Text | FrameKind::Binary | FrameKind::Continuation if ctx.load.ping => Err(ConnError::new(
                Cause::Unexpected,
                "the server sent a message on a connection that only sent pings",
            )),
            FrameKind::Text | FrameKind::Binary | FrameKind::Continuation => Err(ConnError::new(
                Cause::Unexpected,
                "the server fragmented an echo; wsport-bench expects each echo in one frame, as sent",
            )),
            FrameKind::Ping => {
                // §5.5.2: answer with a pong carrying the same payload.
                let key = ctx.rng.mask_key();
                self.encode(OpCode::Pong, Payload::Rx(payload), key)?;
                self.mark(ctx);
                Ok(())
            }
            FrameKind::Pong => Ok(()),
            FrameKind::Close(code) => {
                if self.phase == Phase::Closing {
                    self.phase = Phase::Done;
                    return Ok(());
                }
                // §5.5.1: answer the close, then the connection is over.
                let reason = String::from_utf8_lossy(self.rx.get(payload.start + 2..payload.end).unwrap_or_default());
                self.peer_close = Some((code.map(|c| c.0), reason.into_owned()));
                let key = ctx.rng.mask_key();
                let _ = self.encode(OpCode::Close, Payload::Close(code.unwrap_or(CloseCode::NORMAL)), key);
                self.mark(ctx);
                let code = code.map_or_else(|| "no code".to_owned(), |c| format!("code {}", c.0));
                Err(ConnError::new(Cause::ClosedByServer, format!("the server sent a close frame ({code}) while messages were flowing")))
            }
        }
    }

    /// The answer to our oldest message in flight (an echo, or a pong for `hold`): check it
    /// against what was sent, measure it, send what the pacing allows next.
    fn on_answer(
        &mut self,
        same_kind: bool,
        payload: std::ops::Range<usize>,
        ctx: &mut Ctx,
    ) -> Result<(), ConnError> {
        let Some((intended, sent)) = self.times.pop_front() else {
            let what = if ctx.load.ping { "a pong" } else { "a message" };
            return Err(ConnError::new(
                Cause::Unexpected,
                format!("the server sent {what} that answers nothing sent"),
            ));
        };
        let seq = self.recv_seq;
        self.recv_seq += 1;
        let size = ctx.load.sizes[(seq % ctx.load.sizes.len() as u64) as usize];
        let ok = same_kind && verify(&self.rx[payload.clone()], &self.template, size, seq);
        ctx.on_echo(intended, sent, payload.len(), ok);
        self.fill(ctx)
    }

    /// `broadcast`: a message another connection published. A subscriber checks its order
    /// and measures it from its publish time; a publisher discards it.
    fn on_delivery(&mut self, text: bool, payload: std::ops::Range<usize>, ctx: &mut Ctx) {
        let Role::Subscriber(sub) = &mut self.role else {
            ctx.stats.totals.broadcast.to_publishers += 1;
            return;
        };
        let len = payload.len();
        let ours = text == ctx.load.text && ctx.load.sizes.contains(&len);
        let arrival = Stamp::read(&self.rx[payload])
            .filter(|_| ours)
            .and_then(|s| sub.handle(&s).map(|a| (s, a)));
        match arrival {
            // A message already received is counted, not measured a second time.
            Some((_, Arrival::Duplicate)) => {}
            Some((s, _)) => ctx.on_echo(s.published_ns, s.published_ns, len, true),
            None => sub.malformed += 1,
        }
    }

    /// Append one masked frame to the output (through TLS for wss).
    fn encode(&mut self, opcode: OpCode, payload: Payload, key: [u8; 4]) -> Result<(), ConnError> {
        let close;
        let bytes: &[u8] = match payload {
            Payload::Template(size) => &self.template[..size],
            Payload::Rx(range) => &self.rx[range],
            Payload::Close(code) => {
                close = code.to_bytes();
                &close
            }
        };
        match &mut self.tls {
            None => self
                .ws
                .write_frame(opcode, true, bytes, key, &mut self.queued),
            Some(tls) => {
                self.scratch.clear();
                self.ws
                    .write_frame(opcode, true, bytes, key, &mut self.scratch);
                tls.writer()
                    .write_all(&self.scratch)
                    .map_err(|e| ConnError::new(Cause::Tls, format!("TLS: {e}")))?;
                self.flush_tls()?;
            }
        }
        Ok(())
    }

    /// Move what rustls wants to send into `queued`.
    fn flush_tls(&mut self) -> Result<(), ConnError> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.queued)
                    .map_err(|e| ConnError::new(Cause::Tls, format!("TLS: {e}")))?;
            }
        }
        Ok(())
    }

    fn looks_like_tls(&self) -> bool {
        // A TLS record starts with its content type (20-24) and version 3.x; an HTTP answer
        // starts with `H`.
        self.tls.is_none() && self.rx_len >= 2 && (20..=24).contains(&self.rx[0]) && self.rx[1] == 3
    }

    fn tls_error(&self, error: rustls::Error, received: &[u8]) -> ConnError {
        let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
        match self.first_byte {
            Some(b) if handshaking && !(20..=24).contains(&b) => ConnError::new(
                Cause::NotTls,
                format!("the server did not answer TLS — did you mean ws://? (it sent {:?})", preview(received)),
            ),
            _ if matches!(error, rustls::Error::InvalidCertificate(_)) => ConnError::new(
                Cause::Tls,
                format!("TLS: {error} (wsport servers use a self-signed certificate by default: pass --insecure, or --ca FILE)"),
            ),
            _ => ConnError::new(Cause::Tls, format!("TLS: {error}")),
        }
    }

    fn rejected(&self, status: u16) -> ConnError {
        let body = body_line(&self.rx[..self.rx_len]).unwrap_or_default();
        let reason = handshake::reason_phrase(status);
        let mut detail = format!("the server refused the upgrade: HTTP {status} {reason}");
        if !body.is_empty() {
            detail.push_str(&format!(": {body}"));
        }
        ConnError::new(Cause::Rejected, detail)
    }

    fn frame_too_big(&self, len: Option<usize>) -> ConnError {
        let len = len.map_or_else(|| "a frame".to_owned(), |l| format!("a frame of {l} bytes"));
        ConnError::new(
            Cause::Unexpected,
            format!("the server sent {len}, more than the {}-byte buffer sized for the echoes asked for", self.rx.len()),
        )
    }
}

/// A fresh rustls client for a wss target, `None` for ws.
fn new_tls(target: usize, ctx: &Ctx) -> Result<Option<Tls>, rustls::Error> {
    Ok(match (&ctx.targets[target].tls, &ctx.tls_config) {
        (Some(name), Some(config)) => Some(Box::new(rustls::ClientConnection::new(
            config.clone(),
            name.clone(),
        )?)),
        _ => None,
    })
}

/// Where the payload of a frame to send comes from.
enum Payload {
    /// The first `n` bytes of the template (a message).
    Template(usize),
    /// Bytes received (a ping's payload, for the pong).
    Rx(std::ops::Range<usize>),
    /// A close code.
    Close(CloseCode),
}

fn not_websocket() -> ConnError {
    ConnError::new(
        Cause::NotWebSocket,
        "the server answered with TLS — did you mean wss://?",
    )
}

/// The first line of the body after an HTTP head in `buf`, if any of it arrived.
fn body_line(buf: &[u8]) -> Option<String> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = &buf[end..];
    if body.is_empty() {
        return None;
    }
    let line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    Some(
        String::from_utf8_lossy(line)
            .trim()
            .chars()
            .take(200)
            .collect(),
    )
}

/// Up to 40 received bytes, as text where printable.
fn preview(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(40)];
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    if !line.is_empty() && line.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(line).into_owned()
    } else {
        head.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Fill a payload template: printable ASCII for text (valid UTF-8 whatever the stamp), any
/// byte value for binary.
fn fill_template(template: &mut [u8], text: bool, rng: &mut crate::ctx::Rng) {
    for chunk in template.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        for (b, r) in chunk.iter_mut().zip(r) {
            *b = if text { b' ' + r % 95 } else { r };
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Write the low hex digits of `seq` into the first `min(16, len)` bytes of `payload`.
pub fn stamp(payload: &mut [u8], seq: u64) {
    let k = payload.len().min(STAMP_LEN);
    for (i, b) in payload[..k].iter_mut().enumerate() {
        let shift = 4 * (k - 1 - i);
        *b = HEX[((seq >> shift) & 0xF) as usize];
    }
}

/// Whether `echo` is message `seq` of `size` bytes built on `template`.
pub fn verify(echo: &[u8], template: &[u8], size: usize, seq: u64) -> bool {
    if echo.len() != size {
        return false;
    }
    let k = size.min(STAMP_LEN);
    let mut expected = [0u8; STAMP_LEN];
    stamp(&mut expected[..k], seq);
    echo[..k] == expected[..k] && echo[k..] == template[k..size]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_hex_of_the_low_digits() {
        let mut buf = [b'x'; 20];
        stamp(&mut buf, 0x1234);
        assert_eq!(&buf[..16], b"0000000000001234");
        assert_eq!(&buf[16..], b"xxxx");
        let mut short = [0u8; 3];
        stamp(&mut short, 0xabcd);
        assert_eq!(&short, b"bcd");
        stamp(&mut [], 5);
    }

    #[test]
    fn verify_accepts_the_message_and_catches_every_kind_of_mismatch() {
        let mut rng = crate::ctx::Rng::new(7);
        for size in [0usize, 1, 15, 16, 17, 64, 1000] {
            let mut template = vec![0u8; 1000];
            fill_template(&mut template, false, &mut rng);
            let mut msg = template[..size].to_vec();
            stamp(&mut msg, 42);
            assert!(verify(&msg, &template, size, 42), "size {size}");
            if size == 0 {
                continue;
            }
            assert!(
                !verify(&msg, &template, size, 43),
                "wrong sequence (reordered or lost), size {size}"
            );
            let mut corrupt = msg.clone();
            *corrupt.last_mut().unwrap() ^= 1;
            assert!(
                !verify(&corrupt, &template, size, 42),
                "flipped last bit, size {size}"
            );
            assert!(
                !verify(&msg[..size - 1], &template, size, 42),
                "truncated, size {size}"
            );
            let mut longer = msg.clone();
            longer.push(0);
            assert!(
                !verify(&longer, &template, size, 42),
                "extended, size {size}"
            );
        }
    }

    #[test]
    fn text_templates_are_printable() {
        let mut rng = crate::ctx::Rng::new(1);
        let mut t = vec![0u8; 4096];
        fill_template(&mut t, true, &mut rng);
        stamp(&mut t, u64::MAX);
        assert!(std::str::from_utf8(&t).is_ok());
        assert!(t.iter().all(|b| (b' '..=b'~').contains(b)));
    }

    #[test]
    fn body_line_and_preview() {
        assert_eq!(body_line(b"HTTP/1.1 403 Forbidden\r\nA: b\r\n\r\n"), None);
        assert_eq!(
            body_line(b"HTTP/1.1 403 Forbidden\r\n\r\norigin not allowed\nmore").as_deref(),
            Some("origin not allowed")
        );
        assert_eq!(
            preview(b"HTTP/1.1 400 Bad Request\r\n..."),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(preview(&[0x15, 0x03, 0x03]), "15 03 03");
    }
}
