//! Slowloris: upgrade requests trickled a byte at a time and never finished. The server owes
//! no answer; it must drop each at its handshake timeout and serve everyone else meanwhile.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::kind::Kind;
use crate::outcome::{Outcome, Record};
use crate::target::{connect, Target};
use crate::wire;

/// A byte per connection this often: far slower than any request, fast enough that a server
/// timing out on silence alone (not on the request's total time) would never drop it.
const TRICKLE: Duration = Duration::from_millis(250);

/// What each connection sends first: an unfinished request.
const OPENING: &[u8] = b"GET / HTTP/1.1\r\nHost: slowloris\r\nX-Slow: ";

/// One slowloris connection until the server drops it or the handshake timeout (plus the
/// answer wait) passes.
pub fn one(target: &Target) -> Outcome {
    let mut conn = match Trickle::open(target) {
        Ok(conn) => conn,
        Err(e) => return Outcome::from_io(&e),
    };
    let give_up = conn.opened + target.handshake_timeout + target.answer_wait;
    while Instant::now() < give_up {
        if let Some(outcome) = conn.step() {
            return outcome;
        }
        thread::sleep(TRICKLE);
    }
    Outcome::Timeout
}

/// Keep `count` slowloris connections open until `until`, opening a new one for each the
/// server drops, at most `max_total` in all.
pub fn hold(target: &Target, count: usize, max_total: u64, until: Instant) -> Vec<Record> {
    let mut records = Vec::new();
    let mut open: Vec<Trickle> = Vec::with_capacity(count);
    let mut opened = 0u64;
    while Instant::now() < until {
        while open.len() < count && opened < max_total {
            opened += 1;
            match Trickle::open(target) {
                Ok(conn) => open.push(conn),
                Err(e) => records.push(record(Instant::now(), Outcome::from_io(&e))),
            }
        }
        open.retain_mut(|conn| match conn.step() {
            Some(outcome) => {
                records.push(record(conn.opened, outcome));
                false
            }
            None => true,
        });
        thread::sleep(TRICKLE);
    }
    let overdue = target.handshake_timeout + target.answer_wait;
    records.extend(open.into_iter().map(|conn| {
        let outcome = if conn.opened.elapsed() > overdue {
            Outcome::Timeout
        } else {
            Outcome::OpenAtEnd
        };
        record(conn.opened, outcome)
    }));
    records
}

fn record(opened: Instant, outcome: Outcome) -> Record {
    Record {
        kind: Kind::Slowloris,
        outcome,
        lifetime: opened.elapsed(),
        queued_bytes: None,
    }
}

/// One trickling connection, non-blocking.
struct Trickle {
    stream: TcpStream,
    opened: Instant,
}

impl Trickle {
    fn open(target: &Target) -> io::Result<Trickle> {
        let opened = Instant::now();
        let mut stream = connect(target)?;
        stream.write_all(OPENING)?;
        stream.set_nonblocking(true)?;
        Ok(Trickle { stream, opened })
    }

    /// Read what the server said, if anything, then send the next byte. `Some` once over.
    fn step(&mut self) -> Option<Outcome> {
        let mut answer = [0u8; 512];
        match self.stream.read(&mut answer) {
            Ok(0) => return Some(Outcome::Eof),
            Ok(n) => {
                return Some(match wire::parse_status(&answer[..n]) {
                    Some(status) => Outcome::Http(status),
                    None => Outcome::Error("answer is not HTTP".into()),
                })
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => return Some(Outcome::from_io(&e)),
        }
        match self.stream.write(b"a") {
            Ok(_) => None,
            Err(e) if is_retry(&e) => None,
            Err(e) => Some(Outcome::from_io(&e)),
        }
    }
}

/// Nothing to read or no room yet, or a stop signal interrupted the call: try next step.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
