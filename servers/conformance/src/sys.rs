//! The only `unsafe` in the suite: two raw system calls.

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
