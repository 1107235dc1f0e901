//! The scheduled and scaled workloads against the real `wsport-tokio` binary: `rate --slo`
//! (the search for the highest rate meeting an objective), `connect --rate` (an open-loop
//! connection storm), `hold --ramp`, and `--source-ip`. Every run is short (about a second; a
//! search is several).

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{assert_counts, temp_dir, Server};
use wsport_bench::report::PacingRecord;
use wsport_bench::{run, BenchError};

fn opts(workload: &str, args: &[&str]) -> wsport_bench::Opts {
    use clap::Parser;
    let mut argv = vec!["wsport-bench", workload, "--quiet"];
    argv.extend_from_slice(args);
    wsport_bench::Opts::try_parse_from(argv).expect("valid options")
}

/// A loose objective: the search climbs past the start rate, records every trial, and ends by
/// itself (at most 12 trials) with an answer that a trial at that rate passed.
#[test]
fn slo_search_climbs_past_the_start_rate() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    let dir = temp_dir("slo");
    let json = dir.join("slo.json");
    let started = std::time::Instant::now();
    let report = run(&opts(
        "rate",
        &[
            "--url",
            &ws,
            "--url",
            &wss,
            "--insecure",
            "-c",
            "4",
            "--rate",
            "200",
            "--slo",
            "p99<1s,p99.9<2s",
            "--duration",
            "200ms",
            "--warmup",
            "50ms",
            "--engine",
            "io-uring",
            "--json",
            json.to_str().unwrap(),
        ],
    ))
    .expect("search");
    let slo = report.slo.as_ref().expect("a search reports its trials");
    assert!(slo.trials.len() >= 2, "{slo:#?}");
    assert!(slo.trials.len() <= 12);
    assert!(
        slo.trials[0].pass,
        "the start rate passes: {:#?}",
        slo.trials[0]
    );
    assert_eq!(slo.trials[0].rate, 200);
    assert_eq!(slo.trials[1].rate, 400, "doubling");
    let best = slo.highest_rate.expect("an answer");
    assert!(best > 200, "{slo:#?}");
    let passed = slo.trials.iter().find(|t| t.rate == best).unwrap();
    assert!(passed.pass && passed.failed_because.is_empty());
    assert!(passed
        .objectives
        .iter()
        .all(|o| o.met && o.value_ns < 1_000_000_000));
    if let Some(fail) = slo.lowest_failing_rate {
        assert!(fail > best);
        assert!(slo
            .trials
            .iter()
            .any(|t| t.rate == fail && !t.pass && !t.failed_because.is_empty()));
    }
    // The figures shown are the trial at the answer's rate.
    match report.setup.pacing {
        PacingRecord::Open { rate, .. } => assert_eq!(rate, best),
        ref other => panic!("{other:?}"),
    }
    assert!(
        report
            .scenario
            .starts_with("rate-slo-p99lt1s+p99.9lt2s-64B-4c-1t-ws-"),
        "{}",
        report.scenario
    );
    let text = report.to_string();
    assert!(
        text.contains("highest rate meeting p99<1s,p99.9<2s: "),
        "{text}"
    );
    assert_eq!(text.matches("  trial ").count(), slo.trials.len(), "{text}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["schema"], "wsport-bench/1");
    assert_eq!(doc["slo"]["highest_rate"], best);
    assert_eq!(
        doc["slo"]["trials"].as_array().unwrap().len(),
        slo.trials.len()
    );
    assert_eq!(
        doc["slo"]["trials"][0]["objectives"][0]["objective"],
        "p99<1s"
    );
    assert_eq!(doc["flags"]["slo"], "p99<1s,p99.9<2s");
    assert_eq!(doc["flags"]["rate"], 200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// An impossible objective: even the start rate fails, the search says so after one trial.
#[test]
fn slo_search_reports_that_even_the_start_rate_fails() {
    let server = Server::start(&[]);
    let ws = format!("{}/", server.ws);
    let report = run(&opts(
        "rate",
        &[
            "--url",
            &ws,
            "-c",
            "2",
            "--rate",
            "500",
            "--slo",
            "p50<1us",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--engine",
            "epoll",
        ],
    ))
    .expect("search");
    let slo = report.slo.as_ref().unwrap();
    assert_eq!(slo.trials.len(), 1, "{slo:#?}");
    assert!(!slo.trials[0].pass);
    assert!(
        slo.trials[0].failed_because[0].contains("p50"),
        "{:?}",
        slo.trials[0].failed_because
    );
    assert_eq!((slo.highest_rate, slo.stopped_by), (None, "start_failed"));
    assert!(
        report
            .to_string()
            .contains("none — even the starting rate, 500 msgs/s, fails"),
        "{report}"
    );
    // Options a search cannot honour are refused before anything runs.
    let dir = temp_dir("slo-hlog");
    let hlog = dir.join("x.hlog");
    match run(&opts(
        "rate",
        &[
            "--url",
            &ws,
            "--rate",
            "10",
            "--slo",
            "p99<5ms",
            "--hlog",
            hlog.to_str().unwrap(),
        ],
    )) {
        Err(BenchError::Usage(why)) => assert!(why.contains("--hlog"), "{why}"),
        other => panic!("expected a usage error, got {:?}", other.map(|r| r.results)),
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `connect --rate`: attempts start on schedule, over ws and wss at once, on both engines.
#[test]
fn connect_rate_starts_attempts_on_schedule() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    for engine in ["io-uring", "epoll"] {
        let report = run(&opts(
            "connect",
            &[
                "--url",
                &ws,
                "--url",
                &wss,
                "--insecure",
                "-c",
                "8",
                "--rate",
                "200",
                "--duration",
                "1s",
                "--warmup",
                "200ms",
                "--engine",
                engine,
            ],
        ))
        .expect("run");
        assert_counts(&report);
        let r = &report.results;
        assert!(
            (r.sent_per_sec - 200.0).abs() < 20.0,
            "{engine}: {} attempts/s started for 200",
            r.sent_per_sec
        );
        assert!(
            (r.msgs_per_sec - 200.0).abs() < 30.0,
            "{engine}: {} connections/s opened for 200",
            r.msgs_per_sec
        );
        assert!(r.errors.is_empty() && r.lost == 0, "{engine}: {r:#?}");
        let c = r.connect.as_ref().unwrap();
        assert!(
            c.late <= 20,
            "{engine}: {} late of ~200 with 8 idle slots",
            c.late
        );
        let as_started = r
            .latency_uncorrected_ns
            .as_ref()
            .expect("beside the corrected");
        assert_eq!(as_started.count, r.latency_ns.count);
        assert!(r.latency_ns.max >= as_started.max, "{engine}");
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["setup"]["pacing"]["loop"], "storm");
        assert_eq!(doc["setup"]["pacing"]["rate"], 200);
        assert!(
            report.scenario.starts_with("connect-200ps-8c-1t-ws-"),
            "{}",
            report.scenario
        );
    }
}

/// One slot and more attempts than it can take: attempts are late, and the corrected total
/// (from the intended start) shows the wait that the uncorrected one hides.
#[test]
fn connect_rate_counts_attempts_late_for_a_busy_slot() {
    let server = Server::start(&[]);
    let wss = format!("{}/", server.wss);
    for engine in ["io-uring", "epoll"] {
        let report = run(&opts(
            "connect",
            &[
                "--url",
                &wss,
                "--insecure",
                "-c",
                "1",
                "--rate",
                "5000",
                "--duration",
                "500ms",
                "--warmup",
                "0s",
                "--engine",
                engine,
            ],
        ))
        .expect("run");
        assert_counts(&report);
        let r = &report.results;
        let c = r.connect.as_ref().unwrap();
        assert!(r.messages > 0, "{engine}");
        assert!(
            c.late > r.messages,
            "{engine}: {} late, {} opened",
            c.late,
            r.messages
        );
        assert!(
            c.not_started > 0 && c.not_started <= c.late,
            "{engine}: {c:#?}"
        );
        assert!(r.sent_per_sec < 4000.0, "{engine}: {}", r.sent_per_sec);
        let as_started = r.latency_uncorrected_ns.as_ref().unwrap();
        assert!(
            r.latency_ns.p99 > 2 * as_started.p99,
            "{engine}: corrected p99 {} vs as started {}",
            r.latency_ns.p99,
            as_started.p99
        );
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("connection rate was not reached")));
    }
}

/// `hold --ramp N` opens -c connections in about c/N seconds, on both engines, ws and wss.
#[test]
fn hold_ramp_opens_at_the_asked_rate() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    for engine in ["io-uring", "epoll"] {
        let report = run(&opts(
            "hold",
            &[
                "--url",
                &ws,
                "--url",
                &wss,
                "--insecure",
                "-c",
                "20",
                "--ramp",
                "25",
                "--ping-interval",
                "100ms",
                "--duration",
                "300ms",
                "--warmup",
                "0s",
                "--engine",
                engine,
            ],
        ))
        .expect("run");
        assert_counts(&report);
        let r = &report.results;
        // The last of 20 opens 19/25 = 0.76 s after the start.
        assert!(
            r.opening_s > 0.7 && r.opening_s < 1.3,
            "{engine}: opened in {} s",
            r.opening_s
        );
        assert!(r.errors.is_empty() && r.messages > 0, "{engine}: {r:#?}");
        assert_eq!(report.setup.ramp_per_sec, Some(25));
        assert!(report
            .to_string()
            .contains("20 connections at 25 per second"));
    }
    // Without --ramp they open at once.
    let report = run(&opts(
        "hold",
        &[
            "--url",
            &ws,
            "-c",
            "20",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
        ],
    ))
    .expect("run");
    assert!(
        report.results.opening_s < 0.5,
        "{}",
        report.results.opening_s
    );
}

/// `--source-ip`: connections bind round-robin to the addresses given, as the server's side of
/// each connection shows (/proc/net/tcp: accepted sockets and their peers).
#[test]
fn source_ip_spreads_connections_over_loopback_addresses() {
    let server = Server::start(&[]);
    let (ws, wss) = (format!("{}/", server.ws), format!("{}/", server.wss));
    let ports = [port_of(&ws), port_of(&wss)];
    for engine in ["io-uring", "epoll"] {
        let args: Vec<String> = [
            "--url",
            &ws,
            "--url",
            &wss,
            "--insecure",
            "-c",
            "12",
            "--source-ip",
            "127.0.0.2-127.0.0.4",
            "--ping-interval",
            "100ms",
            "--duration",
            "900ms",
            "--warmup",
            "0s",
            "--engine",
            engine,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let run_thread = std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&opts("hold", &args))
        });
        std::thread::sleep(Duration::from_millis(500));
        let peers = accepted_peers(&ports);
        let report = run_thread.join().unwrap().expect("run");
        assert!(
            report.results.errors.is_empty(),
            "{engine}: {:?}",
            report.results.errors
        );
        let expected: BTreeMap<(u16, Ipv4Addr), usize> = ports
            .iter()
            .flat_map(|&p| (2..=4).map(move |d| ((p, Ipv4Addr::new(127, 0, 0, d)), 2)))
            .collect();
        assert_eq!(
            peers, expected,
            "{engine}: (server port, client address) -> connections"
        );
        assert_eq!(report.setup.source_ips.len(), 3);
    }
}

/// More connections than one source address has ephemeral ports for one target: refused
/// before a socket is opened, with the way out.
#[test]
fn too_many_connections_for_the_ports_are_refused_up_front() {
    let Some((first, last)) = wsport_bench::source::local_port_range() else {
        return;
    };
    let too_many = (usize::from(last - first) + 2).to_string();
    let started = std::time::Instant::now();
    match run(&opts(
        "hold",
        &["--url", "ws://127.0.0.1:9/", "-c", &too_many],
    )) {
        Err(e @ BenchError::TooFewPorts { .. }) => {
            let text = e.to_string();
            assert!(text.contains("--source-ip 127.0.0.1-127.0.0.2"), "{text}");
            assert!(text.contains("ip_local_port_range"), "{text}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.results)),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    use clap::Parser;
    let refused = wsport_bench::Opts::try_parse_from([
        "wsport-bench",
        "echo",
        "--url",
        "ws://127.0.0.1:9/",
        "--source-ip",
        "127.0.0.1,192.168.0.1",
    ])
    .unwrap_err()
    .to_string();
    assert!(refused.contains("not a loopback address"), "{refused}");
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("a port")
}

/// Established TCP sockets whose local port is one of `ports` (the server's accepted ones),
/// counted by (local port, peer address).
fn accepted_peers(ports: &[u16]) -> BTreeMap<(u16, Ipv4Addr), usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let mut peers = BTreeMap::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(&"01")) =
            (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let parse = |a: &str| {
            let (ip, port) = a.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // The kernel prints the network-order address as a host-order number.
            Some((Ipv4Addr::from(ip.to_le_bytes()), port))
        };
        let (Some((_, local_port)), Some((peer, _))) = (parse(local), parse(remote)) else {
            continue;
        };
        if ports.contains(&local_port) {
            *peers.entry((local_port, peer)).or_default() += 1;
        }
    }
    peers
}
