//! Mechanisms for long-running load tests (`tests/stress.rs`, run by `scripts/stress.sh`):
//! a non-blocking client connection over plain TCP or TLS that many connections can share
//! one thread through [`poll`], abrupt closes (FIN or RST, mid-frame), the number of
//! descriptors a server process holds, and the descriptor limit of the test process.
//!
//! The blocking clients of [`crate::raw`] and [`crate::ws`] need a thread per connection;
//! a thousand connections on a 2-core CI machine need a few threads each multiplexing many
//! sockets instead, so the client never becomes the bottleneck it is trying to measure.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use rustls::ClientConnection;

use crate::http::{check_switching, parse_head, Request};
use crate::raw::{Stream, READ_TIMEOUT};
use crate::server::Endpoint;
pub use libc::{pollfd, POLLERR, POLLHUP, POLLIN, POLLOUT};
pub use wsport_harness::sys::{poll, raise_nofile};

/// How many descriptors process `pid` has open: the entries of `/proc/<pid>/fd`.
pub fn open_fds(pid: u32) -> Result<usize, String> {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .map(Iterator::count)
        .map_err(|e| format!("reading {dir}: {e}"))
}

/// What one [`NbStream::read_available`] call found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    /// Plaintext bytes appended.
    pub bytes: usize,
    /// The peer ended the stream (TCP FIN, or TLS close_notify).
    pub eof: bool,
}

/// An upgraded WebSocket connection on a non-blocking socket, TLS or not.
///
/// Calling order: [`upgrade`](Self::upgrade) (blocking, with [`READ_TIMEOUT`]), then any mix
/// of [`queue`](Self::queue) + [`flush`](Self::flush) and
/// [`read_available`](Self::read_available), driven by poll(2) on [`fd`](Self::fd) with
/// `POLLOUT` asked for while [`wants_write`](Self::wants_write). Neither call blocks.
pub struct NbStream {
    tcp: TcpStream,
    /// `None` for ws.
    tls: Option<Box<ClientConnection>>,
    /// Plain only: bytes queued and not yet written, from `out_at` on. (rustls keeps its
    /// own queue of encrypted records.)
    out: Vec<u8>,
    out_at: usize,
}

impl NbStream {
    /// Connect, do TLS for wss, complete a valid opening handshake, then switch the socket
    /// to non-blocking. Returns the stream and any bytes that arrived after the 101 head.
    pub fn upgrade(ep: &Endpoint) -> Result<(NbStream, Vec<u8>), String> {
        let mut stream = Stream::connect(ep)?;
        let req = Request::upgrade(ep);
        stream
            .write_all(&req.to_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| format!("{ep}: writing the upgrade request: {e}"))?;
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if Instant::now() >= deadline || buf.len() > 64 * 1024 {
                return Err(format!(
                    "{ep}: no complete HTTP response head within {READ_TIMEOUT:?} ({} bytes)",
                    buf.len()
                ));
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "{ep}: connection closed after {} bytes of the upgrade response",
                        buf.len()
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{ep}: reading the upgrade response: {e}")),
            }
        };
        let resp = parse_head(&buf[..head_end]).map_err(|e| format!("{ep}: {e}"))?;
        check_switching(&req, &resp).map_err(|e| format!("{ep}: {e}"))?;
        let leftover = buf.split_off(head_end);
        let (tcp, tls) = match stream {
            Stream::Plain(tcp) => (tcp.into_inner(), None),
            Stream::Tls(owned) => {
                let owned = *owned;
                let mut conn = owned.conn;
                // One message in flight plus a close: never large, and a partial write of
                // plaintext would complicate every caller for nothing.
                conn.set_buffer_limit(None);
                (owned.sock.into_inner(), Some(Box::new(conn)))
            }
        };
        tcp.set_nonblocking(true)
            .map_err(|e| format!("{ep}: setting O_NONBLOCK: {e}"))?;
        let stream = NbStream {
            tcp,
            tls,
            out: Vec::new(),
            out_at: 0,
        };
        Ok((stream, leftover))
    }

    pub fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Queue bytes to send (already framed); [`flush`](Self::flush) writes them.
    pub fn queue(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            Some(tls) => tls
                .writer()
                .write_all(bytes)
                .expect("rustls buffers plaintext without limit (set_buffer_limit(None))"),
            None => self.out.extend_from_slice(bytes),
        }
    }

    /// Is anything queued that the socket has not taken yet?
    pub fn wants_write(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.wants_write(),
            None => self.out_at < self.out.len(),
        }
    }

    /// Write queued bytes until done or the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => {
                while tls.wants_write() {
                    match tls.write_tls(&mut self.tcp) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                while self.out_at < self.out.len() {
                    match self.tcp.write(&self.out[self.out_at..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.out_at += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if self.out_at == self.out.len() {
                    self.out.clear();
                    self.out_at = 0;
                }
            }
        }
        Ok(())
    }

    /// Append every plaintext byte available now to `into`, without blocking.
    pub fn read_available(&mut self, into: &mut Vec<u8>) -> io::Result<ReadProgress> {
        let mut progress = ReadProgress::default();
        let Some(tls) = &mut self.tls else {
            let mut chunk = [0u8; 32 * 1024];
            loop {
                match self.tcp.read(&mut chunk) {
                    Ok(0) => {
                        progress.eof = true;
                        return Ok(progress);
                    }
                    Ok(n) => {
                        into.extend_from_slice(&chunk[..n]);
                        progress.bytes += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        };
        loop {
            let tcp_eof = match tls.read_tls(&mut self.tcp) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            tls.process_new_packets().map_err(io::Error::other)?;
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match tls.reader().read(&mut chunk) {
                    Ok(0) => {
                        progress.eof = true;
                        return Ok(progress);
                    }
                    Ok(n) => {
                        into.extend_from_slice(&chunk[..n]);
                        progress.bytes += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // TCP FIN without close_notify: the stream ended all the same.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        progress.eof = true;
                        return Ok(progress);
                    }
                    Err(e) => return Err(e),
                }
            }
            if tcp_eof {
                progress.eof = true;
                return Ok(progress);
            }
        }
    }

    /// Drop the connection abruptly after writing `bytes` as far as the socket takes them
    /// without blocking: no TLS close_notify, no WebSocket close. With `reset`, `SO_LINGER`
    /// 0 first, so the kernel sends RST instead of FIN.
    pub fn abort_after(mut self, bytes: &[u8], reset: bool) -> io::Result<()> {
        self.queue(bytes);
        // Whatever did not fit stays unsent: the point is a peer gone mid-frame.
        let _ = self.flush();
        if reset {
            wsport_harness::sys::set_linger_zero(self.fd())?;
        }
        Ok(())
    }
}
