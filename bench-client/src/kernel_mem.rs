//! What connections cost the kernel, beside the server's RSS: memory no process's RSS shows.
//!
//! Two measurements, each a difference between before the first connection opens and the
//! start of the measured window (every connection open):
//! - `/proc/net/sockstat`'s TCP `mem`: pages charged to TCP socket buffers (data queued to
//!   send or not yet read, and each socket's forward allocation), the host's total;
//! - `/proc/slabinfo` (root only): active objects × object size of the caches one socket
//!   fills: `TCP`/`TCPv6` (the `tcp_sock`), `sock_inode_cache` (the socket's inode),
//!   `filp` (its open file) and `eventpoll_epi` (its epoll registration, where an epoll loop
//!   watches it).
//!
//! Both ends of every connection are sockets on this host, so each delta is per connection
//! *pair*; a server whose clients are elsewhere pays one end, which [`KernelMemory`] reports
//! as half the pair (the two ends hold the same objects; only the epoll registration can
//! differ). Both sources are host-wide: another process opening sockets or files during the
//! opening shows up too, so a run on a busy host reads high; the fitted slope over several
//! counts (`scale` in the summary) is steadier than one point. Not counted: the socket's
//! dentry (192 B, in a cache every file shares), io_uring requests in flight, and page tables.

use std::collections::BTreeMap;

use serde::Serialize;

/// The slab caches a connection's socket fills, one object each (see the module doc).
pub const SOCKET_CACHES: [&str; 5] = ["TCP", "TCPv6", "sock_inode_cache", "filp", "eventpoll_epi"];

/// One look at the kernel's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelSample {
    /// sockstat TCP `mem`, bytes (pages × page size).
    pub tcp_mem_bytes: Option<u64>,
    /// Bytes in each of [`SOCKET_CACHES`] present; `None` where slabinfo is unreadable.
    pub slabs: Option<BTreeMap<String, u64>>,
}

/// The kernel's memory per connection, in `results.kernel_memory`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelMemory {
    /// Connections open at the second sample.
    pub connections: usize,
    /// sockstat TCP `mem` delta per connection pair, bytes.
    pub tcp_mem_bytes_per_pair: Option<f64>,
    /// Slab delta per connection pair, by cache, bytes.
    pub slab_bytes_per_pair: BTreeMap<String, f64>,
    /// Sum of the above per pair.
    pub total_bytes_per_pair: f64,
    /// The server's end: half the pair.
    pub server_bytes_per_connection: f64,
}

impl std::fmt::Display for KernelMemory {
    /// `3.4 KiB per connection (server's end: half of 6.8 KiB per pair: sockstat TCP mem 0.6, slabs 6.2)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kib = |b: f64| b / 1024.0;
        write!(
            f,
            "{:.1} KiB per connection (the server's end: half of {:.1} KiB per pair: sockstat TCP mem {}, slabs {:.1})",
            kib(self.server_bytes_per_connection),
            kib(self.total_bytes_per_pair),
            self.tcp_mem_bytes_per_pair
                .map_or("n/a".to_owned(), |m| format!("{:.1}", kib(m))),
            kib(self.slab_bytes_per_pair.values().sum::<f64>()),
        )
    }
}

/// Sample sockstat and slabinfo now.
pub fn sample() -> KernelSample {
    KernelSample {
        tcp_mem_bytes: std::fs::read_to_string("/proc/net/sockstat")
            .ok()
            .and_then(|t| parse_sockstat_tcp_mem(&t))
            .map(|pages| pages * page_size()),
        slabs: std::fs::read_to_string("/proc/slabinfo")
            .ok()
            .map(|t| parse_slabinfo(&t)),
    }
}

/// The difference `after - before` over `connections`; `None` when nothing could be read.
pub fn per_connection(
    before: &KernelSample,
    after: &KernelSample,
    connections: usize,
) -> Option<KernelMemory> {
    if connections == 0 {
        return None;
    }
    let n = connections as f64;
    let delta = |a: u64, b: u64| (b as f64 - a as f64) / n;
    let tcp_mem = match (before.tcp_mem_bytes, after.tcp_mem_bytes) {
        (Some(a), Some(b)) => Some(delta(a, b)),
        _ => None,
    };
    let mut slabs = BTreeMap::new();
    if let (Some(a), Some(b)) = (&before.slabs, &after.slabs) {
        for (name, &bytes) in b {
            slabs.insert(
                name.clone(),
                delta(a.get(name).copied().unwrap_or(0), bytes),
            );
        }
    }
    if tcp_mem.is_none() && slabs.is_empty() {
        return None;
    }
    let total = tcp_mem.unwrap_or(0.0) + slabs.values().sum::<f64>();
    Some(KernelMemory {
        connections,
        tcp_mem_bytes_per_pair: tcp_mem,
        slab_bytes_per_pair: slabs,
        total_bytes_per_pair: total,
        server_bytes_per_connection: total / 2.0,
    })
}

/// `TCP: inuse 1 orphan 0 tw 971 alloc 1 mem 189`: the `mem` value, in pages.
pub fn parse_sockstat_tcp_mem(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "mem")?;
    words.get(at + 1)?.parse().ok()
}

/// `name active_objs num_objs objsize ...`: active × size of each of [`SOCKET_CACHES`].
pub fn parse_slabinfo(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next().filter(|n| SOCKET_CACHES.contains(n)) else {
            continue;
        };
        let active = words.next().and_then(|w| w.parse::<u64>().ok());
        let size = words.nth(1).and_then(|w| w.parse::<u64>().ok());
        if let (Some(active), Some(size)) = (active, size) {
            out.insert(name.to_owned(), active * size);
        }
    }
    out
}

fn page_size() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLABINFO: &str = "slabinfo - version: 2.1\n\
        # name            <active_objs> <num_objs> <objsize> <objperslab> ...\n\
        TCPv6                 26     26   2496   13    8 : tunables    0    0    0 : slabdata 2 2 0\n\
        TCP                  118    182   2368   13    8 : tunables    0    0    0 : slabdata 14 14 0\n\
        sock_inode_cache     175    228    832   19    4 : tunables    0    0    0 : slabdata 12 12 0\n\
        dentry            121701 152019    192   21    1 : tunables    0    0    0 : slabdata 7239 7239 0\n";

    #[test]
    fn parses_sockstat_and_slabinfo() {
        let sockstat =
            "sockets: used 26\nTCP: inuse 1 orphan 0 tw 971 alloc 1 mem 189\nUDP: inuse 0 mem 7\n";
        assert_eq!(parse_sockstat_tcp_mem(sockstat), Some(189));
        assert_eq!(parse_sockstat_tcp_mem("UDP: inuse 0 mem 7\n"), None);
        let slabs = parse_slabinfo(SLABINFO);
        assert_eq!(slabs.get("TCP"), Some(&(118 * 2368)));
        assert_eq!(slabs.get("sock_inode_cache"), Some(&(175 * 832)));
        assert!(
            !slabs.contains_key("dentry"),
            "not one of the socket caches"
        );
    }

    #[test]
    fn per_connection_is_the_delta_over_pairs_and_half_for_the_server() {
        let before = KernelSample {
            tcp_mem_bytes: Some(4096),
            slabs: Some(BTreeMap::from([("TCP".to_owned(), 10_000)])),
        };
        let after = KernelSample {
            tcp_mem_bytes: Some(4096 + 100 * 4096),
            slabs: Some(BTreeMap::from([
                ("TCP".to_owned(), 10_000 + 200 * 2368),
                ("filp".to_owned(), 200 * 192),
            ])),
        };
        let k = per_connection(&before, &after, 100).unwrap();
        assert_eq!(k.tcp_mem_bytes_per_pair, Some(4096.0));
        assert_eq!(k.slab_bytes_per_pair["TCP"], 2.0 * 2368.0);
        assert_eq!(k.slab_bytes_per_pair["filp"], 2.0 * 192.0);
        let total = 4096.0 + 2.0 * 2368.0 + 2.0 * 192.0;
        assert_eq!(k.total_bytes_per_pair, total);
        assert_eq!(k.server_bytes_per_connection, total / 2.0);
        assert!(per_connection(&KernelSample::default(), &KernelSample::default(), 5).is_none());
        assert!(per_connection(&before, &after, 0).is_none());
    }

    #[test]
    fn samples_this_host() {
        let s = sample();
        assert!(
            s.tcp_mem_bytes.is_some(),
            "/proc/net/sockstat is readable by anyone"
        );
    }
}
