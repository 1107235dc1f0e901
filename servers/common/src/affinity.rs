//! Pinning runtime threads to CPUs (`sched_setaffinity`), and reading which CPUs this
//! process may use (`sched_getaffinity`, which honours `taskset` and cgroup cpusets).
//!
//! Thread-per-core results are only comparable when each runtime stays on its own core, so
//! each server thread pins itself before starting its runtime. This is the one module of the
//! crate that needs `unsafe`: the libc calls and `cpu_set_t` macros have no safe wrapper in
//! our dependencies.

use std::io;
use std::mem;

/// Number of CPUs a `cpu_set_t` can name (glibc's `CPU_SETSIZE`).
pub const CPU_SETSIZE: usize = libc::CPU_SETSIZE as usize;

/// Pins the calling thread to `cpu`. Fails with `InvalidInput` for a CPU at or above
/// [`CPU_SETSIZE`], and with the OS error (typically `EINVAL`) for a CPU that is offline or
/// outside this process's cpuset.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= CPU_SETSIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the {CPU_SETSIZE} CPUs sched_setaffinity can name"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all-zero bytes is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `cpu < CPU_SETSIZE` was checked above, so CPU_SET writes inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t and the size passed is its size; pid 0 means the
    // calling thread. The kernel only reads from the pointer.
    let rc = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on, ascending. If the mask cannot be read (which
/// Linux does not do for the calling thread), falls back to `0..available_parallelism`.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as above, an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: the kernel writes at most `size_of::<cpu_set_t>()` bytes into `set`, which is
    // exactly its size; pid 0 means the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    // SAFETY: every index is below CPU_SETSIZE, so CPU_ISSET reads inside `set`.
    (0..CPU_SETSIZE)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_an_allowed_cpu_then_restore() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        // Pin in a scratch thread so the test harness thread keeps its mask.
        let first = allowed[0];
        let seen = std::thread::spawn(move || pin_current_thread(first).map(|()| allowed_cpus()))
            .join()
            .expect("thread")
            .expect("pin");
        assert_eq!(seen, vec![first]);
    }

    #[test]
    fn out_of_range_cpu_is_refused() {
        let e = pin_current_thread(CPU_SETSIZE).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
