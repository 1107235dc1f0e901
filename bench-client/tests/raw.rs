//! `echo --raw`, the client side of the runtime floor: plain TCP against a server's
//! `--raw-tcp` mode, each message counted when as many bytes came back and checked like any
//! echo — against the real `wsport-tokio --raw-tcp`, and against broken raw servers that
//! corrupt or invent bytes, which must be caught.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{assert_counts, echo_opts, Server};
use wsport_bench::{run, BenchError, Cause};

const ENGINES: [&str; 2] = ["io-uring", "epoll"];

fn raw_opts(url: &str, engine: &str, extra: &[&str]) -> wsport_bench::Opts {
    let mut args = vec![
        "--raw",
        "--url",
        url,
        "-c",
        "4",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--engine",
        engine,
    ];
    args.extend_from_slice(extra);
    echo_opts(&args)
}

#[test]
fn raw_echo_against_a_raw_tcp_server_counts_and_verifies_every_message() {
    let server = Server::start_raw();
    let url = format!("{}/", server.ws);
    for engine in ENGINES {
        // Several sizes and a pipeline: message boundaries are only the sizes' sequence.
        let report = run(&raw_opts(
            &url,
            engine,
            &["--size", "64,1KiB,3", "--depth", "3"],
        ))
        .unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_counts(&report);
        let r = &report.results;
        assert!(r.messages > 100, "{engine}: {r:#?}");
        assert_eq!(
            (r.mismatches, r.lost, r.in_flight),
            (0, 0, 0),
            "{engine}: {r:#?}"
        );
        assert!(r.errors.is_empty(), "{engine}: {:?}", r.errors);
        assert!(
            report.scenario.starts_with("raw-64B+1KiB+3B-4c-d3-1t-tcp-"),
            "{}",
            report.scenario
        );
        assert_eq!(report.workload, "raw");
    }
}

#[test]
fn raw_echo_needs_a_websocket_server_to_be_in_raw_mode() {
    // A WebSocket server answers plain bytes with an HTTP 400, which is not an echo.
    let server = Server::start(&[]);
    let url = format!("{}/", server.ws);
    let report = run(&raw_opts(&url, "epoll", &[])).expect("run");
    let r = &report.results;
    assert_eq!(r.messages, 0, "{r:#?}");
    assert!(!r.errors.is_empty() || r.mismatches > 0, "{r:#?}");
}

#[test]
fn raw_refuses_wss_and_empty_messages() {
    for (url, size) in [("wss://127.0.0.1:9/", "64"), ("ws://127.0.0.1:9/", "0")] {
        match run(&raw_opts(url, "epoll", &["--size", size])) {
            Err(BenchError::Usage(why)) => assert!(why.contains("--raw"), "{why}"),
            other => panic!("{url} --size {size}: {other:?}"),
        }
    }
}

/// A raw echo server that breaks the stream on purpose: flips the last byte of every 5th
/// 64-byte message, or sends one byte more after every 5th message.
struct BrokenRaw {
    url: String,
    broken: Arc<AtomicU64>,
}

impl BrokenRaw {
    fn start(extra_byte: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("addr"));
        let broken = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&broken);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let count = Arc::clone(&count);
                std::thread::spawn(move || serve_broken(stream, extra_byte, &count));
            }
        });
        Self { url, broken }
    }
}

fn serve_broken(mut stream: TcpStream, extra_byte: bool, broken: &AtomicU64) {
    let _ = stream.set_nodelay(true);
    let (mut offset, mut buf) = (0u64, [0u8; 4096]);
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        let mut out = Vec::with_capacity(n + 1);
        for &byte in &buf[..n] {
            let last_of_fifth = offset % (5 * 64) == 5 * 64 - 1;
            offset += 1;
            out.push(if last_of_fifth && !extra_byte {
                byte ^ 1
            } else {
                byte
            });
            if last_of_fifth {
                broken.fetch_add(1, Ordering::SeqCst);
                if extra_byte {
                    out.push(b'!');
                }
            }
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

#[test]
fn a_raw_server_that_corrupts_bytes_is_caught_message_by_message() {
    let mock = BrokenRaw::start(false);
    for engine in ENGINES {
        let before = mock.broken.load(Ordering::SeqCst);
        let report = run(&raw_opts(&mock.url, engine, &[])).expect("run");
        assert_counts(&report);
        let corrupted = mock.broken.load(Ordering::SeqCst) - before;
        assert!(corrupted > 0);
        assert_eq!(
            report.results.mismatches, corrupted,
            "{engine}: every corrupted echo is caught, nothing else"
        );
    }
}

#[test]
fn a_raw_server_that_sends_more_than_it_got_is_an_error() {
    let mock = BrokenRaw::start(true);
    for engine in ENGINES {
        let report = run(&raw_opts(&mock.url, engine, &[])).expect("run");
        let errors = &report.results.errors;
        let unexpected = errors
            .iter()
            .find(|(cause, _)| **cause == Cause::Unexpected.to_string())
            .unwrap_or_else(|| panic!("{engine}: {errors:?}"));
        assert!(
            unexpected.1.first.contains("more than"),
            "{}",
            unexpected.1.first
        );
    }
}
