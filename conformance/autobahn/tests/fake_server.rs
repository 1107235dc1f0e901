//! The runner against a tiny in-process echo server built on this crate's own codec: a
//! correct one must pass, and deliberate faults must show up as the verdict they deserve.
//! (The real servers are judged by `scripts/autobahn.sh`; this checks the judge.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use wsport_autobahn::cases;
use wsport_autobahn::handshake::accept_key;
use wsport_autobahn::runner::{run_case, CaseResult};
use wsport_autobahn::session::Env;
use wsport_autobahn::transport::Target;
use wsport_autobahn::verdict::Behavior;
use wsport_harness::frame::{self, opcode, Header};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Keeps TCP open for 3 s after the closing handshake.
    NoDrop,
    /// Echoes text messages as binary.
    Swap,
}

fn start(fault: Fault) -> Env {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s, fault));
        }
    });
    Env {
        target: Target::parse(&format!("ws://127.0.0.1:{port}")).unwrap(),
        tls: None,
        timeout: Duration::from_secs(5),
    }
}

fn send(s: &mut TcpStream, op: u8, payload: &[u8]) {
    let _ = s.write_all(&frame::encode_frame(Header::new(op, None, 0), payload));
}

/// Fails the connection: close with `code`, FIN, drain until the client closes.
fn fail(mut s: TcpStream, code: u16) {
    send(&mut s, opcode::CLOSE, &code.to_be_bytes());
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

/// A minimal echo server: no UTF-8 validation, no limits; enough protocol for the cases the
/// tests run.
fn serve(mut s: TcpStream, fault: Fault) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head = loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Key"))
                .unwrap();
            let key = std::str::from_utf8(key.value).unwrap().to_string();
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                accept_key(&key)
            );
            s.write_all(resp.as_bytes()).unwrap();
            break n;
        }
    };
    buf.drain(..head);
    let mut message: Option<(u8, Vec<u8>)> = None;
    loop {
        while let Some((f, used)) = frame::decode_frame(&buf, 1 << 26).unwrap() {
            buf.drain(..used);
            let control = opcode::is_control(f.opcode);
            let reserved = !matches!(f.opcode, 0..=2 | 8..=10);
            if f.mask.is_none()
                || f.rsv != 0
                || reserved
                || (control && (!f.fin || f.payload.len() > 125))
            {
                return fail(s, 1002);
            }
            match f.opcode {
                opcode::CLOSE => {
                    send(&mut s, opcode::CLOSE, &f.payload[..f.payload.len().min(2)]);
                    if fault == Fault::NoDrop {
                        std::thread::sleep(Duration::from_secs(3));
                    }
                    return;
                }
                opcode::PING => send(&mut s, opcode::PONG, &f.payload),
                opcode::PONG => {}
                op => {
                    match (&mut message, op) {
                        (None, opcode::CONTINUATION) | (Some(_), opcode::TEXT | opcode::BINARY) => {
                            return fail(s, 1002)
                        }
                        (None, _) => message = Some((op, f.payload)),
                        (Some((_, m)), _) => m.extend_from_slice(&f.payload),
                    }
                    if f.fin {
                        let (op, m) = message.take().unwrap();
                        let op = if fault == Fault::Swap && op == opcode::TEXT {
                            opcode::BINARY
                        } else {
                            op
                        };
                        send(&mut s, op, &m);
                    }
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn run(env: &Env, ids: &[&str]) -> Vec<CaseResult> {
    let all = cases::all();
    ids.iter()
        .map(|id| {
            let case = all
                .iter()
                .find(|c| c.id == *id)
                .unwrap_or_else(|| panic!("no case {id}"));
            run_case(case, env)
        })
        .collect()
}

fn assert_verdicts(results: &[CaseResult], want: Behavior) {
    for r in results {
        assert_eq!(r.behavior, want, "{}: {:?} / {}", r.id, r.reason, r.result);
    }
}

#[test]
fn a_correct_server_passes() {
    let env = start(Fault::None);
    let ok = [
        "1.1.1", "1.1.6", "1.2.8", "2.1", "2.5", "2.6", "2.10", "3.1", "3.3", "4.1.1", "4.2.5",
        "5.3", "5.6", "5.9", "6.2.3", "7.1.1", "7.3.4", "7.7.1", "7.7.13", "9.2.1", "10.1.1",
        "H.1.6", "H.5.1", "H.6.1", "H.6.2",
    ];
    assert_verdicts(&run(&env, &ok), Behavior::Ok);
    // Closing with 1001 is fine for 7.7.2 (echo the code or answer 1000).
    let r = run(&env, &["7.7.2"]);
    assert_eq!(r[0].close_code, Some(1001));
}

#[test]
fn a_server_that_skips_utf8_validation_fails_6_x() {
    let env = start(Fault::None);
    // It echoes the invalid text; the runner sees invalid UTF-8 from the server.
    let r = run(&env, &["6.3.1", "6.12.1"]);
    assert_verdicts(&r, Behavior::Failed);
    assert!(
        r[0].reason.as_deref().unwrap().contains("not valid UTF-8"),
        "{:?}",
        r[0].reason
    );
}

#[test]
fn a_server_that_swaps_opcodes_fails() {
    let env = start(Fault::Swap);
    assert_verdicts(
        &run(&env, &["1.1.2", "5.3", "9.1.1", "H.6.1"]),
        Behavior::Failed,
    );
    // Binary echoes are unaffected.
    assert_verdicts(&run(&env, &["1.2.2"]), Behavior::Ok);
}

#[test]
fn a_server_that_keeps_tcp_open_after_closing_is_non_strict() {
    let env = start(Fault::NoDrop);
    // 1.1.1: our kill timer drops TCP (FAILED BY CLIENT); 2.1: the server-drop timeout does
    // (UNCLEAN, but only by a SHOULD).
    let r = run(&env, &["1.1.1", "2.1"]);
    assert_verdicts(&r, Behavior::NonStrict);
    assert_eq!(
        r[0].autobahn.as_ref().unwrap().behavior_close.to_string(),
        "FAILED BY CLIENT"
    );
    assert_eq!(
        r[1].autobahn.as_ref().unwrap().behavior_close.to_string(),
        "UNCLEAN"
    );
}
