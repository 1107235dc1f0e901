//! Decoding server frames: enough to delimit them, keeping every bit as it arrived.

use std::fmt;

use super::{apply_mask, opcode, preview};

/// A frame received from the server, payload already unmasked, every header bit as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    /// The masking key, if the server (wrongly, §5.1) masked the frame.
    pub mask: Option<[u8; 4]>,
    /// The 16- or 64-bit form was used for a length the shorter form could carry.
    pub non_minimal_length: bool,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn is_control(&self) -> bool {
        opcode::is_control(self.opcode)
    }

    /// A server must never mask (§5.1); kept so a case can say so.
    pub fn is_masked(&self) -> bool {
        self.mask.is_some()
    }

    /// Status code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == opcode::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// Reason bytes of a close frame.
    pub fn close_reason(&self) -> &[u8] {
        self.payload.get(2..).unwrap_or_default()
    }
}

impl fmt::Display for ServerFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} frame", opcode::name(self.opcode))?;
        if self.opcode == opcode::CLOSE {
            return match self.close_code() {
                Some(code) => write!(f, " code={code} reason={}", preview(self.close_reason())),
                None if self.payload.is_empty() => write!(f, " (no payload)"),
                None => write!(f, " with a {}-byte payload", self.payload.len()),
            };
        }
        write!(f, " fin={}", u8::from(self.fin))?;
        if self.rsv != 0 {
            write!(f, " rsv={:#05b}", self.rsv)?;
        }
        if self.is_masked() {
            write!(f, " MASKED")?;
        }
        write!(f, " len={}", self.payload.len())?;
        if !self.payload.is_empty() {
            write!(f, " {}", preview(&self.payload))?;
        }
        Ok(())
    }
}

/// A server frame the decoder cannot delimit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header announces more payload than this client is willing to buffer.
    TooLarge { len: u64, max: u64 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { len, max } => write!(
                f,
                "server frame announces {len} payload bytes, more than the {max} this client buffers"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one frame from the front of `buf`, refusing payloads over `max_payload` (which the
/// caller keeps addressable).
///
/// `Ok(None)` means "need more bytes" and nothing was consumed: call again with more.
/// `Ok(Some((frame, n)))` means the frame used the first `n` bytes.
pub fn decode_frame(
    buf: &[u8],
    max_payload: u64,
) -> Result<Option<(ServerFrame, usize)>, DecodeError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let Some((len, mut pos, non_minimal)) = payload_length(buf, b1) else {
        return Ok(None);
    };
    if len > max_payload {
        return Err(DecodeError::TooLarge {
            len,
            max: max_payload,
        });
    }
    let mask = if b1 & 0x80 != 0 {
        let Some(key) = buf.get(pos..pos + 4) else {
            return Ok(None);
        };
        pos += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let end = pos + len as usize;
    let Some(payload) = buf.get(pos..end) else {
        return Ok(None);
    };
    let mut payload = payload.to_vec();
    if let Some(key) = mask {
        apply_mask(&mut payload, key, 0);
    }
    let frame = ServerFrame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0xF,
        mask,
        non_minimal_length: non_minimal,
        payload,
    };
    Ok(Some((frame, end)))
}

/// The payload length (§5.2), where the header continues, and whether a longer form than
/// needed was used; `None` while the extended length is incomplete.
fn payload_length(buf: &[u8], b1: u8) -> Option<(u64, usize, bool)> {
    match b1 & 0x7F {
        126 => {
            let len = u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?));
            Some((len, 4, len <= 125))
        }
        127 => {
            let len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            Some((len, 10, len <= 0xFFFF))
        }
        short => Some((u64::from(short), 2, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_frame, Frame, Header, LengthForm};

    fn server_bytes(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        Frame::new(opcode, payload).fin(fin).unmasked().encode()
    }

    #[test]
    fn masked_round_trip_keeps_the_key() {
        let frame = Frame::binary((0..=255u8).collect::<Vec<_>>());
        let (decoded, used) = decode_frame(&frame.encode(), 1 << 20).unwrap().unwrap();
        assert_eq!(used, frame.encode().len());
        assert_eq!(decoded.mask, frame.mask);
        assert!(decoded.is_masked());
        assert_eq!(decoded.payload, frame.payload);
    }

    #[test]
    fn length_forms_at_the_boundaries_round_trip() {
        for len in [0usize, 1, 125, 126, 127, 128, 65535, 65536, 70000] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let frame = encode_frame(Header::new(opcode::BINARY, mask, 0), &payload);
                let header_len = match len {
                    0..=125 => 2,
                    126..=65535 => 4,
                    _ => 10,
                } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(frame.len(), header_len + len, "len {len}");
                let (decoded, used) = decode_frame(&frame, 1 << 20).unwrap().unwrap();
                assert_eq!(used, frame.len());
                assert_eq!(decoded.payload, payload);
                assert!(!decoded.non_minimal_length);
            }
        }
    }

    #[test]
    fn non_minimal_forms_are_recognised() {
        for form in [LengthForm::Extended16, LengthForm::Extended64] {
            let mut out = Vec::new();
            Header {
                form,
                ..Header::new(opcode::TEXT, None, 5)
            }
            .encode(&mut out);
            out.extend_from_slice(b"hello");
            let (f, _) = decode_frame(&out, 100).unwrap().unwrap();
            assert!(f.non_minimal_length);
            assert_eq!(f.payload, b"hello");
        }
        let (f, _) = decode_frame(&[0xC1, 0x00], 10).unwrap().unwrap();
        assert_eq!((f.fin, f.rsv, f.opcode), (true, 4, 1));
    }

    #[test]
    fn refuses_absurd_lengths() {
        // A header announcing 2^63 bytes (MSB set), as the abuse cases send it.
        let header = Frame::binary(vec![]).announce(1 << 63).unmasked();
        assert_eq!(
            decode_frame(&header.header_bytes(), 1 << 30),
            Err(DecodeError::TooLarge {
                len: 1 << 63,
                max: 1 << 30
            })
        );
    }

    /// Feed a stream whole, byte by byte and in uneven and pseudo-random splits: the same
    /// frames every time, and nothing consumed from an incomplete frame.
    #[test]
    fn decode_is_split_invariant() {
        let mut stream = Vec::new();
        stream.extend(server_bytes(false, opcode::TEXT, b"hel"));
        stream.extend(server_bytes(true, opcode::PING, b"mid"));
        stream.extend(server_bytes(true, opcode::CONTINUATION, b"lo"));
        stream.extend(server_bytes(true, opcode::BINARY, &[7; 300]));
        stream.extend(server_bytes(true, opcode::BINARY, &[9; 70_000]));
        stream.extend(Frame::binary(b"ab".to_vec()).fin(false).encode());
        stream.extend(server_bytes(true, opcode::CLOSE, &[0x03, 0xe8, b'o', b'k']));

        let whole = decode_all(&stream, |_| stream.len());
        assert_eq!(whole.len(), 7);
        assert_eq!(whole[6].close_code(), Some(1000));
        assert_eq!(whole[6].close_reason(), b"ok");
        assert_eq!(decode_all(&stream, |_| 1), whole);
        let uneven = [3, 1, 7, 1000, 13];
        assert_eq!(decode_all(&stream, |i| uneven[i % uneven.len()]), whole);
        let mut seed = 0x9E37_79B9u32;
        let random = decode_all(&stream, |_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            1 + (seed % 40) as usize
        });
        assert_eq!(random, whole);
    }

    fn decode_all(stream: &[u8], mut step: impl FnMut(usize) -> usize) -> Vec<ServerFrame> {
        let (mut buf, mut frames, mut fed, mut steps) = (Vec::new(), Vec::new(), 0, 0);
        while fed < stream.len() {
            let n = step(steps).min(stream.len() - fed);
            steps += 1;
            buf.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            while let Some((frame, used)) = decode_frame(&buf, 1 << 20).unwrap() {
                buf.drain(..used);
                frames.push(frame);
            }
        }
        assert!(buf.is_empty());
        frames
    }

    #[test]
    fn display_names_what_a_verdict_needs() {
        let (close, _) = decode_frame(&server_bytes(true, opcode::CLOSE, &[0x03, 0xea]), 10)
            .unwrap()
            .unwrap();
        assert_eq!(close.to_string(), "close frame code=1002 reason=\"\"");
        let masked = Frame::text("x").with_mask([0; 4]).encode();
        let (text, _) = decode_frame(&masked, 10).unwrap().unwrap();
        assert_eq!(text.to_string(), "text frame fin=1 MASKED len=1 \"x\"");
    }
}
