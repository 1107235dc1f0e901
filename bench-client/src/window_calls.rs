//! The system calls of the server and of this client over the measured window ([`syscalls`]),
//! as figures per message: what explains a CPU-per-message figure.
//!
//! Two figures answer most questions. *System calls per message*: an epoll server that echoes
//! one message per wake-up makes about one receive, one send and one wait per message; an
//! io_uring server can make far fewer. *Messages per wait*: messages ÷ (`epoll_wait` +
//! `io_uring_enter`) calls, i.e. how many messages each wake-up found ready. It follows how the
//! client's messages arrive (in bursts or one at a time), which is why a server's cost per
//! message can change with the client or the load while its code does not.
//!
//! [`syscalls`]: crate::syscalls

use std::collections::BTreeMap;

use crate::report::{CallFigures, SyscallsRecord};
use crate::syscalls::{SyscallCounter, SyscallCounts};

const NO_WARMUP: &str =
    "no warmup: system calls are counted in its last second, not in the window (--warmup)";

/// The groups of [`crate::syscalls::GROUPS`] in which a process waits for work.
const WAITS: [&str; 2] = ["epoll_wait", "io_uring_enter"];

/// Counters of one process, or why it is not counted.
enum Side {
    /// Counting was not asked for (no `--server-pid`, or `--no-syscalls`).
    Off,
    /// Asked for, but this host does not allow it, or the run gave nothing to count over.
    Unavailable(String),
    /// Counting: the counts at the counted second's start, then its end. The counter is
    /// dropped (its events closed) at the end, so the window runs uncounted.
    Counting {
        counter: Option<SyscallCounter>,
        start: Option<SyscallCounts>,
        end: Option<SyscallCounts>,
    },
}

impl Side {
    fn open(pid: Option<u32>) -> Self {
        match pid.map(SyscallCounter::open) {
            None => Side::Off,
            Some(Ok(counter)) => Side::Counting {
                counter: Some(counter),
                start: None,
                end: None,
            },
            Some(Err(e)) => Side::Unavailable(e.to_string()),
        }
    }

    /// Read the counters now: the first call marks the start, the second the end (and closes
    /// the counters).
    fn mark(&mut self) {
        let Side::Counting {
            counter: counter @ Some(_),
            start,
            end,
        } = self
        else {
            return;
        };
        match counter.as_ref().map(SyscallCounter::read) {
            Some(Ok(counts)) if start.is_none() => *start = Some(counts),
            Some(Ok(counts)) => {
                *end = Some(counts);
                *counter = None;
            }
            Some(Err(e)) => *self = Side::Unavailable(e.to_string()),
            None => {}
        }
    }

    fn record(self, tally: Option<Tally>) -> Option<SyscallsRecord> {
        let unavailable = |why: &str| {
            Some(SyscallsRecord::Unavailable {
                unavailable: why.to_owned(),
            })
        };
        match (self, tally) {
            (Side::Off, _) => None,
            (Side::Unavailable(why), _) => unavailable(&why),
            (
                Side::Counting {
                    start: Some(start),
                    end: Some(end),
                    ..
                },
                Some(tally),
            ) if tally.messages > 0 => {
                Some(SyscallsRecord::Counted(figures(&end.since(&start), tally)))
            }
            (Side::Counting { .. }, Some(_)) => {
                unavailable("no message arrived in the counted second of the warmup")
            }
            (Side::Counting { .. }, None) => {
                unavailable("the run ended before the counted second of the warmup did")
            }
        }
    }
}

/// What happened in the counted second: messages, and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tally {
    /// Messages (echoes, pongs, handshakes) that arrived in it.
    pub messages: u64,
    /// Its length, seconds.
    pub seconds: f64,
}

/// The server's and this client's system calls over the last second of the warmup.
///
/// Not over the measured window: an enabled syscall tracepoint sends every system call of the
/// host through the kernel's slow path (measured here: +3–11% server CPU per message for an
/// epoll echo server at 2 calls per message), and a server that makes more calls would pay
/// more. The warmup runs the same workload at the same pace, so its last second shows the same
/// calls per message; the window's CPU figures stay clean.
pub(crate) struct WindowCalls {
    server: Side,
    client: Side,
}

impl WindowCalls {
    /// Counters on `server_pid` (when given) and on this process, both unless `enabled` is
    /// false. Opened once the workers exist, so that their threads are counted.
    pub(crate) fn open(server_pid: Option<u32>, enabled: bool, warmup: bool) -> Self {
        let side = |pid: Option<u32>| match (enabled && pid.is_some(), warmup) {
            (false, _) => Side::Off,
            (true, false) => Side::Unavailable(NO_WARMUP.into()),
            (true, true) => Side::open(pid),
        };
        Self {
            server: side(server_pid),
            client: side(Some(std::process::id())),
        }
    }

    /// Read both counters: the first call marks the counted second's start, the second its
    /// end, and closes them.
    pub(crate) fn mark(&mut self) {
        self.server.mark();
        self.client.mark();
    }

    /// The server's and the client's figures, given what arrived in the counted second.
    pub(crate) fn records(
        self,
        tally: Option<Tally>,
    ) -> (Option<SyscallsRecord>, Option<SyscallsRecord>) {
        (self.server.record(tally), self.client.record(tally))
    }
}

/// Counts of one window as figures per message.
pub(crate) fn figures(counts: &SyscallCounts, tally: Tally) -> CallFigures {
    let messages = tally.messages;
    let per_msg = |n: u64| match messages {
        0 => 0.0,
        m => n as f64 / m as f64,
    };
    let mut calls: BTreeMap<String, u64> = counts.by_group.clone();
    calls.insert("other".into(), counts.other);
    let waits: u64 = WAITS.iter().filter_map(|w| counts.by_group.get(*w)).sum();
    CallFigures {
        per_msg: per_msg(counts.total),
        per_msg_by_call: calls
            .iter()
            .map(|(k, &n)| (k.clone(), per_msg(n)))
            .collect(),
        msgs_per_wait: (waits > 0).then(|| messages as f64 / waits as f64),
        total: counts.total,
        calls,
        messages,
        counted_s: tally.seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(messages: u64) -> Tally {
        Tally {
            messages,
            seconds: 1.0,
        }
    }

    fn counts(groups: &[(&str, u64)], total: u64) -> SyscallCounts {
        let by_group: BTreeMap<String, u64> =
            groups.iter().map(|(g, n)| ((*g).to_owned(), *n)).collect();
        let grouped: u64 = by_group.values().sum();
        SyscallCounts {
            by_group,
            total,
            other: total - grouped,
        }
    }

    #[test]
    fn an_epoll_echo_server_makes_three_calls_per_message() {
        let c = counts(
            &[
                ("epoll_wait", 1000),
                ("io_uring_enter", 0),
                ("recv", 1000),
                ("send", 1000),
            ],
            3050,
        );
        let f = figures(&c, tally(1000));
        assert!((f.per_msg - 3.05).abs() < 1e-9);
        assert_eq!(f.msgs_per_wait, Some(1.0));
        assert_eq!(f.calls["other"], 50);
        assert!((f.per_msg_by_call["recv"] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn messages_per_wait_counts_both_kinds_of_wait_and_none_without_waits() {
        let c = counts(&[("epoll_wait", 10), ("io_uring_enter", 30)], 40);
        assert_eq!(figures(&c, tally(1200)).msgs_per_wait, Some(30.0));
        let none = counts(&[("recv", 5)], 5);
        assert_eq!(figures(&none, tally(5)).msgs_per_wait, None);
        assert_eq!(figures(&none, tally(0)).per_msg, 0.0);
    }

    #[test]
    fn a_side_not_asked_for_has_no_record_and_an_unreadable_one_says_why() {
        assert!(Side::Off.record(Some(tally(10))).is_none());
        let record = Side::Unavailable("not permitted".into()).record(Some(tally(10)));
        assert!(matches!(
            record,
            Some(SyscallsRecord::Unavailable { unavailable }) if unavailable == "not permitted"
        ));
    }

    #[test]
    fn a_run_without_warmup_or_without_messages_in_the_counted_second_says_so() {
        let calls = WindowCalls::open(None, true, false);
        let (server, client) = calls.records(Some(tally(10)));
        assert!(server.is_none(), "no --server-pid: no server record");
        assert!(matches!(
            client,
            Some(SyscallsRecord::Unavailable { unavailable }) if unavailable.contains("no warmup")
        ));
        let counting = || Side::Counting {
            counter: None,
            start: Some(SyscallCounts::default()),
            end: Some(SyscallCounts::default()),
        };
        assert!(matches!(
            counting().record(Some(tally(0))),
            Some(SyscallsRecord::Unavailable { unavailable }) if unavailable.contains("no message")
        ));
        assert!(matches!(
            counting().record(Some(tally(7))),
            Some(SyscallsRecord::Counted(f)) if f.messages == 7
        ));
    }
}
