//! The server's echo loop (`ServerConnection::echo_in_place`) on arbitrary client bytes, cut
//! at the points the input chooses, with every limit small.
//!
//! Checks, beyond "never panics":
//! - splitting the stream anywhere sends the same bytes and ends the same way as feeding it
//!   whole;
//! - the echo re-decodes to the input: our client reads back exactly the answer RFC 6455
//!   gives to each frame the server's reader decoded (data echoed as received, a pong for a
//!   ping, the close code for a close, §5.5.1; close 1002/1007/1009 on a violation, §7.4.1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_core::conn::compact;
use wsport_core::{ClientConnection, Closing, FrameKind, Limits, ServerConnection};
use wsport_core_fuzz::{cuts_and_stream, decode_in_pieces, pieces, Event};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, data)) = data.split_first() else {
        return;
    };
    // The first byte picks the limits, so 1009 is reached at any size the fuzzer likes.
    let limits = Limits {
        max_frame_bytes: u64::from(limit % 64) * 4,
        max_message_bytes: u64::from(limit / 64 + 1) * 64,
    };
    let (cuts, stream) = cuts_and_stream(data);
    let whole = echo(stream, &[], limits);
    assert_eq!(echo(stream, &cuts, limits), whole, "cut at {cuts:?}");

    let mut server = ServerConnection::new(limits);
    let received = decode_in_pieces(stream, &[], |buf| server.handle_frame(buf));
    let mut client = ClientConnection::new(Limits::default());
    let answered = decode_in_pieces(&whole.0, &[], |buf| client.handle_frame(buf));
    assert_eq!(answered, answers(&received));
});

/// Run the echo loop as a runtime does (append a piece, echo, send, compact) and return
/// what was sent and how the connection ended.
fn echo(stream: &[u8], cuts: &[usize], limits: Limits) -> (Vec<u8>, Option<Closing>) {
    let mut conn = ServerConnection::new(limits);
    let mut buf = Vec::new();
    let mut sent = Vec::new();
    for piece in pieces(stream, cuts) {
        buf.extend_from_slice(piece);
        let echo = conn.echo_in_place(&mut buf, 0..0, 0);
        assert!(echo.output.start <= echo.output.end && echo.output.end <= echo.consumed);
        assert!(echo.consumed <= buf.len());
        // A frame still arriving is bounded by the limit (the header is at most 14 bytes).
        assert!(echo
            .need
            .is_none_or(|need| need as u64 <= limits.max_frame_bytes + 14));
        sent.extend_from_slice(&buf[echo.output.clone()]);
        compact(&mut buf, echo.consumed);
        if echo.closing.is_some() {
            return (sent, echo.closing);
        }
    }
    (sent, None)
}

/// What the server must send for the frames its reader decoded, as our client reads it.
fn answers(received: &[Event]) -> Vec<Event> {
    let mut answers = Vec::new();
    for event in received {
        let answer = match event {
            Event::Frame(FrameKind::Pong, ..) => continue,
            Event::Frame(FrameKind::Ping, _, payload) => {
                Event::Frame(FrameKind::Pong, true, payload.clone())
            }
            Event::Frame(FrameKind::Close(code), ..) => close(*code),
            Event::Frame(kind, fin, payload) => Event::Frame(*kind, *fin, payload.clone()),
            Event::Failed(error) => close(Some(error.close_code())),
        };
        answers.push(answer);
    }
    answers
}

/// Our close frame: the code alone, no reason.
fn close(code: Option<wsport_core::CloseCode>) -> Event {
    let payload = code.map_or(Vec::new(), |code| code.to_bytes().to_vec());
    Event::Frame(FrameKind::Close(code), true, payload)
}
