//! wsport-uring with a starved provided-buffer ring: 2 buffers of 512 bytes for 40
//! connections, so that receives run out of buffers (ENOBUFS, re-armed once buffers return),
//! frames span many buffers (kept in the spill while partial) and bytes arrive while replies
//! are in flight. Every message must still come back whole and in order, on ws and wss.
//! Runs only where the `uring` config is selected (and io_uring is available).

use wsport_conformance::prelude::*;

const CONNECTIONS: usize = 40;
/// Messages pipelined per connection before reading the echoes back.
const PIPELINE: usize = 4;
/// Smaller than, equal to and far larger than a 512-byte buffer.
const SIZES: [usize; 5] = [1, 100, 506, 3000, 70_000];

#[test]
fn a_starved_buffer_ring_loses_nothing() {
    for_each_server("a_starved_buffer_ring_loses_nothing", |config| {
        if config.name != "uring" {
            return Ok(());
        }
        let server = Launch::new(config)
            .args(&["--buffers", "2", "--buffer-size", "512"])
            .start()?;
        run_cases(&server, cases![pipelined_echoes])
    });
}

fn pipelined_echoes(ep: &Endpoint) -> Outcome {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        clients.push(ws::connect(ep).map_err(|e| format!("connection {i}: {e}"))?);
    }
    for (round, size) in SIZES.iter().enumerate() {
        let messages: Vec<Message> = (0..PIPELINE)
            .map(|k| {
                let mut payload = ws::binary_of_len(*size);
                payload[0] = (round * PIPELINE + k) as u8;
                Message::binary(payload)
            })
            .collect();
        for (i, client) in clients.iter_mut().enumerate() {
            for message in &messages {
                client
                    .send(message.clone())
                    .map_err(|e| format!("connection {i}: sending {size} B: {e}"))?;
            }
        }
        for (i, client) in clients.iter_mut().enumerate() {
            for message in &messages {
                ws::expect_message(client, message, &format!("{size} B pipelined"))
                    .map_err(|e| format!("connection {i}: {e}"))?;
            }
        }
    }
    for client in &mut clients {
        ws::close(client)?;
    }
    Ok(())
}
