//! The client side of RFC 6455 framing, written for a fuzzer rather than for an application.
//!
//! Every header field is free on the way out: FIN, the three RSV bits, any of the 16 opcodes,
//! masked or not, any length form (including non-minimal ones and the forbidden 64-bit MSB),
//! and a declared length that need not match the bytes that follow. On the way in the decoder
//! checks only what it needs to delimit a frame; whether the server's frame was *legal* is the
//! session's business ([`crate::session`]), because an illegal server frame is a finding, not a
//! decoding failure.
//!
//! This codec is deliberately independent of `wsport-core`: a conformance runner that shared
//! its framing code with the servers it judges would agree with their bugs.

use std::fmt;

/// Opcodes (RFC 6455 section 5.2). Values 3-7 and 11-15 are reserved.
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;

    /// True for close, ping, pong and the reserved control opcodes 11-15 (section 5.5).
    pub fn is_control(op: u8) -> bool {
        op & 0x8 != 0
    }
}

/// How the payload length is written (section 5.2). RFC 6455 requires the minimal form; the
/// other forms exist to test servers against non-minimal encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthForm {
    /// 7-bit for 0..=125, 16-bit for ..=65535, else 64-bit.
    Minimal,
    /// Always the 16-bit form (marker 126); the length must fit in 16 bits.
    Extended16,
    /// Always the 64-bit form (marker 127).
    Extended64,
}

/// A frame header with every field under the caller's control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// The three RSV bits as one number, RSV1 most significant (as Autobahn's `rsv`): 4 is
    /// RSV1, 2 is RSV2, 1 is RSV3. Only the low 3 bits are used.
    pub rsv: u8,
    /// Only the low 4 bits are used.
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// The payload length written into the header, whatever follows it.
    pub len: u64,
    pub form: LengthForm,
}

impl Header {
    /// A final, unreserved header with the minimal length form.
    pub fn new(opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Self {
        Header {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            len,
            form: LengthForm::Minimal,
        }
    }

    /// Appends the encoded header (2 to 14 bytes) to `out`.
    ///
    /// Panics if `form` is [`LengthForm::Extended16`] and `len` does not fit in 16 bits: that
    /// is a bug in a test case, not peer input.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b0 = (self.rsv & 0x7) << 4 | (self.opcode & 0xF);
        if self.fin {
            b0 |= 0x80;
        }
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(b0);
        let form = match self.form {
            LengthForm::Minimal if self.len <= 125 => None,
            LengthForm::Minimal if self.len <= 0xFFFF => Some(LengthForm::Extended16),
            LengthForm::Minimal => Some(LengthForm::Extended64),
            other => Some(other),
        };
        match form {
            None => out.push(mask_bit | self.len as u8),
            Some(LengthForm::Extended16) => {
                let len = u16::try_from(self.len).expect("16-bit length form holds at most 65535");
                out.push(mask_bit | 126);
                out.extend_from_slice(&len.to_be_bytes());
            }
            Some(_) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&self.len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Encodes a whole frame: `header` (its `len` is set to `payload.len()`) followed by the
/// payload, masked with `header.mask` when there is one.
pub fn encode_frame(header: Header, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        len: payload.len() as u64,
        ..header
    };
    let mut out = Vec::with_capacity(14 + payload.len());
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// XORs `buf` with the masking key (section 5.3), `offset` being the position of `buf[0]`
/// within the frame payload, so a payload can be masked piece by piece.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that word-sized chunks line up with payload position 0 mod 4.
    let rot = offset % 4;
    let k = [
        key[rot],
        key[(rot + 1) % 4],
        key[(rot + 2) % 4],
        key[(rot + 3) % 4],
    ];
    let word = u32::from_ne_bytes(k);
    let mut chunks = buf.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i];
    }
}

/// Autobahn's `payload_len`: `pattern` repeated (and cut) to exactly `len` bytes.
pub fn repeat_to(pattern: &[u8], len: usize) -> Vec<u8> {
    assert!(
        !pattern.is_empty() || len == 0,
        "cannot repeat an empty pattern"
    );
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = pattern.len().min(len - out.len());
        out.extend_from_slice(&pattern[..take]);
    }
    out
}

/// A frame as received from the server, payload already unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    /// The masking key, if the server (wrongly, section 5.1) masked the frame.
    pub mask: Option<[u8; 4]>,
    /// The 16- or 64-bit form was used for a length the shorter form could carry.
    pub non_minimal_length: bool,
    pub payload: Vec<u8>,
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
            DecodeError::TooLarge { len, max } => {
                write!(f, "server frame announces {len} payload bytes, more than the {max} this client buffers")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one frame from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a frame (nothing is consumed: call again
/// with more bytes), else the frame and the number of bytes it took.
pub fn decode_frame(
    buf: &[u8],
    max_payload: u64,
) -> Result<Option<(RawFrame, usize)>, DecodeError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let (len, mut pos, non_minimal) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let len = u16::from_be_bytes([buf[2], buf[3]]) as u64;
            (len, 4, len <= 125)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(b);
            (len, 10, len <= 0xFFFF)
        }
        n => (n as u64, 2, false),
    };
    if len > max_payload {
        return Err(DecodeError::TooLarge {
            len,
            max: max_payload,
        });
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(key)
    } else {
        None
    };
    // `len <= max_payload`, which the caller keeps addressable.
    let len = len as usize;
    if buf.len() - pos < len {
        return Ok(None);
    }
    let mut payload = buf[pos..pos + len].to_vec();
    if let Some(key) = mask {
        apply_mask(&mut payload, key, 0);
    }
    let frame = RawFrame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0xF,
        mask,
        non_minimal_length: non_minimal,
        payload,
    };
    Ok(Some((frame, pos + len)))
}

/// Close codes a peer may send (section 7.4): the defined ones it may put on the wire and the
/// registered / private ranges 3000-4999. 1004-1006 and 1015 are reserved or must never be
/// sent; 1012-1014 are IANA-registered since RFC 6455 and accepted here.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Payload of a close frame: optional code, then a reason.
pub fn close_payload(code: Option<u16>, reason: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + reason.len());
    if let Some(code) = code {
        out.extend_from_slice(&code.to_be_bytes());
    }
    out.extend_from_slice(reason);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_mask(buf: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
        buf.iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect()
    }

    #[test]
    fn mask_matches_the_bytewise_definition_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..=64 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut buf = data.clone();
                apply_mask(&mut buf, key, offset);
                assert_eq!(
                    buf,
                    reference_mask(&data, key, offset),
                    "len {len} offset {offset}"
                );
            }
        }
    }

    #[test]
    fn masking_piecewise_equals_masking_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let (a, rest) = pieces.split_at_mut(7);
        let (b, c) = rest.split_at_mut(13);
        apply_mask(a, key, 0);
        apply_mask(b, key, 7);
        apply_mask(c, key, 20);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 section 5.7: a single-frame masked text message "Hello".
        let frame = encode_frame(
            Header::new(opcode::TEXT, Some([0x37, 0xfa, 0x21, 0x3d]), 0),
            b"Hello",
        );
        assert_eq!(
            frame,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let (decoded, used) = decode_frame(&frame, 1 << 20).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(decoded.payload, b"Hello");
        assert_eq!(decoded.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    }

    #[test]
    fn rfc_example_unmasked_lengths() {
        // Section 5.7: 256 bytes binary in one unmasked frame, 64 KiB in one unmasked frame.
        let f = encode_frame(Header::new(opcode::BINARY, None, 0), &[0u8; 256]);
        assert_eq!(&f[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let f = encode_frame(Header::new(opcode::BINARY, None, 0), &vec![0u8; 65536]);
        assert_eq!(&f[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
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
    fn non_minimal_forms_are_written_and_recognised() {
        let mut h = Header::new(opcode::TEXT, None, 5);
        h.form = LengthForm::Extended16;
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x81, 126, 0, 5]);
        out.extend_from_slice(b"hello");
        let (f, _) = decode_frame(&out, 100).unwrap().unwrap();
        assert!(f.non_minimal_length);
        assert_eq!(f.payload, b"hello");

        h.form = LengthForm::Extended64;
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x81, 127, 0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn every_header_bit_is_under_control() {
        let h = Header {
            fin: false,
            rsv: 7,
            opcode: 0xF,
            mask: None,
            len: 0,
            form: LengthForm::Minimal,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x7F, 0x00]);
        let h = Header {
            fin: true,
            rsv: 4,
            opcode: 1,
            mask: None,
            len: 0,
            form: LengthForm::Minimal,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0xC1, 0x00], "rsv 4 is RSV1 (0x40)");
        let (f, _) = decode_frame(&out, 10).unwrap().unwrap();
        assert_eq!((f.fin, f.rsv, f.opcode), (true, 4, 1));
    }

    #[test]
    fn declared_length_is_independent_of_the_bytes_sent() {
        // A header announcing 2^63 bytes (MSB set), as the abuse cases send it.
        let h = Header {
            len: 1 << 63,
            ..Header::new(opcode::BINARY, Some([0; 4]), 0)
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(&out[..10], &[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            decode_frame(&out, 1 << 30),
            Err(DecodeError::TooLarge {
                len: 1 << 63,
                max: 1 << 30
            })
        );
    }

    #[test]
    fn partial_input_consumes_nothing_whatever_the_split() {
        let mut stream = encode_frame(Header::new(opcode::TEXT, None, 0), &[b'x'; 300]);
        stream.extend(encode_frame(
            Header {
                fin: false,
                ..Header::new(opcode::BINARY, Some([1, 2, 3, 4]), 0)
            },
            b"ab",
        ));
        stream.extend(encode_frame(Header::new(opcode::PING, None, 0), b""));
        let whole = decode_all(&stream, |_| stream.len());
        assert_eq!(whole.len(), 3);
        // One byte at a time, and in pseudo-random splits: the same frames come out.
        assert_eq!(decode_all(&stream, |_| 1), whole);
        let mut seed = 0x9E37_79B9u32;
        let random = decode_all(&stream, |_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            1 + (seed % 40) as usize
        });
        assert_eq!(random, whole);
    }

    fn decode_all(stream: &[u8], mut step: impl FnMut(usize) -> usize) -> Vec<RawFrame> {
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut frames = Vec::new();
        while fed < stream.len() {
            let n = step(fed).min(stream.len() - fed);
            buf.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            while let Some((f, used)) = decode_frame(&buf, 1 << 20).unwrap() {
                buf.drain(..used);
                frames.push(f);
            }
        }
        assert!(buf.is_empty());
        frames
    }

    #[test]
    fn repeat_to_cuts_the_pattern() {
        assert_eq!(repeat_to(b"abc", 7), b"abcabca");
        assert_eq!(repeat_to(b"abc", 0), b"");
        assert_eq!(repeat_to(b"BAsd7&jh23", 64 * 1024).len(), 65536);
    }

    #[test]
    fn close_codes() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_close_code(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
        assert_eq!(close_payload(Some(1000), b"ok"), [0x03, 0xE8, b'o', b'k']);
        assert_eq!(close_payload(None, b"a"), b"a");
    }
}
