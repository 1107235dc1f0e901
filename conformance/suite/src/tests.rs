//! The harness checked against a server it does not test: tungstenite's, in-process, over
//! plain TCP and rustls. If these pass, a failing conformance case is about the server.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tungstenite::Message;

use crate::frame::{opcode, Frame};
use crate::raw::{Event, RawConn};
use crate::server::{Endpoint, Scheme};
use crate::{tls, ws};

/// A tungstenite echo server on a loopback port; threads end with the test process.
fn tungstenite_server(scheme: Scheme) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            thread::spawn(move || match scheme {
                Scheme::Ws => echo(tcp),
                Scheme::Wss => echo(rustls::StreamOwned::new(tls_server(), tcp)),
            });
        }
    });
    Endpoint {
        server: "tungstenite-test",
        scheme,
        addr,
        tls: (scheme == Scheme::Wss).then(tls::trusting_client),
    }
}

fn tls_server() -> rustls::ServerConnection {
    let cert = tls::test_cert();
    let key = PrivatePkcs8KeyDer::from(cert.key_der.clone()).into();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::clone(&cert.cert_der)], key)
    .unwrap();
    rustls::ServerConnection::new(Arc::new(config)).unwrap()
}

fn echo<S: std::io::Read + std::io::Write>(stream: S) {
    let Ok(mut socket) = tungstenite::accept(stream) else {
        return;
    };
    while let Ok(message) = socket.read() {
        if (message.is_text() || message.is_binary()) && socket.send(message).is_err() {
            return;
        }
    }
}

fn both() -> [Endpoint; 2] {
    [
        tungstenite_server(Scheme::Ws),
        tungstenite_server(Scheme::Wss),
    ]
}

#[test]
fn raw_frames_round_trip() {
    for ep in both() {
        let mut conn = RawConn::upgrade(&ep).unwrap();
        for len in [0, 1, 125, 126, 65535, 65536, 200_000] {
            let payload = ws::binary_of_len(len);
            conn.send(&Frame::binary(payload.clone())).unwrap();
            conn.expect_echo(opcode::BINARY, &payload).unwrap();
        }
        // A three-way split through "€" and "𝄞": tungstenite reassembles and echoes it whole.
        let text = "a€b𝄞c".as_bytes();
        conn.send(&Frame::text(&text[..2]).fin(false)).unwrap();
        conn.send(&Frame::continuation(&text[2..6]).fin(false))
            .unwrap();
        conn.send(&Frame::continuation(&text[6..])).unwrap();
        conn.expect_echo(opcode::TEXT, text).unwrap();

        conn.send_all(&[
            Frame::text("hel").fin(false),
            Frame::ping("mid"),
            Frame::continuation("lo"),
        ])
        .unwrap();
        let message = conn.read_message().unwrap();
        assert_eq!(message.payload, b"hello");
        assert_eq!(message.controls.len(), 1);
        assert_eq!(message.controls[0].opcode, opcode::PONG);
        assert_eq!(message.controls[0].payload, b"mid");

        let frame = Frame::text("split writes").encode();
        conn.send_in_pieces(&frame, &[1, 1, 3], Duration::from_millis(1), "split")
            .unwrap();
        conn.expect_echo(opcode::TEXT, b"split writes").unwrap();

        conn.send(&Frame::close(1000, b"bye")).unwrap();
        conn.expect_close(&[1000]).unwrap();
    }
}

#[test]
fn failures_name_what_was_sent() {
    let ep = tungstenite_server(Scheme::Ws);
    let mut conn = RawConn::upgrade(&ep).unwrap();
    conn.send(&Frame::text("hello")).unwrap();
    let err = conn.expect_close(&[1002]).unwrap_err();
    assert!(
        err.contains("expected a close frame with code 1002"),
        "{err}"
    );
    assert!(
        err.contains("got text frame fin=1 len=5 \"hello\""),
        "{err}"
    );
    assert!(err.contains("sent: [valid upgrade request]"), "{err}");
    assert!(err.contains("[text fin=1 len=5 \"hello\"]"), "{err}");
}

#[test]
fn tungstenite_client_over_ws_and_wss() {
    for ep in both() {
        let mut client = ws::connect(&ep).unwrap();
        ws::echo(&mut client, Message::text("hi")).unwrap();
        ws::echo(&mut client, Message::binary(ws::binary_of_len(70_000))).unwrap();
        ws::close(&mut client).unwrap();
    }
}

#[test]
fn closed_connections_are_seen_as_such() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        // First: close at once. Second: read for a second, then close.
        let (first, _) = listener.accept().unwrap();
        drop(first);
        let (second, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(1));
        drop(second);
    });
    let ep = Endpoint {
        server: "test",
        scheme: Scheme::Ws,
        addr,
        tls: None,
    };

    let mut conn = RawConn::connect(&ep).unwrap();
    let _ = conn.send_request(&crate::http::Request::upgrade(&ep));
    assert!(matches!(
        conn.try_read_response(),
        Err(Event::Eof | Event::Reset)
    ));

    let mut slow = RawConn::over(crate::raw::Stream::Plain(
        crate::raw::tcp_connect(addr).unwrap(),
    ));
    let start = Instant::now();
    let closed_after = slow
        .trickle_until_closed(
            b"GET / HTTP/1.1\r\n",
            Duration::from_millis(100),
            Duration::from_secs(3),
        )
        .unwrap();
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn client_hello_looks_like_tls() {
    let hello = tls::client_hello(tls::trusting_client());
    assert_eq!(hello[0], 0x16, "handshake record");
    assert!(hello.len() > 50);
}

/// The stress test's non-blocking client: poll-driven echoes over ws and wss, large enough
/// to take several reads, then a clean close that ends in EOF.
#[test]
fn nonblocking_stream_echoes_and_closes() {
    use crate::raw::MAX_SERVER_FRAME;
    use crate::stress::{poll, pollfd, NbStream, POLLIN, POLLOUT};
    let decode = |b: &[u8]| crate::frame::decode_frame(b, MAX_SERVER_FRAME);

    fn until(stream: &mut NbStream, inbuf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut eof = false;
        while !done(inbuf) && !eof && Instant::now() < deadline {
            let out = if stream.wants_write() { POLLOUT } else { 0 };
            let mut fds = [pollfd {
                fd: stream.fd(),
                events: POLLIN | out,
                revents: 0,
            }];
            poll(&mut fds, 100).unwrap();
            stream.flush().unwrap();
            eof = stream.read_available(inbuf).unwrap().eof;
        }
        eof
    }

    for ep in both() {
        let (mut stream, mut inbuf) = NbStream::upgrade(&ep).unwrap();
        assert_eq!(stream.is_tls(), ep.scheme == Scheme::Wss);
        for len in [1, 16 * 1024, 300_000] {
            let payload = ws::binary_of_len(len);
            stream.queue(&Frame::binary(payload.clone()).encode());
            until(&mut stream, &mut inbuf, |b| {
                matches!(decode(b), Ok(Some(_)))
            });
            let (frame, used) = decode(&inbuf).unwrap().unwrap();
            inbuf.drain(..used);
            assert_eq!(
                (frame.opcode, frame.payload),
                (opcode::BINARY, payload),
                "{ep}"
            );
        }
        stream.queue(&Frame::close(1000, b"").encode());
        let eof = until(&mut stream, &mut inbuf, |_| false);
        assert!(eof, "{ep}: no EOF after the close handshake");
        let (close, _) = decode(&inbuf).unwrap().unwrap();
        assert_eq!(close.close_code(), Some(1000), "{ep}");
    }
}

#[test]
fn open_fds_counts_this_process() {
    let before = crate::stress::open_fds(std::process::id()).unwrap();
    assert!(before >= 3, "stdin, stdout, stderr at least: {before}");
    let limit = crate::stress::raise_nofile(64).unwrap();
    assert!(limit >= 64);
}
