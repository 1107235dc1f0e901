//! Shutting a socket down under an operation in flight: the one way this server ends a read,
//! a write or an accept it no longer wants, so that no operation is ever dropped unfinished
//! (see "Cancellation" in `main.rs`).
//!
//! monoio's streams offer `shutdown()` for the write side only and implement `AsRawFd` but not
//! `AsFd`, so the descriptor is borrowed here, the one `unsafe` of the crate.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use socket2::SockRef;

/// `shutdown(2)` on the socket behind `socket`.
///
/// Ends operations in flight on it: a pending read (recv, accept) completes with 0 or an error
/// after `Shutdown::Read` (on a listener, `Read` also stops listening: queued connections are
/// reset, as a close would), a pending write with EPIPE after `Shutdown::Write`. Works the same
/// for io_uring (the kernel's poll wakeup retries the operation) and epoll (the socket turns
/// readable/writable).
pub fn shutdown(socket: &impl AsRawFd, how: Shutdown) -> io::Result<()> {
    shutdown_fd(socket.as_raw_fd(), how)
}

/// A connected socket's descriptor, kept beside the stream's split halves so that it can be
/// shut down while one half is borrowed by an operation in flight.
///
/// Only [`SocketFd::of`] makes one, from a stream its owner keeps for at least as long (the
/// `Conn` in `main.rs` holds both); that is what keeps the descriptor valid.
#[derive(Debug)]
pub struct SocketFd(RawFd);

impl SocketFd {
    /// The descriptor of `stream`; keep `stream` alive as long as the result.
    pub fn of(stream: &impl AsRawFd) -> SocketFd {
        SocketFd(stream.as_raw_fd())
    }

    /// See [`shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        shutdown_fd(self.0, how)
    }
}

fn shutdown_fd(fd: RawFd, how: Shutdown) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: `fd` is open for the whole call: it comes from a live borrowed socket
    // (`shutdown`) or from a `SocketFd`, whose owner keeps the stream open while it holds it.
    // The BorrowedFd does not outlive this call and the descriptor is not closed through it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    SockRef::from(&fd).shutdown(how)
}
