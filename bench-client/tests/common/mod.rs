//! Test support: start a real server binary on free ports, run the client in-process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use wsport_bench::{Opts, Report};

/// Where `wsport-tokio` is: `$WSPORT_BIN_DIR`, else this test's profile directory, else the
/// workspace's `target/debug` (for builds with a private CARGO_TARGET_DIR).
pub fn server_binary() -> PathBuf {
    let name = "wsport-tokio";
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("WSPORT_BIN_DIR") {
        candidates.push(PathBuf::from(dir).join(name));
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    candidates.push(dir.join(name));
    candidates.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug")
            .join(name),
    );
    candidates.into_iter().find(|p| p.exists()).unwrap_or_else(|| {
        panic!("no {name} binary found: build it first with `cargo build -p wsport-tokio` (or set WSPORT_BIN_DIR)")
    })
}

/// A running server; dropping it kills it (by its own pid) and reaps it.
pub struct Server {
    child: Child,
    /// `ws://127.0.0.1:PORT`
    pub ws: String,
    /// `wss://127.0.0.1:PORT`
    pub wss: String,
}

impl Server {
    /// `wsport-tokio --listen ws://127.0.0.1:0 --listen wss://127.0.0.1:0 EXTRA...`
    pub fn start(extra: &[&str]) -> Self {
        Self::launch(&["ws", "wss"], extra)
    }

    /// `wsport-tokio --listen ws://127.0.0.1:0 --raw-tcp`: the raw TCP echo (`wss` is empty).
    pub fn start_raw() -> Self {
        Self::launch(&["ws"], &["--raw-tcp"])
    }

    fn launch(schemes: &[&str], extra: &[&str]) -> Self {
        let listen = schemes
            .iter()
            .flat_map(|s| ["--listen".to_owned(), format!("{s}://127.0.0.1:0")]);
        let mut child = Command::new(server_binary())
            .args(listen)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsport-tokio");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let (mut ws, mut wss) = (String::new(), String::new());
        while ws.is_empty() || (wss.is_empty() && schemes.contains(&"wss")) {
            let url = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the server announced its ports");
            if url.starts_with("wss://") {
                wss = url;
            } else {
                ws = url;
            }
        }
        Self { child, ws, wss }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parse `wsport-bench echo ARGS...`.
pub fn echo_opts(args: &[&str]) -> Opts {
    use clap::Parser;
    let mut argv = vec!["wsport-bench", "echo", "--quiet"];
    argv.extend_from_slice(args);
    Opts::try_parse_from(argv).expect("valid options")
}

/// The accounting every run must satisfy.
pub fn assert_counts(report: &Report) {
    let r = &report.results;
    assert_eq!(
        r.sent,
        r.received + r.in_flight + r.lost,
        "sent = received + in flight + lost: {r:#?}"
    );
    assert_eq!(
        report.hists.latency.len(),
        r.messages,
        "histogram samples = messages in the window"
    );
    assert_eq!(r.latency_ns.count, r.messages);
    assert!(r.received >= r.messages);
    let per_second: u64 = report.intervals.iter().map(|i| i.messages).sum();
    assert_eq!(per_second, r.messages, "intervals add up to the window");
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsport-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
