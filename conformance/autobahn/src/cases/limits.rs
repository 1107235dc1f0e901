//! Cases 9.x (limits/performance) and 10.1.1 (auto-fragmentation), after Autobahn's
//! `case9_*.py` and `case10_1_1.py`.
//!
//! 9.x cases judge themselves (Autobahn's `onMessage` overrides): FAILED until the echo
//! arrives, OK when it is the same type and length. This runner also compares the content,
//! which Autobahn leaves as a FIXME. The time taken is reported, not judged. Autobahn's own
//! time limits (up to 1000 s) are capped at [`MAX_WAIT`] so a stuck server cannot stall a CI
//! run for a quarter of an hour.

use std::time::{Duration, Instant};

use super::repeat_to;
use super::CaseDef;
use crate::session::{Frame, Session, NORMAL};
use crate::verdict::{Behavior, Event, ExpectedClose, Rule};

const MAX_WAIT: u64 = 100;
const KI: usize = 1 << 10;
const MI: usize = 1 << 20;
const TEXT_PATTERN: &[u8] = b"BAsd7&jh23";
const BINARY_PATTERN: &[u8] = b"\x00\xfe\x23\xfa\xf0";

pub fn add(cases: &mut Vec<CaseDef>) {
    let sizes = [
        (64 * KI, "64k"),
        (256 * KI, "256k"),
        (MI, "1M"),
        (4 * MI, "4M"),
        (8 * MI, "8M"),
        (16 * MI, "16M"),
    ];
    // 9.1.x / 9.2.x: one frame of increasing size.
    let text_waits = [10, 10, 100, 100, 100, 100];
    let binary_waits = [10, 10, 10, 10, 100, 100];
    for (binary, sub, waits) in [(false, 1, text_waits), (true, 2, binary_waits)] {
        for (i, (len, label)) in sizes.into_iter().enumerate() {
            let kind = if binary { "binary" } else { "text" };
            let desc = format!(
                "Send {kind} message message with payload of length {} * 2**{} ({label}).",
                pow_label(len).0,
                pow_label(len).1
            );
            let pattern = if binary { BINARY_PATTERN } else { TEXT_PATTERN };
            add_echo(
                cases,
                format!("9.{sub}.{}", i + 1),
                desc,
                kind,
                binary,
                repeat_to(pattern, len),
                Send::Frame(None),
                waits[i],
            );
        }
    }
    // 9.3.x / 9.4.x: 4 MiB in fragments of increasing size.
    let frags = [
        (64, "64"),
        (256, "256"),
        (KI, "1k"),
        (4 * KI, "4k"),
        (16 * KI, "16k"),
        (64 * KI, "64k"),
        (256 * KI, "256k"),
        (MI, "1M"),
        (4 * MI, "4M"),
    ];
    for (binary, sub) in [(false, 3), (true, 4)] {
        for (i, (frag, label)) in frags.into_iter().enumerate() {
            let kind = if binary { "binary" } else { "text" };
            let desc = format!(
                "Send fragmented {kind} message message with message payload of length 4 * 2**20 (4M). Sent out in fragments of {label}."
            );
            // As Autobahn: 9.4.1 sends 0xfe octets, 9.4.2-9.4.9 (binary too) send '*'.
            let byte = if binary && i == 0 { 0xfe } else { b'*' };
            add_echo(
                cases,
                format!("9.{sub}.{}", i + 1),
                desc,
                kind,
                binary,
                vec![byte; 4 * MI],
                Send::Fragments(frag),
                100,
            );
        }
    }
    // 9.5.x / 9.6.x: 1 MiB in one frame, written in chops of increasing size.
    let chops = [64, 128, 256, 512, 1024, 2048];
    for (binary, sub) in [(false, 5), (true, 6)] {
        for (i, chop) in chops.into_iter().enumerate() {
            let kind = if binary { "binary" } else { "text" };
            let desc = format!(
                "Send {} message message with payload of length 1 * 2**20 (1M). Sent out data in chops of {chop} octets.",
                if binary { "binary" } else { "text" }
            );
            let pattern = if binary { BINARY_PATTERN } else { TEXT_PATTERN };
            add_echo(
                cases,
                format!("9.{sub}.{}", i + 1),
                desc,
                kind,
                binary,
                repeat_to(pattern, MI),
                Send::Frame(Some(chop)),
                1000,
            );
        }
    }
    // 9.7.x / 9.8.x: 1000 round trips of increasing size.
    let rtts = [
        (0usize, 60u64),
        (16, 60),
        (64, 60),
        (256, 120),
        (1024, 240),
        (4096, 480),
    ];
    for (binary, sub) in [(false, 7), (true, 8)] {
        for (i, (len, wait)) in rtts.into_iter().enumerate() {
            add_round_trips(cases, format!("9.{sub}.{}", i + 1), binary, len, 1000, wait);
        }
    }
    cases.push(
        CaseDef::fuzz(
            "10.1.1",
            "Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.",
            "Receive echo'ed text message (with payload as sent and transmitted frame counts as expected). Clean close with normal code.",
            |s: &mut Session| {
                let payload = vec![b'*'; 65536];
                s.expect(Behavior::Ok, vec![Event::text(&payload)]);
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                // 50 frames of 1300 octets and one of 536: the frame count Autobahn checks
                // is our own, so it holds by construction.
                s.send_message(&payload, false, Some(1300));
                s.kill_after(10.0);
            },
        )
        .budget(15),
    );
}

/// "64 * 2**10" for Autobahn-style descriptions.
fn pow_label(len: usize) -> (usize, u32) {
    if len >= MI {
        (len / MI, 20)
    } else {
        (len / KI, 10)
    }
}

#[derive(Clone, Copy)]
enum Send {
    /// One frame, optionally written in chops of this size.
    Frame(Option<usize>),
    /// A message in frames of this size.
    Fragments(usize),
}

#[allow(clippy::too_many_arguments)]
fn add_echo(
    cases: &mut Vec<CaseDef>,
    id: String,
    desc: String,
    kind: &str,
    binary: bool,
    payload: Vec<u8>,
    how: Send,
    wait: u64,
) {
    let wait = wait.min(MAX_WAIT);
    let exp = format!("Receive echo'ed {kind} message (with payload as sent).");
    cases.push(
        CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
            s.manual(
                Behavior::Failed,
                format!("Did not receive message within {wait} seconds."),
            );
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            match how {
                Send::Frame(chop) => {
                    let f = if binary {
                        Frame::binary(&payload)
                    } else {
                        Frame::text(&payload)
                    };
                    s.send(match chop {
                        Some(n) => f.chop_unpaused(n),
                        None => f,
                    });
                }
                Send::Fragments(size) => s.send_message(&payload, binary, Some(size)),
            }
            let until = s.started + Duration::from_secs(wait);
            if let Some(event) = s.next_event(until) {
                let (b, result) = check_echo(&event, binary, &payload);
                s.set_result(b, result);
                s.send_close(Some(NORMAL), None);
            }
            s.close_after(0.0);
        })
        .rule(Rule::Manual)
        .budget(wait + 5),
    );
}

/// Autobahn's 9.x `onMessage`, plus a content check.
fn check_echo(event: &Event, binary: bool, sent: &[u8]) -> (Behavior, String) {
    let kind = if binary { "binary" } else { "text" };
    match event {
        Event::Message { binary: b, payload } if *b == binary => {
            if payload.len() != sent.len() {
                (
                    Behavior::Failed,
                    format!(
                        "Expected {kind} message with payload of length {}, but got {}.",
                        sent.len(),
                        payload.len()
                    ),
                )
            } else if payload != sent {
                let at = payload
                    .iter()
                    .zip(sent)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                (Behavior::Failed, format!("Received {kind} message of length {} whose content differs from what was sent at octet {at}.", payload.len()))
            } else {
                (
                    Behavior::Ok,
                    format!("Received {kind} message of length {}.", payload.len()),
                )
            }
        }
        Event::Message { .. } => {
            let other = if binary { "text" } else { "binary" };
            (
                Behavior::Failed,
                format!("Expected {kind} message with payload, but got {other}."),
            )
        }
        other => (
            Behavior::Failed,
            format!("Expected a {kind} message, but got {}.", other.describe()),
        ),
    }
}

fn add_round_trips(
    cases: &mut Vec<CaseDef>,
    id: String,
    binary: bool,
    len: usize,
    count: usize,
    wait: u64,
) {
    let kind = if binary { "binary" } else { "text" };
    let desc = format!("Send {count} {kind} messages of payload size {len} to measure implementation/network RTT (round trip time) / latency.");
    let exp = format!(
        "Receive echo'ed {kind} messages (with payload as sent). Timeout case after {wait} secs."
    );
    let wait = wait.min(MAX_WAIT);
    cases.push(
        CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
            s.manual(Behavior::Failed, format!("Case did not finish within {wait} seconds."));
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            let payload = vec![if binary { 0xfe } else { b'*' }; len];
            let until = s.started + Duration::from_secs(wait);
            let mut rtt_max = Duration::ZERO;
            for n in 0..count {
                let sent_at = Instant::now();
                s.send(if binary { Frame::binary(&payload) } else { Frame::text(&payload) });
                let Some(event) = s.next_event(until) else { break };
                rtt_max = rtt_max.max(sent_at.elapsed());
                let (b, result) = check_echo(&event, binary, &payload);
                if b != Behavior::Ok {
                    s.set_result(b, format!("Echo'ed message {n} differs: {result}"));
                    break;
                }
                if n + 1 == count {
                    let total = s.started.elapsed();
                    s.set_result(
                        Behavior::Ok,
                        format!(
                            "Ok, received all echo'ed messages in time (mean round trip {:.1} us, max {:.1} us).",
                            total.as_secs_f64() * 1e6 / count as f64,
                            rtt_max.as_secs_f64() * 1e6
                        ),
                    );
                }
            }
            s.send_close(Some(NORMAL), None);
            s.close_after(0.0);
        })
        .rule(Rule::Manual)
        .budget(wait + 5),
    );
}
