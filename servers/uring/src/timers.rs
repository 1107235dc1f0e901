//! One thread's timer queue: what a runtime's timer wheel is to the other servers.
//!
//! Each connection has one [`Alarm`] (the shared deadline rule: a deadline that moves later
//! leaves the alarm alone, an earlier one moves it, and every move is counted in
//! `timer_arms`), and the queue holds one entry per arm. An entry whose alarm has since moved
//! or whose connection is gone is stale and skipped when it comes due, which costs less than
//! removing it when the alarm moves.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use wsport_server_common::counters::Counters;
use wsport_server_common::deadline::Alarm;

/// Which connection an entry is for: its table key and its id (keys are reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub key: u32,
    pub id: u64,
}

#[derive(Default)]
pub struct Timers {
    queue: BinaryHeap<Reverse<(Instant, Owner)>>,
}

impl Timers {
    /// Arm `alarm` for `deadline` if it must move (see the module doc).
    pub fn arm(
        &mut self,
        alarm: &mut Alarm,
        deadline: Option<Instant>,
        owner: Owner,
        counters: &Counters,
    ) {
        let Some(deadline) = deadline else { return };
        if let Some(at) = alarm.arm_for(deadline) {
            counters.timer_armed();
            self.queue.push(Reverse((at, owner)));
        }
    }

    /// The earliest entry's instant (perhaps a stale one: a spurious wake-up, never a late one).
    pub fn next(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry due at `now`, if any, as (instant, owner).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Owner)> {
        match self.queue.peek() {
            Some(Reverse((at, _))) if *at <= now => self.queue.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    #[test]
    fn later_deadlines_arm_once_and_entries_come_due_in_order() {
        let counters = Counters::default();
        let mut timers = Timers::default();
        let now = Instant::now();
        let owner = Owner { key: 3, id: 7 };
        let mut alarm = Alarm::default();
        for i in 0..1000 {
            let deadline = now + Duration::from_secs(300) + Duration::from_millis(i);
            timers.arm(&mut alarm, Some(deadline), owner, &counters);
        }
        assert_eq!(counters.timer_arms.load(Ordering::Relaxed), 1);
        let mut other = Alarm::default();
        let soon = now + Duration::from_secs(1);
        timers.arm(&mut other, Some(soon), Owner { key: 4, id: 8 }, &counters);
        assert_eq!(timers.next(), Some(soon));
        assert_eq!(timers.pop_due(now), None);
        let (at, first) = timers.pop_due(now + Duration::from_secs(400)).unwrap();
        assert_eq!((at, first.key), (soon, 4));
        assert_eq!(
            timers.pop_due(now + Duration::from_secs(400)).unwrap().1,
            owner
        );
        assert_eq!(timers.pop_due(now + Duration::from_secs(400)), None);
    }
}
