//! Data framing (RFC 6455 §5): echo of every length form, fragmentation, control frames
//! interleaved with fragments, pipelining, frames split across writes.

use wsport_conformance::prelude::*;

#[test]
fn echo() {
    for_each_server("echo", |config| {
        let server = Launch::new(config).start()?;
        run_cases(
            &server,
            cases![
                text_sizes,
                binary_sizes,
                binary_16_mib,
                pipelined_100,
                fragmented_text_splitting_utf8,
                fragments_with_empty_frames,
                fragmented_binary,
                ping_inside_fragmented_message,
                ping_pong,
                unsolicited_pong_ignored,
                frame_split_across_writes,
                many_frames_in_one_write,
                valid_utf8_edges,
            ],
        )
    });
}

/// Around every length-encoding boundary of §5.2 (7-bit, 16-bit, 64-bit).
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn text_sizes(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    for size in SIZES {
        ws::echo(&mut client, Message::text(ws::text_of_len(size)))?;
    }
    ws::close(&mut client)
}

fn binary_sizes(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    for size in SIZES {
        ws::echo(&mut client, Message::binary(ws::binary_of_len(size)))?;
    }
    ws::close(&mut client)
}

/// 16 MiB is the default --max-frame-bytes: exactly at the limit must pass.
fn binary_16_mib(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    ws::set_read_timeout(&client, Duration::from_secs(30));
    ws::echo(&mut client, Message::binary(ws::binary_of_len(16 << 20)))?;
    ws::close(&mut client)
}

/// 100 messages written before reading any: echoed complete and in order.
fn pipelined_100(ep: &Endpoint) -> Outcome {
    let mut client = ws::connect(ep)?;
    let messages: Vec<Message> = (0..100)
        .map(|i| match i % 2 {
            0 => Message::text(format!("message {i} {}", ws::text_of_len(i))),
            _ => Message::binary(ws::binary_of_len(i * 3)),
        })
        .collect();
    for message in &messages {
        client
            .write(message.clone())
            .context("writing pipelined messages")?;
    }
    client.flush().context("flushing 100 pipelined messages")?;
    for (i, message) in messages.iter().enumerate() {
        let sent = format!(
            "100 pipelined messages; message {i} ({})",
            ws::describe(message)
        );
        ws::expect_message(&mut client, message, &sent)?;
    }
    ws::close(&mut client)
}

/// Three frames; "€" (3 bytes) and "𝄞" (4 bytes) are split across frame boundaries, which
/// is valid: UTF-8 is checked over the message, not per frame (§5.6, §8.1).
fn fragmented_text_splitting_utf8(ep: &Endpoint) -> Outcome {
    let text = "fragments: a€b𝄞c".as_bytes();
    let euro = text.iter().position(|&b| b == 0xE2).expect("euro sign");
    let clef = text.iter().position(|&b| b == 0xF0).expect("clef");
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::text(&text[..euro + 1]).fin(false))?;
    conn.send(&Frame::continuation(&text[euro + 1..clef + 2]).fin(false))?;
    conn.send(&Frame::continuation(&text[clef + 2..]))?;
    conn.expect_echo(opcode::TEXT, text)
}

fn fragments_with_empty_frames(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::text("").fin(false))?;
    conn.send(&Frame::continuation("middle").fin(false))?;
    conn.send(&Frame::continuation(""))?;
    conn.expect_echo(opcode::TEXT, b"middle")
}

fn fragmented_binary(ep: &Endpoint) -> Outcome {
    let payload = ws::binary_of_len(200_000);
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::binary(&payload[..100]).fin(false))?;
    conn.send(&Frame::continuation(&payload[100..70_000]).fin(false))?;
    conn.send(&Frame::continuation(&payload[70_000..]))?;
    conn.expect_echo(opcode::BINARY, &payload)
}

/// Control frames may come between fragments (§5.4): the ping is answered, the message
/// still arrives whole. The pong may come before, between or after echoed fragments.
fn ping_inside_fragmented_message(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::text("hel").fin(false))?;
    conn.send(&Frame::ping("in the middle"))?;
    conn.send(&Frame::continuation("lo"))?;
    let message = conn.read_message()?;
    let pongs: Vec<_> = message
        .controls
        .iter()
        .filter(|f| f.opcode == opcode::PONG)
        .collect();
    let pong_ok = pongs.len() == 1 && pongs[0].payload == b"in the middle";
    if !pong_ok {
        let got: Vec<_> = message.controls.iter().map(ToString::to_string).collect();
        return Err(conn.fail("one pong \"in the middle\"", format!("{got:?}")));
    }
    conn.check_message(&message, opcode::TEXT, b"hello", "the message \"hello\"")
}

/// A pong carries the ping's payload (§5.5.3), for empty, short and maximal (125) payloads.
fn ping_pong(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    for payload in [Vec::new(), b"hello".to_vec(), ws::binary_of_len(125)] {
        conn.send(&Frame::ping(payload.clone()))?;
        let pong = conn.read_frame()?;
        if pong.opcode != opcode::PONG || !pong.fin || pong.payload != payload {
            let expected = format!("a pong with the {}-byte ping payload", payload.len());
            return Err(conn.fail(expected, &pong));
        }
    }
    Ok(())
}

/// An unsolicited pong is a heartbeat (§5.5.3): no answer, connection stays usable.
fn unsolicited_pong_ignored(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::pong("unsolicited"))?;
    conn.send(&Frame::text("still here"))?;
    conn.expect_echo(opcode::TEXT, b"still here")
}

/// One frame dribbled out: header byte by byte, then the payload in uneven pieces.
fn frame_split_across_writes(ep: &Endpoint) -> Outcome {
    let payload = ws::binary_of_len(70_000);
    let frame = Frame::binary(payload.clone()).encode();
    let mut conn = RawConn::upgrade(ep)?;
    let pieces = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7, 1000, 30_000];
    conn.send_in_pieces(
        &frame,
        &pieces,
        Duration::from_millis(5),
        "binary fin=1 len=70000",
    )?;
    conn.expect_echo(opcode::BINARY, &payload)
}

/// Many small frames in one write: the server must not stop after the first.
fn many_frames_in_one_write(ep: &Endpoint) -> Outcome {
    let mut conn = RawConn::upgrade(ep)?;
    let frames: Vec<_> = (0..20).map(|i| Frame::text(format!("batch {i}"))).collect();
    conn.send_all(&frames)?;
    for i in 0..20 {
        conn.expect_echo(opcode::TEXT, format!("batch {i}").as_bytes())?;
    }
    Ok(())
}

/// Valid UTF-8 at the edges of the ranges: U+0000, U+007F, U+0080, U+07FF, U+0800, U+FFFF,
/// U+10000, U+10FFFF, and the last code point before the surrogates, U+D7FF.
fn valid_utf8_edges(ep: &Endpoint) -> Outcome {
    let text = "\u{0}\u{7f}\u{80}\u{7ff}\u{800}\u{d7ff}\u{e000}\u{fffd}\u{ffff}\u{10000}\u{10ffff}";
    let mut conn = RawConn::upgrade(ep)?;
    conn.send(&Frame::text(text))?;
    conn.expect_echo(opcode::TEXT, text.as_bytes())
}
