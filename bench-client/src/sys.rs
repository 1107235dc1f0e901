//! The operating system around the run: sockets, the descriptor limit, and CPU time and memory
//! of processes (the server's from /proc, ours from getrusage).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::BenchError;

/// A TCP socket for `addr` with TCP_NODELAY (one small message per segment, as servers and
/// browsers send them), close-on-exec, blocking or not; bound to `source` (port chosen at
/// connect time) when given.
pub fn tcp_socket(
    addr: &SockAddr,
    source: Option<IpAddr>,
    nonblocking: bool,
) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nodelay(true)?;
    if nonblocking {
        socket.set_nonblocking(true)?;
    }
    if let Some(ip) = source {
        bind_no_port(&socket)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    Ok(socket)
}

/// IP_BIND_ADDRESS_NO_PORT (Linux 4.2): a bind to port 0 picks no port until connect, which
/// then picks one free for the whole 4-tuple. Without it, bind reserves a port per socket for
/// every destination, and one source address runs out after one ephemeral range in total
/// rather than per target. Older kernels refuse the option: bind works without it.
fn bind_no_port(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the option value points to one c_int, whose size is passed; the descriptor is
    // the socket's own.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ if io::Error::last_os_error().raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; fail when even that is below what
/// `connections` need (one descriptor each, plus a margin for rings, epoll, files, stdio).
/// Returns the limit now in force.
pub fn raise_nofile(connections: usize) -> Result<u64, BenchError> {
    let need = connections as u64 + 64;
    let limit = wsport_server_common::limits::raise_nofile()
        .map_err(|e| BenchError::io("getrlimit(RLIMIT_NOFILE)", e))?;
    if limit.soft < need {
        return Err(BenchError::TooFewFiles {
            connections,
            need,
            hard: limit.hard,
        });
    }
    Ok(limit.soft)
}

/// This process's use of the machine so far, all threads.
#[derive(Debug, Clone, Copy)]
pub struct SelfUsage {
    /// CPU time, user + system.
    pub cpu: Duration,
    /// The user-space part of `cpu`.
    pub user: Duration,
    /// Peak RSS, bytes.
    pub max_rss: u64,
}

/// CPU time of this process, all threads, and its peak RSS.
pub fn self_usage() -> SelfUsage {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage to the pointer, which points to one.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    SelfUsage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        user: tv(ru.ru_utime),
        max_rss: ru.ru_maxrss as u64 * 1024,
    }
}

/// Clock ticks per second of /proc/PID/stat's times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// One look at a process in /proc.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// utime + stime, from /proc/PID/stat (clock-tick resolution, usually 10 ms).
    pub cpu: Duration,
    /// utime alone: the user-space part of `cpu`.
    pub user: Duration,
    /// Sum of the threads' on-CPU time from /proc/PID/task/*/schedstat (ns resolution), when
    /// the kernel has schedstats.
    pub sched: Option<Duration>,
    /// VmRSS.
    pub rss_bytes: Option<u64>,
}

/// Sample process `pid`; `None` if it is gone.
pub fn sample_process(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (utime, stime) = stat_times(&stat)?;
    let ticks = clock_ticks();
    let from_ticks = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks);
    Some(ProcSample {
        cpu: from_ticks(utime + stime),
        user: from_ticks(utime),
        sched: schedstat(pid),
        rss_bytes: rss(pid),
    })
}

/// utime and stime, in clock ticks, of a /proc/PID/stat (or /proc/PID/task/TID/stat) line.
pub fn stat_times(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

fn schedstat(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Ask for timers as exact as the kernel gives them on the calling thread. Linux lets a
/// sleeping thread's timed wait end up to its timer slack late (50 µs by default) so that
/// wake-ups can be merged; for an open-loop worker that slack is send lag counted against the
/// server. Best effort: where prctl refuses, the slack stays and the send lag shows it.
pub fn exact_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Pin the calling thread to `cpu`.
pub fn pin(cpu: usize) -> io::Result<()> {
    wsport_server_common::pin_current_thread(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample_process(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_bytes.unwrap_or(0) > 0);
        let usage = self_usage();
        assert!(usage.max_rss > 0);
        // Both read the same clocks; the /proc figure is coarser.
        assert!(
            s.cpu <= usage.cpu + Duration::from_millis(50),
            "{:?} vs {:?}",
            s.cpu,
            usage.cpu
        );
        assert!(s.user <= s.cpu && usage.user <= usage.cpu);
        assert!(sample_process(u32::MAX).is_none());
    }

    #[test]
    fn nofile_is_raised_or_refused_with_advice() {
        assert!(raise_nofile(10).unwrap() >= 74);
        let e = raise_nofile(usize::MAX / 2).unwrap_err().to_string();
        assert!(e.contains("ulimit -Hn"), "{e}");
    }
}
