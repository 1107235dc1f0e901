//! `wsport-bench report` and `compare` on directories of constructed runs: documents in the
//! wsport-bench/1 schema with real (encoded) histograms, as the engine writes them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use wsport_bench::cli::format_size;
use wsport_bench::hlog::encode_histogram;
use wsport_bench_report::publish;

const SERVERS: [&str; 2] = ["tokio", "monoio-uring"];

/// One constructed run.
#[derive(Clone)]
struct Spec {
    workload: &'static str,
    server: &'static str,
    scheme: &'static str,
    size: u64,
    /// Scales every cost figure (server CPU, memory): 1.0 = the server's usual cost.
    factor: f64,
    repeat: u32,
}

impl Spec {
    fn new(workload: &'static str, server: &'static str) -> Self {
        Self {
            workload,
            server,
            scheme: "ws",
            size: 64,
            factor: 1.0,
            repeat: 0,
        }
    }
}

fn histogram(p50_ns: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for i in 0..2000u64 {
        h.record(p50_ns + p50_ns * i / 2000).unwrap();
    }
    h.record(p50_ns * 20).unwrap();
    h
}

fn latency(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(), "min": h.min(), "mean": h.mean(), "stdev": h.stdev(),
        "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9),
        "p99": h.value_at_quantile(0.99), "p99_9": h.value_at_quantile(0.999),
        "p99_99": h.value_at_quantile(0.9999), "max": h.max()
    })
}

/// A wsport-bench/1 document for `spec`; figures differ by server so that tables differ.
fn doc(spec: &Spec) -> Value {
    let server_cost = if spec.server == "tokio" { 7.0 } else { 6.0 } * spec.factor;
    let port = 40000 + spec.repeat * 10 + spec.size as u32 % 7;
    let (params, pacing, per_msg) = match spec.workload {
        "echo" => (
            format!("{}-100c", format_size(spec.size as usize)),
            json!({"loop": "closed", "depth": 1}),
            server_cost,
        ),
        "rate" => (
            "20000ps-64B-100c".to_owned(),
            json!({"loop": "open", "rate": 20000, "interval_ns": 5_000_000, "max_in_flight": 1000}),
            server_cost * 1.5,
        ),
        "connect" => (
            "10c".to_owned(),
            json!({"loop": "storm"}),
            server_cost * 30.0,
        ),
        "hold" => (
            "500c-ping1s".to_owned(),
            json!({"loop": "open", "rate": 500, "interval_ns": 1_000_000_000, "max_in_flight": 1}),
            server_cost * 5.0,
        ),
        other => panic!("{other}"),
    };
    let scenario = format!(
        "{}-{params}-1t-{}-{}-{port}",
        spec.workload, spec.server, spec.scheme
    );
    let h = histogram(if spec.server == "tokio" {
        700_000
    } else {
        600_000
    });
    let open_loop = matches!(spec.workload, "rate" | "hold");
    let connect = (spec.workload == "connect").then(|| {
        json!({
            "tcp_ns": latency(&histogram(150_000)),
            "tls_ns": (spec.scheme == "wss").then(|| latency(&histogram(2_000_000))),
            "upgrade_ns": latency(&histogram(300_000)),
        })
    });
    json!({
        "schema": "wsport-bench/1",
        "scenario": scenario,
        "workload": spec.workload,
        "started_unix_s": 1_800_000_000.0 + f64::from(spec.repeat),
        "ended_by": "duration",
        "flags": {"label": spec.server},
        "setup": {
            "threads": 1, "connections": 100, "sizes": [spec.size], "pacing": pacing,
            "targets": [{"url": format!("{}://127.0.0.1:{port}/", spec.scheme), "connections": 100}]
        },
        "results": {
            "window_s": 1.0,
            "messages": 100_000,
            "msgs_per_sec": if spec.workload == "rate" { 20_000.0 } else { 700_000.0 / server_cost },
            "latency_ns": latency(&h),
            "latency_uncorrected_ns": open_loop.then(|| latency(&h)),
            "server": {"pid": 1, "cpu_percent": 99.0, "cpu_us_per_msg": per_msg,
                "rss_start_bytes": 9_000_000, "rss_end_bytes": 9_000_000},
            "server_memory_per_connection_bytes": (spec.workload != "connect").then_some(8000.0 * server_cost / 7.0),
            // The tokio echo runs are client-bound (client busy 97% of its core).
            "client": {"pid": 2, "cpu_percent": if spec.server == "tokio" && spec.workload == "echo" { 97.0 } else { 50.0 },
                "cpu_us_per_msg": per_msg * 0.5, "cores": 1},
            "client_bottleneck": false,
            "mismatches": 0,
            "connect": connect,
        },
        "histogram": {"unit": "ns", "data": encode_histogram(&h)},
        "histogram_uncorrected": open_loop.then(|| json!({"unit": "ns", "data": encode_histogram(&h)})),
    })
}

fn write_runs(dir: &Path, specs: &[Spec]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, spec) in specs.iter().enumerate() {
        let name = format!(
            "{}-{}-{}-{}-r{}.json",
            spec.workload, spec.size, spec.server, spec.scheme, spec.repeat
        );
        let text = serde_json::to_string_pretty(&doc(spec)).unwrap();
        std::fs::write(dir.join(format!("{i:02}-{name}")), text).unwrap();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsport-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every workload, both servers, 2 repeats; echo at two payload sizes, connect over ws and wss.
fn mixed_specs() -> Vec<Spec> {
    let mut specs = Vec::new();
    for repeat in 0..2 {
        for server in SERVERS {
            for size in [64, 1024] {
                specs.push(Spec {
                    size,
                    repeat,
                    ..Spec::new("echo", server)
                });
            }
            specs.push(Spec {
                repeat,
                ..Spec::new("rate", server)
            });
            for scheme in ["ws", "wss"] {
                specs.push(Spec {
                    scheme,
                    repeat,
                    ..Spec::new("connect", server)
                });
            }
            specs.push(Spec {
                repeat,
                ..Spec::new("hold", server)
            });
        }
    }
    specs
}

fn svg_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("plots"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Parse `svg` as XML (it must be well-formed) and return the names of its series.
fn series_of(svg: &str) -> BTreeSet<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let series: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("series"))
        .map(|n| n.attribute("data-series").unwrap().to_owned())
        .collect();
    let distinct: BTreeSet<String> = series.iter().cloned().collect();
    assert_eq!(distinct.len(), series.len(), "one group per series");
    distinct
}

#[test]
fn report_writes_every_document_from_the_runs() {
    let dir = temp_dir("mixed");
    let specs = mixed_specs();
    write_runs(&dir, &specs);
    // Files that are not runs are left alone.
    std::fs::write(dir.join("README.json"), r#"{"not": "a run"}"#).unwrap();
    std::fs::write(dir.join("x.hlog"), "#[Histogram log format version 1.3]\n").unwrap();

    let published = publish::regenerate(&dir, "tokio").unwrap();
    assert_eq!(published.runs, specs.len());

    let jsonl = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), specs.len());
    let mut scenarios = Vec::new();
    for line in &lines {
        let run: Value = serde_json::from_str(line).unwrap();
        assert_eq!(run["schema"], "wsport-bench/1");
        assert!(run["histogram"]["data"]
            .as_str()
            .unwrap()
            .starts_with("HISTF"));
        scenarios.push(run["workload"].as_str().unwrap().to_owned());
    }
    // Workloads in the report's order: echo, rate, connect, hold.
    let mut firsts = scenarios.clone();
    firsts.dedup();
    assert_eq!(firsts, ["echo", "rate", "connect", "hold"]);

    let expected: BTreeSet<String> = [
        "throughput.svg",
        "cpu-per-message.svg",
        "latency-echo-64B-100c-1t-ws.svg",
        "latency-echo-1KiB-100c-1t-ws.svg",
        "latency-rate-20000ps-64B-100c-1t-ws.svg",
        "handshake-connect-10c-1t.svg",
        "memory-per-connection.svg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(svg_files(&dir), expected);
    let servers: BTreeSet<String> = SERVERS.iter().map(|s| s.to_string()).collect();
    for file in &expected {
        let svg = std::fs::read_to_string(dir.join("plots").join(file)).unwrap();
        assert_eq!(series_of(&svg), servers, "{file}");
    }
    // The throughput plot marks the client-bound (tokio) bars and says what the mark means.
    let throughput = std::fs::read_to_string(dir.join("plots/throughput.svg")).unwrap();
    assert!(throughput.contains("the client was the bottleneck"));
    // The rate spectrum has a dashed (uncorrected) line per server.
    let rate =
        std::fs::read_to_string(dir.join("plots/latency-rate-20000ps-64B-100c-1t-ws.svg")).unwrap();
    assert_eq!(rate.matches("stroke-dasharray=\"6 4\"").count(), 2 + 1);

    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert_eq!(summary, published.summary);
    for file in &expected {
        assert!(
            summary.contains(&format!("(plots/{file})")),
            "{file} not linked"
        );
    }
    for heading in [
        "## Echo",
        "## Rate",
        "## Connect",
        "## Hold",
        "### echo-64B-100c-1t-ws",
        "### connect-10c-1t",
    ] {
        assert!(summary.contains(heading), "{heading}\n{summary}");
    }
    // Client-bound echo rows are flagged, the others not.
    let row = |server: &str, scenario: &str| {
        let section = &summary[summary.find(&format!("### {scenario}\n")).unwrap()..];
        section
            .lines()
            .find(|l| l.starts_with(&format!("| {server} |")))
            .unwrap()
            .to_owned()
    };
    assert!(row("tokio", "echo-64B-100c-1t-ws").contains("⚠"));
    assert!(!row("monoio-uring", "echo-64B-100c-1t-ws").contains("⚠"));
    // Echo rows carry RSS and memory per connection; hold rows the memory ratio.
    assert!(row("tokio", "echo-64B-100c-1t-ws").contains("| 8.6 MiB | 7.8 KiB |"));
    assert!(row("monoio-uring", "hold-500c-ping1s-1t-ws").contains("| 0.86× |"));
    // Connect: one row per server and scheme, TLS only for wss.
    assert!(summary.contains("| tokio | wss | 2 |"));
    assert!(row("tokio", "connect-10c-1t").contains("| ws | 2 |"));

    // Regenerating gives the same bytes: runs.jsonl is in a stable order.
    publish::regenerate(&dir, "tokio").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("runs.jsonl")).unwrap(),
        jsonl
    );

    // A directory that keeps only runs.jsonl is read back from it.
    let kept = temp_dir("kept");
    std::fs::copy(dir.join("runs.jsonl"), kept.join("runs.jsonl")).unwrap();
    let again = publish::regenerate(&kept, "tokio").unwrap();
    assert_eq!(again.summary, published.summary);
    assert_eq!(svg_files(&kept), expected);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&kept).unwrap();
}

#[test]
fn plots_without_runs_are_not_written() {
    let dir = temp_dir("echo-only");
    let specs: Vec<Spec> = SERVERS.iter().map(|s| Spec::new("echo", s)).collect();
    write_runs(&dir, &specs);
    // A plot left by an earlier report of runs that are gone.
    std::fs::create_dir_all(dir.join("plots")).unwrap();
    std::fs::write(dir.join("plots/handshake-connect-10c-1t.svg"), "<svg/>").unwrap();
    publish::regenerate(&dir, "tokio").unwrap();
    let expected: BTreeSet<String> = [
        "throughput.svg",
        "cpu-per-message.svg",
        "latency-echo-64B-100c-1t-ws.svg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(svg_files(&dir), expected);
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(!summary.contains("## Connect") && !summary.contains("handshake"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Three repeats of every workload for both servers; `factor(spec)` scales each run's costs.
fn compare_specs(factor: impl Fn(&Spec) -> f64) -> Vec<Spec> {
    let mut specs = Vec::new();
    for repeat in 0..3 {
        for server in SERVERS {
            for workload in ["echo", "rate", "connect", "hold"] {
                let mut spec = Spec {
                    repeat,
                    ..Spec::new(workload, server)
                };
                spec.factor = factor(&spec);
                specs.push(spec);
            }
        }
    }
    specs
}

/// Repeat noise of ±1%, different on each side.
fn noise(spec: &Spec, side: usize) -> f64 {
    [[0.99, 1.0, 1.01], [1.005, 0.995, 1.0]][side][spec.repeat as usize]
}

fn run_compare(base: &Path, current: &Path, out: &Path) -> (i32, String, Value, Value) {
    let github = out.join("github.json");
    let bencher = out.join("bencher.json");
    let output = Command::new(env!("CARGO_BIN_EXE_wsport-bench"))
        .arg("compare")
        .arg(base)
        .arg(current)
        .arg("--github-json")
        .arg(&github)
        .arg("--bencher-json")
        .arg(&bencher)
        .output()
        .unwrap();
    let read = |p: &Path| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        read(&github),
        read(&bencher),
    )
}

#[test]
fn compare_passes_an_a_a_and_flags_an_injected_slowdown() {
    let root = temp_dir("compare");
    let (base, same, slow) = (root.join("base"), root.join("same"), root.join("slow"));
    write_runs(&base, &compare_specs(|s| noise(s, 0)));
    write_runs(&same, &compare_specs(|s| noise(s, 1)));
    // monoio-uring gets 15% costlier in echo (CPU) and hold (memory); the rest is as in A/A.
    write_runs(
        &slow,
        &compare_specs(|s| {
            let slower = s.server == "monoio-uring" && matches!(s.workload, "echo" | "hold");
            noise(s, 1) * if slower { 1.15 } else { 1.0 }
        }),
    );

    let (code, table, github, bencher) = run_compare(&base, &same, &root);
    assert_eq!(code, 0, "{table}");
    assert!(!table.contains("slower"), "{table}");
    // Every workload and server is judged: 4 workloads x 2 servers.
    assert_eq!(table.matches("| unchanged |").count(), 8, "{table}");

    // github-action-benchmark customSmallerIsBetter: [{name, unit, value, range, extra}].
    let entries = github.as_array().unwrap();
    assert_eq!(entries.len(), 8);
    for e in entries {
        assert!(e["name"].is_string() && e["unit"].is_string() && e["extra"].is_string());
        assert!(e["value"].as_f64().unwrap() > 0.0);
        assert!(e["range"].as_str().unwrap().starts_with("± "));
    }
    let echo = entries
        .iter()
        .find(|e| e["name"] == "echo-64B-100c-1t-ws/monoio-uring")
        .unwrap();
    assert_eq!(echo["unit"], "µs/msg");
    // Median of 6.0 x (1.005, 0.995, 1.0).
    assert!(
        (echo["value"].as_f64().unwrap() - 6.0).abs() < 1e-9,
        "{echo}"
    );
    let hold = entries
        .iter()
        .find(|e| e["name"] == "hold-500c-ping1s-1t-ws/tokio")
        .unwrap();
    assert_eq!(hold["unit"], "bytes/connection");
    assert!((hold["value"].as_f64().unwrap() - 8000.0).abs() < 1e-9);

    // Bencher Metric Format: {benchmark: {measure: {value, lower_value, upper_value}}}.
    let benchmarks = bencher.as_object().unwrap();
    assert_eq!(benchmarks.len(), 8);
    let m = &bencher["echo-64B-100c-1t-ws/monoio-uring"]["server-cpu-us-per-message"];
    assert!(
        (m["value"].as_f64().unwrap() - 6.0).abs() < 1e-9,
        "{bencher}"
    );
    assert!((m["lower_value"].as_f64().unwrap() - 5.97).abs() < 1e-9);
    assert!((m["upper_value"].as_f64().unwrap() - 6.03).abs() < 1e-9);
    assert!(bencher["connect-10c-1t-ws/tokio"]["server-cpu-us-per-handshake"].is_object());
    assert!(
        bencher["hold-500c-ping1s-1t-ws/tokio"]["server-memory-bytes-per-connection"].is_object()
    );

    let (code, table, github, _) = run_compare(&base, &slow, &root);
    assert_eq!(code, 1, "{table}");
    let slower: Vec<&str> = table.lines().filter(|l| l.contains("**slower**")).collect();
    assert_eq!(slower.len(), 2, "{table}");
    assert!(slower
        .iter()
        .any(|l| l.starts_with("| echo-64B-100c-1t-ws | monoio-uring |")));
    assert!(slower
        .iter()
        .any(|l| l.starts_with("| hold-500c-ping1s-1t-ws | monoio-uring |")));
    let flagged: Vec<&Value> = github
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["extra"].as_str().unwrap().ends_with("slower"))
        .collect();
    assert_eq!(flagged.len(), 2);
    std::fs::remove_dir_all(&root).unwrap();
}

/// A paired directory as `run-bench.sh --base-bin/--head-bin` leaves it: 10 pairs of echo runs,
/// the host drifting by 45% across them, head costing `effect` more within each pair.
fn write_paired(dir: &Path, effect: f64) {
    std::fs::create_dir_all(dir).unwrap();
    for pair in 1..=10u32 {
        let drift = 1.0 + 0.05 * f64::from(pair);
        for (side, factor) in [("base", drift), ("head", drift * (1.0 + effect))] {
            let spec = Spec {
                repeat: pair,
                factor,
                ..Spec::new("echo", "tokio")
            };
            let mut doc = doc(&spec);
            let label = format!("tokio@{side}");
            let scenario = doc["scenario"]
                .as_str()
                .unwrap()
                .replace("-tokio-", &format!("-{label}-"));
            doc["scenario"] = json!(scenario);
            doc["flags"]["label"] = json!(label);
            doc["gate"] = json!({"side": side, "pair": pair, "order": 0, "server": "tokio"});
            let text = serde_json::to_string(&doc).unwrap();
            std::fs::write(dir.join(format!("{pair:02}-{side}.json")), text).unwrap();
        }
    }
}

fn run_paired(dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wsport-bench"))
        .args(["compare", "--paired"])
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn compare_paired_sees_a_slowdown_through_drift() {
    let root = temp_dir("paired");
    let (same, slow) = (root.join("same"), root.join("slow"));
    write_paired(&same, 0.0);
    write_paired(&slow, 0.06);
    let (status, table) = run_paired(&same);
    assert_eq!(status, 0, "{table}");
    assert!(table.contains("| echo-64B-100c-1t-ws | tokio |"), "{table}");
    assert!(table.contains("unchanged within ±3.0%"), "{table}");
    let (status, table) = run_paired(&slow);
    assert_eq!(status, 1, "{table}");
    assert!(
        table.contains("+6.0%") && table.contains("**slower**"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
