//! Cases 6.x (UTF-8 handling), after Autobahn's `case6_*.py`. 6.5-6.23 are generated from
//! the same table as `case6_x_x.py` (Markus Kuhn's UTF-8 decoder stress test, plus
//! non-characters and specials), in the same order, so the numbers match Autobahn's.

use super::CaseDef;
use crate::session::{Frame, Session, INVALID_PAYLOAD, NORMAL};
use crate::verdict::{Behavior, Event, ExpectedClose};
use wsport_harness::frame::opcode;

const OK: Behavior = Behavior::Ok;
const NON_STRICT: Behavior = Behavior::NonStrict;

/// "κόσμε" (Greek "cosmos"), the classic UTF-8 test word.
const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
const HELLO_UTF8: &str = "Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!";

pub fn add(cases: &mut Vec<CaseDef>) {
    basics(cases);
    fail_fast(cases);
    table(cases);
}

fn echo_expect(s: &mut Session, payload: &[u8]) {
    s.expect(OK, vec![Event::text(payload)]);
    s.expect_close(ExpectedClose::by_me(&[NORMAL]));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn basics(cases: &mut Vec<CaseDef>) {
    let echoed = "A message is echo'ed back to us (with empty payload).";
    cases.push(CaseDef::fuzz(
        "6.1.1",
        "Send text message of length 0.",
        echoed,
        |s: &mut Session| {
            echo_expect(s, b"");
            s.send(Frame::text(""));
            s.close_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "6.1.2",
        "Send fragmented text message, 3 fragments each of length 0.",
        echoed,
        |s: &mut Session| {
            echo_expect(s, b"");
            s.send(Frame::text("").fin(false));
            s.send(Frame::cont("").fin(false));
            s.send(Frame::cont(""));
            s.close_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "6.1.3",
        "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.",
        "A message is echo'ed back to us (with payload = payload of middle fragment).",
        |s: &mut Session| {
            echo_expect(s, b"middle frame payload");
            s.send(Frame::text("").fin(false));
            s.send(Frame::cont("middle frame payload").fin(false));
            s.send(Frame::cont(""));
            s.close_after(1.0);
        },
    ));
    let echo = "The message is echo'ed back to us.";
    cases.push(CaseDef::fuzz(
        "6.2.1",
        format!(
            "Send a valid UTF-8 text message in one fragment. MESSAGE: {HELLO_UTF8} ({})",
            hex(HELLO_UTF8.as_bytes())
        ),
        echo,
        |s: &mut Session| {
            echo_expect(s, HELLO_UTF8.as_bytes());
            s.send_message(HELLO_UTF8.as_bytes(), false, None);
            s.close_after(1.0);
        },
    ));
    let (p1, p2) = HELLO_UTF8.split_at(
        HELLO_UTF8
            .find('\u{fc}')
            .expect("u-umlaut in the test string"),
    );
    cases.push(CaseDef::fuzz(
        "6.2.2",
        format!(
            "Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary. FRAGMENT 1: {p1} ({}) FRAGMENT 2: {p2} ({})",
            hex(p1.as_bytes()),
            hex(p2.as_bytes())
        ),
        echo,
        move |s: &mut Session| {
            echo_expect(s, HELLO_UTF8.as_bytes());
            s.send(Frame::text(p1).fin(false));
            s.send(Frame::cont(p2));
            s.close_after(1.0);
        },
    ));
    for (id, payload) in [("6.2.3", HELLO_UTF8.as_bytes()), ("6.2.4", KOSME)] {
        cases.push(CaseDef::fuzz(
            id,
            format!(
                "Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends. MESSAGE: {}",
                hex(payload)
            ),
            echo,
            move |s: &mut Session| {
                echo_expect(s, payload);
                s.send_message(payload, false, Some(1));
                s.close_after(1.0);
            },
        ));
    }
    let invalid: Vec<u8> = [KOSME, b"\xed\xa0\x80", b"edited"].concat();
    for (id, frag) in [("6.3.1", None), ("6.3.2", Some(1))] {
        let payload = invalid.clone();
        let desc = if frag.is_some() {
            format!("Send invalid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends. MESSAGE: {}", hex(&payload))
        } else {
            format!(
                "Send invalid UTF-8 text message unfragmented. MESSAGE: {}",
                hex(&payload)
            )
        };
        cases.push(CaseDef::fuzz(
            id,
            desc,
            "The connection is failed immediately, since the payload is not valid UTF-8.",
            move |s: &mut Session| {
                s.expect(OK, vec![]);
                s.expect_close(ExpectedClose::by_peer_fatal(&[INVALID_PAYLOAD]));
                s.send_message(&payload, false, frag);
                s.kill_after(1.0);
            },
        ));
    }
}

/// 6.4.x: the invalid octet arrives after a 1 s pause; a fail-fast server closes then, before
/// the rest (OK); one that waits for the end of the frame or message closes later
/// (NON-STRICT).
fn fail_fast(cases: &mut Vec<CaseDef>) {
    // U+110000 encoded in the UTF-8 scheme: out of range, invalid at its second octet.
    let payload: Vec<u8> = [KOSME, b"\xf4\x90\x80\x80", b"edited"].concat();
    let by_codepoint = (
        payload[..11].to_vec(),
        payload[11..15].to_vec(),
        payload[15..].to_vec(),
    );
    let by_octet = (
        payload[..12].to_vec(),
        payload[12..13].to_vec(),
        payload[13..].to_vec(),
    );
    let variants = [
        ("6.4.1", false, by_codepoint.clone(), "Send invalid UTF-8 text message in 3 fragments (frames). First frame payload is valid, then wait, then 2nd frame which contains the payload making the sequence invalid, then wait, then 3rd frame with rest. Note that PART1 and PART3 are valid UTF-8 in themselves, PART2 is a 0x110000 encoded as in the UTF-8 integer encoding scheme, but the codepoint is invalid (out of range)."),
        ("6.4.2", false, by_octet.clone(), "Same as Case 6.4.1, but in 2nd frame, we send only up to and including the octet making the complete payload invalid."),
        ("6.4.3", true, by_codepoint, "Same as Case 6.4.1, but we send message not in 3 frames, but in 3 chops of the same message frame."),
        ("6.4.4", true, by_octet, "Same as Case 6.4.2, but we send message not in 3 frames, but in 3 chops of the same message frame."),
    ];
    for (id, one_frame, (a, b, c), desc) in variants {
        let unit = if one_frame { "chop" } else { "frame" };
        let desc = format!(
            "{desc} PART1 = {} PART2 = {} PART3 = {}",
            hex(&a),
            hex(&b),
            hex(&c)
        );
        let exp = format!(
            "The first {unit} is accepted, we expect to timeout on the first wait. The 2nd {unit} should be rejected immediately (fail fast on UTF-8). If we timeout, we expect the connection is failed at least then, since the complete message payload is not valid UTF-8."
        );
        cases.push(
            CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
                s.expect(OK, vec![Event::Timeout("A")]);
                s.expect(NON_STRICT, vec![Event::Timeout("A"), Event::Timeout("B")]);
                s.expect_close(ExpectedClose::by_peer_fatal(&[INVALID_PAYLOAD]));
                if one_frame {
                    let len = (a.len() + b.len() + c.len()) as u64;
                    let mut w = s.begin_frame(opcode::TEXT, true, len);
                    s.frame_data(&mut w, &a);
                    s.continue_later(1.0);
                    if s.is_open() {
                        s.timeout_event("A");
                        s.frame_data(&mut w, &b);
                        s.continue_later(1.0);
                        if s.is_open() {
                            s.timeout_event("B");
                            s.frame_data(&mut w, &c);
                            s.kill_after(1.0);
                        }
                    }
                } else {
                    s.send(Frame::text(&a).fin(false));
                    s.continue_later(1.0);
                    if s.is_open() {
                        s.timeout_event("A");
                        s.send(Frame::cont(&b).fin(false));
                        s.continue_later(1.0);
                        if s.is_open() {
                            s.timeout_event("B");
                            s.send(Frame::cont(&c));
                            s.kill_after(1.0);
                        }
                    }
                }
            })
            .budget(8),
        );
    }
}

/// Whether `b` is complete, valid UTF-8 (Autobahn's validator: valid and ends on a code
/// point boundary; Rust's `from_utf8` is the same rule, RFC 3629).
fn valid(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok()
}

/// A titled group of test sequences: (title, [(valid, bytes)]).
pub type SequenceGroup = (&'static str, Vec<(bool, Vec<u8>)>);

fn seqs(list: &[(bool, &[u8])]) -> Vec<(bool, Vec<u8>)> {
    list.iter().map(|(v, b)| (*v, b.to_vec())).collect()
}

/// `createUtf8TestSequences()` of `case6_x_x.py`, in its order.
pub fn test_sequences() -> Vec<SequenceGroup> {
    let prefixes = (1..=KOSME.len())
        .map(|i| (valid(&KOSME[..i]), KOSME[..i].to_vec()))
        .collect();
    let mut unexpected_continuation = seqs(&[
        (false, b"\x80"),
        (false, b"\xbf"),
        (false, b"\x80\xbf"),
        (false, b"\x80\xbf\x80"),
        (false, b"\x80\xbf\x80\xbf"),
        (false, b"\x80\xbf\x80\xbf\x80"),
        (false, b"\x80\xbf\x80\xbf\x80\xbf"),
    ]);
    // xrange(0x80, 0xbf): 0x80..=0xbe.
    unexpected_continuation.push((false, (0x80u8..0xbf).collect()));
    // Each start byte of a range (end exclusive, as xrange) followed by a space.
    let lonely = [
        (0xc0u8, 0xdfu8),
        (0xe0, 0xef),
        (0xf0, 0xf7),
        (0xf8, 0xfb),
        (0xfc, 0xfd),
    ]
    .iter()
    .map(|&(a, b)| (false, (a..b).flat_map(|c| [c, 0x20]).collect()))
    .collect();
    let missing: [&[u8]; 10] = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    // Non-characters are valid UTF-8 (RFC 3629): EF BF BE/BF, and F[0-4] [89AB]F BF BE/BF
    // up to U+10FFFF, minus the two overlong F0 8F forms.
    let mut nonchars = seqs(&[(true, b"\xef\xbf\xbe"), (true, b"\xef\xbf\xbf")]);
    for z1 in [0xf0u8, 0xf1, 0xf2, 0xf3, 0xf4] {
        for z2 in [0x8fu8, 0x9f, 0xaf, 0xbf] {
            if (z1 == 0xf4 && z2 != 0x8f) || (z1 == 0xf0 && z2 == 0x8f) {
                continue;
            }
            for z3 in [0xbeu8, 0xbf] {
                nonchars.push((true, vec![z1, z2, 0xbf, z3]));
            }
        }
    }
    vec![
        (
            "Some valid UTF-8 sequences",
            seqs(&[
                (true, b"hello\x24world"),
                (true, b"hello\xC2\xA2world"),
                (true, b"hello\xE2\x82\xACworld"),
                (true, b"hello\xF0\xA4\xAD\xA2world"),
                (true, KOSME),
            ]),
        ),
        (
            "All prefixes of a valid UTF-8 string that contains multi-byte code points",
            prefixes,
        ),
        (
            "First possible sequence of a certain length",
            seqs(&[
                (true, b"\x00"),
                (true, b"\xc2\x80"),
                (true, b"\xe0\xa0\x80"),
                (true, b"\xf0\x90\x80\x80"),
            ]),
        ),
        (
            "First possible sequence length 5/6 (invalid codepoints)",
            seqs(&[
                (false, b"\xf8\x88\x80\x80\x80"),
                (false, b"\xfc\x84\x80\x80\x80\x80"),
            ]),
        ),
        (
            "Last possible sequence of a certain length",
            seqs(&[
                (true, b"\x7f"),
                (true, b"\xdf\xbf"),
                (true, b"\xef\xbf\xbf"),
                (true, b"\xf4\x8f\xbf\xbf"),
            ]),
        ),
        (
            "Last possible sequence length 4/5/6 (invalid codepoints)",
            seqs(&[
                (false, b"\xf7\xbf\xbf\xbf"),
                (false, b"\xfb\xbf\xbf\xbf\xbf"),
                (false, b"\xfd\xbf\xbf\xbf\xbf\xbf"),
            ]),
        ),
        (
            "Other boundary conditions",
            seqs(&[
                (true, b"\xed\x9f\xbf"),
                (true, b"\xee\x80\x80"),
                (true, b"\xef\xbf\xbd"),
                (true, b"\xf4\x8f\xbf\xbf"),
                (false, b"\xf4\x90\x80\x80"),
            ]),
        ),
        ("Unexpected continuation bytes", unexpected_continuation),
        ("Lonely start characters", lonely),
        (
            "Sequences with last continuation byte missing",
            missing.iter().map(|b| (false, b.to_vec())).collect(),
        ),
        (
            "Concatenation of incomplete sequences",
            vec![(false, missing.concat())],
        ),
        (
            "Impossible bytes",
            seqs(&[
                (false, b"\xfe"),
                (false, b"\xff"),
                (false, b"\xfe\xfe\xff\xff"),
            ]),
        ),
        (
            "Examples of an overlong ASCII character",
            seqs(&[
                (false, b"\xc0\xaf"),
                (false, b"\xe0\x80\xaf"),
                (false, b"\xf0\x80\x80\xaf"),
                (false, b"\xf8\x80\x80\x80\xaf"),
                (false, b"\xfc\x80\x80\x80\x80\xaf"),
            ]),
        ),
        (
            "Maximum overlong sequences",
            seqs(&[
                (false, b"\xc1\xbf"),
                (false, b"\xe0\x9f\xbf"),
                (false, b"\xf0\x8f\xbf\xbf"),
                (false, b"\xf8\x87\xbf\xbf\xbf"),
                (false, b"\xfc\x83\xbf\xbf\xbf\xbf"),
            ]),
        ),
        (
            "Overlong representation of the NUL character",
            seqs(&[
                (false, b"\xc0\x80"),
                (false, b"\xe0\x80\x80"),
                (false, b"\xf0\x80\x80\x80"),
                (false, b"\xf8\x80\x80\x80\x80"),
                (false, b"\xfc\x80\x80\x80\x80\x80"),
            ]),
        ),
        (
            "Single UTF-16 surrogates",
            seqs(&[
                (false, b"\xed\xa0\x80"),
                (false, b"\xed\xad\xbf"),
                (false, b"\xed\xae\x80"),
                (false, b"\xed\xaf\xbf"),
                (false, b"\xed\xb0\x80"),
                (false, b"\xed\xbe\x80"),
                (false, b"\xed\xbf\xbf"),
            ]),
        ),
        (
            "Paired UTF-16 surrogates",
            seqs(&[
                (false, b"\xed\xa0\x80\xed\xb0\x80"),
                (false, b"\xed\xa0\x80\xed\xbf\xbf"),
                (false, b"\xed\xad\xbf\xed\xb0\x80"),
                (false, b"\xed\xad\xbf\xed\xbf\xbf"),
                (false, b"\xed\xae\x80\xed\xb0\x80"),
                (false, b"\xed\xae\x80\xed\xbf\xbf"),
                (false, b"\xed\xaf\xbf\xed\xb0\x80"),
                (false, b"\xed\xaf\xbf\xed\xbf\xbf"),
            ]),
        ),
        ("Non-character code points (valid UTF-8)", nonchars),
        (
            "Unicode specials (i.e. replacement char)",
            seqs(&[
                (true, b"\xef\xbf\xb9"),
                (true, b"\xef\xbf\xba"),
                (true, b"\xef\xbf\xbb"),
                (true, b"\xef\xbf\xbc"),
                (true, b"\xef\xbf\xbd"),
                (true, b"\xef\xbf\xbe"),
                (true, b"\xef\xbf\xbf"),
            ]),
        ),
    ]
}

/// 6.5.x-6.23.x: one text message per sequence, in one frame; echo for valid, close 1007 for
/// invalid (and the server, not us, must close).
fn table(cases: &mut Vec<CaseDef>) {
    for (i, (_title, seqs)) in test_sequences().into_iter().enumerate() {
        for (j, (is_valid, payload)) in seqs.into_iter().enumerate() {
            let id = format!("6.{}.{}", i + 5, j + 1);
            let (desc, exp) = if is_valid {
                (
                    "Send a text message with payload which is valid UTF-8 in one fragment.",
                    "The message is echo'ed back to us.",
                )
            } else {
                (
                    "Send a text message with payload which is not valid UTF-8 in one fragment.",
                    "The connection is failed immediately, since the payload is not valid UTF-8.",
                )
            };
            let desc = format!("{desc} Payload: 0x{}", hex(&payload));
            cases.push(CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
                if is_valid {
                    echo_expect(s, &payload);
                } else {
                    s.expect(OK, vec![]);
                    s.expect_close(ExpectedClose::by_peer_fatal(&[INVALID_PAYLOAD]));
                }
                s.send_message(&payload, false, None);
                s.kill_after(0.5);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_autobahn_counts_and_validity() {
        let t = test_sequences();
        let counts: Vec<usize> = t.iter().map(|(_, s)| s.len()).collect();
        assert_eq!(
            counts,
            [5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7]
        );
        // Every "valid" flag agrees with an RFC 3629 validator.
        for (title, seqs) in &t {
            for (v, b) in seqs {
                assert_eq!(*v, valid(b), "{title}: {}", hex(b));
            }
        }
        // 6.6.x: prefixes of kosme are valid exactly at code point ends.
        let prefixes: Vec<bool> = t[1].1.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            prefixes,
            [false, true, false, false, true, false, true, false, true, false, true]
        );
        assert_eq!(t[18].0, "Unicode specials (i.e. replacement char)");
    }
}
