//! The attacks on the TLS layer itself, wss only: plain HTTP to the TLS port, and a record
//! that does not decrypt after a finished handshake. (`tls-slowloris` trickles beside the
//! other slowloris, in [`crate::slowloris`].) Both owe a fatal alert (RFC 8446 §6.2).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::alert::{self, Answer};
use crate::outcome::Outcome;
use crate::target::{connect_tcp, Target};
use crate::tls::TlsStream;
use crate::wire;

/// `tls-garbage`: the upgrade request a ws:// client would send, to the wss:// port. Its
/// first byte (`G`, 0x47) is no record content type, so the server cannot decode a record:
/// `decode_error`, in plaintext since there are no keys.
pub fn garbage(target: &Target) -> Outcome {
    if target.tls.is_none() {
        return needs_wss();
    }
    let mut tcp = match connect_tcp(target) {
        Ok(tcp) => tcp,
        Err(e) => return Outcome::from_io(&e),
    };
    let request = wire::upgrade_request(&target.addr.to_string(), "");
    // The server may alert and close before it has read everything: a failed write is fine
    // as long as the alert arrives.
    let _ = tcp.write_all(&request);
    read_alert(&mut tcp)
}

/// Read until a whole plaintext alert record, the end of the stream, or the answer wait.
fn read_alert(tcp: &mut TcpStream) -> Outcome {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match tcp.read(&mut chunk) {
            Ok(0) => return Outcome::Eof,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A read with SO_RCVTIMEO is not restarted after a stop signal (signal(7)).
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::from_io(&e),
        }
        match alert::parse(&answer) {
            Answer::Alert(code) => return Outcome::TlsAlert(code),
            Answer::Partial => {}
            Answer::Other => return Outcome::Error("answer is not a TLS alert".into()),
        }
    }
}

/// `tls-bad-record`: a finished handshake, then the upgrade request in a record whose tag was
/// flipped. RFC 8446 §5.2: a record that fails to decrypt MUST end the connection with
/// `bad_record_mac` (encrypted now; our stream decrypts it into [`Outcome::TlsAlert`]).
pub fn bad_record(target: &Target) -> Outcome {
    let Some(config) = &target.tls else {
        return needs_wss();
    };
    let handshake = connect_tcp(target).and_then(|tcp| TlsStream::handshake(config, tcp));
    let mut tls = match handshake {
        Ok(tls) => tls,
        Err(e) => return Outcome::from_io(&e),
    };
    let request = wire::upgrade_request(&target.addr.to_string(), "");
    if let Err(e) = tls.send_tampered(&request) {
        return Outcome::from_io(&e);
    }
    let mut plain = [0u8; 512];
    loop {
        return match tls.read(&mut plain) {
            Ok(0) => Outcome::Eof,
            Ok(_) => Outcome::Error("answered a record it cannot have decrypted".into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Outcome::from_io(&e),
        };
    }
}

fn needs_wss() -> Outcome {
    Outcome::Error("a TLS kind needs a wss target (--wss)".into())
}
