//! Listen URLs: `ws://HOST:PORT` and `wss://HOST:PORT`, and the readiness line.
//!
//! HOST is an IPv4 address, a bracketed IPv6 address (`[::1]`) or `localhost` (read as
//! `127.0.0.1`; no name resolution happens, so what is bound is exactly what was written).
//! A trailing `/` or path is accepted and ignored: the servers answer on every path.

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// The URL used when neither `--listen` nor `WSPORT_LISTEN` gives one.
pub const DEFAULT_LISTEN: &str = "ws://0.0.0.0:8080";

/// The environment variable read when no `--listen` flag is given (comma-separated URLs).
pub const LISTEN_ENV: &str = "WSPORT_LISTEN";

/// Plain WebSocket over TCP, or WebSocket over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ws://`: WebSocket over plain TCP.
    Ws,
    /// `wss://`: WebSocket over TLS.
    Wss,
}

impl Scheme {
    /// The URL scheme, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One address to listen on, and whether it speaks TLS. Displays as its URL,
/// e.g. `wss://[::1]:8443`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenSpec {
    /// `ws` or `wss`.
    pub scheme: Scheme,
    /// The socket address; port 0 before binding means "pick a free port".
    pub addr: SocketAddr,
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr's Display already brackets IPv6 addresses.
        write!(f, "{}://{}", self.scheme, self.addr)
    }
}

/// A listen URL that cannot be used. Each message quotes the URL and shows a valid example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenSpecError {
    /// No `ws://` or `wss://` in front.
    #[error("listen URL {url:?} has no scheme: write it as ws://HOST:PORT or wss://HOST:PORT")]
    MissingScheme {
        /// The URL given.
        url: String,
    },
    /// A scheme other than `ws` or `wss`.
    #[error("listen URL {url:?} has scheme {scheme:?}: only ws:// and wss:// are served")]
    UnsupportedScheme {
        /// The URL given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// No `:PORT` after the host.
    #[error(
        "listen URL {url:?} has no port: write e.g. ws://0.0.0.0:8080 (port 0 picks a free port)"
    )]
    MissingPort {
        /// The URL given.
        url: String,
    },
    /// The port is not a number from 0 to 65535.
    #[error("listen URL {url:?} has port {port:?}: a port is a number from 0 to 65535")]
    BadPort {
        /// The URL given.
        url: String,
        /// The port text found.
        port: String,
    },
    /// The host is not an IP address or `localhost`.
    #[error(
        "listen URL {url:?} has host {host:?}: use an IPv4 address, a bracketed IPv6 address \
         such as [::1], or localhost"
    )]
    BadHost {
        /// The URL given.
        url: String,
        /// The host text found.
        host: String,
    },
    /// An empty list (e.g. `WSPORT_LISTEN=","`).
    #[error("no listen URL given in {given:?}: write e.g. ws://0.0.0.0:8080,wss://0.0.0.0:8443")]
    Empty {
        /// The text given.
        given: String,
    },
}

impl FromStr for ListenSpec {
    type Err = ListenSpecError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url_owned = || url.to_owned();
        let text = url.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| ListenSpecError::MissingScheme { url: url_owned() })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => {
                return Err(ListenSpecError::UnsupportedScheme {
                    url: url_owned(),
                    scheme: scheme.to_owned(),
                })
            }
        };
        // Drop the path (and any query): the servers answer on every path.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| ListenSpecError::BadHost {
                    url: url_owned(),
                    host: authority.to_owned(),
                })?;
            let port = tail
                .strip_prefix(':')
                .ok_or_else(|| ListenSpecError::MissingPort { url: url_owned() })?;
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| ListenSpecError::MissingPort { url: url_owned() })?
        };
        if port.is_empty() {
            return Err(ListenSpecError::MissingPort { url: url_owned() });
        }
        let port: u16 = port
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse().ok())
            .flatten()
            .ok_or_else(|| ListenSpecError::BadPort {
                url: url_owned(),
                port: port.to_owned(),
            })?;
        let bad_host = || ListenSpecError::BadHost {
            url: url_owned(),
            host: host.to_owned(),
        };
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else if authority.starts_with('[') {
            IpAddr::V6(host.parse().map_err(|_| bad_host())?)
        } else {
            // An unbracketed IPv6 address would have been split at its last colon above.
            IpAddr::V4(host.parse().map_err(|_| bad_host())?)
        };
        Ok(ListenSpec {
            scheme,
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// Parses a comma-separated list of listen URLs, as `WSPORT_LISTEN` holds them. Empty entries
/// (a trailing comma) are skipped; a list with no URL at all is an error.
pub fn parse_listen_list(list: &str) -> Result<Vec<ListenSpec>, ListenSpecError> {
    let specs = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<ListenSpec>, _>>()?;
    if specs.is_empty() {
        return Err(ListenSpecError::Empty {
            given: list.to_owned(),
        });
    }
    Ok(specs)
}

/// Chooses the listeners: the `--listen` flags if any were given, else the value of
/// `WSPORT_LISTEN` (passed in as `env`, so this stays a pure function; unset or blank means
/// absent), else [`DEFAULT_LISTEN`].
pub fn resolve_listeners(
    flags: Vec<ListenSpec>,
    env: Option<&str>,
) -> Result<Vec<ListenSpec>, ListenSpecError> {
    if !flags.is_empty() {
        return Ok(flags);
    }
    match env {
        Some(list) if !list.trim().is_empty() => parse_listen_list(list),
        _ => parse_listen_list(DEFAULT_LISTEN),
    }
}

/// Prints the readiness line `listening ws://127.0.0.1:34567` for a bound listener (with its
/// real port) on stdout and flushes it. Test harnesses and the bench runner wait for these
/// lines, so print one per spec after every listener is bound and before serving.
pub fn announce(spec: &ListenSpec) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not bring the server down (println! would panic on EPIPE).
    let _ = writeln!(out, "listening {spec}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> ListenSpec {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn display_round_trips() {
        for url in [
            "ws://0.0.0.0:8080",
            "wss://127.0.0.1:443",
            "ws://[::1]:0",
            "wss://[::]:8443",
        ] {
            assert_eq!(spec(url).to_string(), url);
        }
    }
}
