//! Property tests over the public API: random frame streams, cut at random points, echo to
//! exactly what tungstenite's frame encoder says the unmasked replies are; random bytes never
//! panic the server connection.

use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
use tungstenite::protocol::frame::Frame as TFrame;
use wsport_core::conn::compact;
use wsport_core::{Limits, ServerConnection};

fn run_echo(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut conn = ServerConnection::new(Limits::default());
    let (mut buf, mut sent, mut start) = (Vec::new(), Vec::new(), 0);
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    for end in cuts.into_iter().chain([stream.len()]) {
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        let echo = conn.echo_in_place(&mut buf, 0..0, 0);
        sent.extend_from_slice(&buf[echo.output]);
        compact(&mut buf, echo.consumed);
        if echo.closing.is_some() {
            break;
        }
    }
    sent
}

fn tungstenite_frame(binary: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let opcode = TOpCode::Data(if binary { Data::Binary } else { Data::Text });
    let mut frame = TFrame::message(payload.to_vec(), opcode, true);
    if let Some(mask) = mask {
        frame.header_mut().mask = Some(mask);
    }
    let mut out = Vec::new();
    frame.format(&mut out).expect("format");
    out
}

proptest! {
    #[test]
    fn echo_matches_tungstenite(
        messages in prop::collection::vec((any::<bool>(), "[a-zé𝄞]{0,40}", any::<[u8; 4]>(), 0usize..300), 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (binary, text, mask, pad) in &messages {
            let mut payload = text.clone().into_bytes();
            if *binary {
                payload.extend(std::iter::repeat(0xAB).take(*pad));
            }
            stream.extend(tungstenite_frame(*binary, &payload, Some(*mask)));
            expected.extend(tungstenite_frame(*binary, &payload, None));
        }
        prop_assert_eq!(run_echo(&stream, &cuts), expected);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
        let _ = run_echo(&bytes, &cuts);
    }
}
