//! `broadcast` in-process: against a small fan-out server written here (one that is correct,
//! and ones that drop, duplicate or reorder deliveries on purpose, which the run must catch),
//! and against the real server binaries' `--broadcast` mode where they are built.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use wsport_bench::{run, Report};

/// What the mock does wrong to the deliveries of every connection (with one publisher, only
/// subscribers receive any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Fault {
    #[default]
    None,
    /// Skip every n-th delivery.
    Drop(u64),
    /// Send every n-th delivery twice.
    Duplicate(u64),
    /// Hold every n-th delivery back and send it after the next one.
    Swap(u64),
}

type Outbox = Sender<Arc<Vec<u8>>>;

/// A broadcast server: each data message a connection sends goes, as one unmasked frame, to
/// every other open connection, in the order received (one reader thread per connection
/// feeds the others' writer threads through channels, which keep that order).
struct Mock {
    url: String,
    faulted: Arc<AtomicU64>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: Vec<(u64, Outbox)>,
}

impl Mock {
    fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let registry = Arc::new(Mutex::new(Registry::default()));
        let faulted = Arc::new(AtomicU64::new(0));
        let f = faulted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (registry, f) = (registry.clone(), f.clone());
                std::thread::spawn(move || serve(stream, &registry, fault, f));
            }
        });
        Self { url, faulted }
    }
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n < 65536 => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn serve(mut s: TcpStream, registry: &Mutex<Registry>, fault: Fault, faulted: Arc<AtomicU64>) {
    use wsport_core::conn::compact;
    use wsport_core::handshake::{parse_request, write_accept};
    use wsport_core::{Decoded, FrameKind, Limits, ServerConnection};

    s.set_nodelay(true).ok();
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 65536];
    // The writer: everything for this connection, in order, from one channel. Registered
    // before the 101 goes out, so that a client that saw its upgrade misses nothing.
    let (tx, rx) = channel::<Arc<Vec<u8>>>();
    let mut w = s.try_clone().expect("clone");
    let id = {
        let mut r = registry.lock().unwrap();
        let id = r.next_id;
        r.next_id += 1;
        r.open.push((id, tx.clone()));
        id
    };
    while let Ok(n) = s.read(&mut tmp) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Ok(Some(req)) = parse_request(&buf, 8192) {
            let mut out = Vec::new();
            write_accept(&req.upgrade.expect("an upgrade").key, None, &mut out);
            s.write_all(&out).ok();
            buf.drain(..req.len);
            break;
        }
    }
    let writer = std::thread::spawn(move || {
        let (mut n, mut held) = (0u64, None::<Arc<Vec<u8>>>);
        for bytes in rx {
            let data = bytes.first().is_some_and(|b| b & 0x0F <= 2);
            if data {
                n += 1;
                let hit = match fault {
                    Fault::None => false,
                    Fault::Drop(k) | Fault::Duplicate(k) | Fault::Swap(k) => n % k == 0,
                };
                if hit {
                    faulted.fetch_add(1, Ordering::SeqCst);
                    match fault {
                        Fault::Drop(_) => continue,
                        Fault::Duplicate(_) => {
                            let _ = w.write_all(&bytes);
                        }
                        Fault::Swap(_) => {
                            held = Some(bytes);
                            continue;
                        }
                        Fault::None => {}
                    }
                }
            }
            if w.write_all(&bytes).is_err() {
                return;
            }
            if let Some(late) = held.take() {
                let _ = w.write_all(&late);
            }
        }
    });
    let mut conn = ServerConnection::new(Limits::default());
    'read: loop {
        let mut pos = 0;
        loop {
            match conn.handle_frame(&mut buf[pos..]) {
                Ok(Decoded::Frame(f)) => {
                    let payload = buf[pos + f.payload.start..pos + f.payload.end].to_vec();
                    pos += f.len;
                    match f.kind {
                        FrameKind::Text | FrameKind::Binary => {
                            let opcode = if f.kind == FrameKind::Text { 1 } else { 2 };
                            let encoded = Arc::new(frame(opcode, &payload));
                            for (other, out) in &registry.lock().unwrap().open {
                                if *other != id {
                                    let _ = out.send(encoded.clone());
                                }
                            }
                        }
                        FrameKind::Ping => {
                            let _ = tx.send(Arc::new(frame(0xA, &payload)));
                        }
                        FrameKind::Close(_) => {
                            registry.lock().unwrap().open.retain(|(o, _)| *o != id);
                            let _ = tx.send(Arc::new(frame(0x8, &1000u16.to_be_bytes())));
                            break 'read;
                        }
                        _ => {}
                    }
                }
                Ok(Decoded::NeedMore { .. }) => break,
                Err(_) => break 'read,
            }
        }
        compact(&mut buf, pos);
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    registry.lock().unwrap().open.retain(|(o, _)| *o != id);
    drop(tx);
    let _ = writer.join();
}

fn broadcast_opts(args: &[&str]) -> wsport_bench::Opts {
    use clap::Parser;
    let mut argv = vec!["wsport-bench", "broadcast", "--quiet", "--no-syscalls"];
    argv.extend_from_slice(args);
    wsport_bench::Opts::try_parse_from(argv).expect("valid options")
}

/// The counts of a broadcast run add up, whatever else it found.
fn assert_broadcast_counts(report: &Report) {
    let r = &report.results;
    let b = r.broadcast.as_ref().expect("a broadcast record");
    assert_eq!(b.expected_deliveries, b.published * b.subscribers as u64);
    assert_eq!(b.expected_deliveries, b.delivered + b.lost, "{b:#?}");
    assert_eq!(r.sent, b.published, "every message sent was a publication");
    assert_eq!(report.hists.latency.len(), r.messages);
    let per_second: u64 = report.intervals.iter().map(|i| i.messages).sum();
    assert_eq!(per_second, r.messages, "intervals add up to the window");
    assert!(
        r.latency_uncorrected_ns.is_none(),
        "no as-sent latency in broadcast"
    );
    assert!(
        r.send_lag_ns.is_some(),
        "the publishers' send lag is measured"
    );
}

#[test]
fn every_subscriber_gets_every_message_in_order_from_a_correct_server() {
    let mock = Mock::start(Fault::None);
    for engine in ["io-uring", "epoll"] {
        let opts = broadcast_opts(&[
            "--url",
            &mock.url,
            "--publishers",
            "2",
            "--subscribers",
            "20",
            "--rate",
            "400",
            "--duration",
            "700ms",
            "--warmup",
            "200ms",
            "--threads",
            "2",
            "--engine",
            engine,
        ]);
        let report = run(&opts).expect("run");
        assert_broadcast_counts(&report);
        let b = report.results.broadcast.as_ref().unwrap();
        assert!(b.ok, "{engine}: {:?}\n{report}", b.failures);
        assert_eq!(b.lost + b.duplicates + b.reordered + b.malformed, 0);
        // Two publishers at 400/s over ~0.9 s, each message to 20 subscribers.
        assert!(
            (300..=420).contains(&b.published),
            "{engine}: published {}",
            b.published
        );
        // Each publisher also receives the other's messages (but not those published after
        // it closed).
        assert!(
            b.to_publishers <= b.published && b.to_publishers + 10 >= b.published,
            "{engine}: {b:#?}"
        );
        let per_sec = report.results.msgs_per_sec;
        assert!(
            (0.8 * 8000.0..=1.1 * 8000.0).contains(&per_sec),
            "{engine}: {per_sec} deliveries/s, expected about 400 x 20"
        );
        assert!(
            report
                .scenario
                .starts_with("broadcast-2p-20s-400ps-64B-2t-ws-"),
            "{}",
            report.scenario
        );
        let text = report.to_string();
        assert!(
            text.contains("every subscriber got every message, in order, once"),
            "{text}"
        );
        assert!(
            report.warnings.iter().all(|w| !w.contains("BROADCAST")),
            "{:?}",
            report.warnings
        );
    }
}

fn faulty_run(fault: Fault) -> (Report, u64) {
    let mock = Mock::start(fault);
    let opts = broadcast_opts(&[
        "--url",
        &mock.url,
        "--publishers",
        "1",
        "--subscribers",
        "5",
        "--rate",
        "300",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--drain",
        "500ms",
    ]);
    let report = run(&opts).expect("run");
    assert_broadcast_counts(&report);
    let b = report.results.broadcast.as_ref().unwrap();
    assert!(!b.ok, "{fault:?} must fail the check");
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("THE BROADCAST CHECK FAILED")));
    assert!(report.to_string().contains("BROADCAST FAILED"));
    (report, mock.faulted.load(Ordering::SeqCst))
}

#[test]
fn a_dropped_delivery_is_lost() {
    let (report, dropped) = faulty_run(Fault::Drop(10));
    let b = report.results.broadcast.unwrap();
    assert!(dropped > 0);
    assert_eq!(b.lost, dropped, "{b:#?}");
    assert_eq!((b.duplicates, b.reordered), (0, 0));
}

#[test]
fn a_duplicated_delivery_is_counted() {
    let (report, duplicated) = faulty_run(Fault::Duplicate(10));
    let b = report.results.broadcast.unwrap();
    assert!(duplicated > 0);
    assert_eq!(b.duplicates, duplicated, "{b:#?}");
    assert_eq!((b.lost, b.reordered), (0, 0));
}

#[test]
fn a_reordered_delivery_is_counted_not_lost() {
    let (report, swapped) = faulty_run(Fault::Swap(10));
    let b = report.results.broadcast.unwrap();
    assert!(swapped > 0);
    // The last one held back may never be followed by another: then it is lost instead.
    assert_eq!(b.reordered + b.lost, swapped, "{b:#?}");
    assert!(b.reordered > 0);
    assert_eq!(b.duplicates, 0);
}

#[test]
fn a_size_too_small_for_the_header_is_refused() {
    use clap::Parser;
    let opts = wsport_bench::Opts::try_parse_from([
        "wsport-bench",
        "broadcast",
        "--url",
        "ws://127.0.0.1:9/",
        "--rate",
        "10",
        "--size",
        "16",
    ])
    .unwrap();
    let e = run(&opts).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("too small for broadcast"), "{e}");
}

/// A real server binary started with `--broadcast` on a kernel-chosen ws port; killed (by its
/// own pid) when dropped.
struct RealServer {
    child: std::process::Child,
    url: String,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a server binary is: `$WSPORT_BIN_DIR`, this test's profile directory, or the
/// workspace's `target/release` and `target/debug`.
fn binary(name: &str) -> Option<std::path::PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("WSPORT_BIN_DIR") {
        candidates.push(std::path::PathBuf::from(dir).join(name));
    }
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    candidates.push(dir.join(name));
    let workspace = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        candidates.push(workspace.join("target").join(profile).join(name));
    }
    candidates.into_iter().find(|p| p.exists())
}

/// Start `name --broadcast`, or say why the test cannot run here (`Err`): the binary is not
/// built, it has no `--broadcast` (built before the server side existed), or the host refuses
/// io_uring. Any other failure to start is a failure of the test.
fn start_real(name: &str, extra: &[&str]) -> Result<RealServer, String> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let bin = binary(name).ok_or_else(|| format!("{name} is not built"))?;
    let mut child = Command::new(&bin)
        .args([
            "--listen",
            "ws://127.0.0.1:0",
            "--threads",
            "2",
            "--broadcast",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("listening ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(url) => Ok(RealServer {
            child,
            url: format!("{url}/"),
        }),
        Err(_) => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            let skip = err.contains("--broadcast") || err.to_lowercase().contains("io_uring");
            assert!(skip, "{name} --broadcast did not start: {err}");
            Err(format!(
                "{name}: {}",
                err.lines().next().unwrap_or("did not start")
            ))
        }
    }
}

/// Every wsport server's `--broadcast`: 1 publisher, 50 subscribers, a short run under each
/// client engine; every subscriber gets every message in order, and the counts add up.
#[test]
fn real_servers_deliver_every_message_in_order() {
    let mut ran = 0;
    for name in [
        "wsport-tokio",
        "wsport-tokio-uring",
        "wsport-monoio",
        "wsport-uring",
    ] {
        let server = match start_real(name, &[]) {
            Ok(s) => s,
            Err(why) => {
                eprintln!("skipped: {why}");
                continue;
            }
        };
        for engine in ["io-uring", "epoll"] {
            let pid = server.child.id().to_string();
            let opts = broadcast_opts(&[
                "--url",
                &server.url,
                "--publishers",
                "1",
                "--subscribers",
                "50",
                "--rate",
                "200",
                "--duration",
                "1s",
                "--warmup",
                "300ms",
                "--engine",
                engine,
                "--server-pid",
                &pid,
            ]);
            let report = run(&opts).unwrap_or_else(|e| panic!("{name} {engine}: {e}"));
            assert_broadcast_counts(&report);
            let b = report.results.broadcast.as_ref().unwrap();
            assert!(b.ok, "{name} {engine}: {:?}\n{report}", b.failures);
            assert!(
                b.published >= 200,
                "{name} {engine}: published {}",
                b.published
            );
            assert_eq!(b.delivered, b.published * 50);
            assert_eq!(b.to_publishers, 0, "one publisher hears nobody");
            let per_sec = report.results.msgs_per_sec;
            assert!(
                (0.8 * 10_000.0..=1.1 * 10_000.0).contains(&per_sec),
                "{name} {engine}: {per_sec} deliveries/s, expected about 200 x 50"
            );
            assert!(
                b.server_cpu_us_per_delivery.is_some_and(|c| c > 0.0),
                "{name} {engine}: server CPU per delivery measured"
            );
        }
        ran += 1;
    }
    if ran == 0 {
        eprintln!(
            "skipped: no server binary with --broadcast is built (cargo build -p wsport-tokio)"
        );
    }
}

/// A broadcast run's JSON read back by the report: the Broadcast section and its delivery
/// latency plot.
#[test]
fn the_report_has_a_broadcast_section_and_plot() {
    let mock = Mock::start(Fault::None);
    let dir = common::temp_dir("broadcast-report");
    let json = dir.join("run.json");
    let opts = broadcast_opts(&[
        "--url",
        &mock.url,
        "--subscribers",
        "10",
        "--rate",
        "200",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--label",
        "mock",
        "--json",
        json.to_str().unwrap(),
    ]);
    let report = run(&opts).expect("run");
    assert!(report.output_errors.is_empty());
    let published = wsport_bench_report::publish::regenerate(&dir, "mock").expect("report");
    let s = &published.summary;
    assert!(s.contains("## Broadcast (fan-out)"), "{s}");
    assert!(s.contains("### broadcast-1p-10s-200ps-64B-1t-ws\n"), "{s}");
    assert!(
        s.contains("| mock | 1 | 10 | 200 |") && s.contains("| ok |"),
        "{s}"
    );
    let plot = dir.join("plots/latency-broadcast-1p-10s-200ps-64B-1t-ws.svg");
    let svg = std::fs::read_to_string(&plot).expect("the delivery latency plot");
    assert!(svg.contains("Delivery latency by percentile"), "{svg}");
    assert!(
        s.contains("(plots/latency-broadcast-1p-10s-200ps-64B-1t-ws.svg)"),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
