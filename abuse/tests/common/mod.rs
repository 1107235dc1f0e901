//! Starting a real server binary for the tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The server configurations, by name: binary and extra flags.
pub const SERVERS: [(&str, &str, &[&str]); 5] = [
    ("tokio", "wsport-tokio", &[]),
    ("tokio-uring", "wsport-tokio-uring", &[]),
    ("monoio-uring", "wsport-monoio", &["--driver", "uring"]),
    ("monoio-epoll", "wsport-monoio", &["--driver", "epoll"]),
    ("uring", "wsport-uring", &[]),
];

/// Where the server binaries are: `$WSPORT_BIN_DIR`, else the test's own `target/<profile>/`
/// (tests run from `target/<profile>/deps/`), as the conformance suite does.
fn bin(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("WSPORT_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .ok()?
            .parent()?
            .parent()?
            .to_path_buf(),
    };
    Some(dir.join(name)).filter(|p| p.exists())
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `config` on a free ws:// port with `flags`. `Err(reason)` when the server refuses to
/// run on this host (io_uring unavailable); panics when wsport-tokio's binary is missing, since
/// then nothing was tested.
pub fn start(config: &str, flags: &[&str]) -> Result<Server, String> {
    start_on(config, "ws", flags)
}

/// [`start`] with the listener's `scheme`, ws or wss (a self-signed certificate on wss).
pub fn start_on(config: &str, scheme: &str, flags: &[&str]) -> Result<Server, String> {
    let (_, name, extra) = SERVERS
        .iter()
        .find(|s| s.0 == config)
        .expect("known server");
    let Some(path) = bin(name) else {
        assert_ne!(
            config, "tokio",
            "{name} not built: cargo build --release -p wsport-tokio"
        );
        return Err(format!("{name} not built"));
    };
    let mut child = Command::new(path)
        .args(["--listen", &format!("{scheme}://127.0.0.1:0")])
        .args(["--threads", "1", "--no-pin"])
        .args(*extra)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let prefix = format!("listening {scheme}://");
    let listening = lines.find_map(|l| l.ok()?.strip_prefix(&prefix).map(String::from));
    match listening {
        Some(addr) => {
            // Keep draining stdout so the server never blocks on it.
            std::thread::spawn(move || lines.for_each(drop));
            let addr = addr
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/');
            Ok(Server {
                child,
                addr: addr.parse().expect("listening address"),
            })
        }
        None => {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.wait();
            assert_ne!(config, "tokio", "wsport-tokio did not start: {err}");
            Err(format!("unavailable: {}", err.trim()))
        }
    }
}
