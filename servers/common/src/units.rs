//! Parsers for the values the flags take: durations (`10s`, `500ms`, `2m`), byte sizes
//! (`8192`, `16KiB`, `16MiB`) and CPU lists (`0,2-3`).
//!
//! Each returns a [`ValueError`] whose message names the offending text and shows the accepted
//! forms, so clap can print it as is after `invalid value '...' for '--flag'`.

use std::time::Duration;

/// A flag value that does not parse. The message says what was given and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Not a duration such as `10s`, `500ms`, `2m`, `1h` or `0`.
    #[error(
        "{given:?} is not a duration: use a number with a unit, e.g. 10s, 500ms, 2m, 1h (or 0)"
    )]
    Duration {
        /// The text given.
        given: String,
    },
    /// Not a size such as `8192`, `16KiB` or `16MiB`.
    #[error(
        "{given:?} is not a byte size: use plain bytes or a KiB/MiB/GiB suffix, e.g. 8192, 16KiB, 16MiB"
    )]
    Size {
        /// The text given.
        given: String,
    },
    /// Not a CPU list such as `0,2-3`.
    #[error("{given:?} is not a CPU list: use numbers and ranges, e.g. 0,2-3 ({why})")]
    CpuList {
        /// The text given.
        given: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Parses a duration: an unsigned integer followed by `ns`, `us`, `ms`, `s`, `m` or `h`
/// (`0` alone is also accepted). Whitespace between number and unit is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let err = || ValueError::Duration {
        given: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let d = match unit.trim() {
        "" if n == 0 => Duration::ZERO,
        "ns" => Duration::from_nanos(n),
        "us" | "µs" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" | "sec" | "secs" => Duration::from_secs(n),
        "m" | "min" | "mins" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        "h" | "hr" | "hrs" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
        _ => return Err(err()),
    };
    Ok(d)
}

/// Parses a byte size: an unsigned integer, optionally followed by `B`, `KiB`, `MiB` or `GiB`
/// (binary multiples; `K`, `M`, `G`, `KB`, `MB`, `GB` are read as the same binary multiples,
/// since a limit of "16MB" almost always means 16 MiB).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let err = || ValueError::Size {
        given: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(err()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

/// Parses a CPU list such as `0,2-3` (Linux `cpuset` syntax without strides) into the CPUs
/// in the order given; duplicates are kept, so `0,0` pins two threads to CPU 0.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, ValueError> {
    let err = |why| ValueError::CpuList {
        given: text.to_owned(),
        why,
    };
    // Linux's CPU_SETSIZE: sched_setaffinity cannot name a CPU at or above it.
    const LIMIT: usize = 1024;
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(err("empty entry"));
        }
        let num = |s: &str| -> Result<usize, ValueError> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("entries must be numbers or ranges a-b"));
            }
            let n: usize = s.parse().map_err(|_| err("number too large"))?;
            if n >= LIMIT {
                return Err(err("CPU numbers must be below 1024"));
            }
            Ok(n)
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(err("a range must go upwards"));
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(num(part)?),
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 7 ms "), Ok(Duration::from_millis(7)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in [
            "",
            "s",
            "10",
            "1.5s",
            "-1s",
            "10x",
            "ms10",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "",
            "KiB",
            "1.5MiB",
            "-1",
            "16TiB",
            "18446744073709551615KiB",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("3-3, 1"), Ok(vec![3, 1]));
        assert_eq!(parse_cpu_list("0,0"), Ok(vec![0, 0]));
        for bad in ["", "a", "1,", "3-1", "1-", "-1", "0,1024", "1-2-3", "+1"] {
            let e = parse_cpu_list(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
