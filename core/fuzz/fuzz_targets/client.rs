//! The client's frame reader (the bench client reads servers with it) on arbitrary server
//! bytes: never panics, and the events are the same whether the stream arrives whole or cut
//! at the points the input chooses (partial input is "need more", and the reader resumes
//! unmasking and UTF-8 validation where it stopped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_core::{ClientConnection, Limits};
use wsport_core_fuzz::{cuts_and_stream, decode_in_pieces};

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = cuts_and_stream(data);
    // Small limits, so frames and messages over them (1009) are reachable with short inputs.
    let limits = Limits {
        max_frame_bytes: 100,
        max_message_bytes: 300,
    };
    let mut whole = ClientConnection::new(limits);
    let mut split = ClientConnection::new(limits);
    assert_eq!(
        decode_in_pieces(stream, &cuts, |buf| split.handle_frame(buf)),
        decode_in_pieces(stream, &[], |buf| whole.handle_frame(buf)),
    );
});
