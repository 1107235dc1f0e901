//! wsport-monoio from outside, on each driver this host can run: what the shared conformance
//! suite does not check — refusing a port another socket holds, refusing to measure the wrong
//! driver, saying which driver runs — and that connections ended with a read in flight (the
//! io_uring cancellation design, see the crate doc) really release their sockets.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_wsport-monoio");

/// `--driver` values this host can run: epoll always, uring where io_uring can be set up.
fn drivers() -> Vec<&'static str> {
    match wsport_server_common::uring::probe() {
        Ok(()) => vec!["epoll", "uring"],
        Err(reason) => {
            eprintln!("io_uring unavailable, testing --driver epoll only: {reason}");
            vec!["epoll"]
        }
    }
}

fn command(driver: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--driver", driver, "--no-pin"])
        .args(args)
        .env_remove("MONOIO_FORCE_LEGACY_DRIVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a command that must fail at start; its exit status and stderr lines.
fn run_to_exit(mut command: Command) -> (ExitStatus, Vec<String>) {
    let mut child = command.spawn().expect("spawn wsport-monoio");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsport-monoio did not exit within 10 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let lines = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (status, lines)
}

/// A running server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(driver: &str, args: &[&str]) -> Server {
        let mut child = command(driver, &[&["--listen", "ws://127.0.0.1:0"], args].concat())
            .spawn()
            .expect("spawn");
        let stdout = lines(child.stdout.take().expect("piped"));
        let stderr = collect(child.stderr.take().expect("piped"));
        let line = stdout
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("no `listening` line; stderr: {:?}", stderr.lock().unwrap())
            });
        let addr = line
            .strip_prefix("listening ws://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("/proc/<pid>/fd")
            .count()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wsport-monoio did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn collect(stderr: ChildStderr) -> Arc<Mutex<Vec<String>>> {
    let all = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&all);
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    all
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A client past the opening handshake.
fn upgrade(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send upgrade");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read 101");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    stream
}

/// Reads (and discards) until EOF or a reset; false if the connection is still open at `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            // A timed read is not restarted after a stop signal (signal(7)): not a close.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn assert_one_line_naming_port(status: ExitStatus, stderr: &[String], port: u16) {
    assert!(
        !status.success(),
        "expected a failure exit; stderr: {stderr:?}"
    );
    assert_eq!(stderr.len(), 1, "expected a one-line error; got {stderr:?}");
    let line = &stderr[0];
    assert!(line.starts_with("wsport-monoio: error: "), "{line}");
    assert!(
        line.contains(&format!("port {port}")),
        "the error should name port {port}: {line}"
    );
}

#[test]
fn refuses_a_port_held_without_reuseport() {
    // std binds without SO_REUSEPORT: monoio's own bind would still fail here, but our probe
    // must say who holds the port, in one line.
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().unwrap().port();
    for driver in drivers() {
        let listen = format!("ws://127.0.0.1:{port}");
        let (status, stderr) = run_to_exit(command(driver, &["--listen", &listen]));
        assert_one_line_naming_port(status, &stderr, port);
    }
}

#[test]
fn refuses_a_port_another_wsport_monoio_serves() {
    // Both bind with SO_REUSEPORT, as the same user: without the probe the second would
    // silently share the port, and a benchmark would measure two servers.
    for driver in drivers() {
        let first = Server::start(driver, &["--threads", "2"]);
        let port = first.addr.port();
        let listen = format!("ws://127.0.0.1:{port}");
        let (status, stderr) = run_to_exit(command(driver, &["--listen", &listen]));
        assert_one_line_naming_port(status, &stderr, port);
        assert!(stderr[0].contains("in use"), "{}", stderr[0]);
    }
}

#[test]
fn force_legacy_is_refused_under_driver_uring() {
    let mut command = command("uring", &["--listen", "ws://127.0.0.1:0"]);
    command.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    let (status, stderr) = run_to_exit(command);
    assert!(!status.success(), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(
        stderr[0].contains("MONOIO_FORCE_LEGACY_DRIVER"),
        "{}",
        stderr[0]
    );
}

#[test]
fn says_which_driver_runs() {
    for driver in drivers() {
        let server = Server::start(driver, &["--threads", "2"]);
        let want = match driver {
            "uring" => "wsport-monoio: driver io_uring",
            _ => "wsport-monoio: driver epoll (legacy)",
        };
        wait_for("the driver line", Duration::from_secs(5), || {
            server.stderr.lock().unwrap().iter().any(|l| l == want)
        });
    }
}

/// Connections the server ends while its read is in flight — a handshake timeout, and a close
/// handshake the peer never answers — are closed (the peer sees EOF though it keeps its end
/// open) and their descriptors released. A read dropped instead of completed would keep the
/// socket open under io_uring.
#[test]
fn connections_ended_under_a_pending_read_are_closed() {
    for driver in drivers() {
        let server = Server::start(
            driver,
            &[
                "--handshake-timeout",
                "300ms",
                "--idle-timeout",
                "300ms",
                "--shutdown-timeout",
                "300ms",
            ],
        );
        let baseline = server.open_fds();
        let mut clients: Vec<TcpStream> = (0..20)
            .map(|_| TcpStream::connect(server.addr).expect("connect"))
            .collect();
        clients.extend((0..20).map(|_| upgrade(server.addr)));
        // Silent clients: the first 20 never finish a handshake, the others never answer the
        // idle close frame; none closes its end.
        for (i, client) in clients.iter_mut().enumerate() {
            assert!(
                closed_within(client, Duration::from_secs(5)),
                "[{driver}] client {i} still open after 5 s"
            );
        }
        wait_for(
            &format!("[{driver}] descriptors back to {baseline}"),
            Duration::from_secs(3),
            || server.open_fds() <= baseline,
        );
    }
}

/// SIGTERM while a client ignores the close frame: the server gives up on it after
/// --shutdown-timeout and exits 0, with its final line.
#[test]
fn sigterm_with_a_peer_that_never_answers() {
    for driver in drivers() {
        let mut server = Server::start(driver, &["--shutdown-timeout", "500ms"]);
        let mut client = upgrade(server.addr);
        server.sigterm();
        let status = server.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "[{driver}] exit status {status}");
        assert!(
            closed_within(&mut client, Duration::from_secs(1)),
            "[{driver}] client still open"
        );
        // The process is gone: the reader thread ends at EOF, which ends this iterator.
        let last = server.stdout.iter().last().unwrap_or_default();
        assert!(
            last.contains(r#""type":"final""#),
            "[{driver}] last stdout line {last:?}"
        );
    }
}

/// A client that sends and never reads: the server's echo write blocks, and after
/// WRITE_TIMEOUT (30 s) the connection is dropped even though the write was in flight.
#[test]
#[ignore = "slow: waits out the 30 s write timeout"]
fn a_peer_that_never_reads_is_dropped_after_the_write_timeout() {
    for driver in drivers() {
        let server = Server::start(driver, &["--stats", "500ms"]);
        let baseline = server.open_fds();
        let mut client = upgrade(server.addr);
        client
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // 64 KiB binary frames, masked with a zero key (the mask bit is what §5.3 requires).
        let mut frame = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        frame.resize(frame.len() + 65536, 0);
        let started = Instant::now();
        while client.write_all(&frame).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "[{driver}] the server never stopped reading"
            );
        }
        // Stats lines so far may predate the connection.
        let _ = server.stdout.try_iter().count();
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut open = true;
        while open && Instant::now() < deadline {
            if let Ok(line) = server.stdout.recv_timeout(Duration::from_secs(1)) {
                open = !line.contains(r#""connections_open":0"#);
            }
        }
        assert!(
            !open,
            "[{driver}] the connection was still open {:?} after it blocked",
            started.elapsed()
        );
        // Counted as closed is not enough: the socket itself must be, while the client still
        // does not read (a write dropped in flight would hold it open under io_uring).
        wait_for(
            &format!("[{driver}] descriptors back to {baseline}"),
            Duration::from_secs(3),
            || server.open_fds() <= baseline,
        );
        assert!(
            closed_within(&mut client, Duration::from_secs(5)),
            "[{driver}] socket still open"
        );
    }
}
