//! Each kind of abuse once against every real server binary this host can run, asserting the
//! RFC 6455 ending (wsport-tokio must run; an io_uring server the host refuses is skipped with
//! the reason).

mod common;

use std::time::Duration;

use wsport_abuse::{attack, Kind, Outcome, Target};

fn target(server: &common::Server) -> Target {
    Target {
        addr: server.addr,
        answer_wait: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(1),
        frame_bytes: 16 * 1024,
    }
}

/// Run `kind` once against every server and assert its ending.
fn each_server(kind: Kind) {
    for (config, _, _) in common::SERVERS {
        let server = match common::start(config, &["--handshake-timeout", "1s"]) {
            Ok(server) => server,
            Err(reason) => {
                eprintln!("{config}: skipped, {reason}");
                continue;
            }
        };
        let record = attack(kind, &target(&server));
        assert!(
            record.outcome.is_expected_for(kind),
            "{config}: {kind} ended with {} (expected {})",
            record.outcome,
            kind.expected()
        );
        if kind == Kind::Slowloris {
            assert!(
                record.lifetime >= Duration::from_millis(900),
                "{config}: dropped early"
            );
        }
        // The server still serves a well-behaved client after the abuse.
        let after = attack(Kind::PingFlood, &target(&server));
        assert_eq!(
            after.outcome,
            Outcome::Close(1000),
            "{config}: after {kind}"
        );
    }
}

#[test]
fn slowloris_is_dropped_at_the_handshake_timeout() {
    each_server(Kind::Slowloris);
}

#[test]
fn oversized_headers_get_431() {
    each_server(Kind::BigHeader);
}

#[test]
fn a_frame_of_2_pow_63_minus_1_bytes_gets_1009() {
    each_server(Kind::HugeFrame);
}

#[test]
fn a_length_with_its_top_bit_set_gets_1002() {
    each_server(Kind::LengthMsb);
}

#[test]
fn invalid_utf8_gets_1007() {
    each_server(Kind::BadUtf8);
}

#[test]
fn unmasked_client_frames_get_1002() {
    each_server(Kind::Unmasked);
}

#[test]
fn a_reset_mid_frame_leaves_the_server_serving() {
    each_server(Kind::ResetMidFrame);
}

#[test]
fn a_client_that_never_reads_is_not_queued_for() {
    each_server(Kind::NeverRead);
}

#[test]
fn a_ping_flood_is_answered_then_closed() {
    each_server(Kind::PingFlood);
}
