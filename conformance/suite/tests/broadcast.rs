//! `--broadcast`: every data message a connection sends reaches every other open connection,
//! whole and in the order the server received it, and nothing comes back to the sender; a
//! receiver that does not read is closed with 1008 (RFC 6455 §7.4.1) while the others go on.
//!
//! Every connection of the server receives every publish, so the cases run one after another
//! on one endpoint at a time (not in parallel as the other suites do).

use wsport_conformance::prelude::*;

/// Long enough for a publish to cross the server, short enough to keep the suite quick.
const QUIET: Duration = Duration::from_millis(300);

#[test]
fn broadcast() {
    for_each_server("broadcast", |config| {
        let server = Launch::new(config).args(&["--broadcast"]).start()?;
        run_server_case(&server, "broadcast", |server| {
            for ep in server.endpoints() {
                every_other_connection_gets_every_message_in_order(ep)
                    .map_err(|e| format!("{ep}: in order: {e}"))?;
                a_fragmented_message_arrives_whole_between_other_messages(ep)
                    .map_err(|e| format!("{ep}: fragments: {e}"))?;
                a_receiver_that_does_not_read_is_closed_with_1008(ep)
                    .map_err(|e| format!("{ep}: too slow: {e}"))?;
            }
            Ok(())
        })
    });
}

/// Connections spread over the threads by SO_REUSEPORT (12 over 3 all on one thread: one
/// chance in 3^11), so publishes must cross threads.
#[test]
fn broadcast_across_threads() {
    for_each_server("broadcast_across_threads", |config| {
        let server = Launch::new(config)
            .args(&["--broadcast", "--threads", "3"])
            .start()?;
        run_server_case(&server, "broadcast_across_threads", |server| {
            for ep in server.endpoints() {
                every_other_gets_every_message(ep, 12).map_err(|e| format!("{ep}: {e}"))?;
            }
            Ok(())
        })
    });
}

fn upgrade_all(ep: &Endpoint, n: usize) -> Result<Vec<RawConn>, String> {
    (0..n).map(|_| RawConn::upgrade(ep)).collect()
}

/// Nothing arrives on `conn` for a while.
fn expect_nothing(conn: &mut RawConn, who: &str) -> Outcome {
    match conn.next_event(QUIET) {
        Event::Timeout(_) => Ok(()),
        other => Err(format!("{who}: expected nothing; got {other}")),
    }
}

fn every_other_connection_gets_every_message_in_order(ep: &Endpoint) -> Outcome {
    every_other_gets_every_message(ep, 4)
}

/// One publisher and `n - 1` receivers; then a receiver publishes in turn.
fn every_other_gets_every_message(ep: &Endpoint, n: usize) -> Outcome {
    let mut conns = upgrade_all(ep, n)?;
    let sizes = [0, 1, 64, 125, 126, 1000, 65_535, 65_536, 70_000];
    let messages: Vec<(u8, Vec<u8>)> = (0..60)
        .map(|i| {
            let opcode = if i % 2 == 0 {
                opcode::TEXT
            } else {
                opcode::BINARY
            };
            let mut payload = format!("message {i:03} ").into_bytes();
            payload.resize(sizes[i % sizes.len()].max(payload.len()), b'x');
            (opcode, payload)
        })
        .collect();
    for (opcode, payload) in &messages {
        let frame = match *opcode {
            opcode::TEXT => Frame::text(payload.as_slice()),
            _ => Frame::binary(payload.as_slice()),
        };
        conns[0].send(&frame)?;
    }
    for (index, conn) in conns.iter_mut().enumerate().skip(1) {
        for (opcode, payload) in &messages {
            let message = conn.read_message()?;
            conn.check_message(&message, *opcode, payload, "the publish, in order")
                .map_err(|e| format!("receiver {index}: {e}"))?;
        }
    }
    expect_nothing(&mut conns[0], "the publisher (no echo)")?;
    // A receiver publishes in turn: the first publisher gets it, and so do the others.
    conns[2].send(&Frame::text("from receiver 2"))?;
    for index in (0..n).filter(|&i| i != 2) {
        conns[index].expect_echo(opcode::TEXT, b"from receiver 2")?;
    }
    expect_nothing(&mut conns[2], "receiver 2 (no echo)")?;
    // Pings are still answered to the sender alone.
    conns[1].send(&Frame::ping("still here"))?;
    let pong = conns[1].read_frame()?;
    ensure!(
        pong.opcode == opcode::PONG && pong.payload == b"still here",
        "expected the pong \"still here\"; got {pong}"
    );
    expect_nothing(&mut conns[n - 1], "a receiver, after another's ping")?;
    Ok(())
}

/// Fragments of one message must not interleave with another message (§5.4): the server
/// joins them and publishes the message whole, after the message that completed first.
fn a_fragmented_message_arrives_whole_between_other_messages(ep: &Endpoint) -> Outcome {
    let mut conns = upgrade_all(ep, 3)?;
    conns[0].send(&Frame::text("hel").fin(false))?;
    conns[0].send(&Frame::continuation("lo ").fin(false))?;
    std::thread::sleep(QUIET / 3);
    conns[1].send(&Frame::binary("in between"))?;
    std::thread::sleep(QUIET / 3);
    conns[0].send(&Frame::continuation("world"))?;
    let receiver = &mut conns[2];
    let first = receiver.read_message()?;
    receiver.check_message(
        &first,
        opcode::BINARY,
        b"in between",
        "the whole message first",
    )?;
    let second = receiver.read_message()?;
    receiver.check_message(&second, opcode::TEXT, b"hello world", "the joined message")?;
    ensure!(
        second.frames == 1,
        "the joined message came in {} frames; expected one",
        second.frames
    );
    Ok(())
}

/// A receiver that stops reading falls behind the publishes; past the server's bound it is
/// closed with 1008, while another receiver gets every message.
fn a_receiver_that_does_not_read_is_closed_with_1008(ep: &Endpoint) -> Outcome {
    let mut conns = upgrade_all(ep, 3)?;
    // 40 MiB in all: more than the kernel's buffers on both sides and the server's 4 MiB.
    let payload = ws::binary_of_len(1 << 20);
    let total = 40;
    let mut reader = conns.remove(2);
    let mut slow = conns.remove(1);
    let mut publisher = conns.remove(0);
    // Each publish is read by the fast receiver before the next, so only the slow one lags.
    for i in 0..total {
        publisher.send(&Frame::binary(payload.as_slice()))?;
        let message = reader.read_message()?;
        ensure!(
            message.payload.len() == 1 << 20,
            "message {i}: {} bytes, expected 1 MiB",
            message.payload.len()
        );
    }
    let mut received = 0;
    loop {
        match slow.next_event(READ_TIMEOUT) {
            Event::Frame(frame) if frame.opcode == opcode::CLOSE => {
                ensure!(
                    frame.close_code() == Some(1008),
                    "after {received} frames: expected close 1008; got {frame}"
                );
                return Ok(());
            }
            Event::Frame(_) => received += 1,
            other => {
                return Err(format!(
                    "after {received} frames: expected a close 1008; got {other}"
                ))
            }
        }
    }
}
