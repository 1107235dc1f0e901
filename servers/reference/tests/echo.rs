//! The reference servers, as run-bench runs them: each binary is started on a kernel-chosen
//! port, announces it, and echoes over a real socket (a tungstenite client, independent of
//! both references' server code). Flags they do not take are refused in one line.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tungstenite::{Message, WebSocket};

const REFERENCES: [&str; 2] = [
    env!("CARGO_BIN_EXE_wsport-ref-tungstenite"),
    env!("CARGO_BIN_EXE_wsport-ref-fastwebsockets"),
];

/// A running reference server, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `binary` on a free port and wait (bounded) for its `listening ws://...` line.
fn start(binary: &str) -> Server {
    let mut child = Command::new(binary)
        .args(["--listen", "ws://127.0.0.1:0", "--threads", "1", "--no-pin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        child,
        addr: String::new(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{binary} did not announce a listener"));
    server.addr = line
        .strip_prefix("listening ws://")
        .unwrap_or_else(|| panic!("{binary} printed {line:?}"))
        .to_owned();
    server
}

fn connect(server: &Server) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(&server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let url = format!("ws://{}/", server.addr);
    let (ws, response) = tungstenite::client::client(url.as_str(), stream).expect("upgrade");
    assert_eq!(response.status(), 101);
    ws
}

/// The next message. A read with a timeout is not restarted after a stop signal (signal(7)):
/// `EINTR` is the host pausing the test, not the server, so read again.
fn read(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other.expect("read"),
        }
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn each_reference_echoes_binary_and_text_messages_of_every_length_class() {
    for binary in REFERENCES {
        let server = start(binary);
        let mut ws = connect(&server);
        // RFC 6455 §5.2: 7-bit, 16-bit and 64-bit payload lengths.
        for (i, len) in [0usize, 1, 64, 125, 126, 65_535, 65_536, 100_000]
            .into_iter()
            .enumerate()
        {
            let sent = payload(len, i as u8);
            ws.send(Message::binary(sent.clone())).expect("send");
            match read(&mut ws) {
                Message::Binary(echo) => assert_eq!(echo, sent, "{binary}: {len} bytes"),
                other => panic!("{binary}: {len} bytes came back as {other:?}"),
            }
        }
        ws.send(Message::text("héllo, wörld")).expect("send");
        assert_eq!(read(&mut ws), Message::text("héllo, wörld"), "{binary}");
        // §5.5.2: a ping is answered with a pong carrying its payload.
        ws.send(Message::Ping(b"are you there".to_vec()))
            .expect("ping");
        assert_eq!(
            read(&mut ws),
            Message::Pong(b"are you there".to_vec()),
            "{binary}"
        );
        ws.close(None).expect("close");
    }
}

#[test]
fn each_reference_serves_several_connections_at_once() {
    for binary in REFERENCES {
        let server = start(binary);
        let mut all: Vec<_> = (0..8).map(|_| connect(&server)).collect();
        for (i, ws) in all.iter_mut().enumerate() {
            ws.send(Message::binary(payload(64, i as u8)))
                .expect("send");
        }
        for (i, ws) in all.iter_mut().enumerate() {
            assert_eq!(
                read(ws),
                Message::binary(payload(64, i as u8)),
                "{binary}: connection {i}"
            );
        }
    }
}

#[test]
fn flags_a_reference_does_not_take_are_refused_in_one_line() {
    let refused: [&[&str]; 3] = [
        &["--listen", "ws://127.0.0.1:0", "--idle-timeout", "3s"],
        &["--listen", "wss://127.0.0.1:0"],
        &["--listen", "ws://127.0.0.1:0", "--threads", "2"],
    ];
    for binary in REFERENCES {
        for args in refused {
            let out = Command::new(binary)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("{binary}: {e}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{binary} {args:?} was accepted");
            assert_eq!(stderr.lines().count(), 1, "{binary} {args:?}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{binary} {args:?} announced a listener"
            );
        }
    }
}
