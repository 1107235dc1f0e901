//! The wss session in memory against a rustls client: the TLS handshake, the upgrade and the
//! echo come out the same however the client's bytes are cut into reads (whole, byte by byte,
//! in random pieces), messages larger than a record go back in records of at most 2^14
//! bytes of plaintext, a buffer grown for a large reply leaves the next read bounded room,
//! bad TLS is answered with an alert, and bytes after the peer's close_notify are ignored.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use clap::Parser;
use wsport_server_common::session::{End, Session, Step};
use wsport_server_common::{tls, ConnectionLimit, Counters, Scheme, ServerArgs, ServerConfig};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// TLS record content types (RFC 8446 §5.1).
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;

/// The server's config with a self-signed certificate, and a client trusting it, made once
/// (generating the certificate is slow beside one connection).
fn configs() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(make_configs).clone()
}

fn make_configs() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
    let args = ["server", "--listen", "wss://127.0.0.1:0"];
    let mut config = Cli::try_parse_from(args)
        .expect("valid flags")
        .server
        .into_config()
        .expect("a valid config");
    let (chain, key) = tls::self_signed().expect("a certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(chain[0].clone())
        .expect("our certificate as a root");
    config.tls = Some(tls::build(chain, key).expect("a server TLS config"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls' default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    (Arc::new(config), Arc::new(client))
}

/// A masked client frame (RFC 6455 §5.2), FIN set, with a fixed masking key.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// The server frame the session echoes `payload` as.
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// How the client's bytes are cut into the server's reads.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Whole,
    Bytes,
    Random(u64),
}

/// One connection: the server session, its buffer, and the client's rustls.
struct Pair {
    session: Session,
    buf: Vec<u8>,
    client: rustls::ClientConnection,
    /// Everything the client read back, in plaintext.
    received: Vec<u8>,
    /// Every record the server sent: (content type, record length).
    records: Vec<(u8, usize)>,
    messages: u64,
    end: Option<End>,
}

impl Pair {
    fn new() -> Self {
        let (config, client) = configs();
        let session = Session::accept(
            &config,
            &Counters::new(),
            &ConnectionLimit::new(10),
            Scheme::Wss,
            Instant::now(),
        )
        .expect("a wss session");
        let name = "localhost".try_into().expect("a server name");
        Self {
            session,
            buf: Session::new_buffer(),
            client: rustls::ClientConnection::new(client, name).expect("a client"),
            received: Vec::new(),
            records: Vec::new(),
            messages: 0,
            end: None,
        }
    }

    /// The client's pending TLS bytes.
    fn client_wire(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).expect("writing to a Vec");
        }
        wire
    }

    /// Hand `wire` to the server in reads cut as `cut` says, and the answers to the client.
    fn deliver(&mut self, wire: &[u8], cut: Cut) {
        let mut rest = wire;
        let mut rng = match cut {
            Cut::Random(seed) => Some(Rng(seed | 1)),
            _ => None,
        };
        while !rest.is_empty() && self.end.is_none() {
            let n = match (cut, rng.as_mut()) {
                (Cut::Whole, _) => rest.len(),
                (Cut::Bytes, _) => 1,
                (_, Some(rng)) => 1 + rng.below(rest.len().min(3000)),
                (_, None) => unreachable!(),
            };
            let (piece, after) = rest.split_at(n);
            rest = after;
            self.read(piece);
        }
    }

    /// One read of `piece` by the server, as a runtime does it.
    fn read(&mut self, piece: &[u8]) {
        self.buf.extend_from_slice(piece);
        let step = self.session.handle_read(&mut self.buf, Instant::now());
        check(&step, self.buf.len());
        let output = self.buf[step.output.clone()].to_vec();
        self.take_output(&output);
        self.messages += step.messages;
        self.end = step.end;
        self.session.after_write(&mut self.buf, &step);
    }

    /// What the server sent reaches the client.
    fn take_output(&mut self, mut output: &[u8]) {
        self.records.extend(records(output));
        while !output.is_empty() {
            self.client.read_tls(&mut output).expect("reading a slice");
            self.client
                .process_new_packets()
                .expect("the server's records are valid");
            let mut plain = Vec::new();
            match self.client.reader().read_to_end(&mut plain) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the client's plaintext: {e}"),
            }
            self.received.extend_from_slice(&plain);
        }
    }

    /// The TLS handshake and the upgrade, cut as `cut` says; the 101 is taken off `received`.
    fn connect(&mut self, cut: Cut) {
        for _ in 0..10 {
            if !self.client.is_handshaking() {
                break;
            }
            let wire = self.client_wire();
            self.deliver(&wire, cut);
        }
        assert!(!self.client.is_handshaking(), "the TLS handshake stalled");
        self.send(UPGRADE, cut);
        let end = find(&self.received, b"\r\n\r\n").expect("an HTTP response") + 4;
        assert!(
            self.received.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&self.received)
        );
        self.received.drain(..end);
    }

    /// The client sends `plain` (encrypted), cut into reads as `cut` says.
    fn send(&mut self, plain: &[u8], cut: Cut) {
        let mut wire = Vec::new();
        // rustls' client buffers at most 64 KiB of plaintext before it must be flushed.
        for chunk in plain.chunks(16 * 1024) {
            self.client
                .writer()
                .write_all(chunk)
                .expect("rustls buffers it");
            wire.extend(self.client_wire());
        }
        self.deliver(&wire, cut);
    }
}

/// What every runtime relies on in a step.
fn check(step: &Step, len: usize) {
    assert!(
        step.output.start <= step.output.end && step.output.end <= len,
        "{step:?}"
    );
    assert!(step.consumed <= len, "{step:?}");
    assert!(
        step.output.end <= step.consumed,
        "output kept as input: {step:?}"
    );
}

/// The records in `output`: (content type, length), which must tile it exactly.
fn records(mut output: &[u8]) -> Vec<(u8, usize)> {
    let mut found = Vec::new();
    while !output.is_empty() {
        assert!(output.len() >= 5, "a partial record header");
        let len = usize::from(u16::from_be_bytes([output[3], output[4]]));
        assert!(output.len() >= 5 + len, "a partial record");
        found.push((output[0], len));
        output = &output[5 + len..];
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The messages of the test: small, pipelined, and larger than one record.
fn messages() -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = (0..20).map(|i| vec![b'a' + i as u8; 1 + i * 7]).collect();
    messages.push((0..40_000u32).map(|i| (i % 251) as u8).collect());
    messages.push(vec![b'z'; 16 * 1024]);
    messages.push((0..70_000u32).map(|i| (i % 13) as u8).collect());
    messages
}

/// Text for the small ones, binary for the large ones.
fn opcode(message: &[u8]) -> u8 {
    if message.len() < 1000 {
        1
    } else {
        2
    }
}

fn echo_run(cut: Cut) -> (Vec<u8>, u64) {
    let mut pair = Pair::new();
    pair.connect(cut);
    let mut stream = Vec::new();
    for message in messages() {
        stream.extend(client_frame(opcode(&message), &message));
    }
    // All at once: the server meets several records, and partial ones, in one read.
    pair.send(&stream, cut);
    assert_eq!(pair.end, None, "{cut:?}");
    for (typ, len) in &pair.records {
        assert!(
            *len <= (1 << 14) + 256,
            "{cut:?}: a record of {len} bytes (type {typ})"
        );
    }
    (pair.received, pair.messages)
}

#[test]
fn the_echo_is_the_same_however_the_records_are_cut() {
    let expected: Vec<u8> = messages()
        .iter()
        .flat_map(|m| server_frame(opcode(m), m))
        .collect();
    let count = messages().len() as u64;
    for cut in [Cut::Whole, Cut::Random(7), Cut::Random(1234), Cut::Bytes] {
        let (received, messages) = echo_run(cut);
        assert_eq!(messages, count, "{cut:?}");
        assert!(received == expected, "{cut:?}: the echo differs");
    }
}

#[test]
fn a_large_echo_goes_back_in_records_of_one_fragment_each() {
    let mut pair = Pair::new();
    pair.connect(Cut::Whole);
    pair.records.clear();
    let message = vec![7u8; 100_000];
    pair.send(&client_frame(2, &message), Cut::Whole);
    assert_eq!(pair.received, server_frame(2, &message));
    let data: Vec<usize> = pair
        .records
        .iter()
        .filter(|(typ, _)| *typ == APPLICATION_DATA)
        .map(|(_, len)| *len)
        .collect();
    // 100_010 bytes of frame: six full records of 2^14 and the rest, each sealed alone.
    assert_eq!(data.len(), 7, "{data:?}");
    assert!(data.iter().all(|len| *len <= (1 << 14) + 256), "{data:?}");
}

/// A runtime's read fills all the room `after_write` leaves. A message that came in many reads
/// is encrypted back in one reply, which grows the buffer; the room must then be back within
/// its bound (twice the 16 KiB read chunk past what the buffer keeps), or a peer that sends
/// without reading would have each read take in as much as the last reply was long.
#[test]
fn a_buffer_grown_for_a_large_echo_gives_the_next_read_bounded_room() {
    let mut pair = Pair::new();
    pair.connect(Cut::Whole);
    let message = vec![7u8; 100_000];
    pair.send(&client_frame(2, &message), Cut::Random(99));
    assert_eq!(pair.received, server_frame(2, &message));
    let kept = pair.buf.len();
    let room = pair.buf.capacity() - kept;
    assert!(
        room <= kept + 2 * 16 * 1024,
        "{room} bytes of room for the next read, {kept} kept"
    );
}

#[test]
fn plaintext_on_the_tls_port_gets_an_alert_and_the_end() {
    let mut pair = Pair::new();
    pair.buf.extend_from_slice(UPGRADE);
    let step = pair.session.handle_read(&mut pair.buf, Instant::now());
    check(&step, pair.buf.len());
    assert_eq!(step.end, Some(End::Linger));
    let output = &pair.buf[step.output.clone()];
    let found = records(output);
    assert_eq!(found.first().map(|r| r.0), Some(ALERT), "{output:?}");
    assert_eq!(step.consumed, pair.buf.len(), "bad input is all consumed");
}

#[test]
fn a_corrupted_record_after_the_upgrade_gets_an_alert() {
    let mut pair = Pair::new();
    pair.connect(Cut::Whole);
    pair.client
        .writer()
        .write_all(&client_frame(1, b"hello"))
        .unwrap();
    let mut wire = pair.client_wire();
    let last = wire.len() - 1;
    wire[last] ^= 0x55;
    pair.buf.extend_from_slice(&wire);
    let step = pair.session.handle_read(&mut pair.buf, Instant::now());
    check(&step, pair.buf.len());
    assert_eq!(step.end, Some(End::Linger));
    assert_eq!(step.messages, 0);
    let output = &pair.buf[step.output.clone()];
    // Encrypted under TLS 1.3, the alert travels as application data; the client says what
    // it was.
    assert!(!records(output).is_empty(), "no alert sent");
    pair.client.read_tls(&mut &output[..]).unwrap();
    let error = pair.client.process_new_packets().unwrap_err();
    assert!(
        error.to_string().contains("BadRecordMac"),
        "the client got {error}"
    );
}

#[test]
fn bytes_after_the_peers_close_notify_are_ignored() {
    let mut pair = Pair::new();
    pair.connect(Cut::Whole);
    pair.client
        .writer()
        .write_all(&client_frame(1, b"before"))
        .unwrap();
    pair.client.send_close_notify();
    let mut wire = pair.client_wire();
    wire.extend_from_slice(b"\x17\x03\x03\x00\x05junk!");
    pair.buf.extend_from_slice(&wire);
    let step = pair.session.handle_read(&mut pair.buf, Instant::now());
    check(&step, pair.buf.len());
    assert_eq!(
        step.messages, 1,
        "the message before close_notify is echoed"
    );
    assert_eq!(step.consumed, pair.buf.len(), "what follows is dropped");
    let output = pair.buf[step.output.clone()].to_vec();
    pair.take_output(&output);
    assert_eq!(pair.received, server_frame(1, b"before"));
    // Later bytes are dropped too, rather than kept forever.
    pair.session.after_write(&mut pair.buf, &step);
    pair.buf.extend_from_slice(b"\x17\x03\x03\x00\x05more!");
    let step = pair.session.handle_read(&mut pair.buf, Instant::now());
    assert_eq!(step.consumed, pair.buf.len());
}

#[test]
fn a_close_frame_is_answered_then_close_notify() {
    let mut pair = Pair::new();
    pair.connect(Cut::Whole);
    pair.records.clear();
    let mut close = vec![0x03, 0xe8];
    close.extend_from_slice(b"bye");
    pair.send(&client_frame(8, &close), Cut::Whole);
    // Not `End::Close`, though nothing follows the close frame yet: over wss the peer's
    // close_notify may, and arriving unread it would turn our close into a reset.
    assert_eq!(pair.end, Some(End::Linger));
    // The close code comes back (RFC 6455 §5.5.1); the reason need not.
    assert_eq!(pair.received, server_frame(8, &close[..2]));
    // The close frame's record, then our close_notify.
    assert_eq!(pair.records.len(), 2, "{:?}", pair.records);
    let mut probe = [0u8; 1];
    assert_eq!(
        pair.client.reader().read(&mut probe).unwrap(),
        0,
        "the client saw close_notify"
    );
}

#[test]
fn damaged_records_end_the_connection_cleanly() {
    // A connected client's records, with one byte flipped, bytes dropped or junk inserted,
    // in random reads: every step keeps the contract (checked in `read`), nothing panics,
    // and the session either echoes everything or ends with a TLS error.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stream = Vec::new();
    for message in messages().iter().take(22) {
        stream.extend(client_frame(opcode(message), message));
    }
    for round in 0..60 {
        let mut pair = Pair::new();
        pair.connect(Cut::Whole);
        let mut wire = Vec::new();
        for chunk in stream.chunks(16 * 1024) {
            pair.client.writer().write_all(chunk).unwrap();
            wire.extend(pair.client_wire());
        }
        let at = rng.below(wire.len());
        match round % 3 {
            0 => wire[at] ^= 1 << rng.below(8),
            1 => {
                let len = 1 + rng.below(40.min(wire.len() - at));
                wire.drain(at..at + len);
            }
            _ => {
                let junk: Vec<u8> = (0..1 + rng.below(40))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                wire.splice(at..at, junk);
            }
        }
        let mut rest = &wire[..];
        while !rest.is_empty() && pair.end.is_none() {
            let n = 1 + rng.below(rest.len().min(5000));
            let (piece, after) = rest.split_at(n);
            rest = after;
            pair.buf.extend_from_slice(piece);
            let step = pair.session.handle_read(&mut pair.buf, Instant::now());
            check(&step, pair.buf.len());
            pair.end = step.end;
            pair.session.after_write(&mut pair.buf, &step);
        }
        assert!(
            pair.end == Some(End::Linger) || rest.is_empty(),
            "round {round}: {:?}",
            pair.end
        );
    }
}
