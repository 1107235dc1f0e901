//! Summaries on stdout, and `index.json` / `index.md` in the report directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::cases::{group_name, SKIPPED};
use crate::runner::CaseResult;
use crate::verdict::Behavior;

/// Everything run against one URL.
#[derive(Clone, Debug, Serialize)]
pub struct UrlReport {
    pub url: String,
    /// Set when the URL could not be tested at all (no connection, no handshake).
    pub error: Option<String>,
    pub summary: Counts,
    pub duration_ms: u64,
    pub cases: Vec<CaseResult>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub cases: usize,
    pub ok: usize,
    pub non_strict: usize,
    pub informational: usize,
    pub failed: usize,
}

impl Counts {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Counts {
        let mut c = Counts::default();
        for r in results {
            c.add(r.behavior);
        }
        c
    }

    fn add(&mut self, b: Behavior) {
        self.cases += 1;
        match b {
            Behavior::Ok => self.ok += 1,
            Behavior::NonStrict => self.non_strict += 1,
            Behavior::Informational => self.informational += 1,
            Behavior::Failed => self.failed += 1,
        }
    }
}

/// `ws://127.0.0.1:9001: 323 cases, 300 OK, 12 NON-STRICT, 11 INFORMATIONAL, 0 FAILED`
pub fn summary_line(r: &UrlReport) -> String {
    if let Some(e) = &r.error {
        return format!("{}: not tested: {e}", r.url);
    }
    let c = r.summary;
    format!(
        "{}: {} cases, {} OK, {} NON-STRICT, {} INFORMATIONAL, {} FAILED",
        r.url, c.cases, c.ok, c.non_strict, c.informational, c.failed
    )
}

/// One line for a case, as printed for failures.
pub fn case_line(url: &str, r: &CaseResult) -> String {
    let why = r.reason.as_deref().unwrap_or(&r.result);
    let close = r
        .close_code
        .map(|c| format!(" [close {c}]"))
        .unwrap_or_default();
    format!(
        "{:<13} {:<8} {url}: {why}{close}",
        r.behavior.to_string(),
        r.id
    )
}

fn group_of(id: &str) -> String {
    id.split('.').next().unwrap_or("").to_string()
}

fn group_sort_key(g: &str) -> u32 {
    g.parse().unwrap_or(1000)
}

/// Per-group counts, in group order.
fn by_group(results: &[CaseResult]) -> Vec<(String, Counts)> {
    let mut groups: BTreeMap<(u32, String), Counts> = BTreeMap::new();
    for r in results {
        let g = group_of(&r.id);
        groups
            .entry((group_sort_key(&g), g))
            .or_default()
            .add(r.behavior);
    }
    groups.into_iter().map(|((_, g), c)| (g, c)).collect()
}

/// The per-URL table printed at the end of a run.
pub fn summary_table(r: &UrlReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.url);
    if r.error.is_none() {
        let _ = writeln!(
            out,
            "  {:<24} {:>6} {:>6} {:>11} {:>6} {:>7}",
            "group", "cases", "OK", "NON-STRICT", "INFO", "FAILED"
        );
        for (g, c) in by_group(&r.cases) {
            let name = format!("{g:<3} {}", group_name(&g));
            let _ = writeln!(
                out,
                "  {name:<24} {:>6} {:>6} {:>11} {:>6} {:>7}",
                c.cases, c.ok, c.non_strict, c.informational, c.failed
            );
        }
    }
    let _ = writeln!(out, "{}", summary_line(r));
    out
}

#[derive(Serialize)]
struct Index<'a> {
    tool: &'static str,
    version: &'static str,
    generated_unix: u64,
    /// Case groups not run, and why.
    skipped: Vec<Skipped>,
    urls: &'a [UrlReport],
}

#[derive(Serialize)]
struct Skipped {
    cases: &'static str,
    reason: &'static str,
}

/// Writes `dir/index.json` and `dir/index.md`.
pub fn write(dir: &Path, reports: &[UrlReport]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let index = Index {
        tool: "wsport-autobahn",
        version: env!("CARGO_PKG_VERSION"),
        generated_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        skipped: SKIPPED
            .iter()
            .map(|(cases, reason)| Skipped { cases, reason })
            .collect(),
        urls: reports,
    };
    let json = serde_json::to_string_pretty(&index).context("serialising the report")?;
    let path = dir.join("index.json");
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join("index.md");
    std::fs::write(&path, markdown(reports))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: a summary, then every case per URL.
pub fn markdown(reports: &[UrlReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# wsport-autobahn conformance report\n");
    let _ = writeln!(
        out,
        "Autobahn|Testsuite fuzzingclient cases 1-10 reproduced by an independent runner, plus \
         H.x handshake/abuse cases. Verdicts: OK, NON-STRICT (allowed but not the preferred \
         behaviour), INFORMATIONAL (no right answer; reported), FAILED.\n"
    );
    let _ = writeln!(
        out,
        "| URL | cases | OK | NON-STRICT | INFORMATIONAL | FAILED |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for r in reports {
        let c = r.summary;
        match &r.error {
            Some(e) => {
                let _ = writeln!(out, "| {} | not tested: {} | | | | |", r.url, md_cell(e));
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.url, c.cases, c.ok, c.non_strict, c.informational, c.failed
                );
            }
        }
    }
    let _ = writeln!(out, "\nNot run:\n");
    for (cases, reason) in SKIPPED {
        let _ = writeln!(out, "- `{cases}`: {reason}");
    }
    for r in reports {
        let _ = writeln!(out, "\n## {}\n", r.url);
        if let Some(e) = &r.error {
            let _ = writeln!(out, "Not tested: {e}");
            continue;
        }
        let _ = writeln!(
            out,
            "| group | cases | OK | NON-STRICT | INFORMATIONAL | FAILED |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (g, c) in by_group(&r.cases) {
            let _ = writeln!(
                out,
                "| {g} {} | {} | {} | {} | {} | {} |",
                group_name(&g),
                c.cases,
                c.ok,
                c.non_strict,
                c.informational,
                c.failed
            );
        }
        let _ = writeln!(out, "\n| case | verdict | close | ms | result |");
        let _ = writeln!(out, "|---|---|---:|---:|---|");
        for c in &r.cases {
            let close = c
                .close_code
                .map(|x| x.to_string())
                .or(c.http_status.map(|s| format!("HTTP {s}")))
                .unwrap_or_default();
            let why = match &c.reason {
                Some(reason) if *reason != c.result => format!("{} ({reason})", c.result),
                _ => c.result.clone(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                c.id,
                c.behavior,
                close,
                c.duration_ms,
                md_cell(&why)
            );
        }
        let _ = writeln!(out, "\n### Case descriptions\n");
        for c in &r.cases {
            let _ = writeln!(
                out,
                "- **{}**: {} *Expectation:* {}",
                c.id,
                md_cell(&c.description),
                md_cell(&c.expectation)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, b: Behavior) -> CaseResult {
        CaseResult {
            id: id.into(),
            description: "d".into(),
            expectation: "e".into(),
            behavior: b,
            reason: None,
            result: "r".into(),
            close_code: Some(1000),
            close_reason: None,
            http_status: None,
            duration_ms: 3,
            received: vec![],
            notes: vec![],
            autobahn: None,
        }
    }

    #[test]
    fn summary_and_groups() {
        let cases = vec![
            result("1.1.1", Behavior::Ok),
            result("2.1", Behavior::NonStrict),
            result("10.1.1", Behavior::Ok),
            result("9.1.1", Behavior::Failed),
            result("H.1.1", Behavior::Informational),
        ];
        let r = UrlReport {
            url: "ws://x:1".into(),
            error: None,
            summary: Counts::of(&cases),
            duration_ms: 0,
            cases,
        };
        assert_eq!(
            summary_line(&r),
            "ws://x:1: 5 cases, 2 OK, 1 NON-STRICT, 1 INFORMATIONAL, 1 FAILED"
        );
        let groups: Vec<String> = by_group(&r.cases).into_iter().map(|(g, _)| g).collect();
        assert_eq!(groups, ["1", "2", "9", "10", "H"]);
        let md = markdown(std::slice::from_ref(&r));
        assert!(md.contains("| 9.1.1 | FAILED | 1000 | 3 | r |"));
        assert!(md.contains("`12.*`"));
    }
}
