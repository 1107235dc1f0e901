//! Targets (parsed `ws://` / `wss://` URLs) and [`Conn`], one non-blocking TCP or TLS
//! connection driven by `poll(2)`.
//!
//! A single thread both writes and reads: a 16 MiB echo must flow back while the request is
//! still being written, and TLS (rustls is sans-IO here, not `StreamOwned`) must not be split
//! across threads. [`Conn`] owns an output queue and an input buffer; [`Conn::io`] waits for
//! readiness up to a deadline and moves bytes both ways. Peer input is never an error here: a
//! reset, an EOF or a TLS alert just ends the input, and the session judges what it means.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use wsport_harness::sys;

/// A server under test, from its `ws://host:port/path` or `wss://...` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    pub secure: bool,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The `Host:` header value: host, and the port when it is not the scheme's default.
    pub host_header: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let (secure, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else {
            bail!("{url:?}: the URL must start with ws:// or wss://");
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            bail!("{url:?}: user info in the URL is not supported");
        }
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .with_context(|| format!("{url:?}: unclosed '[' in the host"))?;
            let host = &v6[..end];
            let port = match &v6[end + 1..] {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .with_context(|| format!("{url:?}: bad port {p:?}"))?,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .with_context(|| format!("{url:?}: bad port {p:?}"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            bail!("{url:?}: no host");
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            url: url.to_string(),
            secure,
            host,
            port,
            path,
            host_header,
        })
    }
}

/// Bytes read from the socket per `read(2)`.
const READ_CHUNK: usize = 64 * 1024;

/// One client connection, TCP or TLS, non-blocking.
pub struct Conn {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
    /// Bytes (ciphertext under TLS) queued for the socket; `out[out_pos..]` is unsent.
    out: Vec<u8>,
    out_pos: usize,
    /// Plaintext received; `rx[rx_pos..]` is not consumed yet.
    rx: Vec<u8>,
    rx_pos: usize,
    scratch: Vec<u8>,
    /// No more input will come: EOF, reset, TLS close_notify or TLS error.
    input_closed: bool,
    /// The peer reset the connection (ECONNRESET on read or write).
    reset: bool,
    /// A write failed (EPIPE, ECONNRESET): the queue is discarded and later writes dropped.
    write_failed: bool,
    /// We closed the socket.
    aborted: bool,
    /// The first error seen, for the report.
    error: Option<String>,
}

impl Conn {
    /// Connects to `target` and, for `wss://`, completes the TLS handshake, all before
    /// `deadline`.
    pub fn connect(
        target: &Target,
        tls: Option<&Arc<ClientConfig>>,
        deadline: Instant,
    ) -> Result<Conn> {
        let mut conn = Conn::connect_tcp(target, deadline)?;
        if target.secure {
            let config = tls.context("a wss:// target needs a TLS configuration")?;
            let name = ServerName::try_from(target.host.clone())
                .with_context(|| format!("{:?} is not a valid TLS server name", target.host))?;
            let mut tls = ClientConnection::new(config.clone(), name).context("starting TLS")?;
            tls.set_buffer_limit(None);
            conn.tls = Some(Box::new(tls));
            conn.drain_tls();
            while conn.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                if conn.input_closed {
                    bail!(
                        "TLS handshake failed: {}",
                        conn.error
                            .as_deref()
                            .unwrap_or("the server closed the connection")
                    );
                }
                if Instant::now() >= deadline {
                    bail!("TLS handshake did not complete in time");
                }
                conn.io(deadline);
            }
        }
        Ok(conn)
    }

    /// Connects over plain TCP, even to a `wss://` target (for cases that test what a
    /// server does before any TLS record arrives).
    pub fn connect_tcp(target: &Target, deadline: Instant) -> Result<Conn> {
        let addrs: Vec<_> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", target.host))?
            .collect();
        let mut last_err = None;
        let mut sock = None;
        for addr in &addrs {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            match TcpStream::connect_timeout(addr, left) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last_err = Some((addr, e)),
            }
        }
        let sock = match (sock, last_err) {
            (Some(s), _) => s,
            (None, Some((addr, e))) => {
                return Err(e).with_context(|| format!("connecting to {addr}"))
            }
            (None, None) => bail!("{} resolves to no address", target.host),
        };
        sock.set_nodelay(true).context("setting TCP_NODELAY")?;
        sock.set_nonblocking(true)
            .context("making the socket non-blocking")?;
        Ok(Conn {
            sock,
            tls: None,
            out: Vec::new(),
            out_pos: 0,
            rx: Vec::new(),
            rx_pos: 0,
            scratch: vec![0; READ_CHUNK],
            input_closed: false,
            reset: false,
            write_failed: false,
            aborted: false,
            error: None,
        })
    }

    /// Queues `data` for sending (encrypting it under TLS). Sends nothing by itself: call
    /// [`Conn::io`] or [`Conn::try_io`]. Dropped silently once a write failed or we closed.
    pub fn queue(&mut self, data: &[u8]) {
        if self.aborted || self.write_failed {
            return;
        }
        match &mut self.tls {
            None => self.out.extend_from_slice(data),
            Some(tls) => {
                // The buffer limit is off, so the writer takes everything.
                if let Err(e) = tls.writer().write_all(data) {
                    self.note_error(format!("TLS writer: {e}"));
                }
                self.drain_tls();
            }
        }
    }

    /// Bytes queued but not yet handed to the kernel.
    pub fn pending_out(&self) -> usize {
        if self.write_failed || self.aborted {
            0
        } else {
            self.out.len() - self.out_pos
        }
    }

    /// Received plaintext not consumed yet.
    pub fn data(&self) -> &[u8] {
        &self.rx[self.rx_pos..]
    }

    /// Marks the first `n` bytes of [`Conn::data`] as consumed.
    pub fn consume(&mut self, n: usize) {
        self.rx_pos += n;
        debug_assert!(self.rx_pos <= self.rx.len());
        if self.rx_pos == self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
        } else if self.rx_pos > READ_CHUNK && self.rx_pos * 2 > self.rx.len() {
            self.rx.drain(..self.rx_pos);
            self.rx_pos = 0;
        }
    }

    /// No more input will arrive (EOF, reset, TLS close or error, or we closed).
    pub fn input_closed(&self) -> bool {
        self.input_closed || self.aborted
    }

    /// The peer reset the connection.
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// The first IO or TLS error seen, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Moves whatever bytes can move now, without waiting; true if any did (or the input
    /// ended).
    pub fn try_io(&mut self) -> bool {
        let before = (
            self.out.len() - self.out_pos,
            self.rx.len(),
            self.input_closed,
        );
        self.write_ready();
        self.read_ready();
        before
            != (
                self.out.len() - self.out_pos,
                self.rx.len(),
                self.input_closed,
            )
    }

    /// Waits until the socket is ready or `deadline` passes, then moves bytes both ways.
    pub fn io(&mut self, deadline: Instant) {
        self.write_ready();
        let want_read = !self.input_closed && !self.aborted;
        let want_write = self.pending_out() > 0;
        let left = deadline.saturating_duration_since(Instant::now());
        if !want_read && !want_write {
            std::thread::sleep(left);
            return;
        }
        match sys::poll_one(self.sock.as_raw_fd(), want_read, want_write, left) {
            Ok(ready) => {
                if ready.writable {
                    self.write_ready();
                }
                if ready.readable || ready.hangup {
                    self.read_ready();
                }
            }
            Err(e) => {
                self.note_error(format!("poll: {e}"));
                std::thread::sleep(left.min(Duration::from_millis(1)));
            }
        }
    }

    /// Closes the connection now, discarding unsent data (Autobahn's `dropConnection`).
    pub fn abort(&mut self) {
        if !self.aborted {
            let _ = self.sock.shutdown(Shutdown::Both);
            self.aborted = true;
        }
    }

    /// Closes the connection with RST rather than FIN.
    pub fn abort_with_reset(&mut self) {
        let _ = sys::set_linger_zero(self.sock.as_raw_fd());
        self.abort();
    }

    fn note_error(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Moves TLS records waiting in rustls to the output queue.
    fn drain_tls(&mut self) {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                if tls.write_tls(&mut self.out).is_err() {
                    break;
                }
            }
        }
    }

    fn write_ready(&mut self) {
        if self.aborted || self.write_failed {
            return;
        }
        while self.out_pos < self.out.len() {
            match (&self.sock).write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.write_failed = true;
                    break;
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::ConnectionReset {
                        self.reset = true;
                    }
                    self.note_error(format!("write: {e}"));
                    self.write_failed = true;
                    break;
                }
            }
        }
        if self.write_failed || self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 20) && self.out_pos * 2 > self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    fn read_ready(&mut self) {
        while !self.input_closed && !self.aborted {
            let progressed = match self.tls.is_some() {
                false => self.read_plain(),
                true => self.read_tls(),
            };
            if !progressed {
                break;
            }
        }
    }

    /// One `read(2)`; false when nothing more is available now.
    fn read_plain(&mut self) -> bool {
        match (&self.sock).read(&mut self.scratch) {
            Ok(0) => {
                self.input_closed = true;
                false
            }
            Ok(n) => {
                self.rx.extend_from_slice(&self.scratch[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.input_failed(e);
                false
            }
        }
    }

    /// One `read_tls` and the plaintext it yields; false when nothing more is available now.
    fn read_tls(&mut self) -> bool {
        let Conn { tls, sock, .. } = self;
        let tls = tls.as_mut().expect("read_tls on a TLS connection");
        let mut progressed = match tls.read_tls(&mut &*sock) {
            Ok(0) => {
                self.input_closed = true;
                false
            }
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            // "received plaintext buffer full": drain it below, then read again.
            Err(e) if e.kind() == io::ErrorKind::Other => true,
            Err(e) => {
                self.input_failed(e);
                false
            }
        };
        let tls = self.tls.as_mut().expect("TLS connection");
        if let Err(e) = tls.process_new_packets() {
            self.note_error(format!("TLS: {e}"));
            self.input_closed = true;
            progressed = false;
        }
        let tls = self.tls.as_mut().expect("TLS connection");
        loop {
            match tls.reader().read(&mut self.scratch) {
                Ok(0) => {
                    // close_notify: a clean end of the TLS stream.
                    self.input_closed = true;
                    progressed = false;
                    break;
                }
                Ok(n) => self.rx.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // UnexpectedEof: TCP closed without close_notify; the data is all here.
                    self.input_closed = true;
                    progressed = false;
                    break;
                }
            }
        }
        self.drain_tls();
        self.write_ready();
        progressed
    }

    fn input_failed(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::ConnectionReset {
            self.reset = true;
        }
        self.note_error(format!("read: {e}"));
        self.input_closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("ws://127.0.0.1:9001").unwrap();
        assert_eq!(
            (t.secure, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 9001, "/")
        );
        assert_eq!(t.host_header, "127.0.0.1:9001");
        let t = Target::parse("wss://localhost/echo?x=1").unwrap();
        assert_eq!(
            (t.secure, t.port, t.path.as_str(), t.host_header.as_str()),
            (true, 443, "/echo?x=1", "localhost")
        );
        let t = Target::parse("ws://[::1]:8080?q").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/?q")
        );
        assert_eq!(t.host_header, "[::1]:8080");
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("ws://x:notaport").is_err());
        assert!(Target::parse("ws://:80").is_err());
    }
}
