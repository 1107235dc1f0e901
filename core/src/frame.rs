//! Frame headers (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! ```
//!
//! This module knows the syntax only. What a header means for the connection (masking by role,
//! reserved bits without extensions, fragmentation, size limits) is checked by [`crate::conn`].

use crate::ProtocolError;

/// Longest possible header: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// Control frames carry at most 125 bytes (§5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Frame opcodes (§5.2, §11.8). Reserved opcodes never get this far: decoding rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: a text message (UTF-8).
    Text = 0x1,
    /// 0x2: a binary message.
    Binary = 0x2,
    /// 0x8: close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl OpCode {
    /// Control frames have the high bit of the opcode set (§5.5).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }

    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of a message.
    pub fin: bool,
    /// RSV1..RSV3 in the low three bits.
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame (§5.3).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decode a header from the start of `buf`.
    ///
    /// `Ok(None)`: `buf` does not hold the whole header yet (nothing is consumed).
    /// `Ok(Some((header, header_len)))`: the payload starts at `buf[header_len]`.
    /// Errors are syntax errors any endpoint rejects: a reserved opcode, a control frame that
    /// is fragmented or longer than 125 bytes, a 64-bit length with its top bit set (§5.2).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_bits(b0 & 0xF).ok_or(ProtocolError::ReservedOpCode(b0 & 0xF))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, len_bytes) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                    if len >> 63 != 0 {
                        return Err(ProtocolError::LengthTopBitSet);
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 0),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if payload_len > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlTooLong(payload_len));
            }
        }
        let mut header_len = 2 + len_bytes;
        let mask = if masked {
            let Some(key) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some(key.try_into().expect("4 bytes"))
        } else {
            None
        };
        let header = Self {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, header_len)))
    }

    /// Bytes this header takes on the wire.
    pub fn encoded_len(&self) -> usize {
        header_len(self.payload_len, self.mask.is_some())
    }

    /// Encode into the start of `out` and return the length written.
    ///
    /// Uses the shortest length form, as §5.2 requires ("the minimal number of bytes MUST be
    /// used"). Returns `None` when `out` is shorter than [`Self::encoded_len`].
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.encoded_len();
        let out = out.get_mut(..len)?;
        out[0] = u8::from(self.fin) << 7 | (self.rsv & 0x7) << 4 | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let key_at = match self.payload_len {
            0..=125 => {
                out[1] = mask_bit | self.payload_len as u8;
                2
            }
            126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[key_at..key_at + 4].copy_from_slice(&key);
        }
        Some(len)
    }
}

/// Header length for a payload of `payload_len` bytes, masked or not.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let len_bytes = match payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + len_bytes + if masked { 4 } else { 0 }
}

/// Append a whole frame (header and payload) to `out`, masking the payload when `mask` is
/// given (client to server, §5.3).
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let start = out.len();
    out.resize(start + header.encoded_len(), 0);
    header
        .encode(&mut out[start..])
        .expect("room was made for the header");
    let payload_start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        crate::mask::apply_mask(&mut out[payload_start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(header: FrameHeader) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut buf).unwrap();
        assert_eq!(n, header.encoded_len());
        assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((header, n))));
        for short in 0..n {
            assert_eq!(
                FrameHeader::decode(&buf[..short]),
                Ok(None),
                "prefix {short}"
            );
        }
    }

    #[test]
    fn every_length_form_roundtrips() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x10000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [OpCode::Text, OpCode::Binary, OpCode::Continuation] {
                    roundtrip(FrameHeader {
                        fin: len % 2 == 0,
                        rsv: 0,
                        opcode,
                        mask,
                        payload_len: len,
                    });
                }
            }
        }
        roundtrip(FrameHeader {
            fin: true,
            rsv: 5,
            opcode: OpCode::Ping,
            mask: None,
            payload_len: 125,
        });
    }

    #[test]
    fn shortest_form_is_used() {
        assert_eq!(header_len(125, false), 2);
        assert_eq!(header_len(126, false), 4);
        assert_eq!(header_len(0xFFFF, true), 8);
        assert_eq!(header_len(0x10000, false), 10);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            FrameHeader::decode(&[0x83, 0x80]),
            Err(ProtocolError::ReservedOpCode(3))
        );
        assert_eq!(
            FrameHeader::decode(&[0x8B, 0x80]),
            Err(ProtocolError::ReservedOpCode(0xB))
        );
        assert_eq!(
            FrameHeader::decode(&[0x09, 0x80]),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            FrameHeader::decode(&[0x89, 0xFE, 0, 126]),
            Err(ProtocolError::ControlTooLong(126))
        );
        let mut huge = [0x82, 0xFF, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            FrameHeader::decode(&huge),
            Err(ProtocolError::LengthTopBitSet)
        );
        huge[2] = 0x7F;
        let (h, n) = FrameHeader::decode(&[&huge[..], &[1, 2, 3, 4]].concat())
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (u64::MAX >> 1, 14));
    }

    #[test]
    fn encode_into_short_buffer_is_refused() {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: 70000,
        };
        assert_eq!(h.encode(&mut [0u8; 9]), None);
    }
}
