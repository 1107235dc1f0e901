//! The io_uring-specific hazards of `wsport-tokio-uring`, tested on the binary: operations in
//! flight cannot be cancelled, so timers, heartbeats and shutdown must neither lose the bytes a
//! pending read takes nor leave a connection hanging on it. (Protocol behaviour is the
//! conformance suite's job, shared with every server.)
//!
//! Each test skips, with a notice, where io_uring cannot be set up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A frame sent in `PIECES` writes `GAP` apart, each gap longer than the 100 ms ping interval
/// (heartbeats go to silent connections), so the server's heartbeat timer fires again and
/// again while its read is in flight mid-frame. A read dropped on a timer (the readiness
/// idiom) would lose a piece, and the echo would never come or come corrupted.
#[test]
fn frames_trickled_across_heartbeats_echo_intact() {
    if !io_uring_available() {
        return;
    }
    const CONNECTIONS: usize = 8;
    const MESSAGES: usize = 3;
    const PIECES: usize = 8;
    const GAP: Duration = Duration::from_millis(150);
    let mut server = Server::start(&[
        "--ping-interval",
        "100ms",
        "--ping-timeout",
        "10s",
        "--idle-timeout",
        "30s",
    ]);
    let addr = server.addr;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            thread::spawn(move || {
                let mut conn = Conn::upgrade(addr);
                let mut pings = 0;
                for m in 0..MESSAGES {
                    // Sizes around the 126 and 65536 length-encoding edges, and distinct
                    // contents, so a lost or reordered piece cannot go unnoticed.
                    let len = [125, 4000, 70_000][m];
                    let payload: Vec<u8> =
                        (0..len).map(|i| (i * 7 + c * 31 + m * 13) as u8).collect();
                    let frame = client_frame(0x2, &payload, [c as u8, m as u8, 0x5a, 0xa5]);
                    let piece = frame.len().div_ceil(PIECES);
                    for chunk in frame.chunks(piece) {
                        conn.stream.write_all(chunk).expect("send a piece");
                        thread::sleep(GAP);
                    }
                    loop {
                        let (opcode, data) = conn.read_frame();
                        match opcode {
                            0x9 => pings += 1,
                            0x2 => {
                                assert_eq!(
                                    data.len(),
                                    payload.len(),
                                    "connection {c} message {m}: echo length"
                                );
                                assert!(
                                    data == payload,
                                    "connection {c} message {m}: echo differs from what was sent"
                                );
                                break;
                            }
                            other => {
                                panic!("connection {c} message {m}: unexpected opcode {other:#x}")
                            }
                        }
                    }
                }
                assert!(
                    pings > 0,
                    "connection {c}: no heartbeat arrived, so no timer fired during a read"
                );
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    server.stop();
}

/// A handshake that never completes times out while the server's read is in flight: the
/// connection must actually close (the read completed by shutdown(2), not left armed), and
/// the server must go on serving.
#[test]
fn handshake_timeout_closes_a_connection_with_a_read_in_flight() {
    if !io_uring_available() {
        return;
    }
    let mut server = Server::start(&["--handshake-timeout", "300ms"]);
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("send half a request");
    let sent = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = sent.elapsed();
    assert!(
        rest.is_empty(),
        "expected no answer to a timed-out handshake; got {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        waited < Duration::from_secs(2),
        "the connection closed only after {waited:?}"
    );
    let mut conn = Conn::upgrade(server.addr);
    conn.stream
        .write_all(&client_frame(0x1, b"still here", [1, 2, 3, 4]))
        .expect("send");
    assert_eq!(conn.read_frame(), (0x1, b"still here".to_vec()));
    server.stop();
}

/// SIGTERM while a client is mid-frame (its read in flight) and never answers the close: the
/// client gets close 1001, then is dropped at --shutdown-timeout, and the process exits 0
/// soon after with its final counters, nothing left open.
#[test]
fn shutdown_ends_connections_with_a_read_in_flight() {
    if !io_uring_available() {
        return;
    }
    let mut server = Server::start(&["--shutdown-timeout", "500ms"]);
    let mut conn = Conn::upgrade(server.addr);
    let frame = client_frame(0x2, &[7; 1000], [9, 9, 9, 9]);
    conn.stream
        .write_all(&frame[..300])
        .expect("send part of a frame");
    thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -TERM failed");
    let (opcode, data) = conn.read_frame();
    assert_eq!(opcode, 0x8, "expected a close frame after SIGTERM");
    assert_eq!(
        data.get(..2),
        Some(&1001u16.to_be_bytes()[..]),
        "expected close code 1001"
    );
    let mut rest = Vec::new();
    let _ = conn.stream.read_to_end(&mut rest);
    let status = server.wait(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let lines: Vec<String> = server
        .stdout
        .by_ref()
        .lines()
        .map_while(Result::ok)
        .collect();
    let last = lines.last().expect("a final line");
    assert!(last.starts_with(r#"{"type":"final""#), "last line: {last}");
    assert!(
        last.contains(r#""connections_open":0,"#),
        "last line: {last}"
    );
    assert!(
        last.contains(r#""connections_total":1,"#),
        "last line: {last}"
    );
}

fn io_uring_available() -> bool {
    match wsport_server_common::uring::probe() {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("SKIP: io_uring unavailable: {reason}");
            false
        }
    }
}

/// The server binary, started on a free port; killed (by its own handle) on drop.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsport-tokio-uring"))
            .args(["--listen", "ws://127.0.0.1:0", "--no-pin"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start wsport-tokio-uring");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening ws://")
            .unwrap_or_else(|| panic!("expected `listening ws://...`, got {line:?}"))
            .parse()
            .expect("address");
        Server {
            child,
            stdout,
            addr,
        }
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "the server did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An upgraded client connection.
struct Conn {
    stream: TcpStream,
}

impl Conn {
    fn upgrade(addr: SocketAddr) -> Conn {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .expect("send the upgrade");
        // Byte by byte up to the blank line, so no frame byte is taken with the head.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            stream
                .read_exact(&mut byte)
                .expect("read the response head");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Conn { stream }
    }

    /// The next (unmasked, unfragmented) frame from the server: opcode and payload.
    fn read_frame(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.stream
            .read_exact(&mut head)
            .expect("read a frame header");
        let len = match head[1] & 0x7f {
            126 => {
                let mut ext = [0u8; 2];
                self.stream
                    .read_exact(&mut ext)
                    .expect("read a 16-bit length");
                u16::from_be_bytes(ext) as usize
            }
            127 => {
                let mut ext = [0u8; 8];
                self.stream
                    .read_exact(&mut ext)
                    .expect("read a 64-bit length");
                u64::from_be_bytes(ext) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream
            .read_exact(&mut payload)
            .expect("read a payload");
        (head[0] & 0x0f, payload)
    }
}

/// A final, masked client frame (RFC 6455 §5.2, §5.3).
fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
