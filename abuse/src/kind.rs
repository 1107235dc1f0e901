//! The kinds of abuse, by name.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One way to abuse a WebSocket server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An upgrade request trickled a byte at a time, never finished.
    Slowloris,
    /// An upgrade request with headers over the server's limit: HTTP 431 (RFC 6585 §5).
    BigHeader,
    /// A frame announcing 2^63 - 1 bytes, over any frame limit: close 1009 (§7.4.1).
    HugeFrame,
    /// A frame announcing 2^63 bytes: the length's most significant bit must be 0 (§5.2),
    /// so close 1002.
    LengthMsb,
    /// A text frame that is not UTF-8: close 1007 (§8.1).
    BadUtf8,
    /// A client frame without a mask: close 1002 (§5.1).
    Unmasked,
    /// Half a frame, then a TCP reset (SO_LINGER 0).
    ResetMidFrame,
    /// A client that sends and never reads: the server must stop reading (bounded queue).
    NeverRead,
    /// A thousand pings at once: every one answered with a pong (§5.5.2), then the close.
    PingFlood,
    /// wss only: a TLS ClientHello trickled a byte at a time, its last byte never sent.
    TlsSlowloris,
    /// wss only: plain HTTP to the TLS port: `decode_error` (RFC 8446 §6.2, not a record).
    TlsGarbage,
    /// wss only: a finished handshake, then a record that does not decrypt: `bad_record_mac`
    /// (RFC 8446 §5.2: the receiver MUST terminate the connection with it).
    TlsBadRecord,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 12] = [
        Kind::Slowloris,
        Kind::BigHeader,
        Kind::HugeFrame,
        Kind::LengthMsb,
        Kind::BadUtf8,
        Kind::Unmasked,
        Kind::ResetMidFrame,
        Kind::NeverRead,
        Kind::PingFlood,
        Kind::TlsSlowloris,
        Kind::TlsGarbage,
        Kind::TlsBadRecord,
    ];

    /// The kinds a run makes when none are named: the TLS ones only against a wss listener.
    pub fn defaults(wss: bool) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| wss || !k.is_tls())
            .collect()
    }

    /// Whether this kind attacks the TLS layer itself (it needs a wss listener).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Kind::TlsSlowloris | Kind::TlsGarbage | Kind::TlsBadRecord
        )
    }

    /// Whether its connections are held open for the run (the others end by themselves in
    /// well under a second and are opened over and over).
    pub fn is_held(self) -> bool {
        matches!(self, Kind::Slowloris | Kind::TlsSlowloris | Kind::NeverRead)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Slowloris => "slowloris",
            Kind::BigHeader => "big-header",
            Kind::HugeFrame => "huge-frame",
            Kind::LengthMsb => "length-msb",
            Kind::BadUtf8 => "bad-utf8",
            Kind::Unmasked => "unmasked",
            Kind::ResetMidFrame => "reset-mid-frame",
            Kind::NeverRead => "never-read",
            Kind::PingFlood => "ping-flood",
            Kind::TlsSlowloris => "tls-slowloris",
            Kind::TlsGarbage => "tls-garbage",
            Kind::TlsBadRecord => "tls-bad-record",
        }
    }

    /// The ending RFC 6455 (RFC 8446 for the TLS kinds) asks for, in words, for reports.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Slowloris | Kind::TlsSlowloris => "dropped at the handshake timeout (eof/reset)",
            Kind::BigHeader => "http 431",
            Kind::HugeFrame => "close 1009",
            Kind::LengthMsb | Kind::Unmasked => "close 1002",
            Kind::BadUtf8 => "close 1007",
            Kind::ResetMidFrame => "reset sent; others unharmed",
            Kind::NeverRead => "blocked (server stops reading)",
            Kind::PingFlood => "every pong, then close 1000",
            Kind::TlsGarbage => "tls alert 50 (decode_error)",
            Kind::TlsBadRecord => "tls alert 20 (bad_record_mac)",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown abuse kind {text:?} (one of {})", names.join(", "))
            })
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_kinds_are_default_only_on_wss() {
        assert_eq!(Kind::defaults(true), Kind::ALL);
        let ws = Kind::defaults(false);
        assert_eq!(ws.len(), 9);
        assert!(ws.iter().all(|k| !k.is_tls()));
    }

    #[test]
    fn names_parse_back() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        }
    }
}
