//! `--raw-tcp`, the runtime floor: every server echoes the bytes of a plain TCP connection as
//! they came — no upgrade, no frames — so that the benchmark can subtract the runtime's own
//! cost from a WebSocket echo's. An upgrade request is data here: it must come back verbatim,
//! not be answered.

use std::io::{Read, Write};

use wsport_conformance::prelude::*;
use wsport_conformance::raw::tcp_connect;
use wsport_conformance::tcp::Tcp;

#[test]
fn raw_tcp_echoes_bytes_verbatim() {
    for_each_server("raw_tcp_echoes_bytes_verbatim", |config| {
        let server = Launch::new(config)
            .listeners(&[Scheme::Ws])
            .args(&["--raw-tcp"])
            .start()?;
        // One after the other: the last one stops the server.
        collect([
            run_server_case(
                &server,
                "chunks_of_every_size",
                chunks_of_every_size_come_back_in_order,
            ),
            run_server_case(
                &server,
                "an_upgrade_request_is_data",
                an_upgrade_request_is_echoed_not_answered,
            ),
            run_server_case(&server, "connections_do_not_mix", connections_do_not_mix),
            run_server_case(
                &server,
                "sigterm_ends_raw_connections",
                sigterm_ends_raw_connections,
            ),
        ])
    });
}

#[test]
fn raw_tcp_refuses_wss() {
    for_each_server("raw_tcp_refuses_wss", |config| {
        match Launch::new(config).args(&["--raw-tcp"]).start() {
            Ok(_) => Err("--raw-tcp with a wss:// listener was accepted".into()),
            Err(e) if e.contains("--raw-tcp") => Ok(()),
            Err(e) => Err(format!("refused, but without naming --raw-tcp: {e}")),
        }
    });
}

fn connect(server: &Server) -> Result<Tcp, String> {
    let ep = server.endpoint(Scheme::Ws);
    tcp_connect(ep.addr).map_err(|e| format!("{ep}: connect: {e}"))
}

/// `len` bytes that differ from connection to connection and from offset to offset, so a
/// lost, reordered or crossed chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7) ^ seed.wrapping_add((i >> 8) as u8))
        .collect()
}

/// Send `data`, then read until as many bytes came back, and compare.
fn round_trip(stream: &mut Tcp, data: &[u8]) -> Outcome {
    stream.write_all(data).context("write")?;
    let mut back = vec![0u8; data.len()];
    stream
        .read_exact(&mut back)
        .map_err(|e| format!("after {} bytes sent: read: {e}", data.len()))?;
    ensure!(
        back == data,
        "{} bytes sent, other bytes came back (first difference at offset {})",
        data.len(),
        back.iter().zip(data).position(|(a, b)| a != b).unwrap_or(0)
    );
    Ok(())
}

fn chunks_of_every_size_come_back_in_order(server: &Server) -> Outcome {
    let mut stream = connect(server)?;
    // A byte, a small message, more than one read's room (16 KiB), and a large burst.
    for (i, len) in [1usize, 64, 16 * 1024 + 1, 300_000].into_iter().enumerate() {
        round_trip(&mut stream, &pattern(len, i as u8)).context(format!("{len} bytes"))?;
    }
    Ok(())
}

fn an_upgrade_request_is_echoed_not_answered(server: &Server) -> Outcome {
    let mut stream = connect(server)?;
    let request = Request::upgrade(server.endpoint(Scheme::Ws)).to_bytes();
    round_trip(&mut stream, &request)
}

fn connections_do_not_mix(server: &Server) -> Outcome {
    let mut all = (0..8)
        .map(|_| connect(server))
        .collect::<Result<Vec<_>, _>>()?;
    for round in 0..3u8 {
        for (i, stream) in all.iter_mut().enumerate() {
            stream
                .write_all(&pattern(64, round * 8 + i as u8))
                .context("write")?;
        }
        for (i, stream) in all.iter_mut().enumerate() {
            let mut back = [0u8; 64];
            stream.read_exact(&mut back).context("read")?;
            ensure!(
                back[..] == pattern(64, round * 8 + i as u8)[..],
                "connection {i}, round {round}: another connection's bytes came back"
            );
        }
    }
    Ok(())
}

/// Last (it stops the server): SIGTERM closes the raw connections and the server exits.
fn sigterm_ends_raw_connections(server: &Server) -> Outcome {
    let mut stream = connect(server)?;
    round_trip(&mut stream, b"still here")?;
    server.sigterm()?;
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    ensure!(
        rest.is_empty(),
        "after SIGTERM, {} unexpected bytes arrived",
        rest.len()
    );
    ensure!(
        read.is_ok() || server.wait_exit(Duration::from_secs(10)).is_ok(),
        "the connection neither closed nor ended with the server: {read:?}"
    );
    let status = server.wait_exit(Duration::from_secs(10))?;
    ensure!(status.success(), "the server exited with {status}");
    Ok(())
}
