//! The case list: Autobahn|Testsuite's fuzzingclient cases 1.x-10.x, numbered and scripted as
//! in its `autobahntestsuite/case/caseX_Y_Z.py` classes, plus the H.x handshake and abuse
//! cases of this runner. 12.x and 13.x (permessage-deflate) are not run: the servers under
//! test negotiate no extension, and H.1.6 checks that they decline it.

use std::sync::Arc;
use std::time::Duration;

use crate::session::{Env, Session};
use crate::verdict::{Behavior, Rule};

mod abuse;
mod close;
mod framing;
mod limits;
mod utf8;

/// A case script run on an open [`Session`].
pub type Script = Arc<dyn Fn(&mut Session) + Send + Sync>;
/// A case that manages its own connections (handshake and multi-connection cases).
pub type Custom = Arc<dyn Fn(&Env) -> CustomOutcome + Send + Sync>;

pub struct CaseDef {
    /// "1.1.1", "6.21.3", "H.2.1".
    pub id: String,
    pub description: String,
    pub expectation: String,
    /// How long the case may take once the connection is open, scripted waits included; a
    /// watchdog fails it after this plus the runner's `--timeout`.
    pub budget: Duration,
    pub run: Run,
}

pub enum Run {
    /// Connect, handshake (with `pipelined` bytes sent along with the request), run the
    /// script, judge with Autobahn's rules adjusted by `rule`.
    Fuzz {
        pipelined: Option<Vec<u8>>,
        rule: Rule,
        script: Script,
    },
    Custom(Custom),
}

/// The outcome of a [`Run::Custom`] case.
#[derive(Clone, Debug)]
pub struct CustomOutcome {
    pub behavior: Behavior,
    pub result: String,
    pub http_status: Option<u16>,
    pub close_code: Option<u16>,
    pub notes: Vec<String>,
}

impl CustomOutcome {
    pub fn new(behavior: Behavior, result: impl Into<String>) -> CustomOutcome {
        CustomOutcome {
            behavior,
            result: result.into(),
            http_status: None,
            close_code: None,
            notes: Vec::new(),
        }
    }
}

impl CaseDef {
    /// A standard fuzzing case (budget 5 s, Autobahn's base rules).
    pub fn fuzz(
        id: impl Into<String>,
        description: impl Into<String>,
        expectation: impl Into<String>,
        script: impl Fn(&mut Session) + Send + Sync + 'static,
    ) -> CaseDef {
        CaseDef {
            id: id.into(),
            description: description.into(),
            expectation: expectation.into(),
            budget: Duration::from_secs(5),
            run: Run::Fuzz {
                pipelined: None,
                rule: Rule::Standard,
                script: Arc::new(script),
            },
        }
    }

    pub fn custom(
        id: impl Into<String>,
        description: impl Into<String>,
        expectation: impl Into<String>,
        budget_secs: u64,
        f: impl Fn(&Env) -> CustomOutcome + Send + Sync + 'static,
    ) -> CaseDef {
        CaseDef {
            id: id.into(),
            description: description.into(),
            expectation: expectation.into(),
            budget: Duration::from_secs(budget_secs),
            run: Run::Custom(Arc::new(f)),
        }
    }

    pub fn rule(mut self, r: Rule) -> CaseDef {
        if let Run::Fuzz { rule, .. } = &mut self.run {
            *rule = r;
        }
        self
    }

    pub fn budget(mut self, secs: u64) -> CaseDef {
        self.budget = Duration::from_secs(secs);
        self
    }

    pub fn pipelined(mut self, bytes: Vec<u8>) -> CaseDef {
        if let Run::Fuzz { pipelined, .. } = &mut self.run {
            *pipelined = Some(bytes);
        }
        self
    }

    /// The id as numbers for sorting ("H" sorts after every number).
    pub fn sort_key(&self) -> Vec<u32> {
        id_key(&self.id)
    }
}

fn id_key(id: &str) -> Vec<u32> {
    id.split('.')
        .map(|p| p.parse().unwrap_or(if p == "H" { 1000 } else { 999 }))
        .collect()
}

/// Every case, in id order.
pub fn all() -> Vec<CaseDef> {
    let mut cases = Vec::new();
    framing::add(&mut cases);
    utf8::add(&mut cases);
    close::add(&mut cases);
    limits::add(&mut cases);
    abuse::add(&mut cases);
    cases.sort_by_key(CaseDef::sort_key);
    cases
}

/// Group names (Autobahn's `CaseCategories`, and ours for H).
pub fn group_name(group: &str) -> &'static str {
    match group {
        "1" => "Framing",
        "2" => "Pings/Pongs",
        "3" => "Reserved Bits",
        "4" => "Opcodes",
        "5" => "Fragmentation",
        "6" => "UTF-8 Handling",
        "7" => "Close Handling",
        "9" => "Limits/Performance",
        "10" => "Misc",
        "H" => "Handshake/Abuse",
        _ => "Misc",
    }
}

/// Cases not run, and why (for the reports).
pub const SKIPPED: &[(&str, &str)] = &[
    (
        "12.*",
        "WebSocket Compression (permessage-deflate, different payloads): not run; the servers \
         negotiate no extension (H.1.6 checks that an offer of permessage-deflate is declined)",
    ),
    (
        "13.*",
        "WebSocket Compression (permessage-deflate, different parameters): not run, as 12.*",
    ),
];

/// Matches a case id against a pattern: `*` matches any run of characters, `?` one
/// character; a pattern without wildcards matches the id itself and, Autobahn-style, the
/// ids below it ("6.4" matches 6.4.1-6.4.4).
pub fn matches(pattern: &str, id: &str) -> bool {
    let pattern = pattern.trim();
    if !pattern.contains(['*', '?']) {
        return id == pattern || id.starts_with(&format!("{pattern}."));
    }
    glob(pattern.as_bytes(), id.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The cases matching any of `include` (all if empty) and none of `exclude`.
pub fn select(all: Vec<CaseDef>, include: &[String], exclude: &[String]) -> Vec<CaseDef> {
    all.into_iter()
        .filter(|c| include.is_empty() || include.iter().any(|p| matches(p, &c.id)))
        .filter(|c| !exclude.iter().any(|p| matches(p, &c.id)))
        .collect()
}

/// Autobahn's `payload_len`: `pattern` repeated (and cut) to exactly `len` bytes.
pub fn repeat_to(pattern: &[u8], len: usize) -> Vec<u8> {
    assert!(
        !pattern.is_empty() || len == 0,
        "cannot repeat an empty pattern"
    );
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = pattern.len().min(len - out.len());
        out.extend_from_slice(&pattern[..take]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeat_to_cuts_the_pattern() {
        assert_eq!(super::repeat_to(b"abc", 7), b"abcabca");
        assert_eq!(super::repeat_to(b"abc", 0), b"");
        assert_eq!(super::repeat_to(b"BAsd7&jh23", 64 * 1024).len(), 65536);
    }

    use super::*;
    use std::collections::{BTreeMap, HashSet};

    #[test]
    fn patterns() {
        assert!(matches("1.*", "1.1.1"));
        assert!(!matches("1.*", "10.1.1"));
        assert!(matches("6.4", "6.4.2"));
        assert!(!matches("6.4", "6.40.1"));
        assert!(matches("6.4.1", "6.4.1"));
        assert!(matches("9.?.1", "9.3.1"));
        assert!(matches("h.*", "H.1.1"));
        assert!(matches("*", "7.7.13"));
    }

    #[test]
    fn ids_are_unique_and_counts_match_autobahn() {
        let cases = all();
        let ids: HashSet<_> = cases.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), cases.len(), "duplicate case ids");
        let mut by_group: BTreeMap<String, usize> = BTreeMap::new();
        for c in &cases {
            *by_group
                .entry(c.id.split('.').next().unwrap().to_string())
                .or_default() += 1;
        }
        // Autobahn|Testsuite 0.8.x fuzzingclient, cases 1-10: 301 in all.
        let autobahn: [(&str, usize); 9] = [
            ("1", 16),
            ("2", 11),
            ("3", 7),
            ("4", 10),
            ("5", 20),
            ("6", 145),
            ("7", 37),
            ("9", 54),
            ("10", 1),
        ];
        for (g, n) in autobahn {
            assert_eq!(by_group.get(g).copied(), Some(n), "group {g}");
        }
        assert!(by_group["H"] >= 10);
        // Sorted by numeric id.
        let keys: Vec<_> = cases.iter().map(CaseDef::sort_key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn selection() {
        let picked = select(all(), &["2.*".into(), "7.7".into()], &["2.1*".into()]);
        let ids: Vec<_> = picked.iter().map(|c| c.id.as_str()).collect();
        assert!(ids.contains(&"2.2") && ids.contains(&"7.7.13"));
        assert!(!ids.contains(&"2.1") && !ids.contains(&"2.10") && !ids.contains(&"1.1.1"));
    }
}
