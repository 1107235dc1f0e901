//! The wss server session: either arbitrary plaintext sent through a real TLS session after a
//! completed handshake (our rustls client against the session, in memory), with the same
//! checks as session_ws, or (flag 0x20) arbitrary bytes as raw TLS records, where the session
//! must fail cleanly and its timers still end it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_session_fuzz::TlsClient;
use wsport_session_fuzz::{check_cuts_change_nothing, config, tls_configs, Input, Plain, Run};

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let tls = tls_configs();
    let config = config(input.flags, Some(tls.server.clone()));
    if input.flags.raw_tls() {
        // Encrypted bytes the client cannot read back: only the session's own checks apply.
        let run = Run::accept(&config, input.flags, Plain);
        drop(run.finish(&input.stream, &input.cuts, input.flags));
        return;
    }
    check_cuts_change_nothing(
        &input,
        &config,
        || TlsClient::new(tls),
        |run| {
            while run.wire.is_handshaking() {
                assert!(!run.send(&[]), "the TLS handshake failed");
            }
        },
    );
});
