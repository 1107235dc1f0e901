//! `--broadcast`: turn the echo loop's replies into what a broadcasting connection does — the
//! data messages go to the other connections, the control replies (pong, close) back to the
//! sender.
//!
//! The echo loop ([`wsport_core::conn::ServerConnection::echo_in_place`]) already validated,
//! unmasked and re-framed every frame as a server frame; [`Publisher::take_data`] walks those
//! replies, moves the data frames out and leaves the control frames in place. A message must
//! reach subscribers as one unit: publishes from different connections interleave, and a
//! fragment of one message followed by another connection's frame would break the framing
//! rules at every receiver (RFC 6455 §5.4: fragments of one message must not be interleaved
//! with another data message). So fragments are joined here and published as one frame.

use std::ops::Range;

use wsport_core::frame::{self, FrameHeader, OpCode};

/// The data a connection published, kept between reads.
#[derive(Debug, Default)]
pub struct Publisher {
    /// Complete messages, as unmasked frames, to hand the hub.
    frames: Vec<u8>,
    /// A fragmented message under way: its opcode and the payload so far.
    partial: Option<(OpCode, Vec<u8>)>,
}

impl Publisher {
    /// Move the data frames of `buf[output]` (server frames written by the echo loop) into the
    /// published frames, keeping the control frames in order at the start of `output`; returns
    /// the range left to send back to the peer.
    pub fn take_data(&mut self, buf: &mut [u8], output: Range<usize>) -> Range<usize> {
        let mut read = output.start;
        let mut kept = output.start;
        while read < output.end {
            // The echo loop wrote these frames itself, whole and valid; were one not, nothing
            // after it could be framed, so it and the rest are not sent.
            let Ok(Some((header, header_len))) = FrameHeader::decode(&buf[read..output.end]) else {
                break;
            };
            let len = header_len + header.payload_len as usize;
            let frame = read..read + len;
            let payload = read + header_len..read + len;
            if header.opcode.is_control() {
                buf.copy_within(frame, kept);
                kept += len;
            } else {
                self.take_frame(&header, &buf[frame], &buf[payload]);
            }
            read += len;
        }
        output.start..kept
    }

    fn take_frame(&mut self, header: &FrameHeader, frame: &[u8], payload: &[u8]) {
        match (header.opcode, header.fin, self.partial.as_mut()) {
            (OpCode::Continuation, _, Some((_, joined))) => {
                joined.extend_from_slice(payload);
                if header.fin {
                    let (opcode, joined) = self.partial.take().expect("matched");
                    frame::write_frame(&mut self.frames, true, opcode, None, &joined);
                }
            }
            (OpCode::Text | OpCode::Binary, true, _) => self.frames.extend_from_slice(frame),
            (opcode, false, _) => self.partial = Some((opcode, payload.to_vec())),
            // The echo loop refuses a continuation with no message under way (§5.4).
            _ => {}
        }
    }

    /// The complete messages published since the last call, if any.
    pub fn take_published(&mut self) -> Option<Vec<u8>> {
        (!self.frames.is_empty()).then(|| std::mem::take(&mut self.frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8]) {
        frame::write_frame(out, fin, opcode, None, payload);
    }

    #[test]
    fn data_frames_are_published_and_control_frames_stay_in_order() {
        let mut buf = b"HTTP".to_vec();
        server_frame(&mut buf, true, OpCode::Text, b"hello");
        server_frame(&mut buf, true, OpCode::Pong, b"p1");
        server_frame(&mut buf, true, OpCode::Binary, &[1, 2, 3]);
        server_frame(&mut buf, true, OpCode::Close, &1000u16.to_be_bytes());
        let mut publisher = Publisher::default();
        let len = buf.len();
        let left = publisher.take_data(&mut buf, 4..len);
        let mut control = Vec::new();
        server_frame(&mut control, true, OpCode::Pong, b"p1");
        server_frame(&mut control, true, OpCode::Close, &1000u16.to_be_bytes());
        assert_eq!(&buf[left], &control[..]);
        let mut data = Vec::new();
        server_frame(&mut data, true, OpCode::Text, b"hello");
        server_frame(&mut data, true, OpCode::Binary, &[1, 2, 3]);
        assert_eq!(publisher.take_published(), Some(data));
        assert_eq!(publisher.take_published(), None, "taken once");
    }

    #[test]
    fn fragments_are_published_as_one_frame_once_the_last_arrives() {
        let mut publisher = Publisher::default();
        let mut first = Vec::new();
        server_frame(&mut first, false, OpCode::Text, b"hel");
        server_frame(&mut first, true, OpCode::Ping, b"");
        let len = first.len();
        let left = publisher.take_data(&mut first, 0..len);
        assert_eq!(left.len(), 2, "the pong is sent back at once");
        assert_eq!(
            publisher.take_published(),
            None,
            "half a message is not published"
        );
        let mut second = Vec::new();
        server_frame(&mut second, false, OpCode::Continuation, b"lo ");
        server_frame(&mut second, true, OpCode::Continuation, b"world");
        let len = second.len();
        let left = publisher.take_data(&mut second, 0..len);
        assert!(left.is_empty());
        let mut whole = Vec::new();
        server_frame(&mut whole, true, OpCode::Text, b"hello world");
        assert_eq!(publisher.take_published(), Some(whole));
    }
}
