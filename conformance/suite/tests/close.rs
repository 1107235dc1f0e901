//! Failing the connection (RFC 6455 §7.1.7) and the closing handshake (§5.5.1, §7.4).
//!
//! "close 1002" means: the server sends a close frame with status 1002, then closes TCP
//! without waiting for the client. Each case sends exactly the offending frames and nothing
//! after them, so a reset cannot hide the close frame.

use wsport_conformance::prelude::*;

#[test]
fn protocol_errors() {
    for_each_server("protocol_errors", |config| {
        let server = Launch::new(config).start()?;
        run_cases(
            &server,
            cases![
                unmasked_frame,
                rsv_bits,
                reserved_opcodes,
                ping_payload_126,
                fragmented_ping,
                continuation_without_start,
                new_message_during_fragmented,
                length_with_msb_set,
                length_2_pow_63_minus_1,
            ],
        )
    });
}

#[test]
fn invalid_utf8() {
    for_each_server("invalid_utf8", |config| {
        let server = Launch::new(config).start()?;
        run_cases(
            &server,
            cases![
                invalid_utf8_single_frame,
                invalid_utf8_sequences,
                invalid_utf8_in_first_fragment_fails_fast,
                truncated_utf8_at_end_of_message,
            ],
        )
    });
}

#[test]
fn closing_handshake() {
    for_each_server("closing_handshake", |config| {
        let server = Launch::new(config).start()?;
        run_cases(
            &server,
            cases![
                close_1000_with_reason,
                close_empty,
                close_one_byte_payload,
                close_codes_invalid,
                close_codes_valid,
                close_reason_invalid_utf8,
                close_reason_max_length,
                data_after_close_is_ignored,
                close_reply_then_a_clean_eof,
                bytes_behind_the_close_frame_get_the_reply_and_a_clean_eof,
            ],
        )
    });
}

/// Upgrade, send `frames` one write each, expect close `code` then EOF.
fn expect_failure(ep: &Endpoint, frames: &[Frame], code: u16) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    for frame in frames {
        conn.send(frame)?;
    }
    conn.expect_close(&[code]).map(drop)
}

// ---- 1002: protocol errors ---------------------------------------------------------------

/// Client frames must be masked (§5.1).
fn unmasked_frame(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::text("naked").unmasked()], 1002)
}

/// No extension was negotiated, so every RSV bit must be 0 (§5.2).
fn rsv_bits(ep: &Endpoint) -> Outcome {
    for rsv in [0b100, 0b010, 0b001] {
        expect_failure(ep, &[Frame::text("reserved").rsv(rsv)], 1002)?;
    }
    Ok(())
}

/// 0x3-0x7 and 0xB-0xF are reserved (§5.2).
fn reserved_opcodes(ep: &Endpoint) -> Outcome {
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        expect_failure(ep, &[Frame::new(opcode, "?")], 1002)?;
    }
    Ok(())
}

/// Control frame payloads are at most 125 bytes (§5.5).
fn ping_payload_126(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::ping(vec![b'p'; 126])], 1002)
}

/// Control frames must not be fragmented (§5.5).
fn fragmented_ping(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::ping("part").fin(false)], 1002)
}

fn continuation_without_start(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::continuation("orphan")], 1002)
}

/// A new data frame while a fragmented message is open (§5.4).
fn new_message_during_fragmented(ep: &Endpoint) -> Outcome {
    let frames = [Frame::text("first ").fin(false), Frame::text("second")];
    expect_failure(ep, &frames, 1002)
}

/// "the most significant bit MUST be 0" (§5.2); sent as a header only.
fn length_with_msb_set(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send_header(&Frame::binary(Vec::new()).announce((1 << 63) | 5))?;
    conn.expect_close(&[1002]).map(drop)
}

/// The largest legal length: far over any limit, so 1009 (1002 accepted); no crash, and
/// the listener keeps serving.
fn length_2_pow_63_minus_1(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send_header(&Frame::binary(Vec::new()).announce(u64::MAX >> 1))?;
    conn.expect_close(&[1009, 1002])?;
    let mut client = ws::connect(ep).context("a new connection after the 2^63-1 header")?;
    ws::echo(&mut client, Message::text("still serving"))
}

// ---- 1007: invalid UTF-8 -----------------------------------------------------------------

fn invalid_utf8_single_frame(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::text(b"ab\xffcd".to_vec())], 1007)
}

/// Overlong forms, surrogates, code points past U+10FFFF, a stray continuation byte.
fn invalid_utf8_sequences(ep: &Endpoint) -> Outcome {
    let sequences: [&[u8]; 5] = [
        b"\xc0\xaf",         // overlong '/'
        b"\xed\xa0\x80",     // U+D800, a surrogate
        b"\xf4\x90\x80\x80", // U+110000
        b"x\x80y",           // continuation byte without a lead
        b"\xe2\x82\x28",     // lead byte followed by a non-continuation
    ];
    for bytes in sequences {
        expect_failure(ep, &[Frame::text(bytes.to_vec())], 1007)?;
    }
    Ok(())
}

/// 0xFF can never start valid UTF-8, so the server must fail on the first fragment, without
/// waiting for the rest of the message (§8.1: fail "as soon as" it is invalid).
fn invalid_utf8_in_first_fragment_fails_fast(ep: &Endpoint) -> Outcome {
    let first = Frame::text(b"valid start \xff then garbage".to_vec()).fin(false);
    expect_failure(ep, &[first], 1007)
}

/// A sequence cut short by the end of the message is invalid, though every prefix was a
/// valid beginning.
fn truncated_utf8_at_end_of_message(ep: &Endpoint) -> Outcome {
    let frames = [
        Frame::text("abc").fin(false),
        Frame::continuation(b"d\xe2\x82".to_vec()),
    ];
    expect_failure(ep, &frames, 1007)
}

// ---- the closing handshake ---------------------------------------------------------------

fn close_1000_with_reason(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::close(1000, b"bye"))?;
    conn.expect_close_reply(Some(1000)).map(drop)
}

/// An empty close payload is valid (§5.5.1) and means "no status" (1005).
fn close_empty(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::close_raw(Vec::new()))?;
    conn.expect_close_reply(None).map(drop)
}

/// A close payload is empty or starts with a 2-byte code; one byte is malformed.
fn close_one_byte_payload(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::close_raw(vec![0x03])], 1002)
}

/// Codes that must not appear on the wire (§7.4.1, §7.4.2): below 1000, 1004-1006
/// (reserved / internal), 1015 (internal), unassigned 1016-2999, above 4999.
fn close_codes_invalid(ep: &Endpoint) -> Outcome {
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        expect_failure(ep, &[Frame::close(code, b"")], 1002)?;
    }
    Ok(())
}

/// Defined codes (1000-1003, 1007-1014) and the registered/private ranges 3000-4999.
fn close_codes_valid(ep: &Endpoint) -> Outcome {
    let codes = (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3999, 4000, 4999]);
    for code in codes {
        let mut conn = RawConn::upgrade(ep)?;
        conn.send(&Frame::close(code, b"fine"))?;
        conn.expect_close_reply(Some(code))?;
    }
    Ok(())
}

/// The close reason is UTF-8 (§5.5.1); invalid UTF-8 there is 1007.
fn close_reason_invalid_utf8(ep: &Endpoint) -> Outcome {
    expect_failure(ep, &[Frame::close(1000, b"\xff\xfe")], 1007)
}

/// 2-byte code + 123-byte reason = the maximal 125-byte control payload.
fn close_reason_max_length(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::close(1000, ws::text_of_len(123).as_bytes()))?;
    conn.expect_close_reply(Some(1000)).map(drop)
}

/// After a close frame nothing more is processed (§5.5.1): a text frame sent right behind
/// it (same write) must not be echoed.
fn data_after_close_is_ignored(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send_all(&[Frame::close(1000, b""), Frame::text("too late")])?;
    conn.expect_close_reply(Some(1000)).map(drop)
}

/// The client's close frame is the last thing it sends (§5.5.1): the server answers it, then
/// closes TCP, and the client reads the whole answer, then EOF, never a reset. A server that
/// closes before its answer is out, or with input left unread (which makes the kernel reset
/// the connection, §7.1.1), fails here.
fn close_reply_then_a_clean_eof(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::close(1000, b"bye"))?;
    let close = conn.expect_close_reply_frame(Some(1000))?;
    conn.expect_eof(
        READ_TIMEOUT,
        &format!("a clean EOF after the close reply ({close})"),
    )
}

/// A client that breaks §5.5.1 by sending bytes behind its close frame, in the same write and
/// more than one read takes: the server must still get its answer to the client, so it reads
/// and discards the rest before it closes; closing with it unread would reset the connection.
fn bytes_behind_the_close_frame_get_the_reply_and_a_clean_eof(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    let mut bytes = Frame::close(1000, b"bye").encode();
    bytes.resize(bytes.len() + 256 * 1024, 0xa5);
    conn.send_bytes(&bytes, "close 1000 + 256 KiB of garbage")?;
    let close = conn.expect_close_reply_frame(Some(1000))?;
    conn.expect_eof(
        READ_TIMEOUT,
        &format!("a clean EOF after the close reply ({close})"),
    )
}
