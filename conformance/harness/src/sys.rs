//! The system calls std does not offer, for both harnesses: `poll(2)`, `SO_LINGER` 0 (an
//! abortive close that sends RST), `RLIMIT_NOFILE`, `kill(2)` and the io_uring probe. The only
//! `unsafe` in the harnesses lives here.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Can this process set up an io_uring? Same check the io_uring servers make at start: a
/// kernel without io_uring (ENOSYS), `kernel.io_uring_disabled` (EPERM) or a seccomp filter
/// (EPERM/ENOSYS) all fail `io_uring_setup(2)`.
pub fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; all zero asks for a default ring.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup reads and writes exactly sizeof(struct io_uring_params) = 120
    // bytes at the pointer, which points to a live, writable, 8-aligned 120-byte buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            4 as libc::c_long,
            params.as_mut_ptr(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error().to_string());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else refers to it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// This kernel's (major, minor) version, from /proc/sys/kernel/osrelease; `None` if unreadable.
pub fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// Send SIGTERM to `pid`, which callers only ever take from a `Child` they spawned.
pub fn sigterm(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raise this process's soft `RLIMIT_NOFILE` to at least `wanted` (up to the hard limit);
/// child processes spawned afterwards inherit it. Returns the soft limit now in force.
pub fn raise_nofile(wanted: u64) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit to the pointer, which points to one.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_NOFILE): {}",
            io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    if limit.rlim_max < wanted {
        return Err(format!(
            "RLIMIT_NOFILE hard limit is {} but {wanted} descriptors are needed: raise it \
             (ulimit -Hn, /etc/security/limits.conf) or use fewer connections",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit reads one struct rlimit from the pointer, which points to one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_NOFILE, {wanted}): {}",
            io::Error::last_os_error()
        ));
    }
    Ok(wanted)
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends RST instead of FIN.
pub fn set_linger_zero(fd: RawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads exactly `optlen` bytes from the pointer, which points to one
    // live struct linger of that size. A bad descriptor is reported as EBADF, not UB.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// poll(2) over `fds`, waiting at most `timeout_ms` (-1: forever). Returns how many entries
/// have `revents` set; EINTR counts as zero.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let count = libc::nfds_t::try_from(fds.len()).map_err(|_| io::Error::other("too many fds"))?;
    // SAFETY: the pointer and count describe one live, writable slice of pollfd structs;
    // the kernel writes only their `revents` fields.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout_ms) };
    if rc >= 0 {
        return Ok(rc as usize);
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::Interrupted {
        Ok(0)
    } else {
        Err(error)
    }
}

/// What [`poll_one`] reported for one descriptor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// Hang-up or error: a read will tell which.
    pub hangup: bool,
}

/// Waits up to `timeout` for `fd` to become readable (if `read`) or writable (if `write`).
/// An interrupted wait returns nothing ready.
pub fn poll_one(fd: RawFd, read: bool, write: bool, timeout: Duration) -> io::Result<Ready> {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut fds = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    // Round up so that a 0.3 ms wait does not become a busy loop of 0 ms polls.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    if poll(&mut fds, ms)? == 0 {
        return Ok(Ready::default());
    }
    let r = fds[0].revents;
    Ok(Ready {
        readable: r & libc::POLLIN != 0,
        writable: r & libc::POLLOUT != 0,
        hangup: r & (libc::POLLHUP | libc::POLLERR) != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn io_uring_probe_answers_either_way() {
        match probe_io_uring() {
            Ok(()) => {}
            Err(reason) => assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn poll_one_sees_data_and_hangup() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd = server.as_raw_fd();
        let idle = poll_one(fd, true, false, Duration::from_millis(1)).unwrap();
        assert!(!idle.readable && !idle.hangup);
        assert!(poll_one(fd, false, true, Duration::ZERO).unwrap().writable);
        client.write_all(b"x").unwrap();
        assert!(
            poll_one(fd, true, false, Duration::from_secs(5))
                .unwrap()
                .readable
        );
        set_linger_zero(client.as_raw_fd()).unwrap();
        drop(client);
        let reset = poll_one(fd, true, false, Duration::from_secs(5)).unwrap();
        assert!(reset.hangup || reset.readable);
    }

    #[test]
    fn nofile_limit_is_raised_to_at_least_what_is_asked() {
        assert!(raise_nofile(64).unwrap() >= 64);
        assert!(raise_nofile(u64::MAX).is_err());
    }
}
