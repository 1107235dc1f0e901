//! Random client bytes, cut at random points, through the server's echo loop: never panics,
//! and the output never runs past the input it answers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsport_core::conn::compact;
use wsport_core::{Limits, ServerConnection};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let limits = Limits { max_frame_bytes: 4096, max_message_bytes: 8192 };
    let mut conn = ServerConnection::new(limits);
    let mut buf = Vec::new();
    let cut = usize::from(cut).min(stream.len());
    for piece in [&stream[..cut], &stream[cut..]] {
        buf.extend_from_slice(piece);
        let echo = conn.echo_in_place(&mut buf, 0..0, 0);
        assert!(echo.output.end <= buf.len());
        compact(&mut buf, echo.consumed);
        if echo.closing.is_some() {
            break;
        }
    }
});
