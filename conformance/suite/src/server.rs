//! Starting a server binary, learning its ports, reading its output, stopping it.
//!
//! Every server shares one CLI: `--listen ws://127.0.0.1:0` picks a free port and the server
//! announces it on stdout as `listening ws://127.0.0.1:34567`. [`Launch`] builds the command
//! line, [`Server`] is the guard that owns the child process: it kills (its own child, by
//! handle) and reaps it on drop, and removes the certificate files it wrote.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use crate::config::ServerConfig;
use crate::tls;
use wsport_harness::sys;

/// How long a server may take to announce all its listeners.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

/// One listener of one running server, as a client sees it.
#[derive(Clone)]
pub struct Endpoint {
    /// The server config name, so every failure names it.
    pub server: &'static str,
    pub scheme: Scheme,
    pub addr: SocketAddr,
    /// The client TLS configuration for `wss` endpoints.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Endpoint {
    /// `ws://127.0.0.1:port/` or `wss://...`.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme.as_str(), self.addr)
    }

    /// `host:port` for the Host header.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}://{}",
            self.server,
            self.scheme.as_str(),
            self.addr
        )
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where the wss listeners get their certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cert {
    /// `--cert/--key` with [`tls::test_cert`]; clients trust exactly that certificate.
    Provided,
    /// No `--cert/--key`: the server generates its own; clients skip verification.
    SelfSigned,
}

/// A server command line under construction. By default: one ws and one wss listener, the
/// test certificate, and no other flags.
pub struct Launch {
    config: &'static ServerConfig,
    listeners: Vec<Scheme>,
    cert: Cert,
    args: Vec<String>,
}

impl Launch {
    pub fn new(config: &'static ServerConfig) -> Self {
        Launch {
            config,
            listeners: vec![Scheme::Ws, Scheme::Wss],
            cert: Cert::Provided,
            args: Vec::new(),
        }
    }

    /// Replace the listeners, e.g. two ws and two wss.
    pub fn listeners(mut self, listeners: &[Scheme]) -> Self {
        self.listeners = listeners.to_vec();
        self
    }

    /// Start wss without `--cert/--key`, so the server self-signs.
    pub fn self_signed(mut self) -> Self {
        self.cert = Cert::SelfSigned;
        self
    }

    /// Extra flags, e.g. `&["--idle-timeout", "1s"]`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Spawn the server and wait until every listener is announced.
    pub fn start(self) -> Result<Server, String> {
        let binary = self.config.path();
        let workdir = self.write_cert()?;
        let mut command = Command::new(&binary);
        command.args(self.config.args);
        for scheme in &self.listeners {
            command.args(["--listen", &format!("{}://127.0.0.1:0", scheme.as_str())]);
        }
        if let Some(dir) = &workdir {
            command.arg("--cert").arg(dir.join("cert.pem"));
            command.arg("--key").arg(dir.join("key.pem"));
        }
        command.args(&self.args);
        let command_line = render(&command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: cannot start `{command_line}`: {e}", self.config.name))?;

        let output = Arc::new(Output::default());
        drain(
            child.stdout.take().expect("piped"),
            output.clone(),
            Pipe::Stdout,
        );
        drain(
            child.stderr.take().expect("piped"),
            output.clone(),
            Pipe::Stderr,
        );

        let client_tls = match self.cert {
            Cert::Provided => tls::trusting_client(),
            Cert::SelfSigned => tls::insecure_client(),
        };
        let mut server = Server {
            name: self.config.name,
            command_line,
            child: Mutex::new(child),
            output,
            endpoints: Vec::new(),
            workdir,
        };
        server.endpoints = server.await_listeners(&self.listeners, &client_tls)?;
        Ok(server)
    }

    /// Write the test certificate into a fresh directory, when the server needs one.
    fn write_cert(&self) -> Result<Option<PathBuf>, String> {
        let needs_cert = self.cert == Cert::Provided && self.listeners.contains(&Scheme::Wss);
        if !needs_cert {
            return Ok(None);
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsport-conformance-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let cert = tls::test_cert();
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("cert.pem"), &cert.cert_pem))
            .and_then(|()| std::fs::write(dir.join("key.pem"), &cert.key_pem))
            .map_err(|e| format!("writing the test certificate to {}: {e}", dir.display()))?;
        Ok(Some(dir))
    }
}

/// A running server. Dropping it kills and reaps the process.
pub struct Server {
    name: &'static str,
    command_line: String,
    child: Mutex<Child>,
    output: Arc<Output>,
    endpoints: Vec<Endpoint>,
    workdir: Option<PathBuf>,
}

impl Server {
    /// The config name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Every listener, in the order announced.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The first listener of `scheme`.
    pub fn endpoint(&self, scheme: Scheme) -> &Endpoint {
        self.endpoints
            .iter()
            .find(|e| e.scheme == scheme)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no {} listener was requested",
                    self.name,
                    scheme.as_str()
                )
            })
    }

    pub fn pid(&self) -> u32 {
        lock(&self.child).id()
    }

    /// Send SIGTERM to this server (and only this server: the pid is our own child's).
    pub fn sigterm(&self) -> Result<(), String> {
        let mut child = lock(&self.child);
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{}: server already exited ({status})", self.name));
        }
        sys::sigterm(child.id()).map_err(|e| format!("{}: SIGTERM failed: {e}", self.name))
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = lock(&self.child).try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("{}: still running after {timeout:?}", self.name));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `Ok` while the process runs; a crash or an early exit is an error with its stderr.
    pub fn check_alive(&self) -> Result<(), String> {
        match lock(&self.child).try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "server exited unexpectedly ({status}){}",
                self.stderr_tail(20)
            )),
            Err(e) => Err(format!("cannot query the server process: {e}")),
        }
    }

    /// Peer input must never make a server panic, not even a task that the runtime would
    /// survive: a `panicked at` line on stderr is a failure.
    pub fn check_no_panic(&self) -> Result<(), String> {
        let out = self.output.lock();
        match out.stderr.iter().find(|l| l.contains("panicked at")) {
            None => Ok(()),
            Some(line) => Err(format!("server logged a panic: {line}")),
        }
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.output.lock().stdout.clone()
    }

    /// Wait until stdout is closed (the process exited and the pipe drained).
    pub fn wait_stdout_closed(&self, timeout: Duration) -> Result<Vec<String>, String> {
        let lines = self
            .output
            .wait_until(timeout, |o| o.stdout_closed.then(|| o.stdout.clone()));
        lines.ok_or_else(|| format!("{}: stdout still open after {timeout:?}", self.name))
    }

    /// Wait up to `timeout` for a stdout line, at or after line `from`, that `pick` accepts.
    pub fn wait_stdout<T>(
        &self,
        from: usize,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        self.output.wait_until(timeout, |o| {
            o.stdout
                .get(from..)
                .into_iter()
                .flatten()
                .find_map(|l| pick(l))
        })
    }

    /// The last `n` stderr lines, formatted for a failure message ("" when empty).
    pub fn stderr_tail(&self, n: usize) -> String {
        let out = self.output.lock();
        let skip = out.stderr.len().saturating_sub(n);
        if out.stderr.is_empty() {
            return String::new();
        }
        let tail: Vec<_> = out.stderr[skip..]
            .iter()
            .map(|l| format!("    {l}"))
            .collect();
        format!("\n  server stderr (last {n} lines):\n{}", tail.join("\n"))
    }

    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    fn await_listeners(
        &self,
        wanted: &[Scheme],
        client_tls: &Arc<ClientConfig>,
    ) -> Result<Vec<Endpoint>, String> {
        let announced = self.output.wait_until(STARTUP_TIMEOUT, |o| {
            let found: Vec<_> = o.stdout.iter().filter_map(|l| parse_listening(l)).collect();
            (found.len() >= wanted.len() || o.stdout_closed).then_some(found)
        });
        let fail = |why: String| {
            let _ = self.kill();
            // Let the pipes drain so the message shows everything the server said.
            self.output
                .wait_until(Duration::from_secs(1), |o| o.stdout_closed.then_some(()));
            format!(
                "{}: {why}\n  command: {}\n  stdout: {:?}{}",
                self.name,
                self.command_line,
                self.stdout_lines(),
                self.stderr_tail(40)
            )
        };
        let Some(announced) = announced else {
            return Err(fail(format!(
                "server did not announce its listeners within {STARTUP_TIMEOUT:?}"
            )));
        };
        let count = |s| wanted.iter().filter(|&&w| w == s).count();
        let got = |s| announced.iter().filter(|(a, _)| *a == s).count();
        if got(Scheme::Ws) != count(Scheme::Ws) || got(Scheme::Wss) != count(Scheme::Wss) {
            let status = self.wait_exit(Duration::from_millis(200)).ok();
            return Err(fail(format!(
                "expected `listening` lines for {wanted:?}, got {announced:?} (exit: {status:?})"
            )));
        }
        Ok(announced
            .into_iter()
            .map(|(scheme, addr)| Endpoint {
                server: self.name,
                scheme,
                addr,
                tls: (scheme == Scheme::Wss).then(|| client_tls.clone()),
            })
            .collect())
    }

    fn kill(&self) -> std::io::Result<()> {
        let mut child = lock(&self.child);
        if child.try_wait()?.is_none() {
            child.kill()?;
        }
        child.wait().map(drop)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
        if let Some(dir) = &self.workdir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `listening ws://127.0.0.1:34567` -> (Ws, 127.0.0.1:34567).
pub fn parse_listening(line: &str) -> Option<(Scheme, SocketAddr)> {
    let url = line.trim().strip_prefix("listening ")?;
    let (scheme, addr) = url.split_once("://")?;
    let scheme = match scheme {
        "ws" => Scheme::Ws,
        "wss" => Scheme::Wss,
        _ => return None,
    };
    Some((scheme, addr.trim_end_matches('/').parse().ok()?))
}

/// A `{"type": kind, ...}` JSON line, parsed.
pub fn json_line(line: &str, kind: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    (value.get("type")?.as_str()? == kind).then_some(value)
}

#[derive(Default)]
struct Output {
    lines: Mutex<Lines>,
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    stdout: Vec<String>,
    stderr: Vec<String>,
    stdout_closed: bool,
}

enum Pipe {
    Stdout,
    Stderr,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        lock(&self.lines)
    }

    fn wait_until<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&Lines) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lock();
        loop {
            if let Some(value) = ready(&lines) {
                return Some(value);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self
                .changed
                .wait_timeout(lines, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Keep reading a pipe into `output` for the life of the process, so the server never
/// blocks on a full pipe.
fn drain(pipe: impl Read + Send + 'static, output: Arc<Output>, which: Pipe) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut lines = output.lock();
            match which {
                Pipe::Stdout => lines.stdout.push(line),
                Pipe::Stderr => lines.stderr.push(line),
            }
            output.changed.notify_all();
        }
        if let Pipe::Stdout = which {
            output.lock().stdout_closed = true;
            output.changed.notify_all();
        }
    });
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn render(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        assert_eq!(
            parse_listening("listening ws://127.0.0.1:34567"),
            Some((Scheme::Ws, "127.0.0.1:34567".parse().unwrap()))
        );
        assert_eq!(
            parse_listening("listening wss://127.0.0.1:40000\n"),
            Some((Scheme::Wss, "127.0.0.1:40000".parse().unwrap()))
        );
        assert_eq!(parse_listening("{\"type\":\"stats\"}"), None);
        assert_eq!(parse_listening("listening http://127.0.0.1:1"), None);
    }

    #[test]
    fn json_lines() {
        let line = r#"{"type":"final","connections_open":0}"#;
        assert_eq!(json_line(line, "final").unwrap()["connections_open"], 0);
        assert!(json_line(line, "stats").is_none());
        assert!(json_line("listening ws://127.0.0.1:1", "final").is_none());
    }
}
