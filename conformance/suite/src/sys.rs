//! The only `unsafe` in the suite: a few raw system calls.

#![allow(unsafe_code)]

use std::io;

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
pub fn set_linger_zero(fd: std::os::fd::RawFd) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn io_uring_probe_answers_either_way() {
        match super::probe_io_uring() {
            Ok(()) => {}
            Err(reason) => assert!(!reason.is_empty()),
        }
    }
}
