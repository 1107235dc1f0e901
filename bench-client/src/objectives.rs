//! `rate --slo OBJECTIVES`: the latency objectives a rate must meet, as parsed from the
//! command line (`p99<5ms,p99.9<20ms`).

use serde::{Serialize, Serializer};
use wsport_server_common::units::parse_duration;

/// `--slo`: objectives that must all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As typed.
    pub text: String,
    /// Each objective.
    pub objectives: Vec<Objective>,
}

impl Serialize for Slo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// One objective: the `percentile`th percentile stays below `limit_ns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// e.g. `p99.9<20ms`.
    pub text: String,
    /// e.g. `p99.9`.
    pub name: String,
    /// 0 < percentile <= 100.
    pub percentile: f64,
    /// Strict upper bound, ns.
    pub limit_ns: u64,
}

impl Objective {
    /// The percentile of `hist` this objective looks at, ns.
    pub fn value(&self, hist: &hdrhistogram::Histogram<u64>) -> u64 {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(self.percentile / 100.0)
        }
    }
}

/// Parse `p99<5ms` or `p99<5ms,p99.9<20ms`.
pub fn parse_slo(text: &str) -> Result<Slo, String> {
    let mut objectives = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("{part:?}: expected an objective like p99<5ms or p99.9<20ms");
        let (name, written) = part.split_once('<').ok_or_else(bad)?;
        let (name, written) = (name.trim(), written.trim());
        let percentile: f64 = name
            .strip_prefix('p')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if !(percentile > 0.0 && percentile <= 100.0) {
            return Err(format!(
                "{part:?}: the percentile must be above 0 and at most 100"
            ));
        }
        let limit = parse_duration(written).map_err(|e| format!("{part:?}: {e}"))?;
        let limit_ns = limit.as_nanos().min(u128::from(u64::MAX)) as u64;
        if limit_ns == 0 {
            return Err(format!("{part:?}: no latency is below 0"));
        }
        objectives.push(Objective {
            text: format!("{name}<{written}"),
            name: name.to_owned(),
            percentile,
            limit_ns,
        });
    }
    Ok(Slo {
        text: text.trim().to_owned(),
        objectives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse() {
        let s = parse_slo("p99<5ms, p99.9<20ms").unwrap();
        assert_eq!(s.objectives.len(), 2);
        assert_eq!(s.objectives[0].percentile, 99.0);
        assert_eq!(s.objectives[0].limit_ns, 5_000_000);
        assert_eq!(s.objectives[1].text, "p99.9<20ms");
        assert_eq!(s.objectives[1].percentile, 99.9);
        assert_eq!(parse_slo("p50<1us").unwrap().objectives[0].limit_ns, 1_000);
        for bad in [
            "", "99<5ms", "p99>5ms", "p0<1ms", "p101<1ms", "p99<", "p99<5", "p99<0s",
        ] {
            assert!(parse_slo(bad).is_err(), "{bad}");
        }
    }
}
