//! Where an abusive connection aims, and how it connects: shared by the one-connection
//! attacks and the loops that hold many (slowloris, never-read).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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
}

/// A connected socket with the answer wait as its read and write timeout.
pub fn connect(target: &Target) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target.addr, target.answer_wait)?;
    stream.set_read_timeout(Some(target.answer_wait))?;
    stream.set_write_timeout(Some(target.answer_wait))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
