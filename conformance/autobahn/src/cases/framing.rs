//! Cases 1.x (framing), 2.x (pings/pongs), 3.x (reserved bits), 4.x (opcodes) and 5.x
//! (fragmentation), after Autobahn's `case1_1_1.py` ... `case5_20.py`.

use super::CaseDef;
use crate::session::{Frame, Session, NORMAL, PROTOCOL_ERROR};
use crate::verdict::{Behavior, Event, ExpectedClose};

const OK: Behavior = Behavior::Ok;
const NON_STRICT: Behavior = Behavior::NonStrict;

pub fn add(cases: &mut Vec<CaseDef>) {
    framing(cases);
    pings(cases);
    reserved_bits(cases);
    opcodes(cases);
    fragmentation(cases);
}

/// 1.1.x text, 1.2.x binary: echo of sizes around the length-form boundaries.
fn framing(cases: &mut Vec<CaseDef>) {
    let sizes = [0usize, 125, 126, 127, 128, 65535, 65536];
    for (binary, sub, kind) in [(false, 1, "text"), (true, 2, "binary")] {
        let byte = if binary { 0xfe } else { b'*' };
        let lens = sizes.iter().map(|&n| (n, None)).chain([(65536, Some(997))]);
        for (i, (len, chop)) in lens.enumerate() {
            let payload = vec![byte; len];
            let description = match (len, chop) {
                (0, _) => format!("Send {kind} message with payload 0."),
                (_, None) => format!("Send {kind} message message with payload of length {len}."),
                (_, Some(c)) => {
                    format!("Send {kind} message message with payload of length {len}. Sent out data in chops of {c} octets.")
                }
            };
            let expectation = format!(
                "Receive echo'ed {kind} message (with {}). Clean close with normal code.",
                if len == 0 {
                    "empty payload"
                } else {
                    "payload as sent"
                }
            );
            let wait = if len > 128 { 10.0 } else { 1.0 };
            cases.push(
                CaseDef::fuzz(
                    format!("1.{sub}.{}", i + 1),
                    description,
                    expectation,
                    move |s: &mut Session| {
                        let ev = if binary {
                            Event::binary(&payload)
                        } else {
                            Event::text(&payload)
                        };
                        s.expect(OK, vec![ev]);
                        s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                        let f = if binary {
                            Frame::binary(&payload)
                        } else {
                            Frame::text(&payload)
                        };
                        s.send(f.chop_opt(chop));
                        s.kill_after(wait);
                    },
                )
                .budget(15),
            );
        }
    }
}

fn pings(cases: &mut Vec<CaseDef>) {
    let pong_echo =
        "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code.";
    let simple = [
        (
            "2.1",
            "Send ping without payload.",
            vec![],
            "Pong (with empty payload) is sent in reply to Ping. Clean close with normal code.",
        ),
        (
            "2.2",
            "Send ping with small text payload.",
            b"Hello, world!".to_vec(),
            pong_echo,
        ),
        (
            "2.3",
            "Send ping with small binary (non UTF-8) payload.",
            b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff".to_vec(),
            pong_echo,
        ),
        (
            "2.4",
            "Send ping with binary payload of 125 octets.",
            vec![0xfe; 125],
            pong_echo,
        ),
    ];
    for (id, desc, payload, exp) in simple {
        cases.push(CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
            s.expect(OK, vec![Event::pong(&payload)]);
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            s.send(Frame::ping(&payload));
            s.close_after(1.0);
        }));
    }
    cases.push(CaseDef::fuzz(
        "2.5",
        "Send ping with binary payload of 126 octets.",
        "Connection is failed immediately (1002/Protocol Error), since control frames are only allowed to have payload up to and including 125 octets..",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::ping([0xfe; 126]));
            s.kill_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "2.6",
        "Send ping with binary payload of 125 octets, send in octet-wise chops.",
        "Pong with payload echo'ed is sent in reply to Ping. Implementations must be TCP clean. Clean close with normal code.",
        |s: &mut Session| {
            s.expect(OK, vec![Event::pong([0xfe; 125])]);
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            s.send(Frame::ping([0xfe; 125]).chop(1));
            s.close_after(2.0);
        },
    ));
    for (id, payload) in [("2.7", &b""[..]), ("2.8", &b"unsolicited pong payload"[..])] {
        let desc = if payload.is_empty() {
            "Send unsolicited pong without payload. Verify nothing is received. Clean close with normal code."
        } else {
            "Send unsolicited pong with payload. Verify nothing is received. Clean close with normal code."
        };
        cases.push(CaseDef::fuzz(
            id,
            desc,
            "Nothing.",
            move |s: &mut Session| {
                s.expect(OK, vec![]);
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.send(Frame::pong(payload));
                s.send_close(Some(NORMAL), None);
                s.close_after(1.0);
            },
        ));
    }
    cases.push(CaseDef::fuzz(
        "2.9",
        "Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.",
        "Nothing in reply to own Pong, but Pong with payload echo'ed in reply to Ping. Clean close with normal code.",
        |s: &mut Session| {
            s.expect(OK, vec![Event::pong("ping payload")]);
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            s.send(Frame::pong("unsolicited pong payload"));
            s.send(Frame::ping("ping payload"));
            s.close_after(1.0);
        },
    ));
    for (id, chop) in [("2.10", None), ("2.11", Some(1))] {
        let desc = if chop.is_some() {
            "Send 10 Pings with payload. Send out octets in octet-wise chops."
        } else {
            "Send 10 Pings with payload."
        };
        cases.push(CaseDef::fuzz(
            id,
            desc,
            "Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. but we check for this behaviour anyway. Clean close with normal code.",
            move |s: &mut Session| {
                let payloads: Vec<String> = (0..10).map(|i| format!("payload-{i}")).collect();
                s.expect(OK, payloads.iter().map(Event::pong).collect());
                for p in &payloads {
                    s.send(Frame::ping(p).chop_opt(chop));
                }
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.close_after(3.0);
            },
        ));
    }
}

const HELLO: &str = "Hello, world!";
const RSV_EXPECT: &str = "Echo for first message is received, but then connection is failed immediately, since RSV must be 0, when no extension defining RSV meaning has been negotiated. The Pong is not received.";

fn reserved_bits(cases: &mut Vec<CaseDef>) {
    cases.push(CaseDef::fuzz(
        "3.1",
        "Send small text message with RSV = 1.",
        "The connection is failed immediately (1002/protocol error), since RSV must be 0, when no extension defining RSV meaning has been negotiated.",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::text(HELLO).rsv(1));
            s.kill_after(1.0);
        },
    ));
    // 3.2 in one write, 3.3 frame by frame (sync), 3.4 octet by octet.
    let variants = [
        ("3.2", 2, false, None, "Send small text message, then send again with RSV = 2, then send Ping."),
        ("3.3", 3, true, None, "Send small text message, then send again with RSV = 3, then send Ping. Octets are sent in frame-wise chops. Octets are sent in octet-wise chops."),
        ("3.4", 4, false, Some(1), "Send small text message, then send again with RSV = 4, then send Ping. Octets are sent in octet-wise chops."),
    ];
    for (id, rsv, sync, chop, desc) in variants {
        cases.push(CaseDef::fuzz(
            id,
            desc,
            RSV_EXPECT,
            move |s: &mut Session| {
                s.expect(OK, vec![Event::text(HELLO)]);
                s.expect(NON_STRICT, vec![]);
                s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                s.send(Frame::text(HELLO).sync(sync).chop_opt(chop));
                s.send(Frame::text(HELLO).rsv(rsv).sync(sync).chop_opt(chop));
                s.send(Frame::ping("").sync(sync).chop_opt(chop));
                s.kill_after(1.0);
            },
        ));
    }
    cases.push(CaseDef::fuzz(
        "3.5",
        "Send small binary message with RSV = 5.",
        "The connection is failed immediately, since RSV must be 0.",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::binary(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff").rsv(5));
            s.kill_after(1.0);
        },
    ));
    // Autobahn's case3_6.py says "Ping" but sends a binary frame (opcode 2); reproduced as is.
    cases.push(CaseDef::fuzz(
        "3.6",
        "Send Ping with RSV = 6. (As in Autobahn's case3_6.py, the frame actually sent is a binary frame, opcode 2.)",
        "The connection is failed immediately, since RSV must be 0.",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::binary(HELLO).rsv(6));
            s.kill_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "3.7",
        "Send Close with RSV = 7.",
        "The connection is failed immediately, since RSV must be 0.",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::new(8, b"").rsv(7));
            s.kill_after(1.0);
        },
    ));
}

fn opcodes(cases: &mut Vec<CaseDef>) {
    for (sub, kind, first) in [(1, "non-control", 3u8), (2, "control", 11u8)] {
        // x.1: bare reserved opcode; x.2: with payload; x.3-x.5: after an echo, then a ping
        // (x.5 octet-wise).
        let alone = [(1, first, false), (2, first + 1, true)];
        for (n, op, with_payload) in alone {
            let desc = if with_payload {
                format!("Send frame with reserved {kind} Opcode = {op} and non-empty payload.")
            } else {
                format!("Send frame with reserved {kind} Opcode = {op}.")
            };
            cases.push(CaseDef::fuzz(
                format!("4.{sub}.{n}"),
                desc,
                "The connection is failed immediately.",
                move |s: &mut Session| {
                    s.expect(OK, vec![]);
                    s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                    let payload: &[u8] = if with_payload {
                        b"reserved opcode payload"
                    } else {
                        b""
                    };
                    s.send(Frame::new(op, payload));
                    s.kill_after(1.0);
                },
            ));
        }
        let after_echo = [
            (3, first + 2, false, None),
            (4, first + 3, true, None),
            (5, first + 4, true, Some(1)),
        ];
        for (n, op, with_payload, chop) in after_echo {
            let mut desc = format!(
                "Send small text message, then send frame with reserved {kind} Opcode = {op}{}, then send Ping.",
                if with_payload { " and non-empty payload" } else { "" }
            );
            if chop.is_some() {
                desc.push_str(" Octets are sent in octet-wise chops.");
            }
            cases.push(CaseDef::fuzz(
                format!("4.{sub}.{n}"),
                desc,
                "Echo for first message is received, but then connection is failed immediately, since reserved opcode frame is used. A Pong is not received.",
                move |s: &mut Session| {
                    s.expect(OK, vec![Event::text(HELLO)]);
                    s.expect(NON_STRICT, vec![]);
                    s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                    s.send(Frame::text(HELLO).chop_opt(chop));
                    let payload: &[u8] = if with_payload { HELLO.as_bytes() } else { b"" };
                    s.send(Frame::new(op, payload).chop_opt(chop));
                    s.send(Frame::ping("").chop_opt(chop));
                    s.kill_after(1.0);
                },
            ));
        }
    }
}

/// How a case's frames go on the wire: one write, frame-wise (sync) or octet-wise.
#[derive(Clone, Copy)]
enum Wire {
    OneChop,
    FrameWise,
    OctetWise,
}

impl Wire {
    fn apply(self, f: Frame) -> Frame {
        match self {
            Wire::OneChop => f,
            Wire::FrameWise => f.sync(true),
            Wire::OctetWise => f.chop(1),
        }
    }
}

fn fragmentation(cases: &mut Vec<CaseDef>) {
    for (id, op, kind) in [("5.1", 9u8, "Ping"), ("5.2", 10u8, "Pong")] {
        cases.push(CaseDef::fuzz(
            id,
            format!("Send {kind} fragmented into 2 fragments."),
            "Connection is failed immediately, since control message MUST NOT be fragmented.",
            move |s: &mut Session| {
                s.expect(OK, vec![]);
                s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                s.send(Frame::new(op, "fragment1").fin(false));
                s.send(Frame::cont("fragment2"));
                s.kill_after(1.0);
            },
        ));
    }
    let wires = [
        (Wire::OneChop, ""),
        (Wire::FrameWise, ", octets are sent in frame-wise chops"),
        (Wire::OctetWise, ", octets are sent in octet-wise chops"),
    ];
    for (i, (wire, how)) in wires.into_iter().enumerate() {
        cases.push(CaseDef::fuzz(
            format!("5.{}", 3 + i),
            format!("Send text Message fragmented into 2 fragments{how}."),
            "Message is processed and echo'ed back to us.",
            move |s: &mut Session| {
                s.expect(OK, vec![Event::text("fragment1fragment2")]);
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.send(wire.apply(Frame::text("fragment1").fin(false)));
                s.send(wire.apply(Frame::cont("fragment2")));
                s.close_after(1.0);
            },
        ));
    }
    let wires = [
        (Wire::OneChop, ""),
        (Wire::FrameWise, " Octets are sent in frame-wise chops."),
        (Wire::OctetWise, " Octets are sent in octet-wise chops."),
    ];
    for (i, (wire, how)) in wires.into_iter().enumerate() {
        cases.push(CaseDef::fuzz(
            format!("5.{}", 6 + i),
            format!("Send text Message fragmented into 2 fragments, one ping with payload in-between.{how}"),
            "A pong is received, then the message is echo'ed back to us.",
            move |s: &mut Session| {
                s.expect(OK, vec![Event::pong("ping payload"), Event::text("fragment1fragment2")]);
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.send(wire.apply(Frame::text("fragment1").fin(false)));
                s.send(wire.apply(Frame::ping("ping payload")));
                s.send(wire.apply(Frame::cont("fragment2")));
                s.close_after(1.0);
            },
        ));
    }
    // 5.9-5.14: a continuation with nothing to continue (FIN set, then clear), each sent in
    // one chop, frame-wise and octet-wise.
    let chops = [
        (Wire::OneChop, "one chop"),
        (Wire::FrameWise, "per-frame chops"),
        (Wire::OctetWise, "octet-wise chops"),
    ];
    for (f, fin) in [(0, true), (1, false)] {
        for (i, (wire, how)) in chops.into_iter().enumerate() {
            cases.push(CaseDef::fuzz(
                format!("5.{}", 9 + 3 * f + i),
                format!(
                    "Send unfragmented Text Message after Continuation Frame with FIN = {fin}, where there is nothing to continue, sent in {how}."
                ),
                "The connection is failed immediately, since there is no message to continue.",
                move |s: &mut Session| {
                    s.expect(OK, vec![]);
                    s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                    s.send(wire.apply(Frame::cont("non-continuation payload").fin(fin)));
                    s.send(wire.apply(Frame::text(HELLO)));
                    s.kill_after(1.0);
                },
            ));
        }
    }
    cases.push(CaseDef::fuzz(
        "5.15",
        "Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where there is nothing to continue, then unfragmented Text Message, all sent in one chop.",
        "The connection is failed immediately, since there is no message to continue.",
        |s: &mut Session| {
            s.expect(OK, vec![Event::text("fragment1fragment2")]);
            s.expect(NON_STRICT, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::text("fragment1").fin(false));
            s.send(Frame::cont("fragment2"));
            s.send(Frame::cont("fragment3").fin(false));
            s.send(Frame::text("fragment4"));
            s.kill_after(1.0);
        },
    ));
    for (id, fin) in [("5.16", false), ("5.17", true)] {
        cases.push(CaseDef::fuzz(
            id,
            format!(
                "Repeated 2x: Continuation Frame with FIN = {fin} (where there is nothing to continue), then text Message fragmented into 2 fragments."
            ),
            "The connection is failed immediately, since there is no message to continue.",
            move |s: &mut Session| {
                s.expect(OK, vec![]);
                s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
                for _ in 0..2 {
                    s.send(Frame::cont("fragment1").fin(fin));
                    s.send(Frame::text("fragment2").fin(false));
                    s.send(Frame::cont("fragment3"));
                }
                s.kill_after(1.0);
            },
        ));
    }
    cases.push(CaseDef::fuzz(
        "5.18",
        "Send text Message fragmented into 2 fragments, with both frame opcodes set to text, sent in one chop.",
        "The connection is failed immediately, since all data frames after the initial data frame must have opcode 0.",
        |s: &mut Session| {
            s.expect(OK, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::text("fragment1").fin(false));
            s.send(Frame::text("fragment2"));
            s.kill_after(1.0);
        },
    ));
    for (id, sync) in [("5.19", false), ("5.20", true)] {
        let desc = if sync {
            "Same as Case 5.19, but send all frames with SYNC = True. Note, this does not change the octets sent in any way, only how the stream is chopped up on the wire."
        } else {
            "A fragmented text message is sent in multiple frames. After sending the first 2 frames of the text message, a Ping is sent. Then we wait 1s, then we send 2 more text fragments, another Ping and then the final text fragment. Everything is legal."
        };
        let exp = if sync {
            "Same as Case 5.19. Implementations must be agnostic to how octet stream is chopped up on wire (must be TCP clean)."
        } else {
            "The peer immediately answers the first Ping before it has received the last text message fragment. The peer pong's back the Ping's payload exactly, and echo's the payload of the fragmented message back to us."
        };
        cases.push(
            CaseDef::fuzz(id, desc, exp, move |s: &mut Session| {
                s.expect(
                    OK,
                    vec![
                        Event::pong("pongme 1!"),
                        Event::pong("pongme 2!"),
                        Event::text("fragment1fragment2fragment3fragment4fragment5"),
                    ],
                );
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.send(Frame::text("fragment1").fin(false).sync(sync));
                s.send(Frame::cont("fragment2").fin(false).sync(sync));
                s.send(Frame::ping("pongme 1!").sync(sync));
                if s.continue_later(1.0) {
                    s.send(Frame::cont("fragment3").fin(false).sync(sync));
                    s.send(Frame::cont("fragment4").fin(false).sync(sync));
                    s.send(Frame::ping("pongme 2!").sync(sync));
                    s.send(Frame::cont("fragment5").sync(sync));
                    s.close_after(1.0);
                }
            })
            .budget(8),
        );
    }
}
