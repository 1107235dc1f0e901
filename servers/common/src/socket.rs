//! Binding listeners for thread-per-core serving, and per-connection socket options.
//!
//! Every runtime thread gets its own listener on each listen address, all bound with
//! SO_REUSEPORT, so the kernel spreads incoming connections across threads and no thread
//! shares an accept queue (what makes one-core and many-core results comparable).
//!
//! SO_REUSEPORT has a trap: a stale server of the same user still listening on the port does
//! not make `bind` fail — it silently takes part of the connections, and a benchmark measures
//! the wrong process. So before binding a port, [`bind_listeners`] probes it with a throwaway
//! socket bound *without* SO_REUSEPORT (SO_REUSEADDR only, so TIME_WAIT leftovers do not
//! count): any listener on the port makes that probe fail with EADDRINUSE, and the error names
//! the holder (from `/proc/net/tcp{,6}` and `/proc/*/fd`) when it can.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::config::ServerConfig;
use crate::listen::ListenSpec;

/// Who holds a port, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortHolder {
    /// A process we could see (`/proc/<pid>/comm` gives its name).
    Process {
        /// Its pid.
        pid: u32,
        /// Its command name (up to 15 characters, as the kernel keeps it).
        comm: String,
    },
    /// A socket owned by this uid whose process is not visible (another user's, or in
    /// another PID namespace).
    Uid(u32),
    /// Nothing found (e.g. `/proc` not mounted).
    Unknown,
}

/// Why a listener cannot be bound. Displays as one line that says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// EADDRINUSE: another socket listens on the port (found by the probe or by bind).
    #[error("{}", in_use_message(.addr, .holder))]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
        /// Who holds it.
        holder: PortHolder,
    },
    /// EACCES on a port below `net.ipv4.ip_unprivileged_port_start`.
    #[error("{}", privileged_message(.addr, *.unprivileged_port_start, .binary))]
    PrivilegedPort {
        /// The address asked for.
        addr: SocketAddr,
        /// The current value of `/proc/sys/net/ipv4/ip_unprivileged_port_start`, if readable.
        unprivileged_port_start: Option<u32>,
        /// This program, for the `setcap` hint.
        binary: Option<PathBuf>,
    },
    /// EADDRNOTAVAIL: the IP is not one of this host's addresses.
    #[error("cannot listen on {addr}: {} is not an address of this host (see `ip -brief addr`); use 0.0.0.0, [::] or one of this host's addresses", .addr.ip())]
    AddrNotAvailable {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other failure of a socket call.
    #[error("cannot listen on {addr}: {op} failed: {source}")]
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// The call that failed (`socket`, `setsockopt(SO_REUSEPORT)`, `bind`, `listen`, ...).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl BindError {
    /// The address that could not be bound.
    pub fn addr(&self) -> SocketAddr {
        match self {
            BindError::AddrInUse { addr, .. }
            | BindError::PrivilegedPort { addr, .. }
            | BindError::AddrNotAvailable { addr }
            | BindError::Io { addr, .. } => *addr,
        }
    }
}

fn in_use_message(addr: &SocketAddr, holder: &PortHolder) -> String {
    let port = addr.port();
    let head = format!("port {port} ({addr}) is already in use");
    match holder {
        PortHolder::Process { pid, comm } => format!("{head} by pid {pid} ({comm})"),
        PortHolder::Uid(uid) => format!(
            "{head} by a process of uid {uid} that is not visible from here \
             (try `sudo ss -ltnp 'sport = :{port}'`)"
        ),
        PortHolder::Unknown => {
            format!("{head} (holder unknown: try `ss -ltnp 'sport = :{port}'`)")
        }
    }
}

fn privileged_message(addr: &SocketAddr, start: Option<u32>, binary: &Option<PathBuf>) -> String {
    let port = addr.port();
    let binary = binary
        .as_ref()
        .map_or_else(|| "<binary>".to_owned(), |b| b.display().to_string());
    let now = start.map_or_else(String::new, |s| format!(" (now {s})"));
    format!(
        "binding port {port} ({addr}) needs root or CAP_NET_BIND_SERVICE: run as root, or \
         `sudo setcap cap_net_bind_service=+ep {binary}`, or lower \
         `sysctl net.ipv4.ip_unprivileged_port_start`{now}"
    )
}

/// Binds one listener per listen spec per thread: `result[thread][spec]`, specs in config
/// order, each paired with its spec carrying the real port (port 0 is resolved by the first
/// thread's bind, and every other thread binds that same port).
///
/// Each listener has SO_REUSEADDR and SO_REUSEPORT, IPV6_V6ONLY for IPv6 addresses (so
/// `[::]` and `0.0.0.0` can be listed side by side), TCP_NODELAY (inherited by accepted
/// sockets on Linux; [`configure_stream`] sets it again to be sure), is nonblocking, and
/// listens with the configured backlog. Fixed ports are probed first (see the module doc).
pub fn bind_listeners(
    cfg: &ServerConfig,
) -> Result<Vec<Vec<(ListenSpec, TcpListener)>>, BindError> {
    let threads = cfg.threads.max(1);
    let mut per_thread: Vec<Vec<(ListenSpec, TcpListener)>> = (0..threads)
        .map(|_| Vec::with_capacity(cfg.listeners.len()))
        .collect();
    for spec in &cfg.listeners {
        let mut spec = *spec;
        if spec.addr.port() != 0 {
            probe(spec.addr)?;
        }
        for (thread, listeners) in per_thread.iter_mut().enumerate() {
            let listener = bind_one(spec.addr, cfg.backlog)?;
            if thread == 0 && spec.addr.port() == 0 {
                let local = listener.local_addr().map_err(|source| BindError::Io {
                    addr: spec.addr,
                    op: "getsockname",
                    source,
                })?;
                spec.addr.set_port(local.port());
            }
            listeners.push((spec, listener));
        }
    }
    Ok(per_thread)
}

/// The listen(2) backlog when none is asked for (`--backlog`).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// One listener for `spec`, probed and bound as [`bind_listeners`] binds each, with its spec
/// carrying the real port: for servers that run a single thread (the reference servers).
pub fn bind_one_listener(
    mut spec: ListenSpec,
    backlog: i32,
) -> Result<(ListenSpec, TcpListener), BindError> {
    if spec.addr.port() != 0 {
        probe(spec.addr)?;
    }
    let listener = bind_one(spec.addr, backlog)?;
    let local = listener
        .local_addr()
        .map_err(io_err(spec.addr, "getsockname"))?;
    spec.addr.set_port(local.port());
    Ok((spec, listener))
}

/// Sets per-connection options on an accepted stream: TCP_NODELAY, since echo replies are
/// small and must not wait for Nagle's algorithm.
///
/// Takes any `AsRawFd` because not every runtime's stream implements `AsFd` yet.
pub fn configure_stream(stream: &impl AsRawFd) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: `stream` is borrowed for the whole of this call, so the descriptor it reports
    // stays open (and is not reused) until we return; the BorrowedFd does not outlive it.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    set_nodelay(fd)
}

fn set_nodelay(fd: impl AsFd) -> io::Result<()> {
    SockRef::from(&fd).set_nodelay(true)
}

/// Binds `addr` without SO_REUSEPORT and lets the socket go: fails with EADDRINUSE exactly
/// when some socket (ours or a stale server's) already listens there.
fn probe(addr: SocketAddr) -> Result<(), BindError> {
    let socket = new_socket(addr)?;
    socket
        .set_reuse_address(true)
        .map_err(io_err(addr, "setsockopt(SO_REUSEADDR)"))?;
    socket
        .bind(&addr.into())
        .map_err(|e| classify_bind(addr, e))
}

fn bind_one(addr: SocketAddr, backlog: i32) -> Result<TcpListener, BindError> {
    let socket = new_socket(addr)?;
    socket
        .set_reuse_address(true)
        .map_err(io_err(addr, "setsockopt(SO_REUSEADDR)"))?;
    socket
        .set_reuse_port(true)
        .map_err(io_err(addr, "setsockopt(SO_REUSEPORT)"))?;
    socket
        .set_nodelay(true)
        .map_err(io_err(addr, "setsockopt(TCP_NODELAY)"))?;
    socket
        .set_nonblocking(true)
        .map_err(io_err(addr, "fcntl(O_NONBLOCK)"))?;
    socket
        .bind(&addr.into())
        .map_err(|e| classify_bind(addr, e))?;
    socket.listen(backlog).map_err(|e| match e.raw_os_error() {
        Some(libc::EADDRINUSE) => classify_bind(addr, e),
        _ => BindError::Io {
            addr,
            op: "listen",
            source: e,
        },
    })?;
    Ok(socket.into())
}

fn new_socket(addr: SocketAddr) -> Result<Socket, BindError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(io_err(addr, "socket"))?;
    if addr.is_ipv6() {
        socket
            .set_only_v6(true)
            .map_err(io_err(addr, "setsockopt(IPV6_V6ONLY)"))?;
    }
    Ok(socket)
}

fn io_err(addr: SocketAddr, op: &'static str) -> impl FnOnce(io::Error) -> BindError {
    move |source| BindError::Io { addr, op, source }
}

fn classify_bind(addr: SocketAddr, e: io::Error) -> BindError {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => BindError::AddrInUse {
            addr,
            holder: find_holder(addr),
        },
        Some(libc::EADDRNOTAVAIL) => BindError::AddrNotAvailable { addr },
        Some(libc::EACCES) if addr.port() < 1024 => BindError::PrivilegedPort {
            addr,
            unprivileged_port_start: std::fs::read_to_string(
                "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            )
            .ok()
            .and_then(|s| s.trim().parse().ok()),
            binary: std::env::current_exe().ok(),
        },
        _ => BindError::Io {
            addr,
            op: "bind",
            source: e,
        },
    }
}

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcSocket {
    addr: SocketAddr,
    listening: bool,
    uid: u32,
    inode: u64,
}

/// Finds who holds `addr`'s port: the sockets on that port in `/proc/net/tcp{,6}` (listeners
/// whose address overlaps ours first), then the process with an fd on that socket's inode.
fn find_holder(addr: SocketAddr) -> PortHolder {
    let mut sockets: Vec<ProcSocket> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(parse_proc_net_tcp_line)
                .collect::<Vec<_>>()
        })
        .filter(|s| s.addr.port() == addr.port() && s.inode != 0)
        .collect();
    // Best candidates first: listening, then on an overlapping address.
    sockets.sort_by_key(|s| (!s.listening, !overlaps(s.addr.ip(), addr.ip())));
    let Some(best) = sockets.first() else {
        return PortHolder::Unknown;
    };
    for socket in &sockets {
        if let Some((pid, comm)) = process_with_socket(socket.inode) {
            return PortHolder::Process { pid, comm };
        }
    }
    PortHolder::Uid(best.uid)
}

/// Whether binding `a` conflicts with a socket bound to `b` (same IP, or either a wildcard).
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// Parses `sl local_address rem_address st ... uid timeout inode`, where addresses are
/// `HEX_IP:HEX_PORT`. The kernel prints each 32-bit word of the IP as a native-endian number
/// (`%08X` of the in-memory `__be32`), so the bytes come back with `to_ne_bytes`.
fn parse_proc_net_tcp_line(line: &str) -> Option<ProcSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (ip_hex, port_hex) = fields.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => IpAddr::from(u32::from_str_radix(ip_hex, 16).ok()?.to_ne_bytes()),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some(ProcSocket {
        addr: SocketAddr::new(ip, port),
        listening: *fields.get(3)? == "0A",
        uid: fields.get(7)?.parse().ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// Scans `/proc/*/fd` for a link to `socket:[inode]`. Processes we may not inspect are
/// skipped silently.
fn process_with_socket(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str())
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            return Some((pid, comm));
        }
    }
    None
}

impl fmt::Display for PortHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortHolder::Process { pid, comm } => write!(f, "pid {pid} ({comm})"),
            PortHolder::Uid(uid) => write!(f, "a process of uid {uid}"),
            PortHolder::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_rows() {
        let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0";
        let row = parse_proc_net_tcp_line(v4).expect("v4 row");
        if cfg!(target_endian = "little") {
            assert_eq!(row.addr, "127.0.0.1:8080".parse().unwrap());
        }
        assert!(row.listening);
        assert_eq!((row.uid, row.inode), (1000, 4242));

        let v6 = "   1: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 06 00000000:00000000 03:00000F8D 00000000     0        0 0 3 0000000000000000";
        let row = parse_proc_net_tcp_line(v6).expect("v6 row");
        if cfg!(target_endian = "little") {
            assert_eq!(row.addr, "[::1]:443".parse().unwrap());
        }
        assert!(!row.listening);
        assert_eq!(row.inode, 0);

        assert_eq!(
            parse_proc_net_tcp_line("  sl  local_address rem_address   st"),
            None
        );
    }

    #[test]
    fn privileged_message_says_how_to_fix() {
        let e = BindError::PrivilegedPort {
            addr: "0.0.0.0:80".parse().unwrap(),
            unprivileged_port_start: Some(1024),
            binary: Some(PathBuf::from("/usr/bin/wsport-tokio")),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("binding port 80 "), "{msg}");
        for needle in [
            "CAP_NET_BIND_SERVICE",
            "setcap cap_net_bind_service=+ep /usr/bin/wsport-tokio",
            "net.ipv4.ip_unprivileged_port_start",
            "(now 1024)",
        ] {
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn unknown_holder_suggests_ss() {
        let e = BindError::AddrInUse {
            addr: "127.0.0.1:8080".parse().unwrap(),
            holder: PortHolder::Unknown,
        };
        assert_eq!(
            e.to_string(),
            "port 8080 (127.0.0.1:8080) is already in use (holder unknown: try `ss -ltnp 'sport = :8080'`)"
        );
    }
}
