//! Helpers shared by the fuzz targets: how an input names the points where a byte stream is
//! cut, and a reference decoder that reads a whole stream frame by frame.
//!
//! Every decoder in the core must give the same events whether a stream arrives whole or in
//! pieces cut anywhere (DESIGN.md, "Partial input is normal"), so the targets let the fuzzer
//! choose the cuts as well as the bytes.

use wsport_core::{Decoded, FrameKind, ProtocolError};

/// Most cuts one input may ask for: enough to split a header, a mask key and a UTF-8
/// character all at once, few enough to keep each execution short.
pub const MAX_CUTS: usize = 15;

/// Split an input into cut points and the stream they cut.
///
/// The first byte's low four bits say how many piece lengths follow (one byte each); the rest
/// of the input is the stream. Each length is counted from the previous cut, and cuts past
/// the end of the stream are dropped, so every input is valid and shrinking it stays valid.
pub fn cuts_and_stream(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (Vec::new(), &[]);
    };
    let count = usize::from(count & 0x0F).min(MAX_CUTS).min(rest.len());
    let (lengths, stream) = rest.split_at(count);
    let mut cuts = Vec::with_capacity(count);
    let mut at = 0;
    for &length in lengths {
        at += usize::from(length);
        if at >= stream.len() {
            break;
        }
        cuts.push(at);
    }
    (cuts, stream)
}

/// The pieces of `stream` between consecutive `cuts` (sorted, inside the stream), in order.
pub fn pieces<'a>(stream: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let starts = std::iter::once(0).chain(cuts.iter().copied());
    let ends = cuts.iter().copied().chain(std::iter::once(stream.len()));
    starts
        .zip(ends)
        .map(move |(start, end)| &stream[start..end])
}

/// What a decoder reported, with the payload copied out so runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete frame: its kind, FIN and unmasked payload.
    Frame(FrameKind, bool, Vec<u8>),
    /// The connection failed; errors are sticky, so nothing follows.
    Failed(ProtocolError),
}

/// Feed `stream` to `handle_frame` in the given pieces, as a runtime would (append, decode
/// every complete frame, keep the incomplete tail), and list what it reported.
pub fn decode_in_pieces<F>(stream: &[u8], cuts: &[usize], mut handle_frame: F) -> Vec<Event>
where
    F: FnMut(&mut [u8]) -> Result<Decoded, ProtocolError>,
{
    let mut events = Vec::new();
    let mut buf = Vec::new();
    for piece in pieces(stream, cuts) {
        buf.extend_from_slice(piece);
        let mut at = 0;
        loop {
            match handle_frame(&mut buf[at..]) {
                Ok(Decoded::Frame(frame)) => {
                    let payload = buf[at + frame.payload.start..at + frame.payload.end].to_vec();
                    events.push(Event::Frame(frame.kind, frame.fin, payload));
                    at += frame.len;
                    if matches!(frame.kind, FrameKind::Close(_)) {
                        return events;
                    }
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    assert!(frame_len.is_none_or(|len| len > buf.len() - at));
                    break;
                }
                Err(error) => {
                    events.push(Event::Failed(error));
                    return events;
                }
            }
        }
        buf.drain(..at);
    }
    events
}
