//! `--source-ip`: the local addresses client sockets bind to, and whether the ephemeral ports
//! are enough for the connections asked for.
//!
//! A TCP connection is named by its 4-tuple, so one source address can hold at most one
//! connection per ephemeral port (`/proc/sys/net/ipv4/ip_local_port_range`, 28,232 ports by
//! default) to each target address. Binding sockets round-robin to several loopback addresses
//! (every 127.0.0.0/8 address is this host's) multiplies that. The sockets bind with
//! `IP_BIND_ADDRESS_NO_PORT` so that the kernel picks the port at connect time, per 4-tuple,
//! instead of reserving one port per socket at bind time across all targets.
//!
//! Only loopback addresses are accepted: wsport measures servers on this host, and sends no
//! traffic anywhere else.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use crate::error::BenchError;

/// At most this many addresses in one `--source-ip`: 256 × 28k ports is millions of
/// connections, more than any host has descriptors for.
const MAX_SOURCES: usize = 65_536;

/// `--source-ip`: loopback addresses in the order given, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SourceIps(pub Vec<IpAddr>);

/// Parse `127.0.0.1-127.0.0.250`, `127.0.0.1,127.0.0.2`, or a comma list of both.
pub fn parse_source_ips(text: &str) -> Result<SourceIps, String> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let more: Vec<IpAddr> = match part.split_once('-') {
            Some((a, b)) => range(a.trim(), b.trim())?,
            None => vec![address(part)?],
        };
        for ip in more {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
            if ips.len() > MAX_SOURCES {
                return Err(format!("more than {MAX_SOURCES} source addresses"));
            }
        }
    }
    Ok(SourceIps(ips))
}

fn address(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    if !ip.is_loopback() {
        return Err(format!(
            "{ip} is not a loopback address: wsport-bench sends traffic only to this host \
             (use 127.0.0.0/8 or ::1)"
        ));
    }
    Ok(ip)
}

fn range(first: &str, last: &str) -> Result<Vec<IpAddr>, String> {
    let (IpAddr::V4(a), IpAddr::V4(b)) = (address(first)?, address(last)?) else {
        return Err("a range of source addresses must be IPv4 (127.0.0.1-127.0.0.250)".into());
    };
    let (a, b) = (u32::from(a), u32::from(b));
    if b < a {
        return Err(format!("{first}-{last}: the range ends before it starts"));
    }
    if (b - a) as usize >= MAX_SOURCES {
        return Err(format!("{first}-{last}: more than {MAX_SOURCES} addresses"));
    }
    Ok((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect())
}

/// The source address of connection `id`: the connections of each target take the sources in
/// turn (connection `id` goes to target `id % targets`, so `id / targets` counts within it).
pub fn source_of(sources: &[IpAddr], id: usize, targets: usize) -> Option<IpAddr> {
    (!sources.is_empty()).then(|| sources[(id / targets.max(1)) % sources.len()])
}

/// The ephemeral port range, `(first, last)`; `None` where it cannot be read.
pub fn local_port_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>().ok());
    let (first, last) = (it.next()??, it.next()??);
    (first <= last).then_some((first, last))
}

/// Refuse up front when some target would need more local ports from one source address than
/// the ephemeral range has: those connections could only fail with EADDRNOTAVAIL.
pub fn check_ports(
    connections: usize,
    targets: &[SocketAddr],
    sources: &[IpAddr],
    range: Option<(u16, u16)>,
) -> Result<(), BenchError> {
    let Some((first, last)) = range else {
        return Ok(());
    };
    let ports = usize::from(last - first) + 1;
    let n = targets.len().max(1);
    let mut per_target: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for id in 0..connections {
        *per_target.entry(targets[id % n]).or_default() += 1;
    }
    let sources_n = sources.len().max(1);
    for (addr, count) in per_target {
        let per_source = count.div_ceil(sources_n);
        if per_source > ports {
            let needed = count.div_ceil(ports);
            return Err(BenchError::TooFewPorts {
                connections: count,
                target: addr,
                sources: sources_n,
                ports,
                range: format!("{first}-{last}"),
                needed,
                example: example_range(needed),
            });
        }
    }
    Ok(())
}

/// `--source-ip` covering `n` addresses from 127.0.0.1.
fn example_range(n: usize) -> String {
    let last = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 1)) + n.max(1) as u32 - 1);
    format!("127.0.0.1-{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn ranges_and_lists_parse_loopback_only() {
        assert_eq!(
            parse_source_ips("127.0.0.1-127.0.0.3").unwrap().0,
            vec![v4(127, 0, 0, 1), v4(127, 0, 0, 2), v4(127, 0, 0, 3)]
        );
        assert_eq!(
            parse_source_ips("127.0.0.9, 127.0.0.1-127.0.0.2,127.0.0.9")
                .unwrap()
                .0,
            vec![v4(127, 0, 0, 9), v4(127, 0, 0, 1), v4(127, 0, 0, 2)]
        );
        assert_eq!(parse_source_ips("::1").unwrap().0.len(), 1);
        assert_eq!(
            parse_source_ips("127.0.0.255-127.0.1.1").unwrap().0.len(),
            3,
            "ranges cross octets"
        );
        for bad in [
            "10.0.0.1",
            "127.0.0.1-10.0.0.1",
            "127.0.0.5-127.0.0.1",
            "localhost",
            "",
            "::1-::2",
            "127.0.0.0-127.255.255.255",
        ] {
            assert!(parse_source_ips(bad).is_err(), "{bad}");
        }
        assert!(parse_source_ips("192.168.1.1")
            .unwrap_err()
            .contains("not a loopback address"));
    }

    #[test]
    fn sources_take_turns_within_each_target() {
        let s = [v4(127, 0, 0, 1), v4(127, 0, 0, 2)];
        // Two targets: ids 0,1 are the first connection of each, so both get the first source.
        let got: Vec<_> = (0..6).map(|id| source_of(&s, id, 2).unwrap()).collect();
        assert_eq!(got, [s[0], s[0], s[1], s[1], s[0], s[0]]);
        assert_eq!(source_of(&[], 3, 1), None);
    }

    #[test]
    fn port_capacity_is_checked_per_target_and_source() {
        let a: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let range = Some((1000, 1099)); // 100 ports
        assert!(check_ports(100, &[a], &[], range).is_ok());
        let e = check_ports(101, &[a], &[], range).unwrap_err().to_string();
        assert!(e.contains("--source-ip 127.0.0.1-127.0.0.2"), "{e}");
        assert!(check_ports(200, &[a, b], &[], range).is_ok(), "two targets");
        assert!(
            check_ports(200, &[a, a], &[], range).is_err(),
            "the same target twice"
        );
        let two = [v4(127, 0, 0, 1), v4(127, 0, 0, 2)];
        assert!(check_ports(200, &[a], &two, range).is_ok());
        assert!(check_ports(201, &[a], &two, range).is_err());
        assert!(
            check_ports(1_000_000, &[a], &[], None).is_ok(),
            "unknown range"
        );
        assert_eq!(example_range(300), "127.0.0.1-127.0.1.44");
    }
}
