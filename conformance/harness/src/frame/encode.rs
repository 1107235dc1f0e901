//! Encoding client frames, any of them: [`Header`] with every field under the caller's
//! control, and [`Frame`], a builder that starts valid and is bent out of shape for the
//! negative cases.

use std::fmt;

use super::{apply_mask, close_payload, opcode, preview};
use crate::rng::fresh_mask;

/// How the payload length is written (§5.2). RFC 6455 requires the minimal form; the other
/// forms exist to test servers against non-minimal encodings.
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

    /// Appends the encoded header (2 to 14 bytes) to `out`. A length that needs 64 bits is
    /// written raw, even with the MSB set, which is exactly what one negative case sends.
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

/// A client frame and its payload. Built with [`Frame::new`] and the typed constructors, then
/// bent out of shape with the builder methods for the negative cases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// The three RSV bits, RSV1 as 0b100.
    pub rsv: u8,
    /// Only the low four bits are encoded.
    pub opcode: u8,
    /// `None` sends an unmasked frame, which a server must reject (§5.1).
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
    /// Length written in the header; `None` means `payload.len()`.
    pub announced_len: Option<u64>,
}

impl Frame {
    /// A final, masked frame with a fresh mask.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some(fresh_mask()),
            payload: payload.into(),
            announced_len: None,
        }
    }

    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::TEXT, payload)
    }

    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::BINARY, payload)
    }

    pub fn continuation(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::CONTINUATION, payload)
    }

    pub fn ping(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::PING, payload)
    }

    pub fn pong(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::PONG, payload)
    }

    /// A close frame carrying `code` and `reason` (§5.5.1); the reason is raw bytes so
    /// invalid UTF-8 can be sent.
    pub fn close(code: u16, reason: &[u8]) -> Self {
        Self::new(opcode::CLOSE, close_payload(Some(code), reason))
    }

    /// A close frame with an arbitrary payload (empty, one byte, ...).
    pub fn close_raw(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::CLOSE, payload)
    }

    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv & 0b111;
        self
    }

    pub fn unmasked(mut self) -> Self {
        self.mask = None;
        self
    }

    pub fn with_mask(mut self, mask: [u8; 4]) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Announce `len` payload bytes in the header, whatever `payload` holds.
    pub fn announce(mut self, len: u64) -> Self {
        self.announced_len = Some(len);
        self
    }

    /// The length the header announces.
    pub fn len(&self) -> u64 {
        self.announced_len.unwrap_or(self.payload.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The header this frame is sent with: the shortest length form for the announced length.
    pub fn header(&self) -> Header {
        Header {
            fin: self.fin,
            rsv: self.rsv,
            ..Header::new(self.opcode, self.mask, self.len())
        }
    }

    /// Header (and masking key) only.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(14);
        self.header().encode(&mut out);
        out
    }

    /// Header followed by the (masked) payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        let start = out.len();
        out.extend_from_slice(&self.payload);
        if let Some(mask) = self.mask {
            apply_mask(&mut out[start..], mask, 0);
        }
        out
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fin={}",
            opcode::name(self.opcode),
            u8::from(self.fin)
        )?;
        if self.rsv != 0 {
            write!(f, " rsv={:#05b}", self.rsv)?;
        }
        if self.mask.is_none() {
            write!(f, " UNMASKED")?;
        }
        match self.announced_len {
            Some(len) => write!(f, " announcing {len} bytes, sending {}", self.payload.len())?,
            None => write!(f, " len={}", self.payload.len())?,
        }
        if !self.payload.is_empty() {
            write!(f, " {}", preview(&self.payload))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let frame = encode_frame(Header::new(opcode::TEXT, Some(key), 0), b"Hello");
        let expected = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(frame, expected);
        assert_eq!(Frame::text("Hello").with_mask(key).encode(), expected);
    }

    #[test]
    fn rfc_example_unmasked_lengths() {
        // §5.7: 256 bytes binary in one unmasked frame, 64 KiB in one unmasked frame.
        let f = encode_frame(Header::new(opcode::BINARY, None, 0), &[0u8; 256]);
        assert_eq!(&f[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let f = encode_frame(Header::new(opcode::BINARY, None, 0), &vec![0u8; 65536]);
        assert_eq!(&f[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn header_length_forms() {
        assert_eq!(Frame::text(vec![0; 125]).header_bytes().len(), 2 + 4);
        assert_eq!(Frame::text(vec![0; 126]).header_bytes().len(), 4 + 4);
        assert_eq!(Frame::text(vec![0; 65535]).header_bytes().len(), 4 + 4);
        assert_eq!(Frame::text(vec![0; 65536]).header_bytes().len(), 10 + 4);
        let msb = Frame::binary(vec![])
            .announce(1 << 63)
            .unmasked()
            .header_bytes();
        assert_eq!(msb, [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn non_minimal_forms_are_written() {
        let mut h = Header::new(opcode::TEXT, None, 5);
        h.form = LengthForm::Extended16;
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x81, 126, 0, 5]);
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
            ..Header::new(0xF, None, 0)
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x7F, 0x00]);
        let mut out = Vec::new();
        Header {
            rsv: 4,
            ..Header::new(1, None, 0)
        }
        .encode(&mut out);
        assert_eq!(out, [0xC1, 0x00], "rsv 4 is RSV1 (0x40)");
        let frame = Frame::new(0xB, "x")
            .fin(false)
            .rsv(0b101)
            .with_mask([1, 2, 3, 4]);
        assert_eq!(frame.header_bytes(), [0x5B, 0x81, 1, 2, 3, 4]);
        assert_eq!(frame.encode()[6], b'x' ^ 1);
    }

    #[test]
    fn display_says_what_was_bent() {
        let frame = Frame::text("hi").unmasked().rsv(0b100).announce(9);
        assert_eq!(
            frame.to_string(),
            "text fin=1 rsv=0b100 UNMASKED announcing 9 bytes, sending 2 \"hi\""
        );
        assert_eq!(Frame::close(1000, b"").payload, [0x03, 0xe8]);
    }
}
