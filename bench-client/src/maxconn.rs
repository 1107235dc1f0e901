//! `hold --max`: the most connections this host's limits allow, for the client and the server
//! at once, and which limit sets the number.
//!
//! Every connection costs one descriptor in each process (both ends live on this host), so
//! the count is the least of:
//! - the client's RLIMIT_NOFILE, after raising it as far as it may go (the hard limit rises
//!   only with CAP_SYS_RESOURCE, up to `fs.nr_open`; [`wsport_server_common::limits`]), less
//!   a spare for rings, epoll, files and stdio;
//! - the server's soft RLIMIT_NOFILE, read from `/proc/PID/limits` (the wsport servers raise
//!   theirs at start the same way), less the same spare;
//! - the server's `--max-connections` (from its command line; a wsport server's default when
//!   not given), over which it answers 503;
//! - the descriptors the whole host has left (`fs.file-max` less `fs.file-nr`'s allocated),
//!   two per connection;
//! - the ephemeral ports (`net.ipv4.ip_local_port_range`) times the loopback source addresses
//!   one may spread over (127.0.0.1 to 127.0.0.254) times the targets: a TCP connection is
//!   named by its 4-tuple, so each source address has the whole range again per target.
//!
//! When one source address's ports are not enough, [`MaxPlan::source_ips`] names as many
//! loopback addresses as are needed, and no more.
//!
//! Not counted, and said so in the crate README: memory. A host that runs out of memory
//! before it runs out of descriptors shows it as failed connections, which `hold` reports.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use wsport_server_common::limits::NofileLimit;

/// Descriptors each process keeps for other things than connections: listeners, io_uring
/// rings, epoll, eventfds, stdio, the files a run writes. Matches `sys::raise_nofile`.
pub const SPARE_FDS: u64 = 64;

/// Loopback source addresses `--max` may spread over: 127.0.0.1 to 127.0.0.254.
pub const LOOPBACK_SOURCES: usize = 254;

/// The `--max-connections` default of the wsport servers (`servers/common/src/cli.rs`).
pub const WSPORT_DEFAULT_MAX_CONNECTIONS: u64 =
    wsport_server_common::cli::DEFAULT_MAX_CONNECTIONS as u64;

/// What the host's limits are, as read (or `None` where they could not be).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostLimits {
    /// The client's descriptor limit after raising it.
    pub client: Option<NofileLimit>,
    /// The server's soft RLIMIT_NOFILE (`/proc/PID/limits`).
    pub server_nofile: Option<u64>,
    /// The server's connection cap, and whether it was given on its command line (else the
    /// wsport default).
    pub server_max_connections: Option<(u64, bool)>,
    /// Descriptors the host has left: `fs.file-max` less those allocated.
    pub host_files_free: Option<u64>,
    /// Ephemeral ports per source address and target.
    pub ports: Option<u64>,
    /// Targets (`--url`s): each has its own 4-tuples.
    pub targets: usize,
}

/// One limit and the connections it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitRecord {
    /// e.g. `client RLIMIT_NOFILE`.
    pub name: String,
    /// Connections this limit allows.
    pub connections: u64,
    /// The figures behind it, in words.
    pub detail: String,
}

/// `hold --max`'s answer, recorded in the JSON under `setup.max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaxPlan {
    /// The connections the run asks for.
    pub connections: usize,
    /// The name of the limit that set the number.
    pub set_by: String,
    /// Every limit considered, in the order above.
    pub limits: Vec<LimitRecord>,
    /// Loopback source addresses to spread over; empty when one address's ports suffice.
    pub source_ips: Vec<IpAddr>,
}

impl std::fmt::Display for MaxPlan {
    /// `19,936 connections, set by client RLIMIT_NOFILE (soft limit 20000, ...)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections: the host's most, set by {}",
            self.connections, self.set_by
        )?;
        if let Some(l) = self.limits.iter().find(|l| l.name == self.set_by) {
            write!(f, " ({})", l.detail)?;
        }
        if !self.source_ips.is_empty() {
            write!(
                f,
                "; spread over {} source addresses",
                self.source_ips.len()
            )?;
        }
        Ok(())
    }
}

/// The most connections `h` allows, which limit set it, and the source addresses it needs.
pub fn plan(h: &HostLimits) -> MaxPlan {
    let limits = limit_records(h);
    let least = limits
        .iter()
        .min_by_key(|l| l.connections)
        .cloned()
        .unwrap_or_else(|| LimitRecord {
            name: "no limit could be read".into(),
            connections: 1,
            detail: String::new(),
        });
    let connections = least.connections.max(1) as usize;
    let sources = match h.ports {
        Some(ports) => sources_needed(connections, h.targets, ports),
        None => 1,
    };
    MaxPlan {
        connections,
        set_by: least.name,
        limits,
        source_ips: if sources > 1 {
            loopback_sources(sources)
        } else {
            Vec::new()
        },
    }
}

fn limit_records(h: &HostLimits) -> Vec<LimitRecord> {
    let mut out = Vec::new();
    if let Some(c) = &h.client {
        out.push(LimitRecord {
            name: "client RLIMIT_NOFILE".into(),
            connections: c.soft.saturating_sub(SPARE_FDS),
            detail: client_detail(c),
        });
    }
    if let Some(soft) = h.server_nofile {
        out.push(LimitRecord {
            name: "server RLIMIT_NOFILE".into(),
            connections: soft.saturating_sub(SPARE_FDS),
            detail: format!("soft limit {soft} (/proc/PID/limits), less {SPARE_FDS} spare"),
        });
    }
    if let Some((cap, given)) = h.server_max_connections {
        let how = if given { "given" } else { "the default" };
        out.push(LimitRecord {
            name: "server --max-connections".into(),
            connections: cap,
            detail: format!("{cap} ({how})"),
        });
    }
    if let Some(free) = h.host_files_free {
        out.push(LimitRecord {
            name: "host fs.file-max".into(),
            connections: free / 2,
            detail: format!("{free} descriptors free on the host, two per connection"),
        });
    }
    if let Some(ports) = h.ports {
        let targets = h.targets.max(1) as u64;
        out.push(LimitRecord {
            name: "ephemeral ports".into(),
            connections: ports * LOOPBACK_SOURCES as u64 * targets,
            detail: format!(
                "{ports} ports per source address and target × {LOOPBACK_SOURCES} loopback \
                 addresses × {targets} target(s)"
            ),
        });
    }
    out
}

fn client_detail(c: &NofileLimit) -> String {
    let hard = match (c.hard_refused, c.nr_open) {
        (Some(errno), Some(n)) => format!(
            "hard limit {} (raising it to fs.nr_open {n} was refused: {})",
            c.hard,
            std::io::Error::from_raw_os_error(errno)
        ),
        _ => format!("hard limit {}", c.hard),
    };
    format!("soft limit {}, {hard}, less {SPARE_FDS} spare", c.soft)
}

/// Source addresses needed so that no target gets more connections from one address than it
/// has ephemeral ports: connections go round-robin over the targets, then over the sources.
pub fn sources_needed(connections: usize, targets: usize, ports: u64) -> usize {
    let per_target = connections.div_ceil(targets.max(1)) as u64;
    per_target.div_ceil(ports.max(1)).max(1) as usize
}

/// 127.0.0.1, 127.0.0.2, ... (`n` of them, at most [`LOOPBACK_SOURCES`]): every 127.0.0.0/8
/// address is this host's on Linux, with no configuration.
pub fn loopback_sources(n: usize) -> Vec<IpAddr> {
    (1..=n.min(LOOPBACK_SOURCES) as u8)
        .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .collect()
}

/// Read the limits of this host, this process and (with a pid) the server.
pub fn gather(server_pid: Option<u32>, targets: usize) -> HostLimits {
    HostLimits {
        client: wsport_server_common::limits::raise_nofile().ok(),
        server_nofile: server_pid.and_then(server_soft_nofile),
        server_max_connections: server_pid.and_then(server_cap),
        host_files_free: host_files_free(),
        ports: crate::source::local_port_range().map(|(first, last)| u64::from(last - first) + 1),
        targets,
    }
}

/// The soft "Max open files" of `/proc/PID/limits`.
fn server_soft_nofile(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_limits_nofile(&text)
}

/// `Max open files            20000                20000                files`: the soft value
/// (`unlimited` is no limit).
pub fn parse_limits_nofile(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

fn server_cap(pid: u32) -> Option<(u64, bool)> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    parse_max_connections(&args)
}

/// `--max-connections N` or `--max-connections=N` from a server's arguments; a wsport server's
/// default when it is one (argv[0] names `wsport-` but not a reference server); else `None`.
pub fn parse_max_connections(args: &[String]) -> Option<(u64, bool)> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--max-connections" {
            return it.next()?.parse().ok().map(|n| (n, true));
        }
        if let Some(n) = a.strip_prefix("--max-connections=") {
            return n.parse().ok().map(|n| (n, true));
        }
    }
    let program = args.first()?.rsplit('/').next()?;
    (program.starts_with("wsport-") && !program.starts_with("wsport-ref-"))
        .then_some((WSPORT_DEFAULT_MAX_CONNECTIONS, false))
}

/// `fs.file-max` less the allocated count of `fs.file-nr` ("allocated unused max").
fn host_files_free() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/fs/file-nr").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u64>().ok());
    let (allocated, _unused, max) = (it.next()??, it.next()??, it.next()??);
    Some(max.saturating_sub(allocated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(client_soft: u64, server_soft: u64, ports: u64, targets: usize) -> HostLimits {
        HostLimits {
            client: Some(NofileLimit {
                soft: client_soft,
                hard: client_soft,
                nr_open: Some(1 << 20),
                hard_refused: Some(libc::EPERM),
            }),
            server_nofile: Some(server_soft),
            server_max_connections: Some((100_000, false)),
            host_files_free: Some(2_000_000),
            ports: Some(ports),
            targets,
        }
    }

    #[test]
    fn the_least_limit_sets_the_number_and_is_named() {
        // This VM: both processes at 20,000 descriptors.
        let p = plan(&host(20_000, 20_000, 28_232, 2));
        assert_eq!(p.connections, 19_936);
        assert_eq!(p.set_by, "client RLIMIT_NOFILE");
        assert!(p.limits[0].detail.contains("refused"), "{:?}", p.limits[0]);
        assert!(p.source_ips.is_empty(), "10k per target fit one address");

        // A lower server limit wins.
        let p = plan(&host(20_000, 5_000, 28_232, 1));
        assert_eq!(
            (p.connections, p.set_by.as_str()),
            (4_936, "server RLIMIT_NOFILE")
        );

        // A big host: the server's --max-connections default is the limit.
        let p = plan(&host(1 << 20, 1 << 20, 28_232, 1));
        assert_eq!(p.connections, 100_000);
        assert_eq!(p.set_by, "server --max-connections");

        // Few descriptors left on the host: two per connection.
        let mut h = host(1 << 20, 1 << 20, 28_232, 1);
        h.host_files_free = Some(30_000);
        assert_eq!(plan(&h).connections, 15_000);
        assert_eq!(plan(&h).set_by, "host fs.file-max");
    }

    #[test]
    fn sources_spread_only_when_one_address_runs_out_of_ports() {
        assert_eq!(sources_needed(19_936, 2, 28_232), 1);
        assert_eq!(sources_needed(28_232, 1, 28_232), 1);
        assert_eq!(sources_needed(28_233, 1, 28_232), 2);
        assert_eq!(sources_needed(100_000, 1, 28_232), 4);
        // Four targets share the load: each has its own 4-tuples.
        assert_eq!(sources_needed(100_000, 4, 28_232), 1);

        let p = plan(&host(1 << 20, 1 << 20, 28_232, 1));
        let want: Vec<IpAddr> = (1..=4)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        assert_eq!(p.source_ips, want);

        // A tiny port range: the ports themselves become the limit past 254 addresses.
        let p = plan(&host(1 << 20, 1 << 20, 100, 1));
        assert_eq!(p.connections, 25_400);
        assert_eq!(p.set_by, "ephemeral ports");
        assert_eq!(p.source_ips.len(), LOOPBACK_SOURCES);
    }

    #[test]
    fn reads_limits_and_command_lines() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_limits_nofile(limits), Some(20_000));
        assert_eq!(
            parse_limits_nofile("Max open files  unlimited unlimited files"),
            Some(u64::MAX)
        );
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_max_connections(&args("target/release/wsport-tokio --max-connections 5000")),
            Some((5_000, true))
        );
        assert_eq!(
            parse_max_connections(&args("wsport-uring --max-connections=7")),
            Some((7, true))
        );
        assert_eq!(
            parse_max_connections(&args("/x/wsport-monoio --threads 1")),
            Some((100_000, false))
        );
        assert_eq!(
            parse_max_connections(&args("/x/wsport-ref-tungstenite")),
            None
        );
        assert_eq!(parse_max_connections(&args("nginx")), None);
    }

    #[test]
    fn reads_this_host() {
        let h = gather(Some(std::process::id()), 1);
        let p = plan(&h);
        assert!(p.connections >= 1);
        assert!(h.server_nofile.is_some(), "our own /proc/PID/limits");
        assert!(p.limits.iter().any(|l| l.name == p.set_by));
    }
}
