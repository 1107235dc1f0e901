//! Connection and process lifecycle: graceful shutdown, idle timeout, keepalive pings,
//! abandoned connections and the counters, listeners (several ports, self-signed wss,
//! plain clients on the TLS port).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use wsport_conformance::prelude::*;

// ---- graceful shutdown -------------------------------------------------------------------

#[test]
fn graceful_shutdown() {
    for_each_server("graceful_shutdown", |config| {
        let server = Launch::new(config).start()?;
        run_server_case(
            &server,
            "sigterm_closes_1001_and_exits_0",
            sigterm_closes_1001_and_exits_0,
        )
    });
}

/// SIGTERM with 3 clients connected: each gets close 1001 (going away, §7.4.1), the process
/// exits 0 within 5 s and its last stdout line is the `final` counters.
fn sigterm_closes_1001_and_exits_0(server: &Server) -> Outcome {
    let (ws, wss) = (server.endpoint(Scheme::Ws), server.endpoint(Scheme::Wss));
    let mut clients = Vec::new();
    for (i, ep) in [ws, wss, ws].into_iter().enumerate() {
        let mut conn = RawConn::upgrade(ep)?;
        let text = format!("client {i} before shutdown");
        conn.send(&Frame::text(text.clone()))?;
        conn.expect_echo(opcode::TEXT, text.as_bytes())?;
        clients.push((ep, conn));
    }
    server.sigterm()?;
    let signalled = Instant::now();
    for (ep, conn) in &mut clients {
        conn.expect_close_and_reply(&[1001])
            .map_err(|e| format!("client on {ep} after SIGTERM: {e}"))?;
    }
    let status = server.wait_exit(Duration::from_secs(5).saturating_sub(signalled.elapsed()))?;
    ensure!(
        status.success(),
        "after SIGTERM: expected exit status 0; got {status}"
    );
    let stdout = server.wait_stdout_closed(Duration::from_secs(2))?;
    let last = stdout.iter().rev().find(|l| !l.trim().is_empty());
    let Some(report) = last.and_then(|l| json_line(l, "final")) else {
        return Err(format!(
            "after SIGTERM: expected stdout to end with a {{\"type\":\"final\",...}} line; last line: {last:?}"
        ));
    };
    check_final(&report, 3)
}

#[test]
fn shutdown_under_flood() {
    for_each_server("shutdown_under_flood", |config| {
        let server = Launch::new(config)
            .args(&["--shutdown-timeout", "1s"])
            .start()?;
        run_server_case(
            &server,
            "sigterm_reaches_a_flooding_client",
            sigterm_reaches_a_flooding_client,
        )
    });
}

/// A client that keeps the server's socket readable must not keep the thread to itself nor
/// hide the shutdown from its connection: a connection task whose read is always ready never
/// returns to a runtime without a coop budget (monoio), and a loop that polls its read first
/// (to spare the other branches' polls per message) would never poll the shutdown signal.
/// While the flood runs, another client on the same thread (servers run one by default)
/// upgrades and gets its echo; after SIGTERM both get close 1001. The flood is unsolicited
/// pongs, which need no answer (§5.5.3), so the close frame is the first thing the flooding
/// client reads; it never answers it, and the process still exits 0.
fn sigterm_reaches_a_flooding_client(server: &Server) -> Outcome {
    let ep = server.endpoint(Scheme::Ws);
    let mut conn = RawConn::upgrade(ep)?;
    let mut flood = conn
        .stream()
        .tcp()
        .try_clone()
        .context("cloning the socket")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        // About 11 KB per write: the server's 16 KiB reads parse slower than this refills.
        let pongs: Vec<u8> = (0..1000)
            .flat_map(|_| Frame::pong(*b"flood").encode())
            .collect();
        let until = Instant::now() + Duration::from_secs(15);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if flood.write_all(&pongs).is_err() {
                    break;
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    let outcome = bystander_served(ep)
        .and_then(|mut bystander| {
            server.sigterm()?;
            conn.expect_close(&[1001])
                .map_err(|e| format!("a flooding client after SIGTERM: {e}"))?;
            bystander
                .expect_close_and_reply(&[1001])
                .map_err(|e| format!("the other client after SIGTERM: {e}"))?;
            Ok(())
        })
        .and_then(|()| {
            let status = server.wait_exit(Duration::from_secs(6))?;
            ensure!(
                status.success(),
                "after SIGTERM: expected exit status 0; got {status}"
            );
            Ok(())
        });
    stop.store(true, Ordering::Relaxed);
    let _ = flooder.join();
    outcome
}

/// Another client, on a server busy with a flood: upgraded and echoed as usual.
fn bystander_served(ep: &Endpoint) -> Result<RawConn, String> {
    let mut bystander = RawConn::upgrade(ep)
        .map_err(|e| format!("another client, while one floods the server: {e}"))?;
    bystander.send(&Frame::text("beside a flood"))?;
    bystander
        .expect_echo(opcode::TEXT, b"beside a flood")
        .map_err(|e| format!("another client, while one floods the server: {e}"))?;
    Ok(bystander)
}

/// The `final` line's counters: nothing open, at least `connections` served, each client
/// sent and got one message.
fn check_final(report: &serde_json::Value, connections: u64) -> Outcome {
    let field = |name: &str| report.get(name).and_then(serde_json::Value::as_u64);
    let checks = [
        (
            "connections_open",
            field("connections_open") == Some(0),
            "0",
        ),
        (
            "connections_total",
            field("connections_total") >= Some(connections),
            ">= 3",
        ),
        (
            "messages_in",
            field("messages_in") >= Some(connections),
            ">= 3",
        ),
        (
            "messages_out",
            field("messages_out") >= Some(connections),
            ">= 3",
        ),
        (
            "errors",
            report.get("errors").is_some_and(|e| e.is_object()),
            "an object",
        ),
    ];
    let wrong: Vec<_> = checks
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, want)| format!("{name} should be {want}"))
        .collect();
    ensure!(
        wrong.is_empty(),
        "final line {report}: {}",
        wrong.join(", ")
    );
    Ok(())
}

// ---- idle timeout ------------------------------------------------------------------------

#[test]
fn idle_timeout() {
    for_each_server("idle_timeout", |config| {
        let server = Launch::new(config)
            .args(&["--idle-timeout", "1s"])
            .start()?;
        run_cases(
            &server,
            cases![silent_connection_closed, active_connection_kept],
        )
    });
}

/// A connection that says nothing is closed with 1001 within ~3 s.
fn silent_connection_closed(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    let start = Instant::now();
    let limit = within(Duration::from_secs(3));
    let event = conn.next_event(limit);
    let Event::Frame(frame) = &event else {
        return Err(format!(
            "with --idle-timeout 1s: expected close 1001 within {limit:?}; got {event}"
        ));
    };
    ensure!(
        frame.close_code() == Some(1001),
        "with --idle-timeout 1s: expected close 1001; got {frame} after {:?}",
        start.elapsed()
    );
    let _ = conn.send(&Frame::close(1001, b""));
    conn.expect_closed(READ_TIMEOUT, "EOF after the idle close")
}

/// Traffic every 300 ms for 2.5 s keeps the connection open past the 1 s idle timeout.
fn active_connection_kept(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    for i in 0..8 {
        std::thread::sleep(Duration::from_millis(300));
        let text = format!("keepalive {i}");
        conn.send(&Frame::text(text.clone()))?;
        conn.expect_echo(opcode::TEXT, text.as_bytes())
            .map_err(|e| format!("with --idle-timeout 1s, a message every 300 ms: {e}"))?;
    }
    Ok(())
}

// ---- keepalive pings ---------------------------------------------------------------------

#[test]
fn ping_keepalive() {
    for_each_server("ping_keepalive", |config| {
        let server = Launch::new(config)
            .args(&["--ping-interval", "500ms", "--ping-timeout", "500ms"])
            .start()?;
        run_cases(
            &server,
            cases![unanswered_pings_disconnect, answering_client_stays],
        )
    });
}

/// A client that never answers: pings arrive, then the server drops it within ~3 s
/// (a close frame before the end is allowed, not required).
fn unanswered_pings_disconnect(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    let start = Instant::now();
    let limit = within(Duration::from_secs(3));
    let mut pings = 0;
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match conn.next_event(left) {
            Event::Frame(frame) if frame.opcode == opcode::PING => pings += 1,
            Event::Frame(frame) if frame.opcode == opcode::CLOSE => {}
            event if event.is_closed() => break,
            other => {
                return Err(format!(
                    "with --ping-interval 500ms --ping-timeout 500ms and no pongs: expected \
                     pings then a disconnect within {limit:?}; got {other} after {pings} pings"
                ))
            }
        }
    }
    ensure!(
        pings > 0,
        "disconnected after {:?} without a single ping",
        start.elapsed()
    );
    Ok(())
}

/// tungstenite answers pings while it reads: still connected after 2.5 s, and pinged.
fn answering_client_stays(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    ws::set_read_timeout(&client, Duration::from_millis(100));
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        match client.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => return Err(format!("unexpected {}", ws::describe(&other))),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                return Err(format!(
                    "a client answering pings was disconnected after {:?}: {e}",
                    start.elapsed()
                ))
            }
        }
    }
    ensure!(
        pings >= 2,
        "expected a ping every 500 ms; got {pings} in 2.5 s"
    );
    ws::set_read_timeout(&client, READ_TIMEOUT);
    ws::echo(&mut client, Message::text("still connected"))
}

// ---- abandoned connections and counters --------------------------------------------------

#[test]
fn abandoned_connection() {
    for_each_server("abandoned_connection", |config| {
        let server = Launch::new(config).args(&["--stats", "200ms"]).start()?;
        run_server_case(&server, "client_killed_mid_frame", client_killed_mid_frame)
    });
}

/// A client vanishes with half a frame sent while another keeps echoing: the other is
/// unaffected, and the stats show no open connection once both are gone.
fn client_killed_mid_frame(server: &Server) -> Outcome {
    for ep in server.endpoints() {
        let mut steady = ws::connect(ep)?;
        ws::echo(&mut steady, Message::text("before"))?;
        let mut doomed = RawConn::upgrade(ep)?;
        let frame = Frame::binary(ws::binary_of_len(1000)).encode();
        doomed.send_bytes(
            &frame[..frame.len() / 2],
            "header + half of a 1000-byte binary frame",
        )?;
        drop(doomed);
        for i in 0..20 {
            ws::echo(&mut steady, Message::text(format!("after {i}")))
                .map_err(|e| format!("{ep}: after another client died mid-frame: {e}"))?;
        }
        ws::close(&mut steady)?;
    }
    let from = server.stdout_lines().len();
    let limit = within(Duration::from_secs(3));
    let zero = server.wait_stdout(from, limit, |line| {
        let stats = json_line(line, "stats")?;
        (stats.get("connections_open")?.as_u64()? == 0).then_some(())
    });
    if zero.is_none() {
        let last = server
            .stdout_lines()
            .into_iter()
            .rev()
            .find(|l| json_line(l, "stats").is_some());
        return Err(format!(
            "with --stats 200ms: expected a stats line with \"connections_open\":0 within \
             {limit:?} of all clients leaving; last stats line: {last:?}"
        ));
    }
    Ok(())
}

// ---- one runtime thread ------------------------------------------------------------------

#[test]
fn one_thread_process() {
    let many = |config: &ServerConfig| {
        (!config.one_thread).then_some("its runtime runs beside the main thread by design")
    };
    for_each_server_that("one_thread_process", many, |config| {
        let server = Launch::new(config).args(&["--threads", "1"]).start()?;
        run_server_case(
            &server,
            "no_thread_beside_the_runtime",
            no_thread_beside_the_runtime,
        )
    });
}

/// With `--threads 1` the runtime runs on the main thread and the process starts no other
/// thread: glibc wraps every send and recv in cancellation bookkeeping once a process has a
/// second thread (about 85 instructions a message; results/2026-12-06-vm/icount-fair-loops/).
/// Counted after an echo on every listener, so that a thread started on first use shows;
/// io_uring's kernel workers (`iou-wrk-*`, `iou-sqp-*`) run no user code and do not count.
fn no_thread_beside_the_runtime(server: &Server) -> Outcome {
    for ep in server.endpoints() {
        echo_here(ep)?;
    }
    let threads = user_threads(server.pid())?;
    ensure!(
        threads.len() == 1,
        "with --threads 1: expected the main thread alone; threads: {threads:?}"
    );
    Ok(())
}

/// The names of process `pid`'s threads, io_uring's kernel workers left out.
fn user_threads(pid: u32) -> Result<Vec<String>, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("reading {dir}: {e}"))?;
    let mut names = Vec::new();
    for task in tasks {
        let comm = task
            .map_err(|e| format!("reading {dir}: {e}"))?
            .path()
            .join("comm");
        // A thread that ended since the listing has no name to read: it is not there.
        if let Ok(name) = std::fs::read_to_string(comm) {
            let name = name.trim().to_owned();
            if !name.starts_with("iou-") {
                names.push(name);
            }
        }
    }
    Ok(names)
}

// ---- listeners ---------------------------------------------------------------------------

#[test]
fn several_listeners() {
    for_each_server("several_listeners", |config| {
        let server = Launch::new(config)
            .listeners(&[Scheme::Ws, Scheme::Ws, Scheme::Wss, Scheme::Wss])
            .start()?;
        let mut ports: Vec<_> = server.endpoints().iter().map(|e| e.addr.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        ensure!(ports.len() == 4, "expected 4 distinct ports; got {ports:?}");
        run_cases(&server, cases![echo_here])
    });
}

fn echo_here(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    ws::echo(&mut client, Message::text(format!("hello {ep}")))?;
    ws::close(&mut client)
}

/// wss without --cert/--key: the server makes its own certificate.
#[test]
fn self_signed_wss() {
    for_each_server("self_signed_wss", |config| {
        let server = Launch::new(config)
            .listeners(&[Scheme::Wss])
            .self_signed()
            .start()?;
        run_cases(&server, cases![echo_here])
    });
}

#[test]
fn plain_client_on_tls_port() {
    for_each_server("plain_client_on_tls_port", |config| {
        let server = Launch::new(config).start()?;
        run_server_case(
            &server,
            "plaintext_upgrade_to_wss_port",
            plaintext_upgrade_to_wss_port,
        )
    });
}

/// A plaintext upgrade on the TLS port gets no 101 (a TLS alert, a close, or silence), and
/// the listener keeps serving TLS clients.
fn plaintext_upgrade_to_wss_port(server: &Server) -> Outcome {
    let wss = server.endpoint(Scheme::Wss);
    let plain = Endpoint {
        tls: None,
        ..wss.clone()
    };
    let mut conn = RawConn::connect(&plain)?;
    let _ = conn.send_request(&Request::upgrade(&plain));
    if let Ok(Ok(resp)) = conn.try_read_response() {
        ensure!(
            resp.status != 101,
            "a plaintext upgrade on the wss port {}: expected no 101; got {resp}",
            wss.addr
        );
    }
    drop(conn);
    let mut client = ws::connect(wss).context("a TLS client after the plaintext one")?;
    ws::echo(&mut client, Message::text("tls still works"))
}
