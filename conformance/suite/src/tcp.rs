//! The clients' TCP socket: blocking, with timeouts, and deaf to `EINTR`.
//!
//! A socket read or write with a timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`) is never restarted
//! by the kernel: when the test process is stopped and resumed (SIGSTOP/SIGCONT, a cgroup
//! freezer, a paused CI machine) it fails with `EINTR` (signal(7), "Interruption of system
//! calls and library functions by stop signals"). tungstenite and rustls pass that on as an
//! error, and a case would fail for what the host did, not the server. [`Tcp`] retries.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::time::Duration;

/// A `TcpStream` whose reads and writes retry when interrupted.
pub struct Tcp(TcpStream);

/// A TCP connection with `TCP_NODELAY` and `timeout` on connecting, reads and writes.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Tcp> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    Ok(Tcp(tcp))
}

/// Repeat `op` while it fails with `Interrupted`.
fn retrying<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl Tcp {
    /// The socket itself, for a caller that goes non-blocking and handles `EINTR` itself.
    pub fn into_inner(self) -> TcpStream {
        self.0
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retrying(|| self.0.read(buf))
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retrying(|| self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        retrying(|| self.0.flush())
    }
}

impl Deref for Tcp {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl fmt::Debug for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry loop goes on through `Interrupted` and stops at any other outcome.
    #[test]
    fn retrying_skips_only_interrupted() {
        let mut results = vec![
            Ok(7),
            Err(io::Error::from(io::ErrorKind::Interrupted)),
            Err(io::Error::from(io::ErrorKind::Interrupted)),
        ];
        assert_eq!(retrying(|| results.pop().unwrap()).unwrap(), 7);
        let mut results = vec![
            Ok(7),
            Err(io::Error::from(io::ErrorKind::WouldBlock)),
            Err(io::Error::from(io::ErrorKind::Interrupted)),
        ];
        let err = retrying(|| results.pop().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
