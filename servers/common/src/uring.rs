//! Is io_uring usable here? Asked once at start, so an io_uring server can refuse with advice
//! instead of failing obscurely on its first operation.
//!
//! The probe creates (and closes) a 4-entry ring with the raw `io_uring_setup(2)` syscall,
//! exactly what every io_uring runtime does first, and turns its errno into what to do.

use std::fmt;
use std::io;

/// Why io_uring cannot be used, with the fix a person can apply.
#[derive(Debug)]
#[non_exhaustive]
pub enum UringUnavailable {
    /// EPERM: a seccomp filter (Docker's default profile) or `kernel.io_uring_disabled`.
    NotPermitted {
        /// The value of /proc/sys/kernel/io_uring_disabled, when readable.
        disabled_sysctl: Option<String>,
    },
    /// ENOSYS: a kernel built without io_uring, or older than 5.1.
    NoKernelSupport,
    /// ENOMEM: the ring could not be locked in memory (RLIMIT_MEMLOCK on kernels < 5.12).
    MemlockTooLow {
        /// The soft RLIMIT_MEMLOCK in bytes, when known.
        limit: Option<u64>,
    },
    /// Anything else.
    Other(io::Error),
}

impl fmt::Display for UringUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPermitted { disabled_sysctl } => {
                write!(f, "io_uring is not permitted (EPERM): ")?;
                match disabled_sysctl.as_deref() {
                    Some(value) if value != "0" => write!(
                        f,
                        "sysctl kernel.io_uring_disabled is {value}; set it to 0 \
                         (`sudo sysctl kernel.io_uring_disabled=0`)"
                    ),
                    _ => write!(
                        f,
                        "a seccomp profile blocks it (containers: Docker's default profile does; \
                         run with `--security-opt seccomp=unconfined` or a profile allowing \
                         io_uring_setup, io_uring_enter and io_uring_register)"
                    ),
                }
            }
            Self::NoKernelSupport => {
                write!(
                    f,
                    "this kernel has no io_uring (ENOSYS): Linux 5.11 or later is needed"
                )
            }
            Self::MemlockTooLow { limit } => {
                write!(
                    f,
                    "io_uring could not lock its ring in memory (ENOMEM): RLIMIT_MEMLOCK is "
                )?;
                match limit {
                    Some(limit) => write!(f, "{} KiB", limit / 1024)?,
                    None => write!(f, "too low")?,
                }
                write!(f, "; raise it with `ulimit -l unlimited` (or LimitMEMLOCK=infinity under systemd)")
            }
            Self::Other(error) => write!(f, "io_uring setup failed: {error}"),
        }
    }
}

impl std::error::Error for UringUnavailable {}

/// Create and close a small ring; explain why when that fails.
pub fn probe() -> Result<(), UringUnavailable> {
    // struct io_uring_params is 120 bytes; all zero asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes exactly sizeof(struct io_uring_params) = 120
    // bytes at the pointer, which points to a live, writable 120-byte buffer.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: `fd` is the ring descriptor just returned to us and owned by nobody else.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(());
    }
    let error = io::Error::last_os_error();
    Err(match error.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => UringUnavailable::NotPermitted {
            disabled_sysctl: std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .map(|value| value.trim().to_owned()),
        },
        Some(libc::ENOSYS) => UringUnavailable::NoKernelSupport,
        Some(libc::ENOMEM) => UringUnavailable::MemlockTooLow {
            limit: memlock_limit(),
        },
        _ => UringUnavailable::Other(error),
    })
}

fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit to the pointer, which points to one.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    ok.then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These machines have io_uring; where one does not, the message must still be advice.
    #[test]
    fn probe_succeeds_or_explains() {
        match probe() {
            Ok(()) => {}
            Err(reason) => {
                let text = reason.to_string();
                assert!(text.contains("io_uring"), "{text}");
                eprintln!("io_uring unavailable here: {text}");
            }
        }
    }

    #[test]
    fn advice_names_the_fix() {
        let seccomp = UringUnavailable::NotPermitted {
            disabled_sysctl: Some("0".into()),
        }
        .to_string();
        assert!(seccomp.contains("seccomp"), "{seccomp}");
        let sysctl = UringUnavailable::NotPermitted {
            disabled_sysctl: Some("2".into()),
        }
        .to_string();
        assert!(sysctl.contains("io_uring_disabled is 2"), "{sysctl}");
        let memlock = UringUnavailable::MemlockTooLow {
            limit: Some(64 * 1024),
        }
        .to_string();
        assert!(
            memlock.contains("64 KiB") && memlock.contains("ulimit -l"),
            "{memlock}"
        );
    }
}
