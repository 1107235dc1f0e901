//! The session is sans-IO: its deadlines come from the `now` its caller passes, never from a
//! clock of its own, so a runtime (or a test) that drives time by hand gets the deadlines
//! it computed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use wsport_server_common::session::Session;
use wsport_server_common::{ConnectionLimit, Counters, Scheme, ServerArgs};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn the_first_ping_is_due_one_interval_after_the_callers_now() {
    let args = [
        "server",
        "--listen",
        "ws://127.0.0.1:0",
        "--ping-interval",
        "10s",
    ];
    let config = Cli::try_parse_from(args)
        .expect("valid flags")
        .server
        .into_config()
        .expect("a valid config");
    let accepted = Instant::now();
    let mut session = Session::accept(
        &Arc::new(config),
        &Counters::new(),
        &ConnectionLimit::new(1),
        Scheme::Ws,
        accepted,
    )
    .expect("a ws session");
    // The upgrade arrives an hour later by the caller's clock (the real one moved by less).
    let later = accepted + Duration::from_secs(3600);
    let mut buf = UPGRADE.to_vec();
    let step = session.handle_read(&mut buf, later);
    assert!(
        buf[step.output].starts_with(b"HTTP/1.1 101"),
        "the upgrade is answered"
    );
    assert_eq!(
        session.next_deadline(),
        Some(later + Duration::from_secs(10)),
        "the first ping: one interval after the read, on the caller's clock"
    );
}
