//! Incremental UTF-8 validation (RFC 6455 §8.1) against the standard library, with the stream
//! cut into pieces at points the input chooses.
//!
//! Beyond agreeing with `std::str::from_utf8` on the whole, the validator must "fail fast":
//! a piece is refused exactly when the bytes up to its end can no longer begin valid UTF-8,
//! wherever the cuts fall inside multi-byte characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_core::utf8::{validate, Utf8Validator};
use wsport_core_fuzz::{cuts_and_stream, pieces};

fuzz_target!(|data: &[u8]| {
    let (cuts, bytes) = cuts_and_stream(data);
    let valid = std::str::from_utf8(bytes).is_ok();
    assert_eq!(validate(bytes).is_ok(), valid);

    let mut validator = Utf8Validator::new();
    let mut end = 0;
    for piece in pieces(bytes, &cuts) {
        end += piece.len();
        let fed = validator.feed(piece).is_ok();
        assert_eq!(
            fed,
            can_still_be_valid(&bytes[..end]),
            "piece ending at {end}"
        );
        if !fed {
            return;
        }
    }
    assert_eq!(validator.finish().is_ok(), valid);
    // finish() leaves the validator ready for the next message.
    assert!(validator.feed("é".as_bytes()).is_ok() && validator.finish().is_ok());
});

/// Whether `prefix` is valid UTF-8 or could become so with more bytes.
fn can_still_be_valid(prefix: &[u8]) -> bool {
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    }
}
