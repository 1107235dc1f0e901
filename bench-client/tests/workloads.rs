//! Every workload in-process against the real `wsport-tokio` binary (and, for verification and
//! coordinated omission, against deliberately broken servers). Every run is short (about a second).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_counts, echo_opts, temp_dir, Server};
use wsport_bench::report::EndedBy;
use wsport_bench::{run, run_with_stop, BenchError, Cause, Stop};

#[test]
fn io_uring_counts_match_over_ws_and_wss_on_two_ports() {
    let server = Server::start(&[]);
    let (ws, wss, pid) = (
        format!("{}/", server.ws),
        format!("{}/echo", server.wss),
        server.pid().to_string(),
    );
    let opts = echo_opts(&[
        "--url",
        &ws,
        "--url",
        &wss,
        "--insecure",
        "-c",
        "6",
        "--depth",
        "3",
        "--size",
        "64,1KiB,20",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--server-pid",
        &pid,
        "--engine",
        "io-uring",
    ]);
    let report = run(&opts).expect("run");
    assert!(
        report.setup.engine.starts_with("io_uring"),
        "{}",
        report.setup.engine
    );
    assert_eq!(report.ended_by, EndedBy::Duration);
    assert_counts(&report);
    let r = &report.results;
    assert!(r.messages > 100, "{r:#?}");
    assert_eq!((r.mismatches, r.lost, r.in_flight), (0, 0, 0), "{r:#?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        report
            .setup
            .targets
            .iter()
            .map(|t| t.connections)
            .collect::<Vec<_>>(),
        vec![3, 3]
    );
    assert!(
        (report.results.window_s - 1.0).abs() < 0.1,
        "window {}",
        report.results.window_s
    );
    let server = r.server.as_ref().expect("server sampled");
    assert!(server.cpu_us_per_msg > 0.0 && server.rss_end_bytes.unwrap() > 0);
    assert!(r.client.as_ref().expect("client sampled").cpu_us_per_msg > 0.0);
}

#[test]
fn epoll_counts_match_with_deep_pipelines_and_text() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    let opts = echo_opts(&[
        "--url",
        &ws,
        "--url",
        &wss,
        "--insecure",
        "-c",
        "4",
        "--depth",
        "32",
        "--text",
        "--size",
        "100",
        "--duration",
        "800ms",
        "--warmup",
        "0s",
        "--engine",
        "epoll",
        "--threads",
        "2",
    ]);
    let report = run(&opts).expect("run");
    assert_eq!(report.setup.engine, "epoll");
    assert_eq!(report.setup.threads, 2);
    assert_counts(&report);
    let r = &report.results;
    assert!(r.messages > 100, "{r:#?}");
    assert_eq!((r.mismatches, r.lost), (0, 0), "{r:#?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.server.is_none(), "no --server-pid, no server figures");
}

#[test]
fn json_and_hlog_are_written_and_read_back() {
    let server = Server::start(&[]);
    let dir = temp_dir("json");
    let (json, hlog) = (dir.join("run.json"), dir.join("run.hlog"));
    let url = format!("{}/", server.ws);
    let opts = echo_opts(&[
        "--url",
        &url,
        "-c",
        "3",
        "--duration",
        "1500ms",
        "--warmup",
        "100ms",
        "--json",
        json.to_str().unwrap(),
        "--hlog",
        hlog.to_str().unwrap(),
        "--label",
        "tokio",
    ]);
    let report = run(&opts).expect("run");
    assert!(
        report.output_errors.is_empty(),
        "{:?}",
        report.output_errors
    );
    assert_counts(&report);

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["schema"], "wsport-bench/1");
    assert!(
        doc["scenario"]
            .as_str()
            .unwrap()
            .starts_with("echo-64B-3c-1t-tokio-ws-"),
        "{}",
        doc["scenario"]
    );
    for field in [
        "host",
        "cpu_model",
        "kernel",
        "cpus_online",
        "cpus_allowed",
        "rustc",
        "tool_version",
    ] {
        assert!(doc["meta"].get(field).is_some(), "meta.{field}");
    }
    assert!(doc["meta"]["kernel"].is_string());
    assert_eq!(doc["flags"]["connections"], 3);
    assert_eq!(doc["flags"]["duration"], 1.5);
    assert!(doc["setup"]["engine"].is_string());
    assert_eq!(doc["setup"]["targets"][0]["connections"], 3);
    let messages = doc["results"]["messages"].as_u64().unwrap();
    assert_eq!(messages, report.results.messages);
    for p in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(
            doc["results"]["latency_ns"][p].as_u64().unwrap() > 0,
            "latency {p}"
        );
    }
    assert_eq!(
        doc["intervals"].as_array().unwrap().len(),
        2,
        "1.5 s window: a full and a half second"
    );

    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::Histogram;
    let decode = |b64: &str| -> Histogram<u64> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        Deserializer::new().deserialize(&mut &bytes[..]).unwrap()
    };
    assert_eq!(
        decode(doc["histogram"]["data"].as_str().unwrap()).len(),
        messages
    );

    let text = std::fs::read(&hlog).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("#[Histogram log format version 1.3]"));
    let mut in_log = 0;
    let mut lines = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(iv) = entry.unwrap() {
            in_log += decode(iv.encoded_histogram()).len();
            lines += 1;
        }
    }
    assert_eq!((lines, in_log), (2, messages));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn killing_the_server_mid_run_is_counted_by_cause() {
    for engine in ["io-uring", "epoll"] {
        let mut server = Server::start(&[]);
        let url = format!("{}/", server.ws);
        let opts = echo_opts(&[
            "--url",
            &url,
            "-c",
            "5",
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--engine",
            engine,
        ]);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            server.kill();
        });
        let report = run(&opts).expect("a dying server still gives results");
        killer.join().unwrap();
        assert_eq!(report.ended_by, EndedBy::ConnectionsFailed, "{engine}");
        assert_counts(&report);
        let r = &report.results;
        assert!(
            r.messages > 0,
            "{engine}: messages before the kill are kept"
        );
        let failed: u64 = r.errors.values().map(|e| e.count).sum();
        assert_eq!(
            failed, 5,
            "{engine}: every connection failed once: {:?}",
            r.errors
        );
        assert!(
            r.errors.keys().all(|k| k == "eof" || k == "reset"),
            "{engine}: {:?}",
            r.errors
        );
        assert!(
            report.results.window_s < 2.0,
            "{engine}: the window ends with the last connection"
        );
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("connections failed")));
    }
}

#[test]
fn ctrl_c_cuts_the_window_and_still_writes_results() {
    let server = Server::start(&[]);
    let dir = temp_dir("stop");
    let json = dir.join("run.json");
    let url = format!("{}/", server.ws);
    let opts = echo_opts(&[
        "--url",
        &url,
        "-c",
        "2",
        "--duration",
        "30s",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stop = Stop::new();
    let raiser = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        raiser.stop();
    });
    let report = run_with_stop(&opts, &stop).expect("run");
    assert_eq!(report.ended_by, EndedBy::Interrupted);
    // Cut long before its 30 s; how much of the 600 ms the window got depends on how fast the
    // host opened the connections (on a loaded host, under half), so only "some" is asserted.
    assert!(
        report.results.window_s > 0.0 && report.results.window_s < 2.0,
        "{}",
        report.results.window_s
    );
    assert_counts(&report);
    assert_eq!(report.results.lost, 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["ended_by"], "interrupted");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The classic port mistakes stop the run with a sentence that names the mistake.
#[test]
fn setup_errors_name_the_mistake() {
    let server = Server::start(&[]);
    let guarded = Server::start(&["--auth-token", "secret"]);
    let free_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = format!("ws://127.0.0.1:{free_port}/");
    let ws_to_tls = server.wss.replace("wss://", "ws://");
    let wss_to_plain = server.ws.replace("ws://", "wss://");
    let cases: [(&str, &[&str], Cause, &str); 5] = [
        (
            &refused,
            &[],
            Cause::Refused,
            &format!("nothing listens on 127.0.0.1:{free_port}"),
        ),
        (&ws_to_tls, &[], Cause::NotWebSocket, "did you mean wss://?"),
        (
            &wss_to_plain,
            &["--insecure"],
            Cause::NotTls,
            "did you mean ws://?",
        ),
        (&server.wss, &[], Cause::Tls, "--insecure"),
        (
            &guarded.ws,
            &[],
            Cause::Rejected,
            "HTTP 401 Unauthorized: missing or wrong bearer token",
        ),
    ];
    for engine in ["io-uring", "epoll"] {
        for (url, extra, cause, text) in &cases {
            let mut args = vec![
                "--url",
                url,
                "-c",
                "2",
                "--duration",
                "1s",
                "--engine",
                engine,
            ];
            args.extend_from_slice(extra);
            match run(&echo_opts(&args)) {
                Err(BenchError::Setup { error, .. }) => {
                    assert_eq!(error.cause, *cause, "{engine} {url}: {error}");
                    assert!(error.detail.contains(text), "{engine} {url}: {error}");
                }
                other => panic!(
                    "{engine} {url}: expected a setup error, got {:?}",
                    other.map(|r| r.results)
                ),
            }
        }
    }
}

/// A port that accepts TCP but never answers: the run stops at --connect-timeout and says
/// where the connections were stuck.
#[test]
fn a_silent_server_times_out_naming_the_phase() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    for engine in ["io-uring", "epoll"] {
        let started = std::time::Instant::now();
        match run(&echo_opts(&[
            "--url",
            &url,
            "-c",
            "2",
            "--connect-timeout",
            "300ms",
            "--engine",
            engine,
        ])) {
            Err(
                e @ BenchError::SetupTimeout {
                    pending: 2,
                    total: 2,
                    ..
                },
            ) => {
                assert!(e.to_string().contains("stuck in the upgrade"), "{e}");
            }
            other => panic!(
                "{engine}: expected a timeout, got {:?}",
                other.map(|r| r.results)
            ),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{engine}: {:?}",
            started.elapsed()
        );
    }
    drop(listener);
}

/// A server that flips the last byte of every `every`-th echo (and pings between echoes):
/// each corrupted echo must be counted, and nothing else.
#[test]
fn a_corrupting_server_is_caught() {
    let mock = Mock {
        corrupt_every: Some(7),
        ..Mock::default()
    }
    .start();
    for engine in ["io-uring", "epoll"] {
        let before = mock.corrupted.load(Ordering::SeqCst);
        let opts = echo_opts(&[
            "--url",
            &mock.url,
            "-c",
            "3",
            "--depth",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
            "--engine",
            engine,
        ]);
        let report = run(&opts).expect("run");
        assert_counts(&report);
        let sent_bad = mock.corrupted.load(Ordering::SeqCst) - before;
        assert!(sent_bad > 0);
        assert_eq!(
            report.results.mismatches, sent_bad,
            "{engine}: every corrupted echo is caught, nothing else"
        );
        assert!(report.warnings.iter().any(|w| w.contains("did not match")));
    }
}

#[test]
fn rate_keeps_its_schedule_over_ws_and_wss() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    for engine in ["io-uring", "epoll"] {
        let opts = rate_opts(&[
            "--url",
            &ws,
            "--url",
            &wss,
            "--insecure",
            "-c",
            "4",
            "--rate",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--engine",
            engine,
        ]);
        let report = run(&opts).expect("run");
        assert_counts(&report);
        let r = &report.results;
        assert!(
            (r.msgs_per_sec - 2000.0).abs() < 200.0,
            "{engine}: {} msgs/s for a target of 2000",
            r.msgs_per_sec
        );
        assert!(r.errors.is_empty() && r.mismatches == 0, "{engine}: {r:#?}");
        let (corrected, as_sent) = (
            &r.latency_ns,
            r.latency_uncorrected_ns
                .as_ref()
                .expect("rate reports both"),
        );
        assert_eq!(corrected.count, as_sent.count);
        assert!(
            corrected.p50 >= as_sent.p50 && corrected.max >= as_sent.max,
            "{engine}: intended <= actual send time"
        );
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["workload"], "rate");
        assert_eq!(doc["setup"]["pacing"]["loop"], "open");
        assert_eq!(doc["setup"]["pacing"]["interval_ns"], 2_000_000);
        assert!(doc["histogram_uncorrected"]["data"].is_string());
        assert!(doc["results"]["latency_uncorrected_ns"]["p99"].is_u64());
        assert!(
            report.scenario.starts_with("rate-2000ps-64B-4c-1t-ws-"),
            "{}",
            report.scenario
        );
    }
}

/// The client's own lateness is measured and kept small in both engines: against a fast server
/// at a low rate every message's send lag is recorded, the corrected latency is the as-sent
/// one plus at most that lag, and the typical message leaves on time (epoll's millisecond
/// waits once made it leave ~0.5 ms late, all of it counted against the server).
#[test]
fn rate_sends_on_time_in_both_engines() {
    let server = Server::start(&[]);
    let url = format!("{}/", server.ws);
    for engine in ["io-uring", "epoll"] {
        let opts = rate_opts(&[
            "--url",
            &url,
            "-c",
            "10",
            "--rate",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--engine",
            engine,
        ]);
        let report = run(&opts).expect("run");
        assert_counts(&report);
        let r = &report.results;
        let lag = r.send_lag_ns.as_ref().expect("rate measures its send lag");
        let as_sent = r.latency_uncorrected_ns.as_ref().unwrap();
        // Every message sent in the window is in it (± those in flight at its edges).
        assert!(
            lag.count.abs_diff(r.messages) <= 20,
            "{engine}: {} lags for {} messages",
            lag.count,
            r.messages
        );
        assert!(
            r.latency_ns.p50 <= as_sent.p50 + lag.max,
            "{engine}: corrected p50 {} > as sent p50 {} + lag max {}",
            r.latency_ns.p50,
            as_sent.p50,
            lag.max
        );
        assert!(
            lag.p50 < 200_000,
            "{engine}: half the messages left more than {} ns late",
            lag.p50
        );
        assert!(
            report.setup.engine.contains("before a send is due"),
            "{engine}: the wake-up margin is recorded: {}",
            report.setup.engine
        );
        let doc = serde_json::to_value(&report).unwrap();
        assert!(doc["histogram_send_lag"]["data"].is_string());
        assert!(doc["results"]["send_lag_ns"]["p99"].is_u64());
    }
}

/// A client that wakes 3 ms after each message's turn (hidden `--debug-wake-late`) is caught:
/// its send lag shows the 3 ms, the run is flagged, and the summary's rule agrees.
#[test]
fn a_late_client_is_flagged() {
    let server = Server::start(&[]);
    let url = format!("{}/", server.ws);
    for engine in ["io-uring", "epoll"] {
        let opts = rate_opts(&[
            "--url",
            &url,
            "-c",
            "4",
            "--rate",
            "400",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--engine",
            engine,
            "--debug-wake-late",
            "3ms",
        ]);
        let report = run(&opts).expect("run");
        let r = &report.results;
        let lag = r.send_lag_ns.as_ref().unwrap();
        assert!(lag.p50 >= 2_500_000, "{engine}: lag p50 {} ns", lag.p50);
        assert!(r.send_lag_exceeded, "{engine}: not flagged");
        assert!(
            report.warnings.iter().any(|w| w.contains("SENT LATE")),
            "{engine}: {:?}",
            report.warnings
        );
        let doc = serde_json::to_value(&report).unwrap();
        let parsed = wsport_bench_report::runs::Run::parse("x.json".into(), doc).unwrap();
        assert_eq!(
            parsed.client_bound,
            Some(wsport_bench_report::runs::ClientLimit::Late),
            "{engine}"
        );
    }
}

/// A server that stalls for 300 ms in the middle of a fixed-rate run: the corrected p99 shows
/// the stall (at least half of it), the uncorrected one does not — coordinated omission, as
/// wrk2 measures it, with one message in flight per connection.
#[test]
fn rate_latency_is_corrected_for_a_server_stall() {
    let stall = Duration::from_millis(300);
    for engine in ["io-uring", "epoll"] {
        let mock = Mock {
            stall: Some((400, stall)),
            ..Mock::default()
        }
        .start();
        let opts = rate_opts(&[
            "--url",
            &mock.url,
            "-c",
            "2",
            "--rate",
            "1000",
            "--max-in-flight",
            "1",
            "--duration",
            "1500ms",
            "--warmup",
            "0s",
            "--engine",
            engine,
        ]);
        let report = run(&opts).expect("run");
        assert_counts(&report);
        let r = &report.results;
        assert!(
            mock.stalled.load(Ordering::SeqCst) > 0,
            "{engine}: the stall happened"
        );
        let as_sent = r.latency_uncorrected_ns.as_ref().unwrap();
        assert!(
            r.latency_ns.p99 >= stall.as_nanos() as u64 / 2,
            "{engine}: corrected p99 {} ns",
            r.latency_ns.p99
        );
        assert!(
            as_sent.p99 < stall.as_nanos() as u64 / 10,
            "{engine}: uncorrected p99 {} ns",
            as_sent.p99
        );
        assert!(
            as_sent.max >= stall.as_nanos() as u64 * 8 / 10,
            "{engine}: the messages in flight saw it"
        );
    }
}

/// The same with the real server and its debug-only stall (`--debug-stall-every 700ms
/// --debug-stall-for 300ms`, which blocks its runtime thread): the corrected p99 is at least
/// half the stall, the uncorrected p99 is not.
#[test]
fn rate_latency_shows_the_servers_injected_stall() {
    let stall = Duration::from_millis(300);
    let server = Server::start(&["--debug-stall-every", "700ms", "--debug-stall-for", "300ms"]);
    let opts = rate_opts(&[
        "--url",
        &server.ws,
        "-c",
        "2",
        "--rate",
        "1000",
        "--max-in-flight",
        "1",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ]);
    let report = run(&opts).expect("run");
    assert_counts(&report);
    let r = &report.results;
    let as_sent = r.latency_uncorrected_ns.as_ref().unwrap();
    assert!(
        r.latency_ns.p99 >= stall.as_nanos() as u64 / 2,
        "corrected p99 {} ns does not show a {stall:?} stall",
        r.latency_ns.p99
    );
    assert!(
        as_sent.p99 < stall.as_nanos() as u64 / 2,
        "uncorrected p99 {} ns: the stall should hide from it",
        as_sent.p99
    );
}

#[test]
fn hold_measures_pongs_and_server_memory_per_connection() {
    let server = Server::start(&[]);
    let (ws, wss, pid) = (
        format!("{}/", server.ws),
        format!("{}/", server.wss),
        server.pid().to_string(),
    );
    for engine in ["io-uring", "epoll"] {
        let opts = workload_opts(
            "hold",
            &[
                "--url",
                &ws,
                "--url",
                &wss,
                "--insecure",
                "-c",
                "40",
                "--ping-interval",
                "100ms",
                "--duration",
                "1s",
                "--warmup",
                "100ms",
                "--server-pid",
                &pid,
                "--engine",
                engine,
            ],
        );
        let report = run(&opts).expect("run");
        assert_counts(&report);
        let r = &report.results;
        assert!(
            (r.msgs_per_sec - 400.0).abs() < 60.0,
            "{engine}: {} pongs/s for 40 connections every 100 ms",
            r.msgs_per_sec
        );
        assert!(r.errors.is_empty() && r.mismatches == 0, "{engine}: {r:#?}");
        assert!(r.server_rss_before_connecting_bytes.unwrap() > 0);
        assert!(r.server_memory_per_connection_bytes.is_some());
        assert_eq!(report.workload, "hold");
        assert!(
            report.scenario.starts_with("hold-40c-ping100ms-1t-ws-"),
            "{}",
            report.scenario
        );
        assert!(report.to_string().contains("per connection"));
    }
}

#[test]
fn connect_storms_time_each_phase() {
    let server = Server::start(&[]);
    let (ws, wss, pid) = (
        format!("{}/", server.ws),
        format!("{}/", server.wss),
        server.pid().to_string(),
    );
    for engine in ["io-uring", "epoll"] {
        for (url, tls) in [(&ws, false), (&wss, true)] {
            let opts = workload_opts(
                "connect",
                &[
                    "--url",
                    url,
                    "--insecure",
                    "-c",
                    "3",
                    "--duration",
                    "600ms",
                    "--warmup",
                    "100ms",
                    "--server-pid",
                    &pid,
                    "--engine",
                    engine,
                ],
            );
            let report = run(&opts).expect("run");
            assert_counts(&report);
            let r = &report.results;
            assert!(
                r.messages > 10,
                "{engine} {url}: {} connections",
                r.messages
            );
            assert!(r.errors.is_empty() && r.lost == 0, "{engine} {url}: {r:#?}");
            let phases = r.connect.as_ref().expect("connect reports phases");
            assert_eq!(phases.tcp_ns.count, r.messages);
            assert_eq!(phases.upgrade_ns.count, r.messages);
            assert_eq!(
                phases.tls_ns.as_ref().map(|l| l.count),
                tls.then_some(r.messages),
                "{engine} {url}"
            );
            assert!(
                r.latency_ns.p50 >= phases.upgrade_ns.p50,
                "the total includes the upgrade"
            );
            assert!(r.server.as_ref().unwrap().cpu_us_per_msg > 0.0);
            assert!(r.server_memory_per_connection_bytes.is_none());
        }
    }
    // Not one connection can be opened: the run stops with the reason.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/", l.local_addr().unwrap())
    };
    match run(&workload_opts(
        "connect",
        &["--url", &refused, "-c", "2", "--duration", "5s"],
    )) {
        Err(BenchError::Setup { error, .. }) => assert_eq!(error.cause, Cause::Refused, "{error}"),
        other => panic!("expected a setup error, got {:?}", other.map(|r| r.results)),
    }
}

fn rate_opts(args: &[&str]) -> wsport_bench::Opts {
    workload_opts("rate", args)
}

fn workload_opts(workload: &str, args: &[&str]) -> wsport_bench::Opts {
    use clap::Parser;
    let mut argv = vec!["wsport-bench", workload, "--quiet"];
    argv.extend_from_slice(args);
    wsport_bench::Opts::try_parse_from(argv).expect("valid options")
}

/// A minimal echo server on wsport-core that misbehaves on purpose.
#[derive(Default, Clone)]
struct Mock {
    /// Flip the last byte of every n-th echo (counted over each connection), and ping the
    /// client every third echo.
    corrupt_every: Option<u64>,
    /// After this many echoes in total, stop echoing on every connection for this long, once.
    stall: Option<(u64, Duration)>,
}

struct MockServer {
    url: String,
    corrupted: Arc<AtomicU64>,
    stalled: Arc<AtomicU64>,
}

impl Mock {
    fn start(self) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let shared = Arc::new(MockShared::default());
        let (corrupted, stalled) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (c, st) = (corrupted.clone(), stalled.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (mock, shared, c, st) = (self.clone(), shared.clone(), c.clone(), st.clone());
                std::thread::spawn(move || mock.serve(stream, &shared, &c, &st));
            }
        });
        MockServer {
            url,
            corrupted,
            stalled,
        }
    }

    fn serve(
        &self,
        mut s: TcpStream,
        shared: &MockShared,
        corrupted: &AtomicU64,
        stalled: &AtomicU64,
    ) -> Option<()> {
        use wsport_core::conn::compact;
        use wsport_core::handshake::{parse_request, write_accept};
        use wsport_core::{Limits, ServerConnection};

        s.set_nodelay(true).ok()?;
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 65536];
        loop {
            let n = s.read(&mut tmp).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..n]);
            if let Some(req) = parse_request(&buf, 8192).ok()? {
                let mut out = Vec::new();
                write_accept(&req.upgrade?.key, None, &mut out);
                s.write_all(&out).ok()?;
                buf.drain(..req.len);
                break;
            }
        }
        let mut conn = ServerConnection::new(Limits::default());
        let mut count = 0u64;
        loop {
            let echo = conn.echo_in_place(&mut buf, 0..0, 0);
            let before = count;
            count += echo.messages;
            let total = shared.echoed.fetch_add(echo.messages, Ordering::SeqCst) + echo.messages;
            if let Some((after, length)) = self.stall {
                let until = {
                    let mut end = shared.stall_end.lock().unwrap();
                    if end.is_none() && total >= after {
                        *end = Some(std::time::Instant::now() + length);
                        stalled.fetch_add(1, Ordering::SeqCst);
                    }
                    *end
                };
                if let Some(until) = until {
                    std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()));
                }
            }
            let corrupt = self
                .corrupt_every
                .is_some_and(|every| count / every > before / every);
            if echo.closing.is_none() && echo.messages > 0 && corrupt {
                buf[echo.output.end - 1] ^= 0x01;
                corrupted.fetch_add(1, Ordering::SeqCst);
            }
            s.write_all(&buf[echo.output.clone()]).ok()?;
            if self.corrupt_every.is_some()
                && echo.closing.is_none()
                && echo.messages > 0
                && count % 3 == 0
            {
                // A ping between echoes: the client must answer it and carry on.
                let mut ping = Vec::new();
                conn.write_ping(b"are you there", &mut ping);
                s.write_all(&ping).ok()?;
            }
            if echo.closing.is_some() {
                return Some(());
            }
            compact(&mut buf, echo.consumed);
            let n = s.read(&mut tmp).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    }
}

#[derive(Default)]
struct MockShared {
    echoed: AtomicU64,
    stall_end: std::sync::Mutex<Option<std::time::Instant>>,
}
