//! How an abusive connection ended, and whether that is the ending RFC 6455 asks for.

use std::fmt;
use std::io;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::alert;
use crate::kind::Kind;

/// How one abusive connection ended, as this client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered the upgrade with this HTTP status.
    Http(u16),
    /// The server sent a close frame with this code.
    Close(u16),
    /// The server sent this TLS alert (RFC 8446 §6), fatal or a close_notify before the keys.
    TlsAlert(u8),
    /// The server closed the TCP connection without an answer.
    Eof,
    /// The server reset the connection.
    Reset,
    /// No answer within the wait: the server neither answered nor closed.
    Timeout,
    /// Still open when the run ended, and younger than the server's handshake timeout.
    OpenAtEnd,
    /// We reset the connection ourselves (SO_LINGER 0) as planned.
    ResetSent,
    /// The server stopped taking our bytes after this many: it bounds its queue.
    Blocked { bytes: u64 },
    /// The server took this many bytes and still wanted more: it queues without bound.
    Unbounded { bytes: u64 },
    /// The ping flood got back only this many of its pongs before the close.
    PongsMissing { sent: u32, got: u32 },
    /// Closed or reset by the server after living past its handshake timeout: this client
    /// itself was too slow to reach its attack (starved of CPU, as a generator in the idle
    /// class on a busy core is), and the server dropped it as it drops any client that does
    /// not finish its handshake in time. Counted apart, not as a wrong ending.
    TooSlow,
    /// Anything else (refused connect, a malformed answer).
    Error(String),
}

impl Outcome {
    /// An IO error classified: a TLS alert, reset, end of stream, timeout, or something else.
    pub fn from_io(error: &io::Error) -> Outcome {
        if let Some(code) = crate::tls::alert_received(error) {
            return Outcome::TlsAlert(code);
        }
        match error.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Outcome::Reset,
            io::ErrorKind::UnexpectedEof => Outcome::Eof,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Outcome::Timeout,
            _ => Outcome::Error(error.to_string()),
        }
    }

    /// Whether `kind` ended the RFC way with this outcome (RFC 6455 §5.2, §7.4.1, §8.1,
    /// §10.4; RFC 6585 §5 for 431; RFC 8446 §5.2, §6.2 for the TLS kinds).
    pub fn is_expected_for(&self, kind: Kind) -> bool {
        if *self == Outcome::TooSlow {
            return true;
        }
        match kind {
            // The server drops a slowloris at its handshake timeout: no answer is owed (an
            // unfinished ClientHello is no record, so no alert is owed either).
            Kind::Slowloris | Kind::TlsSlowloris => {
                matches!(self, Outcome::Eof | Outcome::Reset | Outcome::OpenAtEnd)
            }
            Kind::BigHeader => *self == Outcome::Http(431),
            Kind::HugeFrame => *self == Outcome::Close(1009),
            Kind::LengthMsb | Kind::Unmasked => *self == Outcome::Close(1002),
            Kind::BadUtf8 => *self == Outcome::Close(1007),
            Kind::ResetMidFrame => *self == Outcome::ResetSent,
            Kind::NeverRead => matches!(self, Outcome::Blocked { .. }),
            Kind::PingFlood => *self == Outcome::Close(1000),
            Kind::TlsGarbage => *self == Outcome::TlsAlert(50),
            Kind::TlsBadRecord => *self == Outcome::TlsAlert(20),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Http(status) => write!(f, "http {status}"),
            Outcome::Close(code) => write!(f, "close {code}"),
            Outcome::TlsAlert(code) => write!(f, "tls alert {code} ({})", alert::name(*code)),
            Outcome::Eof => f.write_str("eof"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::OpenAtEnd => f.write_str("open at end"),
            Outcome::ResetSent => f.write_str("reset sent"),
            Outcome::Blocked { .. } => f.write_str("blocked"),
            Outcome::Unbounded { .. } => f.write_str("unbounded"),
            Outcome::PongsMissing { .. } => f.write_str("pongs missing"),
            Outcome::TooSlow => f.write_str("dropped, ours too slow"),
            Outcome::Error(why) => write!(f, "error: {why}"),
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `outcome` of a `kind` connection that lived `lifetime`, the server's handshake timeout
/// being `handshake_timeout`: a wrong-looking end (closed or reset) of one that outlived the
/// timeout is [`Outcome::TooSlow`]. The churn kinds get their answer within milliseconds of
/// connecting (median 0 ms); one that took seconds was held up on our side before its attack.
pub fn excuse_slow(
    kind: Kind,
    outcome: Outcome,
    lifetime: Duration,
    handshake_timeout: Duration,
) -> Outcome {
    let dropped = matches!(outcome, Outcome::Eof | Outcome::Reset);
    if dropped && !outcome.is_expected_for(kind) && lifetime >= handshake_timeout {
        Outcome::TooSlow
    } else {
        outcome
    }
}

/// One abusive connection's record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub kind: Kind,
    pub outcome: Outcome,
    /// From connect to the ending.
    #[serde(serialize_with = "as_millis")]
    pub lifetime: Duration,
    /// Bytes the server accepted before blocking (never-read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_bytes: Option<u64>,
}

fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rfc_answer_counts() {
        assert!(Outcome::Close(1009).is_expected_for(Kind::HugeFrame));
        assert!(!Outcome::Close(1002).is_expected_for(Kind::HugeFrame));
        assert!(!Outcome::Eof.is_expected_for(Kind::BigHeader));
        assert!(!Outcome::Timeout.is_expected_for(Kind::Slowloris));
        assert!(!Outcome::Unbounded { bytes: 1 }.is_expected_for(Kind::NeverRead));
        assert!(Outcome::TlsAlert(20).is_expected_for(Kind::TlsBadRecord));
        assert!(!Outcome::Eof.is_expected_for(Kind::TlsBadRecord));
        assert!(!Outcome::TlsAlert(10).is_expected_for(Kind::TlsGarbage));
        assert!(!Outcome::TlsAlert(0).is_expected_for(Kind::TlsSlowloris));
    }

    #[test]
    fn a_drop_after_the_handshake_timeout_is_ours_and_a_quick_one_is_not() {
        let timeout = Duration::from_secs(2);
        let slow = Duration::from_millis(2431);
        let quick = Duration::from_millis(3);
        let kind = Kind::PingFlood;
        assert_eq!(
            excuse_slow(kind, Outcome::Reset, slow, timeout),
            Outcome::TooSlow
        );
        assert_eq!(
            excuse_slow(kind, Outcome::Reset, quick, timeout),
            Outcome::Reset
        );
        // A wrong answer stays wrong however long it took; a right one stays itself.
        assert_eq!(
            excuse_slow(kind, Outcome::Close(1002), slow, timeout),
            Outcome::Close(1002)
        );
        assert_eq!(
            excuse_slow(Kind::ResetMidFrame, Outcome::ResetSent, slow, timeout),
            Outcome::ResetSent
        );
        assert!(Outcome::TooSlow.is_expected_for(kind));
        // The decoy run of results/2026-12-07-vm/abuse-decoy: a never-read connection reset
        // after 2.7 s, its generator starved before it upgraded.
        let never_read = excuse_slow(
            Kind::NeverRead,
            Outcome::Reset,
            Duration::from_millis(2700),
            timeout,
        );
        assert_eq!(never_read, Outcome::TooSlow);
        assert!(never_read.is_expected_for(Kind::NeverRead));
    }

    #[test]
    fn alerts_read_with_their_names() {
        assert_eq!(
            Outcome::TlsAlert(50).to_string(),
            "tls alert 50 (decode_error)"
        );
    }
}
