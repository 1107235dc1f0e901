//! The two socket calls std does not offer: `poll(2)` on one descriptor and `SO_LINGER` 0
//! (an abortive close that sends RST). The only `unsafe` in this crate lives here.
#![allow(unsafe_code)]

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// What `poll(2)` reported for one socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// Hang-up or error: a read will tell which.
    pub hangup: bool,
}

/// Waits up to `timeout` for `sock` to become readable (if `read`) or writable (if `write`).
/// An interrupted wait returns nothing ready.
pub fn poll(sock: &TcpStream, read: bool, write: bool, timeout: Duration) -> io::Result<Ready> {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut fds = [libc::pollfd {
        fd: sock.as_raw_fd(),
        events,
        revents: 0,
    }];
    // Round up so that a 0.3 ms wait does not become a busy loop of 0 ms polls.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid, initialised array of one `pollfd` that outlives the call, and
    // the length passed is its length; the descriptor is owned by `sock`, borrowed for the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(Ready::default())
        } else {
            Err(err)
        };
    }
    let r = fds[0].revents;
    Ok(Ready {
        readable: r & libc::POLLIN != 0,
        writable: r & libc::POLLOUT != 0,
        hangup: r & (libc::POLLHUP | libc::POLLERR) != 0,
    })
}

/// Sets `SO_LINGER` to {on, 0 s}, so that closing the socket sends RST instead of FIN.
pub fn set_linger_zero(sock: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value points at a live `linger` of the size passed; the descriptor is
    // owned by `sock`, borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
