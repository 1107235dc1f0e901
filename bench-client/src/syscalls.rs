//! System calls by call, counted from outside the process that makes them, with
//! `perf_event_open(2)` on the kernel's syscall tracepoints: every server, ours or not, is
//! measured the same way and none has to cooperate.
//!
//! Calling order: [`SyscallCounter::open`] on the server's pid before the window, one
//! [`SyscallCounter::read`] at each edge of the window, [`SyscallCounts::since`] between them.
//! Counts run from `open`, and `open` starts one counter after another, so only the difference
//! of two reads describes one window.
//!
//! What is counted: one counting (not sampling) perf event per tracepoint per thread, attached
//! to the thread (`pid = tid, cpu = -1`). The calls are grouped as in [`GROUPS`]: a group is
//! the sum of its tracepoints, and a tracepoint this kernel lacks (`epoll_pwait2` before 5.11,
//! `epoll_wait` on arm64) is left out of its group. `raw_syscalls:sys_enter` counts every call,
//! grouped or not, for [`SyscallCounts::total`]. The groups are by call, not by descriptor:
//! `recv` includes a `read(2)` of a file, an eventfd or a timerfd as well as of a socket.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The calls a run reports, each a group of tracepoints summed.
///
/// Servers wait for readiness or completions with different calls and move bytes with
/// different calls; the groups put each pair of alternatives under one name so that an epoll
/// server and an io_uring server can be set side by side.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("io_uring_enter", &["io_uring_enter"]),
    ("epoll_wait", &["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    ("recv", &["recvfrom", "recvmsg", "read", "readv"]),
    ("send", &["sendto", "sendmsg", "write", "writev"]),
];

/// Where tracefs is mounted: its own mount point first, then the older place under debugfs.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Why system calls cannot be counted. Each message is one line that says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyscallError {
    /// The process is not there (or has no threads left).
    #[error("no process {pid} to count system calls of (it has exited or never existed)")]
    NoProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The kernel refused: counting kernel events of a process needs root or CAP_PERFMON
    /// unless perf_event_paranoid allows it, and the right to trace the process.
    #[error(
        "counting system calls is not permitted ({what}: permission denied): run as root or \
         with CAP_PERFMON, or lower kernel.perf_event_paranoid (now {paranoid}) to 1 with \
         `sysctl kernel.perf_event_paranoid=1` (counting a process of another user needs root)"
    )]
    NotPermitted {
        /// What was refused.
        what: String,
        /// /proc/sys/kernel/perf_event_paranoid, as read.
        paranoid: String,
    },
    /// tracefs is mounted in neither place, and mounting it failed or was not ours to do.
    #[error(
        "tracefs is not mounted, so the syscall tracepoints have no ids ({why}): as root, run \
         `mount -t tracefs nodev /sys/kernel/tracing`"
    )]
    NoTracefs {
        /// Why it could not be mounted here.
        why: String,
    },
    /// No tracepoint of a group exists on this kernel.
    #[error(
        "no tracepoint for `{group}` under {dir} (looked for {tried}): this kernel lacks them \
         (syscall tracepoints need CONFIG_FTRACE_SYSCALLS)"
    )]
    NoTracepoint {
        /// The group, or `raw_syscalls` for the total.
        group: String,
        /// The tracepoints looked for.
        tried: String,
        /// The events directory searched.
        dir: PathBuf,
    },
    /// Out of file descriptors: one is needed per thread and tracepoint.
    #[error(
        "out of file descriptors after {opened} perf events ({why}): counting {threads} \
         thread(s) needs {needed}; raise the limit (`ulimit -n`)"
    )]
    TooManyFiles {
        /// Events opened before the limit was hit.
        opened: usize,
        /// Threads of the process.
        threads: usize,
        /// Descriptors needed in all.
        needed: usize,
        /// EMFILE (this process) or ENFILE (the system).
        why: String,
    },
    /// Anything else the kernel or /proc answered, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

/// Counters on the threads of one process: one perf event per tracepoint per thread.
///
/// Threads that exist at [`SyscallCounter::open`] are counted; so are threads and processes
/// they start afterwards, through the kernel's counter inheritance (`inherit`), folded into the
/// counter of the thread that started them. A thread started while `open` runs, by a thread
/// whose counters are not open yet, can be missed. A thread that exits keeps its counts.
/// Dropping the counter closes every event.
#[derive(Debug)]
pub struct SyscallCounter {
    /// Every event of every thread.
    events: Vec<GroupEvent>,
    /// `raw_syscalls:sys_enter` on every thread.
    totals: Vec<File>,
    /// Tracepoints found on this kernel, in [`GROUPS`] order.
    tracepoints: Vec<&'static str>,
    threads: usize,
}

impl SyscallCounter {
    /// Counters on every thread of `pid` that exists now, and (by inheritance) on the threads
    /// those start later.
    ///
    /// `Err` says why counting is unavailable and how to fix it: not root and
    /// perf_event_paranoid too high, tracefs not mounted (mounted here at
    /// /sys/kernel/tracing when running as root), a group none of whose tracepoints exist,
    /// or too few file descriptors.
    pub fn open(pid: u32) -> Result<Self, SyscallError> {
        let events_dir = events_dir()?;
        let ids = tracepoint_ids(&events_dir)?;
        let total_id = raw_sys_enter_id(&events_dir)?;
        let tids = threads_of(pid)?;
        let mut opener = Opener::new(tids.len(), ids.len() + 1);
        let mut counter = Self {
            events: Vec::with_capacity(tids.len() * ids.len()),
            totals: Vec::with_capacity(tids.len()),
            tracepoints: ids.iter().map(|t| t.name).collect(),
            threads: 0,
        };
        for tid in tids {
            if let Some((total, events)) = opener.thread(tid, total_id, &ids)? {
                counter.totals.push(total);
                counter.events.extend(events);
                counter.threads += 1;
            }
        }
        match counter.threads {
            0 => Err(SyscallError::NoProcess { pid }),
            _ => Ok(counter),
        }
    }

    /// Current counts since [`SyscallCounter::open`]: every group of [`GROUPS`], the total and
    /// the calls outside the groups.
    pub fn read(&self) -> Result<SyscallCounts, SyscallError> {
        // The groups first, the total last: the process keeps calling while we read, and this
        // order keeps the total at or above the groups' sum.
        let mut values = Vec::with_capacity(self.events.len() + GROUPS.len());
        values.extend(GROUPS.iter().map(|&(group, _)| (group, 0)));
        for (group, file) in &self.events {
            values.push((*group, read_count(file)?));
        }
        let mut total = 0;
        for file in &self.totals {
            total += read_count(file)?;
        }
        Ok(SyscallCounts::tally(values, total))
    }

    /// Threads counted from the start (threads they started later are folded into theirs).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The tracepoints this kernel has, of those named in [`GROUPS`].
    pub fn tracepoints(&self) -> &[&'static str] {
        &self.tracepoints
    }
}

/// Calls counted, by group of [`GROUPS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyscallCounts {
    /// Calls of each group: the sum of its tracepoints.
    pub by_group: BTreeMap<String, u64>,
    /// Every call (`raw_syscalls:sys_enter`), grouped or not.
    pub total: u64,
    /// Calls outside the groups: `total` less the sum of `by_group`.
    pub other: u64,
}

impl SyscallCounts {
    /// The calls made between `earlier` and `self`. A group missing from `earlier` counts from
    /// zero.
    pub fn since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        let values = self.by_group.iter().map(|(group, &now)| {
            let before = earlier.by_group.get(group).copied().unwrap_or(0);
            (group.as_str(), now.saturating_sub(before))
        });
        Self::tally(values, self.total.saturating_sub(earlier.total))
    }

    /// Sum `(group, count)` pairs into their groups; `other` is what the total has beyond
    /// them. Counters are read one after another, so the sum can pass the total by a call or
    /// two: `other` is then zero rather than wrapping.
    fn tally<'a>(values: impl IntoIterator<Item = (&'a str, u64)>, total: u64) -> Self {
        let mut by_group = BTreeMap::new();
        for (group, count) in values {
            *by_group.entry(group.to_owned()).or_insert(0) += count;
        }
        let grouped: u64 = by_group.values().sum();
        Self {
            by_group,
            total,
            other: total.saturating_sub(grouped),
        }
    }
}

/// One tracepoint's event on one thread, with the group it is summed into.
type GroupEvent = (&'static str, File);

/// One tracepoint found on this kernel.
struct Tracepoint {
    group: &'static str,
    name: &'static str,
    id: u64,
}

/// tracefs's `events` directory; mounted at /sys/kernel/tracing first when it is nowhere and
/// we are root, as the tools that need it do.
fn events_dir() -> Result<PathBuf, SyscallError> {
    if let Some(dir) = find_events_dir()? {
        return Ok(dir);
    }
    mount_tracefs().map_err(|why| SyscallError::NoTracefs { why })?;
    find_events_dir()?.ok_or_else(|| SyscallError::NoTracefs {
        why: "mounted, but it has no events directory".to_owned(),
    })
}

/// The first `events` directory of [`TRACEFS`]. tracefs is usually readable by root only: a
/// refusal is reported as such, not taken for tracefs missing.
fn find_events_dir() -> Result<Option<PathBuf>, SyscallError> {
    for root in TRACEFS {
        let dir = Path::new(root).join("events");
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => return Ok(Some(dir)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(not_permitted(format!("reading {}", dir.display())))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Mount tracefs at its own mount point; `Err` says why not.
fn mount_tracefs() -> Result<(), String> {
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root, so not mounted here".to_owned());
    }
    // SAFETY: every pointer is to a NUL-terminated literal that outlives the call; tracefs
    // takes no data.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(format!(
            "mounting it at /sys/kernel/tracing failed: {}",
            io::Error::last_os_error()
        )),
    }
}

/// The ids of the tracepoints of [`GROUPS`] that exist, in order; a group with none is an
/// error.
fn tracepoint_ids(events: &Path) -> Result<Vec<Tracepoint>, SyscallError> {
    let dir = events.join("syscalls");
    let mut found = Vec::new();
    for &(group, names) in GROUPS {
        let before = found.len();
        for &name in names {
            if let Some(id) = read_id(&dir.join(format!("sys_enter_{name}")))? {
                found.push(Tracepoint { group, name, id });
            }
        }
        if found.len() == before {
            return Err(SyscallError::NoTracepoint {
                group: group.to_owned(),
                tried: names.join(", "),
                dir,
            });
        }
    }
    Ok(found)
}

/// The id of `raw_syscalls:sys_enter`, which fires on every call.
fn raw_sys_enter_id(events: &Path) -> Result<u64, SyscallError> {
    let dir = events.join("raw_syscalls");
    read_id(&dir.join("sys_enter"))?.ok_or_else(|| SyscallError::NoTracepoint {
        group: "raw_syscalls".to_owned(),
        tried: "sys_enter".to_owned(),
        dir,
    })
}

/// A tracepoint's id from its directory; `None` when this kernel has no such tracepoint.
fn read_id(tracepoint: &Path) -> Result<Option<u64>, SyscallError> {
    let path = tracepoint.join("id");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(not_permitted(format!("reading {}", path.display())))
        }
        Err(source) => return Err(io_error(format!("reading {}", path.display()), source)),
    };
    text.trim().parse().map(Some).map_err(|e| {
        io_error(
            format!("{}: {:?} is not an id", path.display(), text.trim()),
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })
}

/// The threads of `pid` now, from /proc/PID/task.
fn threads_of(pid: u32) -> Result<BTreeSet<u32>, SyscallError> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SyscallError::NoProcess { pid },
        _ => io_error(format!("listing {dir}"), e),
    })?;
    let mut tids = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("listing {dir}"), e))?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.insert(tid);
        }
    }
    Ok(tids)
}

/// Opens the events one by one and turns the kernel's refusals into advice.
struct Opener {
    threads: usize,
    per_thread: usize,
    opened: usize,
}

impl Opener {
    fn new(threads: usize, per_thread: usize) -> Self {
        Self {
            threads,
            per_thread,
            opened: 0,
        }
    }

    /// The total's event and every tracepoint's on thread `tid`; `None` when the thread
    /// exited since the listing, which leaves nothing to count.
    fn thread(
        &mut self,
        tid: u32,
        total_id: u64,
        ids: &[Tracepoint],
    ) -> Result<Option<(File, Vec<GroupEvent>)>, SyscallError> {
        let Some(total) = self.open(tid, total_id, "raw_syscalls:sys_enter")? else {
            return Ok(None);
        };
        let mut events = Vec::with_capacity(ids.len());
        for tp in ids {
            match self.open(tid, tp.id, tp.name)? {
                Some(file) => events.push((tp.group, file)),
                None => return Ok(None),
            }
        }
        Ok(Some((total, events)))
    }

    /// A counting event for tracepoint `id` on thread `tid`; `None` when the thread is gone.
    fn open(&mut self, tid: u32, id: u64, name: &str) -> Result<Option<File>, SyscallError> {
        match perf_event_open(tid, id) {
            Ok(file) => {
                self.opened += 1;
                Ok(Some(file))
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(None),
                Some(libc::EACCES | libc::EPERM) => Err(not_permitted(format!(
                    "perf_event_open of tracepoint {name} on thread {tid}"
                ))),
                Some(libc::EMFILE | libc::ENFILE) => Err(SyscallError::TooManyFiles {
                    opened: self.opened,
                    threads: self.threads,
                    needed: self.threads * self.per_thread,
                    why: e.to_string(),
                }),
                _ => Err(io_error(
                    format!("perf_event_open of tracepoint {name} (id {id}) on thread {tid}"),
                    e,
                )),
            },
        }
    }
}

/// `PERF_TYPE_TRACEPOINT` from linux/perf_event.h: `config` is a tracefs event id.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC`: the event's descriptor is not passed on to programs we exec.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `PERF_ATTR_SIZE_VER5` (Linux 4.1): the layout below. Kernels accept any size they know,
/// and later ones treat the fields past it as zero.
const PERF_ATTR_SIZE_VER5: u32 = 112;
/// `perf_event_attr.inherit`: threads and processes started by the thread count into it.
const ATTR_INHERIT: u64 = 1 << 1;
/// `perf_event_attr.exclude_hv`: nothing of a hypervisor's is a system call of ours.
const ATTR_EXCLUDE_HV: u64 = 1 << 6;

/// `struct perf_event_attr` of linux/perf_event.h up to `PERF_ATTR_SIZE_VER5`, the bit
/// fields gathered in `flags` (libc does not define it). Unions are named after the member we
/// would use.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == PERF_ATTR_SIZE_VER5 as usize);

/// A counting event on tracepoint `id` for thread `tid`, on any CPU.
///
/// The kernel is not excluded although every call is made from user space: a tracepoint
/// event is matched against the registers it reports, and `raw_syscalls:sys_enter` reports
/// the kernel's, so `exclude_kernel` would silently zero the total (the `syscalls:` ones report
/// the caller's and would still count). Tracepoints ignore `exclude_user`. A zero
/// `sample_period` means counting, and a zero `read_format` a plain u64 to read.
fn perf_event_open(tid: u32, id: u64) -> io::Result<File> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: PERF_ATTR_SIZE_VER5,
        config: id,
        flags: ATTR_INHERIT | ATTR_EXCLUDE_HV,
        ..PerfEventAttr::default()
    };
    let (pid, cpu, group_fd): (libc::pid_t, libc::c_int, libc::c_int) =
        (tid as libc::pid_t, -1, -1);
    // SAFETY: the attribute is a fully initialised perf_event_attr of the size it declares,
    // alive for the call, which only reads it; the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid,
            cpu,
            group_fd,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returned a new descriptor that nothing else owns.
    Ok(File::from(unsafe {
        OwnedFd::from_raw_fd(fd as libc::c_int)
    }))
}

/// The value of a counting event: `read(2)` of one u64 in native byte order.
fn read_count(mut file: &File) -> Result<u64, SyscallError> {
    let mut buf = [0u8; 8];
    file.read_exact(&mut buf)
        .map_err(|e| io_error("reading a perf event".to_owned(), e))?;
    Ok(u64::from_ne_bytes(buf))
}

fn not_permitted(what: String) -> SyscallError {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unreadable".to_owned());
    SyscallError::NotPermitted { what, paranoid }
}

fn io_error(what: String, source: io::Error) -> SyscallError {
    SyscallError::Io { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(groups: &[(&str, u64)], total: u64) -> SyscallCounts {
        SyscallCounts::tally(groups.iter().copied(), total)
    }

    #[test]
    fn tracepoints_of_a_group_are_summed() {
        let c = counts(
            &[
                ("recv", 0),
                ("recv", 5),
                ("send", 7),
                ("recv", 3),
                ("send", 1),
            ],
            20,
        );
        assert_eq!(c.by_group["recv"], 8);
        assert_eq!(c.by_group["send"], 8);
        assert_eq!(c.by_group.len(), 2);
        assert_eq!(c.total, 20);
    }

    #[test]
    fn other_is_the_total_beyond_the_groups() {
        assert_eq!(counts(&[("recv", 5), ("send", 7)], 20).other, 8);
        assert_eq!(counts(&[("recv", 5), ("send", 7)], 12).other, 0);
        // Read one after another, the groups can pass the total: no wrap-around.
        assert_eq!(counts(&[("recv", 5), ("send", 7)], 11).other, 0);
    }

    #[test]
    fn since_subtracts_each_group_and_the_total() {
        let earlier = counts(&[("recv", 5), ("send", 7), ("epoll_wait", 1)], 20);
        let later = counts(&[("recv", 15), ("send", 9), ("epoll_wait", 1)], 60);
        let d = later.since(&earlier);
        assert_eq!(d.by_group["recv"], 10);
        assert_eq!(d.by_group["send"], 2);
        assert_eq!(d.by_group["epoll_wait"], 0);
        assert_eq!(d.total, 40);
        assert_eq!(d.other, 28);
        assert_eq!(later.since(&SyscallCounts::default()), later);
        assert_eq!(
            later.since(&later),
            counts(&[("recv", 0), ("send", 0), ("epoll_wait", 0)], 0)
        );
    }

    #[test]
    fn every_group_has_tracepoints_and_each_tracepoint_one_group() {
        let (mut groups, mut tracepoints) = (BTreeSet::new(), BTreeSet::new());
        for &(group, names) in GROUPS {
            assert!(!names.is_empty(), "{group}");
            assert!(groups.insert(group), "{group} twice");
            for name in names {
                assert!(tracepoints.insert(name), "{name} counted twice");
            }
        }
    }

    #[test]
    fn errors_are_one_line() {
        let errors = [
            SyscallError::NoProcess { pid: 1 },
            not_permitted("x".to_owned()),
            SyscallError::NoTracefs {
                why: "y".to_owned(),
            },
            SyscallError::TooManyFiles {
                opened: 1,
                threads: 2,
                needed: 28,
                why: "z".to_owned(),
            },
        ];
        for e in errors {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
