//! A run's records summarised per kind: how many ended how, and whether all ended the RFC way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::kind::Kind;
use crate::outcome::Record;
use crate::rss::{RssCheck, RssTrace};

/// The JSON document `wsport-abuse run --json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub elapsed_ms: u64,
    pub kinds: Vec<KindSummary>,
    /// Every abusive connection ended as RFC 6455 asks.
    pub all_expected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<RssTrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_check: Option<RssCheck>,
}

/// One kind's connections.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub kind: Kind,
    pub expected: &'static str,
    pub connections: u64,
    /// Outcome (as text) -> connections.
    pub outcomes: BTreeMap<String, u64>,
    /// Connections that did not end as expected.
    pub unexpected: u64,
    pub lifetime_p50_ms: u64,
    pub lifetime_max_ms: u64,
    /// Never-read: the most bytes the server took before it stopped reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_max_bytes: Option<u64>,
}

impl Report {
    pub fn new(
        records: Vec<Record>,
        elapsed: Duration,
        rss: Option<RssTrace>,
        rss_check: Option<RssCheck>,
    ) -> Report {
        let mut by_kind: BTreeMap<Kind, Vec<Record>> = BTreeMap::new();
        for record in records {
            by_kind.entry(record.kind).or_default().push(record);
        }
        let kinds: Vec<KindSummary> = by_kind.into_iter().map(|(k, r)| summarise(k, r)).collect();
        Report {
            schema: "wsport-abuse/1",
            elapsed_ms: elapsed.as_millis() as u64,
            all_expected: kinds.iter().all(|k| k.unexpected == 0),
            kinds,
            rss,
            rss_check,
        }
    }

    /// Every connection ended the RFC way and RSS stayed under the bound (when checked).
    pub fn passed(&self) -> bool {
        self.all_expected && self.rss_check.as_ref().map_or(true, |c| c.within)
    }

    /// The human summary printed at the end of a run.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for k in &self.kinds {
            let outcomes: Vec<String> = k
                .outcomes
                .iter()
                .map(|(o, n)| format!("{o} ×{n}"))
                .collect();
            let mark = if k.unexpected == 0 {
                "ok"
            } else {
                "UNEXPECTED"
            };
            let _ = writeln!(
                out,
                "  {:<16} {:>6} conns  {:<40} expected {:<32} {mark}",
                k.kind.name(),
                k.connections,
                outcomes.join(", "),
                k.expected
            );
        }
        if let Some(c) = &self.rss_check {
            let verdict = if c.within { "within" } else { "OVER" };
            let _ = writeln!(
                out,
                "  server RSS {:.1} MiB at start, {:.1} MiB max: {verdict} the bound {:.1} MiB",
                mib(c.base),
                mib(c.max),
                mib(c.bound)
            );
        }
        out
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn summarise(kind: Kind, records: Vec<Record>) -> KindSummary {
    let mut outcomes = BTreeMap::new();
    let mut unexpected = 0;
    let mut lifetimes: Vec<u64> = Vec::with_capacity(records.len());
    let mut queued_max_bytes = None;
    for r in &records {
        *outcomes.entry(r.outcome.to_string()).or_insert(0) += 1;
        if !r.outcome.is_expected_for(kind) {
            unexpected += 1;
        }
        lifetimes.push(r.lifetime.as_millis() as u64);
        if let Some(bytes) = r.queued_bytes {
            queued_max_bytes = Some(queued_max_bytes.unwrap_or(0).max(bytes));
        }
    }
    lifetimes.sort_unstable();
    KindSummary {
        kind,
        expected: kind.expected(),
        connections: records.len() as u64,
        outcomes,
        unexpected,
        lifetime_p50_ms: lifetimes.get(lifetimes.len() / 2).copied().unwrap_or(0),
        lifetime_max_ms: lifetimes.last().copied().unwrap_or(0),
        queued_max_bytes,
    }
}
