//! How a case is judged: Autobahn's rules, then this runner's single verdict.
//!
//! [`judge`] is a transcription of `Case.onConnectionLost` in Autobahn|Testsuite
//! (`autobahntestsuite/case/case.py`): the events received are compared with each expected
//! outcome (first match wins: OK, NON-STRICT, ...), and the way the connection ended is
//! compared with `expectedClose` (who closed first, whether the close was clean, the code).
//! Autobahn reports the two separately (the "behavior" and the "close behavior" columns of its
//! report); [`Rule`] holds the per-case adjustments Autobahn's case classes make on top.
//!
//! [`verdict`] folds both into the one word this runner reports, and is stricter than Autobahn's
//! headline column in three documented ways (see its doc).

use std::fmt;

use serde::Serialize;

/// One thing the case saw from the server, in order (Autobahn's `received` list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole message (fragments reassembled: the server may re-fragment).
    Message {
        binary: bool,
        payload: Vec<u8>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A scripted wait ended with the connection still open (Autobahn's `("timeout", tag)`).
    Timeout(&'static str),
}

impl Event {
    pub fn text(payload: impl AsRef<[u8]>) -> Event {
        Event::Message {
            binary: false,
            payload: payload.as_ref().to_vec(),
        }
    }

    pub fn binary(payload: impl AsRef<[u8]>) -> Event {
        Event::Message {
            binary: true,
            payload: payload.as_ref().to_vec(),
        }
    }

    pub fn pong(payload: impl AsRef<[u8]>) -> Event {
        Event::Pong(payload.as_ref().to_vec())
    }

    /// A short, printable description for reports (long payloads are cut).
    pub fn describe(&self) -> String {
        match self {
            Event::Message {
                binary: false,
                payload,
            } => format!("text({})", show(payload)),
            Event::Message {
                binary: true,
                payload,
            } => format!("binary({})", show(payload)),
            Event::Ping(p) => format!("ping({})", show(p)),
            Event::Pong(p) => format!("pong({})", show(p)),
            Event::Timeout(tag) => format!("timeout({tag})"),
        }
    }
}

/// Payload for humans: text if it is short printable UTF-8, else hex; length always given.
fn show(p: &[u8]) -> String {
    const MAX: usize = 32;
    let cut = &p[..p.len().min(MAX)];
    let more = if p.len() > MAX { "..." } else { "" };
    match std::str::from_utf8(cut) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{} bytes {s:?}{more}", p.len()),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("{} bytes 0x{hex}{more}", p.len())
        }
    }
}

/// A case outcome, Autobahn's "behavior" values (and this runner's verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Behavior {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "NON-STRICT")]
    NonStrict,
    #[serde(rename = "INFORMATIONAL")]
    Informational,
    #[serde(rename = "FAILED")]
    Failed,
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Behavior::Ok => "OK",
            Behavior::NonStrict => "NON-STRICT",
            Behavior::Informational => "INFORMATIONAL",
            Behavior::Failed => "FAILED",
        })
    }
}

/// Autobahn's "close behavior" values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CloseBehavior {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "FAILED")]
    Failed,
    #[serde(rename = "UNCLEAN")]
    Unclean,
    #[serde(rename = "WRONG CODE")]
    WrongCode,
    #[serde(rename = "FAILED BY CLIENT")]
    FailedByClient,
    #[serde(rename = "INFORMATIONAL")]
    Informational,
}

impl fmt::Display for CloseBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseBehavior::Ok => "OK",
            CloseBehavior::Failed => "FAILED",
            CloseBehavior::Unclean => "UNCLEAN",
            CloseBehavior::WrongCode => "WRONG CODE",
            CloseBehavior::FailedByClient => "FAILED BY CLIENT",
            CloseBehavior::Informational => "INFORMATIONAL",
        })
    }
}

/// Autobahn's `expectedClose`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectedClose {
    /// We (the client) send the first close frame; false: the server must fail the connection.
    pub closed_by_me: bool,
    /// Close codes the server may send (a close without code is always accepted).
    pub codes: Vec<u16>,
    /// The closing handshake must complete and the server must drop TCP afterwards.
    pub require_clean: bool,
    /// The UTF-8 cases' `closedByWrongEndpointIsFatal`: if the wrong side closed, the server
    /// did not detect the invalid payload at all, and the case fails outright.
    pub wrong_endpoint_fatal: bool,
}

impl ExpectedClose {
    /// The script closes normally; the server answers and drops TCP.
    pub fn by_me(codes: &[u16]) -> ExpectedClose {
        ExpectedClose {
            closed_by_me: true,
            codes: codes.to_vec(),
            require_clean: true,
            wrong_endpoint_fatal: false,
        }
    }

    /// The script closes; the server may answer with one of `codes` or just drop TCP.
    pub fn by_me_unclean(codes: &[u16]) -> ExpectedClose {
        ExpectedClose {
            require_clean: false,
            ..ExpectedClose::by_me(codes)
        }
    }

    /// The server must fail the connection, with one of `codes` or by dropping TCP.
    pub fn by_peer(codes: &[u16]) -> ExpectedClose {
        ExpectedClose {
            closed_by_me: false,
            codes: codes.to_vec(),
            require_clean: false,
            wrong_endpoint_fatal: false,
        }
    }

    /// As [`ExpectedClose::by_peer`], and the case fails if we had to close instead.
    pub fn by_peer_fatal(codes: &[u16]) -> ExpectedClose {
        ExpectedClose {
            wrong_endpoint_fatal: true,
            ..ExpectedClose::by_peer(codes)
        }
    }
}

/// How a connection ended, as Autobahn's protocol tracks it.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub received: Vec<Event>,
    /// The opening handshake completed.
    pub connection_was_open: bool,
    /// We sent the first close frame (a reply does not count).
    pub closed_by_me: bool,
    /// Both close frames were exchanged and the server dropped TCP in time.
    pub was_clean: bool,
    /// We dropped the TCP connection.
    pub dropped_by_me: bool,
    /// The server's close frame arrived (with or without a code).
    pub close_received: bool,
    pub remote_close_code: Option<u16>,
    /// The closing handshake completed but the server left TCP open past Autobahn's
    /// `serverConnectionDropTimeout`, so we dropped it (the only cause of `was_clean` being
    /// false after a complete handshake).
    pub server_drop_timeout: bool,
}

/// Autobahn's result for one case: behavior and close behavior, each with its explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub behavior: Behavior,
    pub result: String,
    pub behavior_close: CloseBehavior,
    pub result_close: String,
}

/// `Case.onConnectionLost`, client side.
pub fn judge(
    expected: &[(Behavior, Vec<Event>)],
    close: &ExpectedClose,
    obs: &Observed,
) -> Judgement {
    let mut j = Judgement {
        behavior: Behavior::Failed,
        result: "Actual events differ from any expected.".into(),
        behavior_close: CloseBehavior::Failed,
        result_close: "TCP connection was dropped without close handshake".into(),
    };
    if let Some((b, _)) = expected.iter().find(|(_, events)| *events == obs.received) {
        j.behavior = *b;
        j.result = "Actual events match at least one expected.".into();
    }
    if !obs.connection_was_open {
        j.result_close = "The WebSocket opening handshake was never completed!".into();
        return j;
    }
    (j.behavior_close, j.result_close) = if close.closed_by_me != obs.closed_by_me {
        (
            CloseBehavior::Failed,
            "The connection was failed by the wrong endpoint".into(),
        )
    } else if close.require_clean && !obs.was_clean {
        (
            CloseBehavior::Unclean,
            "The spec requires the connection to be failed cleanly here".into(),
        )
    } else if obs
        .remote_close_code
        .is_some_and(|c| !close.codes.contains(&c))
    {
        let codes: Vec<String> = close.codes.iter().map(u16::to_string).collect();
        (
            CloseBehavior::WrongCode,
            format!(
                "The close code should have been {} or empty",
                codes.join(",")
            ),
        )
    } else if obs.dropped_by_me {
        (
            CloseBehavior::FailedByClient,
            "It is preferred that the server close the TCP connection".into(),
        )
    } else {
        (CloseBehavior::Ok, "Connection was properly closed".into())
    };
    if close.wrong_endpoint_fatal && close.closed_by_me != obs.closed_by_me {
        j.behavior = Behavior::Failed;
        j.result =
            "The connection was failed by the wrong endpoint: the invalid payload went undetected."
                .into();
    }
    j
}

/// The adjustments some Autobahn case classes make in their own `onConnectionLost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The base class alone.
    Standard,
    /// 7.x: a wrong close code fails the case (the close code is what 7.x tests).
    WrongCodeFails,
    /// 7.13.x: "actual events are undefined by the spec".
    Informational,
    /// 7.1.6: informational, the result saying whether the message beat the close.
    InformationalOrder,
    /// 9.x: the script decides the behavior (echo received intact, within the time limit).
    Manual,
    /// H.x cases judged wholly by their own code.
    Custom,
}

/// Applies `rule` to a [`judge`] result. `manual` is the script's own behavior for
/// [`Rule::Manual`].
pub fn apply_rule(rule: Rule, j: &mut Judgement, manual: Option<(Behavior, String)>) {
    match rule {
        Rule::Standard | Rule::Custom => {}
        Rule::WrongCodeFails => {
            if j.behavior_close == CloseBehavior::WrongCode {
                j.behavior = Behavior::Failed;
                j.result = j.result_close.clone();
            }
        }
        Rule::Informational => {
            j.behavior = Behavior::Informational;
            j.behavior_close = CloseBehavior::Informational;
            j.result = "Actual events are undefined by the spec.".into();
        }
        Rule::InformationalOrder => {
            match j.behavior {
                Behavior::Ok => j.result = "Text message was processed before close.".into(),
                Behavior::NonStrict => {
                    j.result = "Close was processed before text message could be returned.".into()
                }
                _ => {}
            }
            j.behavior = Behavior::Informational;
            j.behavior_close = CloseBehavior::Informational;
        }
        Rule::Manual => {
            if let Some((b, r)) = manual {
                j.behavior = b;
                j.result = r;
            }
        }
    }
}

/// This runner's verdict for a case, with the reason when it differs from Autobahn's
/// behavior column.
///
/// Autobahn's headline column is the event behavior alone; its close column is shown beside
/// it in colour. Here one word must carry both, so:
///
/// 1. A protocol violation by the server (a masked frame, an invalid close frame, invalid
///    UTF-8 in a text message, ...) is FAILED whatever else happened.
/// 2. FAILED, INFORMATIONAL and a failed close (wrong endpoint, or UNCLEAN where the spec
///    requires a clean close) are FAILED / INFORMATIONAL / FAILED, except that an UNCLEAN
///    close whose only fault is that the server left TCP open after a complete closing
///    handshake is NON-STRICT: RFC 6455 7.1.1 says the server SHOULD close TCP first.
/// 3. WRONG CODE and FAILED BY CLIENT (Autobahn's orange cells) make an OK case NON-STRICT.
/// 4. Stricter than Autobahn: where the server had to fail the connection, dropping TCP
///    without a close frame is NON-STRICT (Autobahn counts it OK): RFC 6455 section 7.1.7
///    says an endpoint failing the connection *should* send a close frame first, and the
///    wsport servers are specified to send 1002/1007/1009.
pub fn verdict(
    j: &Judgement,
    close: &ExpectedClose,
    obs: &Observed,
    violations: &[String],
) -> (Behavior, Option<String>) {
    if let Some(v) = violations.first() {
        return (
            Behavior::Failed,
            Some(format!("server protocol violation: {v}")),
        );
    }
    match j.behavior {
        Behavior::Failed => return (Behavior::Failed, Some(j.result.clone())),
        Behavior::Informational => return (Behavior::Informational, None),
        Behavior::Ok | Behavior::NonStrict => {}
    }
    match j.behavior_close {
        CloseBehavior::Unclean if obs.server_drop_timeout => {
            return (
                Behavior::NonStrict,
                Some(format!(
                    "close {}: the server did not close TCP after the closing handshake",
                    j.behavior_close
                )),
            )
        }
        CloseBehavior::Failed | CloseBehavior::Unclean => {
            return (
                Behavior::Failed,
                Some(format!("close {}: {}", j.behavior_close, j.result_close)),
            )
        }
        CloseBehavior::WrongCode | CloseBehavior::FailedByClient => {
            return (
                Behavior::NonStrict,
                Some(format!("close {}: {}", j.behavior_close, j.result_close)),
            )
        }
        CloseBehavior::Ok | CloseBehavior::Informational => {}
    }
    if obs.connection_was_open && !close.closed_by_me && !obs.closed_by_me && !obs.close_received {
        return (
            Behavior::NonStrict,
            Some("the server dropped TCP without sending a close frame".into()),
        );
    }
    (
        j.behavior,
        if j.behavior == Behavior::NonStrict {
            Some(j.result.clone())
        } else {
            None
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Observed {
        Observed {
            connection_was_open: true,
            ..Observed::default()
        }
    }

    /// 1.1.x: echo, then we close, the server answers 1000 and drops TCP.
    #[test]
    fn clean_echo_is_ok() {
        let expected = vec![(Behavior::Ok, vec![Event::text("hello")])];
        let close = ExpectedClose::by_me(&[1000]);
        let obs = Observed {
            received: vec![Event::text("hello")],
            closed_by_me: true,
            was_clean: true,
            close_received: true,
            remote_close_code: Some(1000),
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Behavior::Ok, CloseBehavior::Ok)
        );
        assert_eq!(verdict(&j, &close, &obs, &[]), (Behavior::Ok, None));
    }

    #[test]
    fn wrong_echo_fails() {
        let expected = vec![(Behavior::Ok, vec![Event::text("hello")])];
        let close = ExpectedClose::by_me(&[1000]);
        let obs = Observed {
            received: vec![Event::binary("hello")],
            closed_by_me: true,
            was_clean: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(j.behavior, Behavior::Failed);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Failed);
    }

    /// 3.2: the echo before the bad frame is OK, none at all is NON-STRICT.
    #[test]
    fn second_outcome_is_non_strict() {
        let expected = vec![
            (Behavior::Ok, vec![Event::text("x")]),
            (Behavior::NonStrict, vec![]),
        ];
        let close = ExpectedClose::by_peer(&[1002]);
        let obs = Observed {
            close_received: true,
            remote_close_code: Some(1002),
            was_clean: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(j.behavior, Behavior::NonStrict);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::NonStrict);
    }

    /// A protocol violation answered with close 1002 and a TCP close by the server is OK.
    #[test]
    fn protocol_error_with_1002_is_ok() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_peer(&[1002]);
        let obs = Observed {
            close_received: true,
            remote_close_code: Some(1002),
            was_clean: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Behavior::Ok, CloseBehavior::Ok)
        );
        assert_eq!(verdict(&j, &close, &obs, &[]), (Behavior::Ok, None));
    }

    /// Autobahn counts a bare TCP drop as OK; this runner says NON-STRICT.
    #[test]
    fn protocol_error_with_bare_tcp_drop_is_non_strict() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_peer(&[1002]);
        let obs = open();
        let j = judge(&expected, &close, &obs);
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Behavior::Ok, CloseBehavior::Ok)
        );
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::NonStrict);
    }

    /// The server ignored the violation; our kill timer closed (1001): wrong endpoint.
    #[test]
    fn ignored_violation_fails() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_peer(&[1002]);
        let obs = Observed {
            closed_by_me: true,
            close_received: true,
            remote_close_code: Some(1001),
            was_clean: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Behavior::Ok, CloseBehavior::Failed)
        );
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Failed);
        // For the UTF-8 cases the wrong endpoint fails the behavior itself.
        let close = ExpectedClose::by_peer_fatal(&[1007]);
        assert_eq!(judge(&expected, &close, &obs).behavior, Behavior::Failed);
    }

    #[test]
    fn wrong_code_is_non_strict_except_in_7x() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_peer(&[1002]);
        let obs = Observed {
            close_received: true,
            remote_close_code: Some(1000),
            was_clean: true,
            ..open()
        };
        let mut j = judge(&expected, &close, &obs);
        assert_eq!(j.behavior_close, CloseBehavior::WrongCode);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::NonStrict);
        apply_rule(Rule::WrongCodeFails, &mut j, None);
        assert_eq!(j.behavior, Behavior::Failed);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Failed);
    }

    #[test]
    fn unclean_close_fails_where_clean_is_required() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_me(&[1000]);
        // We closed, the server never answered: close handshake timeout, we dropped.
        let obs = Observed {
            closed_by_me: true,
            dropped_by_me: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(j.behavior_close, CloseBehavior::Unclean);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Failed);
        // Complete handshake, but TCP left open past the server-drop timeout: NON-STRICT.
        let lingering = Observed {
            close_received: true,
            remote_close_code: Some(1000),
            server_drop_timeout: true,
            ..obs.clone()
        };
        let j = judge(&expected, &close, &lingering);
        assert_eq!(j.behavior_close, CloseBehavior::Unclean);
        assert_eq!(verdict(&j, &close, &lingering, &[]).0, Behavior::NonStrict);
        // Clean handshake, but the server left TCP open until our kill timer: orange.
        let obs = Observed {
            was_clean: true,
            close_received: true,
            remote_close_code: Some(1000),
            ..obs
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(j.behavior_close, CloseBehavior::FailedByClient);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::NonStrict);
    }

    #[test]
    fn handshake_never_completed_fails() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_me(&[1000]);
        let j = judge(&expected, &close, &Observed::default());
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Behavior::Ok, CloseBehavior::Failed)
        );
        assert_eq!(
            verdict(&j, &close, &Observed::default(), &[]).0,
            Behavior::Failed
        );
    }

    #[test]
    fn violations_fail_whatever_else() {
        let expected = vec![(Behavior::Ok, vec![])];
        let close = ExpectedClose::by_me(&[1000]);
        let obs = Observed {
            closed_by_me: true,
            was_clean: true,
            close_received: true,
            ..open()
        };
        let j = judge(&expected, &close, &obs);
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Ok);
        assert_eq!(
            verdict(&j, &close, &obs, &["masked frame".into()]).0,
            Behavior::Failed
        );
    }

    #[test]
    fn informational_rules() {
        let expected = vec![
            (Behavior::Ok, vec![Event::text("Hello World!")]),
            (Behavior::NonStrict, vec![]),
        ];
        let close = ExpectedClose::by_me(&[1000]);
        let obs = Observed {
            closed_by_me: true,
            was_clean: true,
            close_received: true,
            ..open()
        };
        let mut j = judge(&expected, &close, &obs);
        apply_rule(Rule::InformationalOrder, &mut j, None);
        assert_eq!(j.behavior, Behavior::Informational);
        assert!(j.result.contains("Close was processed"));
        assert_eq!(verdict(&j, &close, &obs, &[]).0, Behavior::Informational);
        let mut j = judge(&expected, &close, &obs);
        apply_rule(
            Rule::Manual,
            &mut j,
            Some((Behavior::Ok, "Received text message of length 5.".into())),
        );
        assert_eq!(j.behavior, Behavior::Ok);
    }

    #[test]
    fn descriptions_are_short() {
        assert_eq!(Event::text("hi").describe(), "text(2 bytes \"hi\")");
        assert_eq!(
            Event::binary([0xfe, 0xff]).describe(),
            "binary(2 bytes 0xfeff)"
        );
        assert!(Event::text(vec![b'*'; 1000]).describe().ends_with("...)"));
    }
}
