//! Fuzz the opening handshake (RFC 6455 §4) with arbitrary peer bytes.
//!
//! `cargo +nightly fuzz run handshake` (from `core/`). The first input byte picks the header
//! limit, so the 431 paths are reached with short inputs; the rest is what a peer sent. Beyond
//! "never panics", it checks what callers rely on: ranges inside the head, a verdict that a
//! prefix already reached does not change when more bytes arrive, and that whatever the server
//! answers, our client reads as that answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_core::handshake::{
    parse_request, parse_response, write_accept, write_rejection, HandshakeError,
    DEFAULT_MAX_HEADER_BYTES,
};

fuzz_target!(|data: &[u8]| {
    let Some((&limit_byte, buf)) = data.split_first() else {
        return;
    };
    let max = match limit_byte {
        0..=127 => usize::from(limit_byte) * 8,
        _ => DEFAULT_MAX_HEADER_BYTES,
    };
    server_side(buf, max);
    client_side(buf, max);
});

fn server_side(buf: &[u8], max: usize) {
    let verdict = parse_request(buf, max);
    // A prefix that decided anything decided the same as the whole (partial input is "need
    // more" and consumes nothing).
    let cut = buf.len() / 2;
    match parse_request(&buf[..cut], max) {
        Ok(None) => {}
        decided => assert_eq!(decided, verdict, "prefix of {cut} bytes"),
    }
    let mut out = Vec::new();
    match verdict {
        Ok(None) => {}
        Ok(Some(req)) => {
            assert!(req.len <= buf.len() && req.len <= max);
            let _ = (
                req.method(buf),
                req.path(buf),
                req.origin(buf),
                req.authorization(buf),
            );
            for (i, range) in req.protocols.iter().enumerate() {
                assert!(range.end <= req.len);
                assert_eq!(req.protocol(buf, i), &buf[range.clone()]);
            }
            if let Some(upgrade) = req.upgrade {
                // Our own client must accept our answer, with the protocol we echoed.
                let chosen = req.protocols.first().map(|r| &buf[r.clone()]);
                write_accept(&upgrade.key, chosen, &mut out);
                let resp = parse_response(&out, &upgrade.key, DEFAULT_MAX_HEADER_BYTES)
                    .expect("our client refused our 101")
                    .expect("our 101 is complete");
                assert_eq!(resp.len, out.len());
                assert_eq!(resp.protocol(&out), chosen);
            }
        }
        Err(err) => {
            write_rejection(&err, &mut out);
            let status = err.status();
            let read_back = parse_response(&out, &[b'A'; 24], DEFAULT_MAX_HEADER_BYTES);
            assert_eq!(read_back, Err(HandshakeError::BadStatus { status }));
        }
    }
}

fn client_side(buf: &[u8], max: usize) {
    let key = b"dGhlIHNhbXBsZSBub25jZQ==";
    let verdict = parse_response(buf, key, max);
    if let Ok(Some(resp)) = &verdict {
        assert!(resp.len <= buf.len() && resp.len <= max);
        assert!(resp.protocol.iter().all(|r| r.end <= resp.len));
    }
    let cut = buf.len() / 2;
    match parse_response(&buf[..cut], key, max) {
        Ok(None) => {}
        decided => assert_eq!(decided, verdict, "prefix of {cut} bytes"),
    }
}
