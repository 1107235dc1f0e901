//! Where an abusive connection aims, and how it connects: shared by the one-connection
//! attacks and the loops that hold many (slowloris, never-read).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::stream::Stream;
use crate::tls::TlsStream;

/// Where to aim and how long to wait for an answer.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// How long any one answer may take before the connection counts as `timeout`.
    pub answer_wait: Duration,
    /// The server's handshake timeout: a slowloris is dropped by then.
    pub handshake_timeout: Duration,
    /// The payload of each frame a never-read client sends.
    pub frame_bytes: usize,
    /// `Some` when `addr` is a wss:// listener: every connection speaks TLS with this
    /// configuration ([`crate::tls::client_config`]).
    pub tls: Option<Arc<ClientConfig>>,
}

/// A connected stream (TLS handshake done on wss), with the answer wait as its read and write
/// timeout.
pub fn connect(target: &Target) -> io::Result<Stream> {
    over(target, connect_tcp(target)?)
}

/// A connected socket with the answer wait as its read and write timeout: the TLS attacks
/// write their own bytes on it.
pub fn connect_tcp(target: &Target) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target.addr, target.answer_wait)?;
    stream.set_read_timeout(Some(target.answer_wait))?;
    stream.set_write_timeout(Some(target.answer_wait))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `tcp` as the target's stream: as it is on ws, after the TLS handshake on wss.
pub fn over(target: &Target, tcp: TcpStream) -> io::Result<Stream> {
    match &target.tls {
        None => Ok(Stream::Plain(tcp)),
        Some(config) => TlsStream::handshake(config, tcp).map(|tls| Stream::Tls(Box::new(tls))),
    }
}
