//! One abusive connection of each kind, start to end, on blocking sockets with timeouts.
//!
//! Slowloris and never-read connections are held many at a time by their own loops
//! ([`crate::slowloris`], [`crate::hold`]); the one-connection forms here serve those loops
//! and the tests.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::kind::Kind;
use crate::outcome::{excuse_slow, Outcome, Record};
use crate::stream::Stream;
use crate::target::{connect, over, Target};
use crate::wire::{self, BINARY, CLOSE, PING, PONG, TEXT};

/// Pings in one flood.
pub const FLOOD_PINGS: u32 = 1000;
/// Never-read: a write blocked this long means the server stopped reading.
const BLOCKED_AFTER: Duration = Duration::from_millis(500);
/// Never-read: past this many bytes taken, the server queues without bound.
pub const UNBOUNDED_BYTES: u64 = 256 << 20;

/// Run one connection of `kind` to its end.
pub fn attack(kind: Kind, target: &Target) -> Record {
    let started = Instant::now();
    let mut queued_bytes = None;
    let outcome = match kind {
        Kind::Slowloris | Kind::TlsSlowloris => crate::slowloris::one(kind, target),
        Kind::BigHeader => big_header(target),
        Kind::HugeFrame => bad_frame(target, wire::header(BINARY, (1 << 63) - 1, true)),
        Kind::LengthMsb => bad_frame(target, wire::header(BINARY, 1 << 63, true)),
        Kind::BadUtf8 => bad_frame(target, wire::frame(TEXT, &[b'o', b'k', 0xff, 0xfe], true)),
        Kind::Unmasked => bad_frame(target, wire::frame(BINARY, b"no mask", false)),
        Kind::ResetMidFrame => reset_mid_frame(target),
        Kind::NeverRead => {
            let (outcome, _stream) = never_read(target);
            if let Outcome::Blocked { bytes } | Outcome::Unbounded { bytes } = outcome {
                queued_bytes = Some(bytes);
            }
            outcome
        }
        Kind::PingFlood => ping_flood(target),
        Kind::TlsGarbage => crate::tls_attack::garbage(target),
        Kind::TlsBadRecord => crate::tls_attack::bad_record(target),
    };
    let lifetime = started.elapsed();
    Record {
        kind,
        outcome: excuse_slow(kind, outcome, lifetime, target.handshake_timeout),
        lifetime,
        queued_bytes,
    }
}

/// A connection past its upgrade, or the outcome that stopped it.
fn upgraded(target: &Target) -> Result<Stream, Outcome> {
    let stream = connect(target).map_err(|e| Outcome::from_io(&e))?;
    upgraded_on(stream, target)
}

/// A 16 KiB header, over the 8 KiB default: answered before the upgrade.
fn big_header(target: &Target) -> Outcome {
    let mut stream = match connect(target) {
        Ok(stream) => stream,
        Err(e) => return Outcome::from_io(&e),
    };
    let padding = format!("X-Padding: {}\r\n", "a".repeat(16 * 1024));
    let request = wire::upgrade_request(&target.addr.to_string(), &padding);
    // The server may answer and close before it has read everything: a failed write is
    // fine as long as the answer arrives.
    let _ = stream.write_all(&request);
    match wire::read_http_status(&mut stream) {
        Ok(status) => Outcome::Http(status),
        Err(e) => Outcome::from_io(&e),
    }
}

/// Upgrade, send `bytes`, and report the close the server answers with.
fn bad_frame(target: &Target, bytes: Vec<u8>) -> Outcome {
    let mut stream = match upgraded(target) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    if let Err(e) = stream.write_all(&bytes) {
        return Outcome::from_io(&e);
    }
    await_close(&mut stream).0
}

/// Read frames until the server's close; also counts the pongs on the way.
fn await_close(stream: &mut Stream) -> (Outcome, u32) {
    let mut pongs = 0;
    loop {
        match wire::read_frame(stream) {
            Ok(frame) if frame.opcode == CLOSE => {
                return (Outcome::Close(frame.close_code()), pongs)
            }
            Ok(frame) if frame.opcode == PONG => pongs += 1,
            Ok(_) => {}
            Err(e) => return (Outcome::from_io(&e), pongs),
        }
    }
}

/// Upgrade, announce 1,000 bytes, send 10, then reset (SO_LINGER 0 makes close send RST).
fn reset_mid_frame(target: &Target) -> Outcome {
    let mut stream = match upgraded(target) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let mut bytes = wire::header(BINARY, 1000, true);
    bytes.extend_from_slice(&[0u8; 10]);
    if let Err(e) = stream.write_all(&bytes) {
        return Outcome::from_io(&e);
    }
    match stream.reset() {
        Ok(()) => Outcome::ResetSent,
        Err(e) => Outcome::Error(format!("SO_LINGER: {e}")),
    }
}

/// Upgrade with a tiny receive buffer, then send echo requests and never read. The
/// server's replies fill our window; a server that bounds its queue then stops reading, and
/// our writes block. Returns the stream so the caller may hold it.
pub fn never_read(target: &Target) -> (Outcome, Option<Stream>) {
    let setup = small_window(target)
        .and_then(|tcp| over(target, tcp))
        .map_err(|e| Outcome::from_io(&e))
        .and_then(|stream| upgraded_on(stream, target));
    let mut stream = match setup {
        Ok(stream) => stream,
        // As it came (a reset stays a reset), so that a drop after the handshake timeout can
        // be told from a wrong answer (`excuse_slow`).
        Err(outcome) => return (outcome, None),
    };
    if let Err(e) = stream.set_write_timeout(Some(BLOCKED_AFTER)) {
        return (Outcome::from_io(&e), None);
    }
    let frame = wire::frame(BINARY, &vec![b'x'; target.frame_bytes], true);
    let mut bytes = 0u64;
    let mut at = 0;
    while bytes < UNBOUNDED_BYTES {
        match stream.write(&frame[at..]) {
            Ok(n) => {
                bytes += n as u64;
                at = (at + n) % frame.len();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (Outcome::Blocked { bytes }, Some(stream));
            }
            // A timed write is not restarted after a stop signal (signal(7)): write again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Outcome::from_io(&e), None),
        }
    }
    (Outcome::Unbounded { bytes }, Some(stream))
}

/// A socket with a 4 KiB receive buffer, set before connect so the window starts small.
fn small_window(target: &Target) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(target.addr), Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    socket.connect_timeout(&target.addr.into(), target.answer_wait)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(target.answer_wait))?;
    stream.set_write_timeout(Some(target.answer_wait))?;
    Ok(stream)
}

fn upgraded_on(mut stream: Stream, target: &Target) -> Result<Stream, Outcome> {
    match wire::upgrade(&mut stream, &target.addr.to_string()) {
        Ok(101) => Ok(stream),
        Ok(status) => Err(Outcome::Http(status)),
        Err(e) => Err(Outcome::from_io(&e)),
    }
}

/// A thousand pings in one write, then our close. RFC 6455 §5.5.3 lets a server answer only
/// the latest of several pings, so at least one pong is owed, then the close echoed.
fn ping_flood(target: &Target) -> Outcome {
    let mut stream = match upgraded(target) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let ping = wire::frame(PING, b"flood", true);
    let mut bytes = ping.repeat(FLOOD_PINGS as usize);
    bytes.extend_from_slice(&wire::frame(CLOSE, &1000u16.to_be_bytes(), true));
    if let Err(e) = stream.write_all(&bytes) {
        return Outcome::from_io(&e);
    }
    match await_close(&mut stream) {
        (Outcome::Close(_), 0) => Outcome::PongsMissing {
            sent: FLOOD_PINGS,
            got: 0,
        },
        (outcome, _) => outcome,
    }
}
