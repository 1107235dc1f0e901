//! H.x: handshake and abuse cases of this runner, in Autobahn's style (numbered, each with a
//! description, an expectation and an OK / NON-STRICT / INFORMATIONAL / FAILED verdict).
//!
//! * H.1 opening handshake errors (RFC 6455 4.2.1/4.2.2: "return an HTTP response with an
//!   appropriate error code (such as 400 Bad Request)", 426 + `Sec-WebSocket-Version` for an
//!   unsupported version, 4.4), and an extension offer the server must decline;
//! * H.2 oversized requests (HTTP 431, RFC 6585 section 5);
//! * H.3 slow or silent clients, which the server must drop after its handshake timeout;
//!   bounded to 15 s here, INFORMATIONAL if the server is still waiting by then;
//! * H.4 clients that vanish mid-frame or mid-request, while another connection goes on;
//! * H.5 frame-level abuse: unmasked frames (RFC 6455 5.1), impossible lengths, frames and
//!   messages over the servers' default limits (16 MiB frame, 64 MiB message: close 1009);
//! * H.6 bytes that arrive together: a frame pipelined with the upgrade request, 100
//!   messages in one write.

use std::time::{Duration, Instant};

use super::{CaseDef, CustomOutcome};
use crate::handshake::{self, Response};
use crate::session::{read_response, Env, Frame, Session, NORMAL, PROTOCOL_ERROR, TOO_BIG};
use crate::transport::Conn;
use crate::verdict::{Behavior, Event, ExpectedClose, Rule};
use wsport_harness::frame::{self, opcode, Header, LengthForm};
use wsport_harness::rng::Rng;

/// How long the slow-client cases wait for the server to give up on them.
const SLOW_LIMIT: Duration = Duration::from_secs(15);

pub fn add(cases: &mut Vec<CaseDef>) {
    handshake_errors(cases);
    oversized(cases);
    slow_clients(cases);
    vanishing_clients(cases);
    frame_abuse(cases);
    batching(cases);
}

// ---- helpers ------------------------------------------------------------------------------

/// What came back for a request.
enum Answer {
    Response(Response),
    /// The server closed the connection without an HTTP response.
    Closed,
    /// Nothing by the deadline.
    Silent,
    /// The bytes are not an HTTP response.
    Garbage(String),
}

fn request_answer(env: &Env, request: &[u8]) -> Result<Answer, String> {
    let deadline = Instant::now() + env.timeout;
    let mut conn =
        Conn::connect(&env.target, env.tls.as_ref(), deadline).map_err(|e| format!("{e:#}"))?;
    conn.queue(request);
    let answer = loop {
        match handshake::parse_response(conn.data()) {
            Ok(Some(resp)) => break Answer::Response(resp),
            Ok(None) => {}
            Err(e) => break Answer::Garbage(e.to_string()),
        }
        if conn.input_closed() {
            break Answer::Closed;
        }
        if Instant::now() >= deadline {
            break Answer::Silent;
        }
        conn.io(deadline);
    };
    conn.abort();
    Ok(answer)
}

/// A request like the standard one, with `edit` applied to its header lines (name, value).
fn request_with(env: &Env, method: &str, edit: impl Fn(&mut Vec<(String, String)>)) -> Vec<u8> {
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), env.target.host_header.clone()),
        ("Upgrade".into(), "websocket".into()),
        ("Connection".into(), "Upgrade".into()),
        (
            "Sec-WebSocket-Key".into(),
            handshake::new_key(Rng::new().bytes16()),
        ),
        ("Sec-WebSocket-Version".into(), "13".into()),
    ];
    edit(&mut headers);
    let mut req = format!("{method} {} HTTP/1.1\r\n", env.target.path);
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

fn remove(headers: &mut Vec<(String, String)>, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    remove(headers, name);
    headers.push((name.into(), value.into()));
}

/// Judges the answer to a request the server must refuse: `ok` statuses are OK; another
/// error status, or a close without response, is NON-STRICT; an upgrade is `on_upgrade`.
fn judge_refusal(
    answer: Result<Answer, String>,
    ok: &[u16],
    on_upgrade: Behavior,
) -> CustomOutcome {
    let wanted: Vec<String> = ok.iter().map(u16::to_string).collect();
    let wanted = wanted.join(" or ");
    let mut out = match answer {
        Err(e) => CustomOutcome::new(Behavior::Failed, format!("could not connect: {e}")),
        Ok(Answer::Response(r)) if r.status == 101 => {
            CustomOutcome::new(on_upgrade, format!("The server accepted the upgrade (101); expected HTTP {wanted}."))
        }
        Ok(Answer::Response(r)) if ok.contains(&r.status) => {
            CustomOutcome::new(Behavior::Ok, format!("The server refused with HTTP {} {}.", r.status, r.reason))
        }
        Ok(Answer::Response(r)) => CustomOutcome::new(
            Behavior::NonStrict,
            format!("The server refused with HTTP {} {}; expected {wanted}.", r.status, r.reason),
        ),
        Ok(Answer::Closed) => CustomOutcome::new(
            Behavior::NonStrict,
            format!("The server closed the connection without an HTTP response; expected HTTP {wanted}."),
        ),
        Ok(Answer::Silent) => {
            CustomOutcome::new(Behavior::Failed, "The server neither answered nor closed the connection in time.")
        }
        Ok(Answer::Garbage(e)) => CustomOutcome::new(Behavior::Failed, format!("The server's answer is not HTTP: {e}")),
    };
    if let Some(status) = out
        .result
        .split("HTTP ")
        .nth(1)
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
    {
        out.http_status = Some(status);
    }
    out
}

/// Opens a WebSocket connection with the standard handshake.
fn ws_open(env: &Env, extra: &[(&str, &str)]) -> Result<(Conn, Response), String> {
    let deadline = Instant::now() + env.timeout;
    let mut conn =
        Conn::connect(&env.target, env.tls.as_ref(), deadline).map_err(|e| format!("{e:#}"))?;
    let key = handshake::new_key(Rng::new().bytes16());
    conn.queue(&handshake::request(
        &env.target.host_header,
        &env.target.path,
        &key,
        extra,
    ));
    let resp = read_response(&mut conn, deadline).map_err(|e| format!("{e:#}"))?;
    if resp.status != 101 {
        return Err(format!(
            "HTTP {} {} instead of 101",
            resp.status, resp.reason
        ));
    }
    if resp.header("Sec-WebSocket-Accept") != Some(handshake::accept_key(&key).as_str()) {
        return Err("wrong or missing Sec-WebSocket-Accept".into());
    }
    Ok((conn, resp))
}

/// Sends one text message and waits for its echo (answering pings, reassembling fragments).
fn echo_once(conn: &mut Conn, payload: &[u8], limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut rng = Rng::new();
    conn.queue(&frame::encode_frame(
        Header::new(opcode::TEXT, Some(rng.mask()), 0),
        payload,
    ));
    let mut message: Option<Vec<u8>> = None;
    loop {
        while let Some((f, used)) =
            frame::decode_frame(conn.data(), 1 << 28).map_err(|e| e.to_string())?
        {
            conn.consume(used);
            match f.opcode {
                opcode::TEXT | opcode::BINARY | opcode::CONTINUATION => {
                    let buf = message.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(&f.payload);
                    if f.fin {
                        return if *buf == payload {
                            Ok(())
                        } else {
                            Err(format!(
                                "echo differs: {} bytes back for {} sent",
                                buf.len(),
                                payload.len()
                            ))
                        };
                    }
                }
                opcode::PING => conn.queue(&frame::encode_frame(
                    Header::new(opcode::PONG, Some(rng.mask()), 0),
                    &f.payload,
                )),
                opcode::CLOSE => {
                    let code = (f.payload.len() >= 2)
                        .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                    return Err(format!(
                        "the server closed the connection (close code {code:?}) instead of echoing"
                    ));
                }
                _ => {}
            }
        }
        if conn.input_closed() {
            return Err("the connection closed before the echo arrived".into());
        }
        if Instant::now() >= deadline {
            return Err(format!("no echo within {} ms", limit.as_millis()));
        }
        conn.io(deadline);
    }
}

/// Sends close 1000 and drops the connection without waiting.
fn close_now(conn: &mut Conn) {
    let mut rng = Rng::new();
    conn.queue(&frame::encode_frame(
        Header::new(opcode::CLOSE, Some(rng.mask()), 0),
        &NORMAL.to_be_bytes(),
    ));
    conn.try_io();
    conn.abort();
}

// ---- H.1 handshake errors ----------------------------------------------------------------

fn handshake_errors(cases: &mut Vec<CaseDef>) {
    cases.push(CaseDef::custom(
        "H.1.1",
        "Send an upgrade request without Sec-WebSocket-Key.",
        "HTTP 400 (RFC 6455 4.2.1 point 5, 4.2.2). Another error status or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let req = request_with(env, "GET", |h| remove(h, "Sec-WebSocket-Key"));
            judge_refusal(request_answer(env, &req), &[400], Behavior::Failed)
        },
    ));
    cases.push(CaseDef::custom(
        "H.1.2",
        "Send an upgrade request with Sec-WebSocket-Version: 8.",
        "HTTP 426 Upgrade Required with a Sec-WebSocket-Version: 13 header (RFC 6455 4.2.2, 4.4). 426 without the header, 400, or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let req = request_with(env, "GET", |h| set(h, "Sec-WebSocket-Version", "8"));
            let answer = request_answer(env, &req);
            let version = match &answer {
                Ok(Answer::Response(r)) if r.status == 426 => Some(r.header("Sec-WebSocket-Version").map(str::to_owned)),
                _ => None,
            };
            let mut out = judge_refusal(answer, &[426], Behavior::Failed);
            match version {
                Some(Some(v)) if v.split(',').any(|t| t.trim() == "13") => {}
                Some(v) => {
                    out.behavior = Behavior::NonStrict;
                    out.result = format!("HTTP 426, but Sec-WebSocket-Version is {v:?}; expected it to list 13.");
                }
                None => {}
            }
            out
        },
    ));
    cases.push(CaseDef::custom(
        "H.1.3",
        "Send a request with Connection: Upgrade but no Upgrade header.",
        "HTTP 400 or 426 (not a WebSocket upgrade). Another status or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let req = request_with(env, "GET", |h| remove(h, "Upgrade"));
            judge_refusal(request_answer(env, &req), &[400, 426], Behavior::Failed)
        },
    ));
    cases.push(CaseDef::custom(
        "H.1.4",
        "Send a complete upgrade request with method POST.",
        "HTTP 400 or 405 (RFC 6455 4.1: the method MUST be GET). Another status or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let req = request_with(env, "POST", |h| h.push(("Content-Length".into(), "0".into())));
            judge_refusal(request_answer(env, &req), &[400, 405], Behavior::Failed)
        },
    ));
    cases.push(CaseDef::custom(
        "H.1.5",
        "Send an upgrade request whose Sec-WebSocket-Key decodes to 14 octets, not 16.",
        "HTTP 400 (RFC 6455 4.2.1 point 5: the key is 16 random octets, base64). Accepting it is NON-STRICT (common leniency).",
        10,
        |env: &Env| {
            let req = request_with(env, "GET", |h| set(h, "Sec-WebSocket-Key", "dGhpcyBpcyBub3QgMTY="));
            judge_refusal(request_answer(env, &req), &[400], Behavior::NonStrict)
        },
    ));
    cases.push(CaseDef::custom(
        "H.1.6",
        "Offer permessage-deflate (Sec-WebSocket-Extensions) and subprotocol 'chat', then echo a message.",
        "HTTP 101 selecting no extension and no subprotocol (the server implements neither, RFC 6455 4.2.2), then the echo. Selecting anything not offered, or permessage-deflate, is FAILED.",
        10,
        |env: &Env| {
            let extra = [
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                ("Sec-WebSocket-Protocol", "chat"),
            ];
            let (mut conn, resp) = match ws_open(env, &extra) {
                Ok(x) => x,
                Err(e) => return CustomOutcome::new(Behavior::Failed, format!("The upgrade failed: {e}")),
            };
            let mut out = if let Some(ext) = resp.header("Sec-WebSocket-Extensions") {
                CustomOutcome::new(Behavior::Failed, format!("The server accepted extension(s) {ext:?}, which the wsport servers do not implement."))
            } else {
                match resp.header("Sec-WebSocket-Protocol") {
                    None => CustomOutcome::new(Behavior::Ok, "HTTP 101 with no extension and no subprotocol; echo OK."),
                    Some("chat") => CustomOutcome::new(Behavior::NonStrict, "The server selected subprotocol \"chat\" (offered, but none is configured by default); echo OK."),
                    Some(p) => CustomOutcome::new(Behavior::Failed, format!("The server selected subprotocol {p:?}, which was not offered (RFC 6455 4.1 point 6).")),
                }
            };
            out.http_status = Some(101);
            if let Err(e) = echo_once(&mut conn, b"Hello after declined extensions", Duration::from_secs(2)) {
                out.behavior = Behavior::Failed;
                out.result = format!("The upgrade succeeded but {e}.");
            }
            close_now(&mut conn);
            out
        },
    ));
}

// ---- H.2 oversized requests --------------------------------------------------------------

fn oversized(cases: &mut Vec<CaseDef>) {
    cases.push(CaseDef::custom(
        "H.2.1",
        "Send an upgrade request with one 64 KiB header (X-Padding).",
        "HTTP 431 Request Header Fields Too Large (servers' default limit: 8192 octets for the request head). 400/413, another error, or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let pad = "a".repeat(64 * 1024);
            let req = request_with(env, "GET", |h| h.push(("X-Padding".into(), pad.clone())));
            judge_refusal(request_answer(env, &req), &[431], Behavior::Failed)
        },
    ));
    cases.push(CaseDef::custom(
        "H.2.2",
        "Send an upgrade request with 400 small headers (about 10 KiB in all).",
        "HTTP 431 (the request head is over the default 8192-octet limit; a server with a header-count limit hits that first). Another error or a bare close is NON-STRICT; an upgrade is FAILED.",
        10,
        |env: &Env| {
            let req = request_with(env, "GET", |h| {
                for i in 0..400 {
                    h.push((format!("X-H{i}"), "v".into()));
                }
            });
            judge_refusal(request_answer(env, &req), &[431], Behavior::Failed)
        },
    ));
}

// ---- H.3 slow clients --------------------------------------------------------------------

/// Feeds `conn` with `pieces` (one every `every`) until the server closes or `SLOW_LIMIT`.
fn slow_client(
    env: &Env,
    tcp_only: bool,
    first: &[u8],
    rest: &[u8],
    every: Duration,
) -> CustomOutcome {
    let start = Instant::now();
    let limit = start + SLOW_LIMIT;
    let conn = if tcp_only {
        Conn::connect_tcp(&env.target, start + env.timeout)
    } else {
        Conn::connect(&env.target, env.tls.as_ref(), start + env.timeout)
    };
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => return CustomOutcome::new(Behavior::Failed, format!("could not connect: {e:#}")),
    };
    conn.queue(first);
    let mut next = 0;
    let mut next_at = Instant::now() + every;
    let mut out = loop {
        if conn.input_closed() {
            break CustomOutcome::new(
                Behavior::Ok,
                format!(
                    "The server closed the connection after {:.1} s.",
                    start.elapsed().as_secs_f64()
                ),
            );
        }
        let now = Instant::now();
        if now >= limit {
            break CustomOutcome::new(
                Behavior::Informational,
                format!(
                    "The server still held the connection after {} s (its handshake timeout is longer, or there is none).",
                    SLOW_LIMIT.as_secs()
                ),
            );
        }
        if now >= next_at && next < rest.len() {
            conn.queue(&rest[next..next + 1]);
            next += 1;
            next_at = now + every;
        }
        let wake = if next < rest.len() {
            next_at.min(limit)
        } else {
            limit
        };
        conn.io(wake);
    };
    // The server may say why before closing (408 Request Timeout, 400).
    if let Ok(Some(resp)) = handshake::parse_response(conn.data()) {
        out.http_status = Some(resp.status);
        if resp.status == 101 {
            out.behavior = Behavior::Failed;
            out.result = "The server upgraded an incomplete request.".into();
        } else {
            out.result.push_str(&format!(
                " It answered HTTP {} {} first.",
                resp.status, resp.reason
            ));
        }
    }
    conn.abort();
    out
}

fn slow_clients(cases: &mut Vec<CaseDef>) {
    cases.push(CaseDef::custom(
        "H.3.1",
        "Send the first lines of an upgrade request, then nothing (slowloris).",
        "The server closes the connection when its handshake timeout expires (optionally after HTTP 408). Waited for at most 15 s: if the server still waits then, INFORMATIONAL.",
        20,
        |env: &Env| {
            let partial = format!("GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n", env.target.path, env.target.host_header);
            slow_client(env, false, partial.as_bytes(), b"", Duration::from_secs(1))
        },
    ));
    cases.push(CaseDef::custom(
        "H.3.2",
        "Send a valid upgrade request one octet every 500 ms (slowloris that keeps the connection busy).",
        "The server closes the connection when its handshake timeout expires, however steadily octets arrive (the timeout bounds the whole request). At most 15 s; INFORMATIONAL if the server still waits then.",
        20,
        |env: &Env| {
            let req = request_with(env, "GET", |h| h.push(("X-Slow".into(), "s".repeat(100))));
            slow_client(env, false, &req[..1], &req[1..], Duration::from_millis(500))
        },
    ));
    cases.push(CaseDef::custom(
        "H.3.3",
        "Open a TCP connection and send nothing at all (for wss://, not even a TLS ClientHello).",
        "The server closes the connection when its handshake timeout expires (for wss:// the timeout covers the TLS handshake). At most 15 s; INFORMATIONAL if the server still waits then.",
        20,
        |env: &Env| slow_client(env, true, b"", b"", Duration::from_secs(1)),
    ));
}

// ---- H.4 vanishing clients ---------------------------------------------------------------

#[derive(Clone, Copy)]
enum Vanish {
    FrameThenFin,
    FrameThenReset,
    RequestThenReset,
}

fn vanish(env: &Env, how: Vanish) -> CustomOutcome {
    let step = Duration::from_secs(2);
    let (mut b, _) = match ws_open(env, &[]) {
        Ok(x) => x,
        Err(e) => return CustomOutcome::new(Behavior::Failed, format!("connection B: {e}")),
    };
    if let Err(e) = echo_once(&mut b, b"B before", step) {
        return CustomOutcome::new(Behavior::Failed, format!("connection B, before: {e}"));
    }
    let mut a = match how {
        Vanish::FrameThenFin | Vanish::FrameThenReset => match ws_open(env, &[]) {
            Ok((mut a, _)) => {
                // Header of a 64 KiB binary frame, then 1000 of its octets.
                let mut bytes = Vec::new();
                let mask = Rng::new().mask();
                Header::new(opcode::BINARY, Some(mask), 65536).encode(&mut bytes);
                let mut body = vec![0xAB; 1000];
                frame::apply_mask(&mut body, mask, 0);
                bytes.extend_from_slice(&body);
                a.queue(&bytes);
                a
            }
            Err(e) => return CustomOutcome::new(Behavior::Failed, format!("connection A: {e}")),
        },
        Vanish::RequestThenReset => {
            match Conn::connect(&env.target, env.tls.as_ref(), Instant::now() + env.timeout) {
                Ok(mut a) => {
                    let req = handshake::request(
                        &env.target.host_header,
                        &env.target.path,
                        "dGhlIHNhbXBsZSBub25jZQ==",
                        &[],
                    );
                    a.queue(&req[..req.len() / 2]);
                    a
                }
                Err(e) => {
                    return CustomOutcome::new(Behavior::Failed, format!("connection A: {e:#}"))
                }
            }
        }
    };
    // Let the server read A's bytes, then make A vanish.
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        a.io(until);
    }
    match how {
        Vanish::FrameThenFin => a.abort(),
        Vanish::FrameThenReset | Vanish::RequestThenReset => a.abort_with_reset(),
    }
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    if let Err(e) = echo_once(&mut b, b"B after", step) {
        return CustomOutcome::new(
            Behavior::Failed,
            format!("connection B, after A vanished: {e}"),
        );
    }
    close_now(&mut b);
    match ws_open(env, &[]) {
        Ok((mut c, _)) => {
            let r = echo_once(&mut c, b"C after", step);
            close_now(&mut c);
            if let Err(e) = r {
                return CustomOutcome::new(Behavior::Failed, format!("new connection C: {e}"));
            }
        }
        Err(e) => return CustomOutcome::new(Behavior::Failed, format!("new connection C: {e}")),
    }
    CustomOutcome::new(
        Behavior::Ok,
        "Connection B echoed before and after A vanished, and a new connection C echoed too.",
    )
}

fn vanishing_clients(cases: &mut Vec<CaseDef>) {
    let variants = [
        ("H.4.1", Vanish::FrameThenFin, "On connection A, send the header of a 64 KiB binary frame and 1000 of its octets, then close TCP (FIN). Connection B echoes before and after; then a new connection C echoes."),
        ("H.4.2", Vanish::FrameThenReset, "As H.4.1, but A ends with a TCP reset (RST)."),
        ("H.4.3", Vanish::RequestThenReset, "On connection A, send half an upgrade request, then reset TCP (RST). Connection B echoes before and after; then a new connection C echoes."),
    ];
    for (id, how, desc) in variants {
        cases.push(CaseDef::custom(
            id,
            desc,
            "A's disappearance affects no other connection: every echo on B and C arrives.",
            15,
            move |env: &Env| vanish(env, how),
        ));
    }
}

// ---- H.5 frame abuse ---------------------------------------------------------------------

fn frame_abuse(cases: &mut Vec<CaseDef>) {
    cases.push(CaseDef::fuzz(
        "H.5.1",
        "Send an unmasked text frame.",
        "The connection is failed immediately (1002): RFC 6455 5.1, a server MUST close the connection on an unmasked client frame.",
        |s: &mut Session| {
            s.expect(Behavior::Ok, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR]));
            s.send(Frame::text("Hello, world!").unmasked());
            s.kill_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "H.5.2",
        "Send a binary frame whose 64-bit length has its most significant bit set, then 5 octets.",
        "The connection is failed immediately (1002, or 1009): RFC 6455 5.2, the most significant bit MUST be 0.",
        |s: &mut Session| {
            s.expect(Behavior::Ok, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[PROTOCOL_ERROR, TOO_BIG]));
            let mut bytes = Vec::new();
            Header { len: (1 << 63) | 5, form: LengthForm::Extended64, ..Header::new(opcode::BINARY, Some([1, 2, 3, 4]), 0) }
                .encode(&mut bytes);
            bytes.extend_from_slice(b"hello");
            s.send_raw(&bytes, None, false);
            s.kill_after(1.0);
        },
    ));
    cases.push(CaseDef::fuzz(
        "H.5.3",
        "Send the header of a binary frame announcing 1 GiB, then 1 KiB of it.",
        "The connection is failed with 1009 (message too big) as soon as the header is read, without waiting for the payload. 1002 is NON-STRICT.",
        |s: &mut Session| {
            s.expect(Behavior::Ok, vec![]);
            s.expect_close(ExpectedClose::by_peer(&[TOO_BIG]));
            let mask = [9, 8, 7, 6];
            let mut bytes = Vec::new();
            Header::new(opcode::BINARY, Some(mask), 1 << 30).encode(&mut bytes);
            let mut body = vec![0u8; 1024];
            frame::apply_mask(&mut body, mask, 0);
            bytes.extend_from_slice(&body);
            s.send_raw(&bytes, None, false);
            s.kill_after(2.0);
        },
    ));
    cases.push(
        CaseDef::fuzz(
            "H.5.4",
            "Send one binary frame of 16 MiB + 1 octet (one over the servers' default frame limit; 9.2.6 sends exactly 16 MiB).",
            "The connection is failed with 1009. 1002 is NON-STRICT; an echo is FAILED.",
            |s: &mut Session| {
                s.expect(Behavior::Ok, vec![]);
                s.expect_close(ExpectedClose::by_peer(&[TOO_BIG]));
                s.send(Frame::binary(vec![0x5a; (16 << 20) + 1]));
                s.kill_after(5.0);
            },
        )
        .budget(15),
    );
    cases.push(
        CaseDef::fuzz(
            "H.5.5",
            "Send a binary message of 65 fragments of 1 MiB (one MiB over the servers' default 64 MiB message limit).",
            "The connection is failed with 1009 once the limit is crossed. 1002 is NON-STRICT; an echo is FAILED.",
            |s: &mut Session| {
                s.expect(Behavior::Ok, vec![]);
                s.expect_close(ExpectedClose::by_peer(&[TOO_BIG]));
                let chunk = vec![0x5a; 1 << 20];
                for i in 0..65 {
                    let op = if i == 0 { opcode::BINARY } else { opcode::CONTINUATION };
                    s.send(Frame::new(op, &chunk).fin(i == 64));
                    if !s.is_open() {
                        break;
                    }
                }
                s.kill_after(5.0);
            },
        )
        .budget(20),
    );
    cases.push(
        CaseDef::fuzz(
            "H.5.6",
            "Send a 5-octet text message whose length is encoded in the 16-bit form (non-minimal).",
            "Undefined by the spec for the receiver (RFC 6455 5.2 makes the minimal form a MUST for the sender): echo or close 1002, either is reported.",
            |s: &mut Session| {
                s.manual(Behavior::Informational, "");
                s.expect_close(ExpectedClose::by_me_unclean(&[NORMAL, PROTOCOL_ERROR]));
                s.send(Frame::text("hello").form(LengthForm::Extended16));
                let result = match s.next_event(Instant::now() + Duration::from_secs(1)) {
                    Some(e) if e == Event::text("hello") => {
                        "The server accepted the non-minimal length and echoed the message.".to_string()
                    }
                    Some(e) => format!("The server answered with {}.", e.describe()),
                    None => match s.remote_close_code {
                        Some(code) => format!("The server rejected the frame with close {code}."),
                        None if s.is_open() => "No echo and no close within 1 s.".to_string(),
                        None => "The server dropped the connection without a close frame.".to_string(),
                    },
                };
                s.set_result(Behavior::Informational, result);
                s.send_close(Some(NORMAL), None);
                s.close_after(0.0);
            },
        )
        .rule(Rule::Manual),
    );
}

// ---- H.6 batching ------------------------------------------------------------------------

fn batching(cases: &mut Vec<CaseDef>) {
    let mut pipelined = Vec::new();
    pipelined.extend(frame::encode_frame(
        Header::new(opcode::TEXT, Some([0x11, 0x22, 0x33, 0x44]), 0),
        b"pipelined with the upgrade request",
    ));
    cases.push(
        CaseDef::fuzz(
            "H.6.1",
            "Send a text frame in the same write as the upgrade request, before the 101 arrives.",
            "The frame is echoed: octets read together with the request must not be lost. Clean close with normal code.",
            |s: &mut Session| {
                s.expect(Behavior::Ok, vec![Event::text("pipelined with the upgrade request")]);
                s.expect_close(ExpectedClose::by_me(&[NORMAL]));
                s.kill_after(2.0);
            },
        )
        .pipelined(pipelined),
    );
    cases.push(CaseDef::fuzz(
        "H.6.2",
        "Send 100 small text messages in a single write.",
        "All 100 are echoed, in order. Clean close with normal code.",
        |s: &mut Session| {
            let msgs: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
            s.expect(Behavior::Ok, msgs.iter().map(Event::text).collect());
            s.expect_close(ExpectedClose::by_me(&[NORMAL]));
            let mut rng = Rng::new();
            let mut bytes = Vec::new();
            for m in &msgs {
                bytes.extend(frame::encode_frame(
                    Header::new(opcode::TEXT, Some(rng.mask()), 0),
                    m.as_bytes(),
                ));
            }
            s.send_raw(&bytes, None, false);
            s.kill_after(3.0);
        },
    ));
}
