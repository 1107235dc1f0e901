//! Size limits (--max-frame-bytes, --max-message-bytes): exactly at the limit passes, over
//! it is close 1009 (RFC 6455 §7.4.1), decided from the header, without buffering.

use wsport_conformance::prelude::*;

const MAX_FRAME: usize = 65536;
const MAX_MESSAGE: usize = 100_000;

#[test]
fn frame_and_message_limits() {
    for_each_server("frame_and_message_limits", |config| {
        let server = Launch::new(config)
            .args(&[
                "--max-frame-bytes",
                &MAX_FRAME.to_string(),
                "--max-message-bytes",
                &MAX_MESSAGE.to_string(),
            ])
            .start()?;
        run_cases(
            &server,
            cases![
                frame_at_limit,
                frame_over_limit_by_header,
                message_at_limit,
                message_over_limit_in_fragments,
                length_2_pow_63_minus_1,
            ],
        )
    });
}

fn frame_at_limit(ep: &Endpoint) -> Outcome {
    let payload = ws::binary_of_len(MAX_FRAME);
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::binary(payload.clone()))?;
    conn.expect_echo(opcode::BINARY, &payload)
}

/// The header announces 1 MiB and no payload follows: the server must answer 1009 from
/// the header alone rather than wait for (or buffer) the payload.
fn frame_over_limit_by_header(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send_header(&Frame::binary(Vec::new()).announce(1 << 20))?;
    conn.expect_close(&[1009]).map(drop)
}

/// 40000 + 40000 + 20000 = exactly --max-message-bytes.
fn message_at_limit(ep: &Endpoint) -> Outcome {
    let payload = ws::binary_of_len(MAX_MESSAGE);
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::binary(&payload[..40_000]).fin(false))?;
    conn.send(&Frame::continuation(&payload[40_000..80_000]).fin(false))?;
    conn.send(&Frame::continuation(&payload[80_000..]))?;
    conn.expect_echo(opcode::BINARY, &payload)
}

/// 3 × 40000 > 100000: each frame is within --max-frame-bytes, the message is not. The
/// server may decide on the third header; its payload is sent after it anyway, ignoring
/// write errors (the server may already have closed).
fn message_over_limit_in_fragments(ep: &Endpoint) -> Outcome {
    let chunk = ws::binary_of_len(40_000);
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::binary(chunk.clone()).fin(false))?;
    conn.send(&Frame::continuation(chunk.clone()).fin(false))?;
    let third = Frame::continuation(chunk);
    conn.send_header(&third)?;
    let mut masked = third.payload.clone();
    wsport_conformance::frame::apply_mask(&mut masked, third.mask.expect("masked"), 0);
    let _ = conn.send_bytes(&masked, "the third fragment's 40000 payload bytes");
    conn.expect_close(&[1009]).map(drop)
}

/// The largest legal length: 1009 (1002 accepted), no crash, others still served.
fn length_2_pow_63_minus_1(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send_header(&Frame::binary(Vec::new()).announce(u64::MAX >> 1))?;
    conn.expect_close(&[1009, 1002])?;
    let mut client = ws::connect(ep).context("a new connection after the 2^63-1 header")?;
    ws::echo(&mut client, Message::text("still serving"))
}
