//! One abusive connection's byte stream, plain (ws) or TLS (wss): the attacks are written
//! once against it and run unchanged over both.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use socket2::SockRef;

use crate::tls::TlsStream;

/// A connected stream, ws or wss.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls's connection state is a kilobyte, the socket a word.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The socket under the stream, for its options.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.tcp(),
        }
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(nonblocking)
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    /// Close with a TCP reset instead of a FIN (SO_LINGER 0), TLS or not: no close_notify.
    pub fn reset(self) -> io::Result<()> {
        SockRef::from(self.tcp()).set_linger(Some(Duration::ZERO))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}
