//! How each connection ended, and how long after it opened: the record that turns "the proxy
//! cut idle connections at its read timeout" from an inference into a count.
//!
//! A connection ends one of these ways ([`Ending`]): the client's own close handshake at the
//! end of the run (RFC 6455 §7.1.2, the normal end), a close frame the server sent first
//! (§5.5.1, with its code and reason, §7.4), TCP closed without a close frame (EOF: what nginx
//! does when `proxy_read_timeout` fires on an upgraded connection), a reset, any other failure
//! by cause, or abandoned still open when the drain gave up. Each worker keeps a tally per
//! ending with a histogram of the time from the upgrade to the end; the run merges them and
//! the report gives count, first detail and min/p50/max per ending (`results.endings`).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Cause;

/// Longest connection life the histograms track: a day, in milliseconds.
const MAX_LIFE_MS: u64 = 86_400_000;

/// How one connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client sent its close frame and the server answered (or, `--raw`, every echo came
    /// back and the client hung up): the end of a run.
    ClientClose,
    /// The server sent a close frame first; its status code (none: an empty close body) and
    /// reason.
    ServerClose {
        /// §7.4 status code.
        code: Option<u16>,
        /// The reason text, possibly empty.
        reason: String,
    },
    /// A failure of this cause (`eof`, `reset`, `tls`, ...), with what it said.
    Failed(Cause, String),
    /// Still open or closing when the drain after the window gave up waiting.
    Abandoned,
}

impl Ending {
    /// The key a tally is filed under: `client_close`, `server_close_1001`, `eof`, ...
    pub fn key(&self) -> String {
        match self {
            Self::ClientClose => "client_close".into(),
            Self::ServerClose { code: Some(c), .. } => format!("server_close_{c}"),
            Self::ServerClose { code: None, .. } => "server_close_no_code".into(),
            Self::Failed(cause, _) => cause.key().into(),
            Self::Abandoned => "abandoned".into(),
        }
    }

    /// What the first connection of a tally said.
    fn detail(&self) -> String {
        match self {
            Self::ClientClose => "close handshake started by the client".into(),
            Self::ServerClose { reason, .. } if reason.is_empty() => "no reason given".into(),
            Self::ServerClose { reason, .. } => format!("reason {reason:?}"),
            Self::Failed(_, detail) => detail.clone(),
            Self::Abandoned => "still open when the client stopped waiting".into(),
        }
    }
}

/// One ending's connections.
#[derive(Debug, Clone)]
struct Tally {
    detail: String,
    /// Milliseconds from the upgrade to the end, of the connections that had opened.
    life_ms: Histogram<u64>,
    /// Connections that ended before their upgrade completed.
    never_opened: u64,
}

impl Tally {
    fn new(detail: String) -> Self {
        Self {
            detail,
            life_ms: Histogram::new_with_bounds(1, MAX_LIFE_MS, 3)
                .expect("static bounds are valid"),
            never_opened: 0,
        }
    }

    fn count(&self) -> u64 {
        self.life_ms.len() + self.never_opened
    }
}

/// A worker's (or, merged, the run's) endings.
#[derive(Debug, Clone, Default)]
pub struct Endings {
    tallies: BTreeMap<String, Tally>,
}

impl Endings {
    /// A connection ended `ending`, `life_ns` after its upgrade (`None`: it never opened).
    pub fn record(&mut self, ending: &Ending, life_ns: Option<u64>) {
        let tally = self
            .tallies
            .entry(ending.key())
            .or_insert_with(|| Tally::new(ending.detail()));
        match life_ns {
            Some(ns) => tally.life_ms.saturating_record((ns / 1_000_000).max(1)),
            None => tally.never_opened += 1,
        }
    }

    /// Add another worker's endings (the first detail of a key is kept).
    pub fn add(&mut self, other: &Endings) {
        for (key, theirs) in &other.tallies {
            let mine = self
                .tallies
                .entry(key.clone())
                .or_insert_with(|| Tally::new(theirs.detail.clone()));
            let _ = mine.life_ms.add(&theirs.life_ms);
            mine.never_opened += theirs.never_opened;
        }
    }

    /// The JSON record: every ending, most frequent first.
    pub fn record_of(&self) -> EndingsRecord {
        let mut by: Vec<EndingRecord> = self
            .tallies
            .iter()
            .map(|(key, t)| EndingRecord {
                ending: key.clone(),
                count: t.count(),
                detail: t.detail.clone(),
                never_opened: t.never_opened,
                after_open_ms: (!t.life_ms.is_empty()).then(|| LifeRecord {
                    min: t.life_ms.min(),
                    p50: t.life_ms.value_at_quantile(0.5),
                    max: t.life_ms.max(),
                }),
            })
            .collect();
        by.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.ending.cmp(&b.ending)));
        EndingsRecord {
            total: by.iter().map(|e| e.count).sum(),
            by,
        }
    }
}

/// `results.endings`: how the run's connections ended.
#[derive(Debug, Clone, Serialize)]
pub struct EndingsRecord {
    /// Connections that ended (`connect`: every cycle).
    pub total: u64,
    /// Per ending, most frequent first.
    pub by: Vec<EndingRecord>,
}

/// The connections of one ending.
#[derive(Debug, Clone, Serialize)]
pub struct EndingRecord {
    /// `client_close`, `server_close_<code>`, `eof`, `reset`, `abandoned` or a failure cause.
    pub ending: String,
    /// Connections.
    pub count: u64,
    /// What the first of them said (the server's close reason, the error).
    pub detail: String,
    /// Of them, those that ended before their upgrade completed.
    pub never_opened: u64,
    /// Time from the upgrade to the end, ms, of those that had opened; `null` when none had.
    pub after_open_ms: Option<LifeRecord>,
}

/// Connection lifetimes, ms (3 significant digits).
#[derive(Debug, Clone, Serialize)]
pub struct LifeRecord {
    /// Shortest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// Longest.
    pub max: u64,
}

impl EndingsRecord {
    /// One line for the human summary: `100 eof after 10.0 s (9.98–10.01 s)`, ...
    pub fn line(&self) -> String {
        self.by
            .iter()
            .map(|e| {
                let mut s = format!("{} {}", e.count, e.ending);
                if let Some(life) = &e.after_open_ms {
                    s.push_str(&format!(
                        " after {:.1} s ({:.2}–{:.2} s)",
                        life.p50 as f64 / 1e3,
                        life.min as f64 / 1e3,
                        life.max as f64 / 1e3
                    ));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_and_sort_by_count() {
        let mut a = Endings::default();
        let eof = Ending::Failed(Cause::Eof, "closed without a close frame".into());
        for _ in 0..3 {
            a.record(&eof, Some(10_000_000_000));
        }
        a.record(&Ending::ClientClose, Some(2_000_000_000));
        let mut b = Endings::default();
        b.record(&eof, Some(9_990_000_000));
        b.record(&Ending::Failed(Cause::Refused, "refused".into()), None);
        a.add(&b);
        let r = a.record_of();
        assert_eq!(r.total, 6);
        assert_eq!(r.by[0].ending, "eof");
        assert_eq!(r.by[0].count, 4);
        let life = r.by[0].after_open_ms.as_ref().unwrap();
        assert!(life.min >= 9_980 && life.min <= 9_990, "{}", life.min);
        assert!(life.max >= 10_000 && life.max <= 10_010, "{}", life.max);
        let refused = r.by.iter().find(|e| e.ending == "refused").unwrap();
        assert_eq!(
            (refused.never_opened, refused.after_open_ms.is_none()),
            (1, true)
        );
        assert!(r.line().starts_with("4 eof after 10.0 s"), "{}", r.line());
    }

    #[test]
    fn server_closes_are_filed_by_code_with_the_reason() {
        let mut e = Endings::default();
        let away = Ending::ServerClose {
            code: Some(1001),
            reason: "going away".into(),
        };
        e.record(&away, Some(5_000_000));
        e.record(
            &Ending::ServerClose {
                code: None,
                reason: String::new(),
            },
            Some(1),
        );
        let r = e.record_of();
        let first =
            r.by.iter()
                .find(|x| x.ending == "server_close_1001")
                .unwrap();
        assert_eq!(first.detail, "reason \"going away\"");
        assert_eq!(first.after_open_ms.as_ref().unwrap().p50, 5);
        assert!(r.by.iter().any(|x| x.ending == "server_close_no_code"));
    }
}
