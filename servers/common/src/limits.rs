//! Raising RLIMIT_NOFILE so a server can hold as many connections as the host allows.
//!
//! Every connection is a descriptor. Many systems start processes with a soft limit of 1,024
//! while the hard limit is far higher; a server that keeps the soft limit refuses connections
//! with EMFILE long before the host runs out of anything, and a benchmark of idle connections
//! would measure that instead of the runtime. Raising the soft limit up to the hard one needs
//! no privilege.

use std::io;

/// The soft descriptor limit after [`raise_nofile`], and whether it still falls short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft RLIMIT_NOFILE now in force.
    pub soft: u64,
    /// The hard limit, which only a privileged process can raise.
    pub hard: u64,
}

/// Raise the soft RLIMIT_NOFILE to the hard limit (capped at what `nr_open` allows, which
/// setrlimit enforces on Linux).
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit to the pointer, which points to one.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = match nr_open() {
        Some(nr_open) => limit.rlim_max.min(nr_open),
        None => limit.rlim_max,
    };
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct rlimit the pointer points to.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = wanted;
        }
    }
    Ok(NofileLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// `/proc/sys/fs/nr_open`: the most any process may have open, whatever its hard limit says.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_one() {
        let limit = raise_nofile().unwrap();
        let capped = nr_open().map_or(limit.hard, |n| limit.hard.min(n));
        assert_eq!(limit.soft, capped);
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in raise_nofile.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(now.rlim_cur, limit.soft);
    }
}
