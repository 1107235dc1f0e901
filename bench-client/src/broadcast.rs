//! `broadcast`: the pieces of the fan-out workload that are arithmetic, not IO — the payload
//! a publisher sends, the per-publisher order check a subscriber keeps, the totals the
//! workers add up, and the record the report prints.
//!
//! The server under test (`--broadcast`) sends each message a connection publishes to every
//! other open connection, in the order it received them. So every subscriber must see, per
//! publisher, sequence numbers 0, 1, 2, ... with none missing, none twice and none out of
//! order; anything else is the server's fault and makes the run fail. The publish time travels
//! inside the payload, so a subscriber on any worker thread measures publish-to-delivery
//! latency against the one clock the whole client shares (the run's epoch).
//!
//! This module is a leaf: it imports nothing of the crate, so the connection, the worker and
//! the report can all use it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// Bytes of the header each broadcast payload starts with: publisher (8 hex digits), sequence
/// number (16) and intended publish time in ns since the run's epoch (16). Hex keeps the
/// payload printable, so the same bytes are a valid text message.
pub const HEADER_LEN: usize = 40;

/// How long subscribers may take, after the window, to receive everything published before
/// they close (unless `--drain` says otherwise).
pub const DEFAULT_DRAIN_S: u64 = 2;

/// Gaps a subscriber remembers per publisher, to tell a late (reordered) message from a
/// duplicate. Beyond it, missing sequence numbers are counted lost at once: a server that
/// drops thousands in a row has failed whether or not some turn up later.
const MAX_REMEMBERED_GAPS: usize = 4096;

/// What one published message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the publisher, 0..publishers.
    pub publisher: u32,
    /// The publisher's message number, from 0.
    pub seq: u64,
    /// When it was due to be published, ns since the run's epoch (the schedule's time: the
    /// bytes are framed, masked and for wss encrypted before the actual send instant is
    /// known, so latency is measured from the intended time, coordinated-omission corrected;
    /// the publishers' send lag, reported beside it, is how much of it is the client's).
    pub published_ns: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], value: u64) {
    let n = out.len();
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((value >> (4 * (n - 1 - i))) & 0xF) as usize];
    }
}

fn get_hex(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(16)?;
        Some((acc << 4) | u64::from(digit))
    })
}

impl Stamp {
    /// Write the header into the first [`HEADER_LEN`] bytes of `payload` (which must be at
    /// least that long; [`crate::cli`] refuses smaller `--size`).
    pub fn write(&self, payload: &mut [u8]) {
        put_hex(&mut payload[0..8], u64::from(self.publisher));
        put_hex(&mut payload[8..24], self.seq);
        put_hex(&mut payload[24..40], self.published_ns);
    }

    /// Read a header back; `None` when the payload is too short or not ours.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let head = payload.get(..HEADER_LEN)?;
        Some(Self {
            publisher: u32::try_from(get_hex(&head[0..8])?).ok()?,
            seq: get_hex(&head[8..24])?,
            published_ns: get_hex(&head[24..40])?,
        })
    }
}

/// How a delivery fits the sequence of its publisher, as one subscriber saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next one expected.
    InOrder,
    /// Later than expected: the messages in between have not come (yet).
    AfterGap {
        /// How many were skipped.
        skipped: u64,
    },
    /// One that was skipped earlier, arriving late: reordered.
    Late,
    /// One already received.
    Duplicate,
}

/// One subscriber's view of one publisher's sequence.
#[derive(Debug, Clone, Default)]
pub struct Order {
    /// The next sequence number expected: every one below it arrived or is in `missing`, or
    /// was given up as lost (`overflow`).
    next: u64,
    /// Skipped numbers not arrived yet.
    missing: BTreeSet<u64>,
    /// Skipped numbers not remembered (beyond [`MAX_REMEMBERED_GAPS`]): lost for good.
    overflow: u64,
    duplicates: u64,
    reordered: u64,
}

impl Order {
    /// Account the delivery of `seq`.
    pub fn handle_seq(&mut self, seq: u64) -> Arrival {
        if seq == self.next {
            self.next += 1;
            return Arrival::InOrder;
        }
        if seq > self.next {
            let skipped = seq - self.next;
            for s in self.next..seq {
                if self.missing.len() >= MAX_REMEMBERED_GAPS {
                    self.overflow += seq - s;
                    break;
                }
                self.missing.insert(s);
            }
            self.next = seq + 1;
            return Arrival::AfterGap { skipped };
        }
        if self.missing.remove(&seq) {
            self.reordered += 1;
            Arrival::Late
        } else {
            self.duplicates += 1;
            Arrival::Duplicate
        }
    }

    /// Messages of this publisher that arrived (in order or late), out of the first `next`.
    pub fn received(&self) -> u64 {
        self.next - self.missing.len() as u64 - self.overflow
    }

    /// Whether every message up to `published` has arrived.
    pub fn complete(&self, published: u64) -> bool {
        self.next >= published && self.missing.is_empty() && self.overflow == 0
    }
}

/// Everything one subscriber checks, one [`Order`] per publisher.
#[derive(Debug, Clone)]
pub struct Subscriber {
    orders: Vec<Order>,
    /// Deliveries that were not a broadcast payload of this run (wrong publisher index, wrong
    /// size or type, unreadable header).
    pub malformed: u64,
}

impl Subscriber {
    /// A subscriber to `publishers` publishers, having received nothing.
    pub fn new(publishers: usize) -> Self {
        Self {
            orders: vec![Order::default(); publishers],
            malformed: 0,
        }
    }

    /// A delivery whose payload says `stamp`; `None` if it names no publisher of the run.
    pub fn handle(&mut self, stamp: &Stamp) -> Option<Arrival> {
        let order = self.orders.get_mut(stamp.publisher as usize)?;
        Some(order.handle_seq(stamp.seq))
    }

    /// Whether everything published so far (`published[p]` by publisher `p`) has arrived.
    pub fn complete(&self, published: &[u64]) -> bool {
        self.orders
            .iter()
            .zip(published)
            .all(|(o, &n)| o.complete(n))
    }

    /// Add this subscriber's counts to a worker's totals.
    pub fn add_to(&self, totals: &mut Totals) {
        totals.subscribers += 1;
        totals.malformed += self.malformed;
        if totals.received_by_publisher.len() < self.orders.len() {
            totals.received_by_publisher.resize(self.orders.len(), 0);
        }
        for (p, o) in self.orders.iter().enumerate() {
            totals.received_by_publisher[p] += o.received();
            totals.duplicates += o.duplicates;
            totals.reordered += o.reordered;
        }
    }
}

/// A worker's broadcast counts, added up over the workers by the main thread. Every count is
/// additive, so that what a subscriber lost can be worked out once, at the end, against what
/// publishers on any worker published.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Messages handed out by publisher `p` (index `p`), whole run.
    pub published: Vec<u64>,
    /// Deliveries of publisher `p`'s messages, summed over the subscribers (in order or late;
    /// duplicates not counted).
    pub received_by_publisher: Vec<u64>,
    /// Subscribers counted.
    pub subscribers: u64,
    /// Deliveries of a message already received.
    pub duplicates: u64,
    /// Deliveries of a message after one published later.
    pub reordered: u64,
    /// Deliveries that were not a broadcast payload of this run.
    pub malformed: u64,
    /// Other publishers' messages that publishers received and discarded.
    pub to_publishers: u64,
}

impl Totals {
    /// Add another worker's counts.
    pub fn add(&mut self, other: &Totals) {
        add_vec(&mut self.published, &other.published);
        add_vec(
            &mut self.received_by_publisher,
            &other.received_by_publisher,
        );
        self.subscribers += other.subscribers;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.malformed += other.malformed;
        self.to_publishers += other.to_publishers;
    }

    /// Publisher `p` handed out `n` messages in all.
    pub fn set_published(&mut self, p: usize, n: u64) {
        if self.published.len() <= p {
            self.published.resize(p + 1, 0);
        }
        self.published[p] = n;
    }

    /// Every subscriber should have received every message: published × subscribers.
    pub fn expected(&self) -> u64 {
        self.published.iter().sum::<u64>() * self.subscribers
    }

    /// Deliveries that arrived, duplicates not counted.
    pub fn delivered(&self) -> u64 {
        self.received_by_publisher.iter().sum()
    }

    /// Deliveries that never arrived, per publisher: what it published times the subscribers,
    /// less what they received of it. Counts a subscriber that failed (closed 1008 "too slow",
    /// say) as having lost everything after its failure.
    pub fn lost(&self) -> u64 {
        self.published
            .iter()
            .enumerate()
            .map(|(p, &n)| {
                let got = self.received_by_publisher.get(p).copied().unwrap_or(0);
                (n * self.subscribers).saturating_sub(got)
            })
            .sum()
    }
}

fn add_vec(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

/// What the workers share for the drain after the window: each publisher's final count, so
/// that a subscriber can tell it has everything and close early.
#[derive(Debug, Default)]
pub struct Shared {
    /// Messages published by publisher `p`, final once `finalized` counts it.
    pub published: Vec<AtomicU64>,
    /// Publishers whose count is final.
    pub finalized: AtomicUsize,
}

impl Shared {
    /// For `publishers` publishers, none final yet.
    pub fn new(publishers: usize) -> Self {
        Self {
            published: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
            finalized: AtomicUsize::new(0),
        }
    }

    /// Publisher `p` will send no more: `n` in all.
    pub fn finalize(&self, p: usize, n: u64) {
        if let Some(slot) = self.published.get(p) {
            slot.store(n, Ordering::Relaxed);
            self.finalized.fetch_add(1, Ordering::Release);
        }
    }

    /// Every publisher's final count, once all are final.
    pub fn final_counts(&self) -> Option<Vec<u64>> {
        (self.finalized.load(Ordering::Acquire) >= self.published.len()).then(|| {
            self.published
                .iter()
                .map(|n| n.load(Ordering::Relaxed))
                .collect()
        })
    }
}

/// The publish rate that gives `deliveries_per_sec` deliveries per second to `subscribers`
/// subscribers (each message is delivered once to each), at least 1 message per second.
/// `scripts/lib/broadcast.sh` does the same division for `--broadcast-deliveries`.
pub fn publish_rate_for(deliveries_per_sec: u64, subscribers: u64) -> u64 {
    (deliveries_per_sec / subscribers.max(1)).max(1)
}

/// `results.broadcast` in the JSON: the fan-out's counts and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Publisher connections.
    pub publishers: usize,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Target publish rate, messages per second over all publishers.
    pub publish_rate: u64,
    /// Messages published, whole run (warmup and window).
    pub published: u64,
    /// published × subscribers.
    pub expected_deliveries: u64,
    /// Deliveries that arrived (whole run; duplicates not counted).
    pub delivered: u64,
    /// expected − delivered: never arrived within the drain.
    pub lost: u64,
    /// Deliveries of a message a subscriber already had.
    pub duplicates: u64,
    /// Deliveries that arrived after a message published later.
    pub reordered: u64,
    /// Deliveries that were not a broadcast payload of this run.
    pub malformed: u64,
    /// Other publishers' messages received by publishers (read and discarded).
    pub to_publishers: u64,
    /// Deliveries per second in the window (= `results.msgs_per_sec`).
    pub deliveries_per_sec: f64,
    /// Server CPU µs per delivery in the window (= `results.server.cpu_us_per_msg`).
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Every subscriber got every message, in order, once, and no connection failed.
    pub ok: bool,
    /// What went wrong, one sentence each; empty when `ok`.
    pub failures: Vec<String>,
}

impl Record {
    /// From the summed totals; `failed_connections` counts connections that failed for any
    /// reason (a server's 1008 "too slow" close among them).
    pub fn of(
        t: &Totals,
        (publishers, subscribers, publish_rate): (usize, usize, u64),
        (deliveries_per_sec, server_cpu_us_per_delivery): (f64, Option<f64>),
        failed_connections: u64,
    ) -> Self {
        let lost = t.lost();
        let mut failures = Vec::new();
        let mut fail = |n: u64, what: &str| {
            if n > 0 {
                failures.push(format!("{n} {what}"));
            }
        };
        fail(lost, "deliveries lost (never arrived within the drain)");
        fail(t.duplicates, "deliveries duplicated");
        fail(t.reordered, "deliveries reordered");
        fail(
            t.malformed,
            "deliveries malformed (not a message of this run)",
        );
        fail(failed_connections, "connections failed (see errors)");
        Self {
            publishers,
            subscribers,
            publish_rate,
            published: t.published.iter().sum(),
            expected_deliveries: t.expected(),
            delivered: t.delivered(),
            lost,
            duplicates: t.duplicates,
            reordered: t.reordered,
            malformed: t.malformed,
            to_publishers: t.to_publishers,
            deliveries_per_sec,
            server_cpu_us_per_delivery,
            ok: failures.is_empty(),
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_rejects_what_is_not_one() {
        let stamp = Stamp {
            publisher: 7,
            seq: 0x1234_5678_9abc,
            published_ns: u64::MAX - 3,
        };
        let mut payload = [b'x'; 64];
        stamp.write(&mut payload);
        assert!(
            payload.iter().all(u8::is_ascii_graphic),
            "printable: a valid text message"
        );
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..HEADER_LEN]), Some(stamp));
        assert_eq!(Stamp::read(&payload[..HEADER_LEN - 1]), None);
        payload[10] = b'g';
        assert_eq!(Stamp::read(&payload), None);
        payload[10] = b'0';
        payload[3] = b'-';
        assert_eq!(Stamp::read(&payload), None, "the publisher must be hex too");
    }

    #[test]
    fn in_order_deliveries_are_complete() {
        let mut o = Order::default();
        for s in 0..5 {
            assert_eq!(o.handle_seq(s), Arrival::InOrder);
        }
        assert!(o.complete(5));
        assert!(!o.complete(6), "one more was published than arrived");
        assert_eq!(o.received(), 5);
    }

    #[test]
    fn a_gap_then_the_late_message_counts_as_reordered_not_lost() {
        let mut o = Order::default();
        assert_eq!(o.handle_seq(0), Arrival::InOrder);
        assert_eq!(o.handle_seq(3), Arrival::AfterGap { skipped: 2 });
        assert!(!o.complete(4));
        assert_eq!(o.received(), 2);
        assert_eq!(o.handle_seq(1), Arrival::Late);
        assert_eq!(o.handle_seq(2), Arrival::Late);
        assert_eq!(o.reordered, 2);
        assert!(o.complete(4));
        assert_eq!(o.received(), 4);
    }

    #[test]
    fn duplicates_are_told_from_late_messages() {
        let mut o = Order::default();
        o.handle_seq(0);
        o.handle_seq(1);
        assert_eq!(o.handle_seq(1), Arrival::Duplicate);
        assert_eq!(o.handle_seq(0), Arrival::Duplicate);
        o.handle_seq(3);
        assert_eq!(o.handle_seq(2), Arrival::Late);
        assert_eq!(o.handle_seq(2), Arrival::Duplicate, "a late one seen twice");
        assert_eq!((o.duplicates, o.reordered, o.received()), (3, 1, 4));
    }

    #[test]
    fn a_huge_gap_is_lost_beyond_what_is_remembered() {
        let mut o = Order::default();
        let gap = MAX_REMEMBERED_GAPS as u64 + 100;
        assert_eq!(o.handle_seq(gap), Arrival::AfterGap { skipped: gap });
        assert_eq!(o.overflow, 100);
        assert_eq!(o.received(), 1);
        assert!(!o.complete(gap + 1));
    }

    #[test]
    fn lost_is_published_times_subscribers_less_received_over_workers() {
        // Two workers: publisher 0 on the first, publisher 1 on the second; three subscribers.
        let mut a = Totals::default();
        a.set_published(0, 10);
        let mut s1 = Subscriber::new(2);
        let mut s2 = Subscriber::new(2);
        for seq in 0..10 {
            s1.handle(&Stamp {
                publisher: 0,
                seq,
                published_ns: 0,
            });
            s2.handle(&Stamp {
                publisher: 0,
                seq,
                published_ns: 0,
            });
        }
        for seq in 0..4 {
            s1.handle(&Stamp {
                publisher: 1,
                seq,
                published_ns: 0,
            });
            s2.handle(&Stamp {
                publisher: 1,
                seq,
                published_ns: 0,
            });
        }
        // s2 misses message 2 of publisher 1 but gets 3.
        let mut s2b = Subscriber::new(2);
        for seq in [0, 1, 3] {
            s2b.handle(&Stamp {
                publisher: 1,
                seq,
                published_ns: 0,
            });
        }
        assert!(s1.complete(&[10, 4]));
        assert!(!s2b.complete(&[0, 4]));
        assert_eq!(
            s1.handle(&Stamp {
                publisher: 2,
                seq: 0,
                published_ns: 0
            }),
            None
        );
        s1.add_to(&mut a);
        s2.add_to(&mut a);
        let mut b = Totals::default();
        b.set_published(1, 4);
        s2b.add_to(&mut b);
        let mut sum = Totals::default();
        sum.add(&a);
        sum.add(&b);
        assert_eq!(sum.published, vec![10, 4]);
        assert_eq!(sum.subscribers, 3);
        assert_eq!(sum.expected(), 42);
        // s2b received nothing of publisher 0 (10 lost) and missed one of publisher 1.
        assert_eq!(sum.delivered(), 10 + 10 + 4 + 4 + 3);
        assert_eq!(sum.lost(), 11);
        assert_eq!(sum.expected(), sum.delivered() + sum.lost());
    }

    #[test]
    fn the_record_fails_on_any_loss_duplicate_reorder_or_failed_connection() {
        let mut t = Totals::default();
        t.set_published(0, 5);
        t.subscribers = 2;
        t.received_by_publisher = vec![10];
        let ok = Record::of(&t, (1, 2, 100), (1000.0, Some(1.5)), 0);
        assert!(ok.ok, "{:?}", ok.failures);
        assert_eq!((ok.expected_deliveries, ok.delivered, ok.lost), (10, 10, 0));
        let failed = Record::of(&t, (1, 2, 100), (1000.0, None), 1);
        assert!(!failed.ok);
        assert_eq!(
            failed.failures,
            vec!["1 connections failed (see errors)".to_owned()]
        );
        t.received_by_publisher = vec![9];
        t.reordered = 1;
        let bad = Record::of(&t, (1, 2, 100), (1000.0, None), 0);
        assert_eq!(bad.lost, 1);
        assert_eq!(bad.failures.len(), 2, "{:?}", bad.failures);
    }

    #[test]
    fn shared_counts_are_final_once_every_publisher_finalized() {
        let s = Shared::new(2);
        s.finalize(1, 7);
        assert_eq!(s.final_counts(), None);
        s.finalize(0, 3);
        assert_eq!(s.final_counts(), Some(vec![3, 7]));
    }

    #[test]
    fn publish_rate_divides_deliveries_over_subscribers() {
        assert_eq!(publish_rate_for(100_000, 1_000), 100);
        assert_eq!(publish_rate_for(100_000, 10_000), 10);
        assert_eq!(
            publish_rate_for(100_000, 300_000),
            1,
            "never below one a second"
        );
        assert_eq!(publish_rate_for(5, 0), 5);
    }
}
