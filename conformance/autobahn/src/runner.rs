//! Runs cases against one URL, `jobs` at a time, and turns each into a [`CaseResult`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::cases::{CaseDef, Run};
use crate::session::{Env, Session};
use crate::verdict::{
    apply_rule, judge, verdict, Behavior, CloseBehavior, ExpectedClose, Observed, Rule,
};

/// One case's result, as written to `index.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub description: String,
    pub expectation: String,
    /// This runner's verdict (see [`crate::verdict::verdict`]).
    pub behavior: Behavior,
    /// Why the verdict is not OK, or differs from Autobahn's behavior column.
    pub reason: Option<String>,
    /// Autobahn's result text for the events (or the custom case's own).
    pub result: String,
    /// The close code the server sent, if any.
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
    /// The HTTP status of handshake cases.
    pub http_status: Option<u16>,
    /// From the opening handshake's completion to the TCP close (Autobahn's duration).
    pub duration_ms: u64,
    /// The events received, in order.
    pub received: Vec<String>,
    pub notes: Vec<String>,
    /// Autobahn's two columns and what they were computed from (fuzzing cases only).
    pub autobahn: Option<AutobahnDetail>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AutobahnDetail {
    pub behavior: Behavior,
    pub behavior_close: CloseBehavior,
    pub result_close: String,
    pub expected: Vec<ExpectedOutcome>,
    pub expected_close: ExpectedClose,
    pub closed_by_me: bool,
    pub dropped_by_me: bool,
    pub was_clean: bool,
    pub violations: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExpectedOutcome {
    pub behavior: Behavior,
    pub events: Vec<String>,
}

impl CaseResult {
    fn base(case: &CaseDef, behavior: Behavior, result: String) -> CaseResult {
        CaseResult {
            id: case.id.clone(),
            description: case.description.clone(),
            expectation: case.expectation.clone(),
            behavior,
            reason: None,
            result,
            close_code: None,
            close_reason: None,
            http_status: None,
            duration_ms: 0,
            received: Vec::new(),
            notes: Vec::new(),
            autobahn: None,
        }
    }
}

/// Runs one case. A panic in a case script (a runner bug) is reported as FAILED, not lost.
pub fn run_case(case: &CaseDef, env: &Env) -> CaseResult {
    match catch_unwind(AssertUnwindSafe(|| run_case_inner(case, env))) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let mut r = CaseResult::base(case, Behavior::Failed, format!("runner panic: {msg}"));
            r.reason = Some("the case script panicked (a bug in wsport-autobahn)".into());
            r
        }
    }
}

fn run_case_inner(case: &CaseDef, env: &Env) -> CaseResult {
    match &case.run {
        Run::Custom(f) => {
            let start = Instant::now();
            let out = f(env);
            let mut r = CaseResult::base(case, out.behavior, out.result.clone());
            if out.behavior != Behavior::Ok && out.behavior != Behavior::Informational {
                r.reason = Some(out.result);
            }
            r.http_status = out.http_status;
            r.close_code = out.close_code;
            r.notes = out.notes;
            r.duration_ms = start.elapsed().as_millis() as u64;
            r
        }
        Run::Fuzz {
            pipelined,
            rule,
            script,
        } => {
            let mut s = match Session::open(env, pipelined.as_deref(), case.budget) {
                Ok(s) => s,
                Err(e) => {
                    let mut r = CaseResult::base(
                        case,
                        Behavior::Failed,
                        "The WebSocket opening handshake was never completed!".into(),
                    );
                    r.reason = Some(format!("opening handshake: {e:#}"));
                    return r;
                }
            };
            script(&mut s);
            s.finish();
            let obs: Observed = s.observed();
            let mut j = judge(&s.expected, &s.expected_close, &obs);
            apply_rule(
                *rule,
                &mut j,
                if *rule == Rule::Manual {
                    s.manual_result.clone()
                } else {
                    None
                },
            );
            let (behavior, mut reason) = verdict(&j, &s.expected_close, &obs, &s.violations);
            if behavior == Behavior::NonStrict && reason.as_deref() == Some(j.result.as_str()) {
                // Say which outcome matched and what OK would have been.
                let list = |events: &[crate::verdict::Event]| {
                    events
                        .iter()
                        .map(|e| e.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let ok = s
                    .expected
                    .iter()
                    .find(|(b, _)| *b == Behavior::Ok)
                    .map(|(_, e)| list(e));
                reason = Some(format!(
                    "events [{}] match the NON-STRICT outcome; OK is [{}]",
                    list(&obs.received),
                    ok.unwrap_or_default()
                ));
            }
            let mut r = CaseResult::base(case, behavior, j.result.clone());
            r.reason = reason;
            r.close_code = s.remote_close_code;
            r.close_reason = s
                .remote_close_reason
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            r.duration_ms = s.duration().as_millis() as u64;
            r.received = obs.received.iter().map(|e| e.describe()).collect();
            r.notes = s.notes.clone();
            r.autobahn = Some(AutobahnDetail {
                behavior: j.behavior,
                behavior_close: j.behavior_close,
                result_close: j.result_close,
                expected: s
                    .expected
                    .iter()
                    .map(|(b, events)| ExpectedOutcome {
                        behavior: *b,
                        events: events.iter().map(|e| e.describe()).collect(),
                    })
                    .collect(),
                expected_close: s.expected_close.clone(),
                closed_by_me: s.closed_by_me(),
                dropped_by_me: s.dropped_by_me(),
                was_clean: s.was_clean(),
                violations: s.violations.clone(),
            });
            r
        }
    }
}

/// Runs `cases` against one URL on `jobs` threads; `done` sees each result as it comes.
/// Results come back in case order.
pub fn run_all(
    env: &Env,
    cases: &[CaseDef],
    jobs: usize,
    done: impl Fn(&CaseResult) + Sync,
) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<CaseResult>>> = cases.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, cases.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let r = run_case(case, env);
                done(&r);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every case ran")
        })
        .collect()
}
