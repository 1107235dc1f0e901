//! Raising RLIMIT_NOFILE so a server can hold as many connections as the host allows.
//!
//! Every connection is a descriptor. Many systems start processes with a soft limit of 1,024
//! while the hard limit is far higher; a server that keeps the soft limit refuses connections
//! with EMFILE long before the host runs out of anything, and a benchmark of idle connections
//! would measure that instead of the runtime. Raising the soft limit up to the hard one needs
//! no privilege; raising the hard limit itself needs CAP_SYS_RESOURCE, and is tried first, up
//! to `fs.nr_open`, so that a privileged process gets all the host allows. In a container
//! without that capability (or under a user namespace) the attempt fails with EPERM and the
//! hard limit stays: the caller can say which limit it was.

use std::io;

/// The soft descriptor limit after [`raise_nofile`], and whether it still falls short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft RLIMIT_NOFILE now in force.
    pub soft: u64,
    /// The hard limit, which only a privileged process can raise.
    pub hard: u64,
    /// `fs.nr_open`: the most any process may have open; `None` where it cannot be read.
    pub nr_open: Option<u64>,
    /// The errno of the refused attempt to raise the hard limit to `nr_open`; `None` when it
    /// rose or was already there.
    pub hard_refused: Option<i32>,
}

/// Raise the hard RLIMIT_NOFILE to `nr_open` where this process may, then the soft limit to
/// the hard one (capped at `nr_open`, which setrlimit enforces on Linux).
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let mut limit = get_nofile()?;
    let nr_open = nr_open();
    let mut hard_refused = None;
    if let Some(ceiling) = nr_open.filter(|&n| limit.rlim_max < n) {
        match set_nofile(ceiling, ceiling) {
            Ok(()) => limit = get_nofile()?,
            Err(e) => hard_refused = e.raw_os_error(),
        }
    }
    let wanted = match nr_open {
        Some(nr_open) => limit.rlim_max.min(nr_open),
        None => limit.rlim_max,
    };
    if limit.rlim_cur < wanted && set_nofile(wanted, limit.rlim_max).is_ok() {
        limit.rlim_cur = wanted;
    }
    Ok(NofileLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
        nr_open,
        hard_refused,
    })
}

fn get_nofile() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit to the pointer, which points to one.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct rlimit the pointer points to.
    match unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
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
        // Either the hard limit reached nr_open, or the attempt was refused and says so.
        if let Some(n) = limit.nr_open {
            assert!(limit.hard >= n || limit.hard_refused.is_some(), "{limit:?}");
        }
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in raise_nofile.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(now.rlim_cur, limit.soft);
    }
}
