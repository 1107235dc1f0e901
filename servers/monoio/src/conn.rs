//! An accepted stream split in two halves, for the WebSocket loop and the `--raw-tcp` loop
//! alike.

use monoio::io::{OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::sys::SocketFd;

pub(crate) type Reader = OwnedReadHalf<TcpStream>;
pub(crate) type Writer = OwnedWriteHalf<TcpStream>;

/// An accepted stream, split so that a ping or a close frame can be written while a read is
/// in flight, with its descriptor at hand to shut it down under that read.
pub(crate) struct Conn {
    fd: SocketFd,
    /// Always `Some` until dropped.
    halves: Option<(Reader, Writer)>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        // The descriptor stays valid while `halves` holds the stream, i.e. as long as `fd`.
        Conn {
            fd: SocketFd::of(&stream),
            halves: Some(stream.into_split()),
        }
    }
}

impl Conn {
    /// The descriptor and both halves, borrowed together: a read stays in flight on one half
    /// while the other writes.
    pub(crate) fn parts(&mut self) -> (&SocketFd, &mut Reader, &mut Writer) {
        let (reader, writer) = self
            .halves
            .as_mut()
            .expect("Conn holds its halves until dropped");
        (&self.fd, reader, writer)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Reunited, the stream is just closed; a dropped write half would first shut the
        // write side down, which the tokio server does not do.
        if let Some((reader, writer)) = self.halves.take() {
            drop(reader.reunite(writer));
        }
    }
}
