//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Independent Autobahn|Testsuite-style conformance run against WebSocket echo servers.
///
/// Runs Autobahn's fuzzingclient cases 1.x-10.x (framing, pings, reserved bits, opcodes,
/// fragmentation, UTF-8, close handling, limits, auto-fragmentation; 12.x/13.x compression
/// is not run) and this runner's H.x handshake/abuse cases against every URL. The server
/// must echo each text/binary message with the same opcode and payload.
///
/// Exit status: 0 when no case FAILED, 1 when one did, 2 when a URL could not be tested or
/// the options are wrong.
#[derive(Parser, Debug, Clone)]
#[command(name = "wsport-autobahn", version)]
pub struct Cli {
    /// Echo server URL, ws://HOST:PORT[/PATH] or wss://...; repeatable.
    #[arg(long = "url", value_name = "URL", required_unless_present = "list")]
    pub urls: Vec<String>,

    /// wss://: accept any server certificate (the wsport servers self-sign by default).
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,

    /// wss://: trust the PEM certificate(s) in FILE.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Cases to run, comma-separated patterns: 1.*,6.4.*,7.7.3 ('*' any run, '?' one
    /// character; "6.4" also matches 6.4.x). Default: all.
    #[arg(long, value_name = "PATTERNS", value_delimiter = ',')]
    pub cases: Vec<String>,

    /// Cases not to run, same patterns.
    #[arg(long, value_name = "PATTERNS", value_delimiter = ',')]
    pub exclude: Vec<String>,

    /// Write index.json and index.md to DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    /// Connect + opening handshake limit, also the slack each case gets beyond its own
    /// scripted time (e.g. 10s, 500ms).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Cases run in parallel per URL.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,

    /// Also print a line for each NON-STRICT and INFORMATIONAL case.
    #[arg(long, short)]
    pub verbose: bool,

    /// List the selected cases and exit.
    #[arg(long)]
    pub list: bool,
}

/// "10s", "500ms", "2m", or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?}: the duration must be greater than 0"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "wsport-autobahn",
            "--url",
            "ws://127.0.0.1:9001",
            "--url",
            "wss://127.0.0.1:9443",
            "--insecure",
            "--cases",
            "1.*,2.*",
            "--jobs",
            "8",
        ])
        .unwrap();
        assert_eq!(cli.urls.len(), 2);
        assert_eq!(cli.cases, ["1.*", "2.*"]);
        assert_eq!(cli.jobs, 8);
        assert!(Cli::try_parse_from(["wsport-autobahn"]).is_err());
        assert!(Cli::try_parse_from(["wsport-autobahn", "--list"]).is_ok());
        assert!(Cli::try_parse_from([
            "wsport-autobahn",
            "--url",
            "ws://x",
            "--insecure",
            "--ca",
            "f"
        ])
        .is_err());
    }
}
