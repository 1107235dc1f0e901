//! The clients' TCP socket: blocking, with timeouts, and deaf to `EINTR`.
//!
//! A socket read or write with a timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`) is never restarted
//! by the kernel: when the test process is stopped and resumed (SIGSTOP/SIGCONT, a cgroup
//! freezer, a paused CI machine) it fails with `EINTR` (signal(7), "Interruption of system
//! calls and library functions by stop signals"). tungstenite and rustls pass that on as an
//! error, and a case would fail for what the host did, not the server. [`Tcp`] retries, and
//! still keeps the timeout: once a call has been retried for longer than the socket's timeout
//! it fails as a timeout would (so a host that is paused again and again cannot make a read
//! that expects silence wait forever).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::time::{Duration, Instant};

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

/// Repeat `op` while it fails with `Interrupted`, for `timeout` at most (then `WouldBlock`,
/// what a timed-out socket call returns); without a timeout, for as long as it takes.
fn retrying<T>(timeout: Option<Duration>, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let start = Instant::now();
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if timeout.is_some_and(|t| start.elapsed() >= t) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
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
        let timeout = self.0.read_timeout()?;
        retrying(timeout, || self.0.read(buf))
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let timeout = self.0.write_timeout()?;
        retrying(timeout, || self.0.write(buf))
    }

    /// A `TcpStream` buffers nothing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

    fn interrupted() -> io::Error {
        io::ErrorKind::Interrupted.into()
    }

    /// The retry loop goes on through `Interrupted` and stops at any other outcome.
    #[test]
    fn retrying_skips_only_interrupted() {
        let mut results = vec![Ok(7), Err(interrupted()), Err(interrupted())];
        assert_eq!(retrying(None, || results.pop().unwrap()).unwrap(), 7);
        let mut results = vec![
            Ok(7),
            Err(io::ErrorKind::ConnectionReset.into()),
            Err(interrupted()),
        ];
        let err = retrying(None, || results.pop().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    /// Interrupted again and again, a call with a timeout still ends, as a timeout.
    #[test]
    fn retrying_keeps_the_timeout() {
        let timeout = Duration::from_millis(50);
        let start = Instant::now();
        let err = retrying(Some(timeout), || -> io::Result<()> {
            std::thread::sleep(Duration::from_millis(5));
            Err(interrupted())
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= timeout);
    }
}
