//! Driving a server [`Session`] with a fuzzer's bytes, as a runtime would, and checking what
//! every runtime relies on.
//!
//! An input is one flags byte (the server's policy, and what happens after the stream), then
//! the cut points and the client's stream in the core's format
//! ([`wsport_core_fuzz::cuts_and_stream`]). Every limit is small, so the refusals (431, 1009)
//! are reached with short inputs. Checked on every run:
//! - no step's ranges run outside the buffer, and no frame under way needs more than the
//!   frame limit (plus the longest header) of room;
//! - the first bytes the client gets are an HTTP response (RFC 6455 §4.2.2);
//! - the timers end every session: following its deadlines reaches the end in a few steps
//!   (handshake timeout; ping, then ping timeout, then the wait for the close answer);
//! - the stream cut anywhere gets the same answer, ending and message count as sent whole.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wsport_core::frame::MAX_HEADER_LEN;
use wsport_core_fuzz::{cuts_and_stream, pieces};
use wsport_server_common::config::DebugFaults;
use wsport_server_common::session::{End, Session, Step};
use wsport_server_common::{ConnectionLimit, Counters, ListenSpec, Scheme, ServerConfig};

mod tls;

pub use tls::TlsClient;

/// A fixed, valid upgrade request, put before the stream when the flags ask for it, so the
/// fuzzer spends its time on frames rather than on rediscovering HTTP.
pub const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: https://ok.example\r\n\
Authorization: Bearer t0k3n\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

/// The flags byte.
#[derive(Debug, Clone, Copy)]
pub struct Flags(u8);

impl Flags {
    /// Prepend [`UPGRADE`] to the stream.
    pub fn upgrade_first(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// Ask for `Authorization: Bearer t0k3n` (else 401).
    fn auth(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// Accept only `Origin: https://ok.example` (else 403).
    fn origins(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// The server is at --max-connections (503).
    fn full(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// After the stream, shut the server down (close 1001) before following the deadlines.
    fn shutdown(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// wss only: the stream is raw TLS bytes, not plaintext after a handshake.
    pub fn raw_tls(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// `--broadcast`: data messages are published (fragments joined), not echoed.
    fn broadcast(self) -> bool {
        self.0 & 0x40 != 0
    }
}

/// A fuzz input taken apart.
pub struct Input {
    /// The policy and what follows the stream.
    pub flags: Flags,
    /// Where the stream is cut into reads.
    pub cuts: Vec<usize>,
    /// The client's bytes.
    pub stream: Vec<u8>,
}

impl Input {
    /// Parse any bytes (every input is valid).
    pub fn parse(data: &[u8]) -> Self {
        let Some((&flags, rest)) = data.split_first() else {
            return Self {
                flags: Flags(0),
                cuts: Vec::new(),
                stream: Vec::new(),
            };
        };
        let flags = Flags(flags);
        let (mut cuts, stream) = cuts_and_stream(rest);
        let stream = if flags.upgrade_first() {
            cuts.iter_mut().for_each(|cut| *cut += UPGRADE.len());
            [UPGRADE, stream].concat()
        } else {
            stream.to_vec()
        };
        Self {
            flags,
            cuts,
            stream,
        }
    }
}

/// The server configuration for these flags: every limit small.
pub fn config(flags: Flags, tls: Option<Arc<rustls::ServerConfig>>) -> Arc<ServerConfig> {
    let scheme = if tls.is_some() {
        Scheme::Wss
    } else {
        Scheme::Ws
    };
    Arc::new(ServerConfig {
        listeners: vec![ListenSpec {
            scheme,
            addr: "127.0.0.1:0".parse().expect("an address"),
        }],
        threads: 1,
        pin: None,
        tls,
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Some(Duration::from_secs(5)),
        max_header_bytes: 400,
        max_frame_bytes: 64,
        max_message_bytes: 128,
        max_connections: 1,
        allow_origins: flags
            .origins()
            .then(|| "https://ok.example".to_string())
            .into_iter()
            .collect(),
        auth_token: flags.auth().then(|| "t0k3n".to_string()),
        subprotocols: vec!["superchat".to_string(), "chat".to_string()],
        ping_interval: Some(Duration::from_secs(1)),
        ping_timeout: Duration::from_secs(1),
        stats_interval: None,
        shutdown_timeout: Duration::from_secs(1),
        backlog: 16,
        debug: DebugFaults::default(),
        raw_tcp: false,
        broadcast: flags.broadcast(),
    })
}

/// The client's side of the connection: how its bytes go on the wire and come back.
pub trait Wire {
    /// Put the client's plaintext on the wire (append to `wire`).
    fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>);
    /// Read what the server sent, appending the plaintext to `plain`.
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>);
}

/// ws: the wire is the plaintext.
pub struct Plain;

impl Wire for Plain {
    fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>) {
        wire.extend_from_slice(plain);
    }
    fn receive(&mut self, wire: &[u8], plain: &mut Vec<u8>) {
        plain.extend_from_slice(wire);
    }
}

/// Everything a run showed the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Transcript {
    /// The server's answer, as the client reads it.
    pub received: Vec<u8>,
    /// How the read path ended the connection, if it did.
    pub end: Option<End>,
    /// Messages the server counted as echoed (or, broadcasting, received).
    pub messages: u64,
    /// `--broadcast`: the frames the session published, in order.
    pub published: Vec<u8>,
}

/// One connection from accept to its end: the stream in reads cut at `cuts`, then the
/// shutdown if the flags ask for it, then every deadline in turn.
pub struct Run<'a, W: Wire> {
    /// The client's side.
    pub wire: W,
    session: Session,
    config: &'a ServerConfig,
    buf: Vec<u8>,
    now: Instant,
    transcript: Transcript,
}

impl<'a, W: Wire> Run<'a, W> {
    /// Accept a connection on a listener of the config's scheme.
    pub fn accept(config: &'a Arc<ServerConfig>, flags: Flags, wire: W) -> Self {
        let limit = ConnectionLimit::new(if flags.full() { 0 } else { 1 });
        let scheme = config.listeners[0].scheme;
        let now = Instant::now();
        let session = Session::accept(config, &Counters::new(), &limit, scheme, now)
            .expect("a session for our own config");
        Self {
            wire,
            session,
            config,
            buf: Session::new_buffer(),
            now,
            transcript: Transcript {
                received: Vec::new(),
                end: None,
                messages: 0,
                published: Vec::new(),
            },
        }
    }

    /// Send `plain` from the client and let the server handle it; whether the session ended.
    pub fn send(&mut self, plain: &[u8]) -> bool {
        self.wire.send(plain, &mut self.buf);
        let step = self.session.handle_read(&mut self.buf, self.now);
        self.check(&step);
        if let Some(frames) = self.session.take_published() {
            self.transcript.published.extend_from_slice(&frames);
        }
        self.wire.receive(
            &self.buf[step.output.clone()],
            &mut self.transcript.received,
        );
        self.transcript.messages += step.messages;
        self.session.after_write(&mut self.buf, &step);
        self.transcript.end = step.end;
        step.end.is_some()
    }

    /// The stream in its pieces, then shutdown and timers; what the client saw.
    pub fn finish(mut self, stream: &[u8], cuts: &[usize], flags: Flags) -> Transcript {
        for piece in pieces(stream, cuts) {
            if self.send(piece) {
                return self.transcript;
            }
        }
        if flags.shutdown() {
            let control = self.session.begin_shutdown(self.now);
            self.wire
                .receive(&control.output, &mut self.transcript.received);
            if control.end.is_some() {
                return self.transcript;
            }
        }
        self.follow_deadlines();
        self.transcript
    }

    /// Fire each deadline as it comes: the session must end in a few steps (the longest
    /// chain is ping, ping timeout and close, then the wait for the peer's close).
    fn follow_deadlines(&mut self) {
        for _ in 0..4 {
            let Some(deadline) = self.session.next_deadline() else {
                return;
            };
            assert!(deadline >= self.now, "a deadline in the past");
            self.now = deadline;
            let control = self.session.handle_deadline(deadline);
            self.wire
                .receive(&control.output, &mut self.transcript.received);
            if control.end.is_some() {
                return;
            }
        }
        panic!("the session's deadlines did not end it");
    }

    /// What every runtime relies on when it sends `buf[step.output]` and keeps the rest.
    fn check(&self, step: &Step) {
        let len = self.buf.len();
        assert!(step.output.start <= step.output.end && step.output.end <= len);
        assert!(step.consumed <= len);
        let most = self.config.max_frame_bytes as usize + MAX_HEADER_LEN;
        assert!(step.need.is_none_or(|need| need <= most), "{step:?}");
    }
}

/// Run an input twice, whole and cut, and check the two agree (and that the answer starts
/// as HTTP). `wire` makes a fresh client side for each run.
pub fn check_cuts_change_nothing<W: Wire>(
    input: &Input,
    config: &Arc<ServerConfig>,
    mut wire: impl FnMut() -> W,
    connect: impl Fn(&mut Run<W>),
) {
    let mut runs = [&[][..], &input.cuts[..]].map(|cuts| {
        let mut run = Run::accept(config, input.flags, wire());
        connect(&mut run);
        run.finish(&input.stream, cuts, input.flags)
    });
    let [whole, cut] = &mut runs;
    if !whole.received.is_empty() {
        assert!(whole.received.starts_with(b"HTTP/1.1 "), "{whole:?}");
    }
    // Whether bytes behind the peer's close frame had arrived when it was read depends on
    // the cut: with none yet the session closes at once (`End::Close`), with some it
    // lingers; the answer is the same. The other way round cannot be: whole, a stream with
    // nothing behind its close frame has nothing behind it in any read.
    if cut.end == Some(End::Close) && whole.end == Some(End::Linger) {
        cut.end = whole.end;
    }
    assert_eq!(cut, whole, "cut at {:?}", input.cuts);
}

/// The server's and the client's TLS configurations around one self-signed certificate,
/// made once per process (rcgen and key parsing are slow beside one execution).
pub fn tls_configs() -> &'static tls::Configs {
    static CONFIGS: OnceLock<tls::Configs> = OnceLock::new();
    CONFIGS.get_or_init(tls::Configs::new)
}
