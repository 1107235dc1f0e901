//! Each kind of abuse once against every real server binary this host can run, asserting the
//! RFC 6455 ending (wsport-tokio must run; an io_uring server the host refuses is skipped with
//! the reason). The `wss` module does the same on each server's wss:// listener: every kind
//! over TLS, and the TLS kinds with their RFC 8446 endings.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use wsport_abuse::{attack, Kind, Outcome, Target};

fn target(server: &common::Server, tls: Option<Arc<ClientConfig>>) -> Target {
    Target {
        addr: server.addr,
        answer_wait: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(1),
        frame_bytes: 16 * 1024,
        tls,
    }
}

/// Run `kind` once against every server's `scheme` listener and assert its ending.
fn each_server_on(scheme: &str, kind: Kind) {
    let tls = (scheme == "wss").then(wsport_abuse::tls::client_config);
    for (config, _, _) in common::SERVERS {
        let server = match common::start_on(config, scheme, &["--handshake-timeout", "1s"]) {
            Ok(server) => server,
            Err(reason) => {
                eprintln!("{config}: skipped, {reason}");
                continue;
            }
        };
        let target = target(&server, tls.clone());
        let record = attack(kind, &target);
        assert!(
            record.outcome.is_expected_for(kind),
            "{config} {scheme}: {kind} ended with {} (expected {})",
            record.outcome,
            kind.expected()
        );
        if matches!(kind, Kind::Slowloris | Kind::TlsSlowloris) {
            assert!(
                record.lifetime >= Duration::from_millis(900),
                "{config} {scheme}: dropped early"
            );
        }
        // The server still serves a well-behaved client after the abuse.
        let after = attack(Kind::PingFlood, &target);
        assert_eq!(
            after.outcome,
            Outcome::Close(1000),
            "{config} {scheme}: after {kind}"
        );
    }
}

fn each_server(kind: Kind) {
    each_server_on("ws", kind);
}

/// One test per kind whose ending is the same on ws:// and wss://, for the `each_server` in
/// scope (this module's: ws; `wss`'s: wss).
macro_rules! endings_of_every_scheme {
    () => {
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
    };
}

endings_of_every_scheme!();

/// The same endings on the wss:// listener, and the TLS layer's own (RFC 8446).
mod wss {
    use super::*;

    fn each_server(kind: Kind) {
        each_server_on("wss", kind);
    }

    endings_of_every_scheme!();

    #[test]
    fn a_trickled_client_hello_is_dropped_at_the_handshake_timeout() {
        each_server(Kind::TlsSlowloris);
    }

    #[test]
    fn plain_http_to_the_tls_port_gets_decode_error() {
        each_server(Kind::TlsGarbage);
    }

    #[test]
    fn a_record_that_does_not_decrypt_gets_bad_record_mac() {
        each_server(Kind::TlsBadRecord);
    }

    /// A TLS kind against a ws:// listener is a usage error, not a finding.
    #[test]
    fn tls_kinds_need_a_wss_target() {
        let server = common::start("tokio", &[]).unwrap();
        for kind in [Kind::TlsSlowloris, Kind::TlsGarbage, Kind::TlsBadRecord] {
            let record = attack(kind, &target(&server, None));
            assert!(
                matches!(&record.outcome, Outcome::Error(why) if why.contains("--wss")),
                "{kind}: {}",
                record.outcome
            );
        }
    }
}
