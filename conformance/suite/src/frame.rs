//! A deliberately small RFC 6455 frame codec for the client side of the suite.
//!
//! The encoder builds *any* client frame, valid or not: arbitrary FIN/RSV/opcode bits, masked
//! or not, and an announced length that may disagree with the payload actually sent (a header
//! promising 1 MiB followed by nothing, or 2^63-1). The decoder parses what a server sends and
//! keeps every bit it saw (mask bit, RSV) so cases can check them instead of trusting them.
//!
//! Written from RFC 6455 §5.2 directly; it shares no code with wsport-core on purpose.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Opcodes, RFC 6455 §5.2 and §11.8.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;

    /// A short name for messages: "text", "close", "opcode 0x3".
    pub fn name(opcode: u8) -> String {
        match opcode {
            CONTINUATION => "continuation".into(),
            TEXT => "text".into(),
            BINARY => "binary".into(),
            CLOSE => "close".into(),
            PING => "ping".into(),
            PONG => "pong".into(),
            other => format!("opcode {other:#x}"),
        }
    }
}

/// A client frame to encode. Built with [`Frame::new`] and the typed constructors, then
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
        Self::new(op::TEXT, payload)
    }

    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(op::BINARY, payload)
    }

    pub fn continuation(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(op::CONTINUATION, payload)
    }

    pub fn ping(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(op::PING, payload)
    }

    pub fn pong(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(op::PONG, payload)
    }

    /// A close frame carrying `code` and `reason` (§5.5.1); the reason is raw bytes so
    /// invalid UTF-8 can be sent.
    pub fn close(code: u16, reason: &[u8]) -> Self {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        Self::new(op::CLOSE, payload)
    }

    /// A close frame with an arbitrary payload (empty, one byte, ...).
    pub fn close_raw(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(op::CLOSE, payload)
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

    /// Header (and masking key) only, §5.2: the shortest length form for the announced
    /// length, and the raw 64-bit value when it needs 64 bits (even with the MSB set, which
    /// is exactly what one negative case sends).
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(14);
        out.push((u8::from(self.fin) << 7) | (self.rsv << 4) | (self.opcode & 0x0f));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= u64::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        if let Some(mask) = self.mask {
            out.extend_from_slice(&mask);
        }
        out
    }

    /// Header followed by the (masked) payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        let start = out.len();
        out.extend_from_slice(&self.payload);
        if let Some(mask) = self.mask {
            apply_mask(&mut out[start..], mask);
        }
        out
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fin={}", op::name(self.opcode), u8::from(self.fin))?;
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

/// XOR `data` with the 4-byte key, §5.3. Scalar on purpose: this is the reference side.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// A frame received from the server, with every header bit as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    /// A server must never mask (§5.1); kept so a case can say so.
    pub masked: bool,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }

    /// Status code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == op::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// Reason bytes of a close frame.
    pub fn close_reason(&self) -> &[u8] {
        self.payload.get(2..).unwrap_or_default()
    }
}

impl fmt::Display for ServerFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} frame", op::name(self.opcode))?;
        if self.opcode == op::CLOSE {
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
        if self.masked {
            write!(f, " MASKED")?;
        }
        write!(f, " len={}", self.payload.len())?;
        if !self.payload.is_empty() {
            write!(f, " {}", preview(&self.payload))?;
        }
        Ok(())
    }
}

/// Why [`decode`] could not produce a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The header announces more than the suite is willing to buffer.
    TooLarge(u64),
}

/// Largest server frame the suite buffers: comfortably above the 16 MiB echo case.
pub const MAX_SERVER_FRAME: u64 = 64 << 20;

/// Decode one server frame from the front of `buf`.
///
/// `Ok(None)` means "need more bytes" and nothing was consumed; `Ok(Some((frame, n)))` means
/// the frame used the first `n` bytes.
pub fn decode(buf: &[u8]) -> Result<Option<(ServerFrame, usize)>, DecodeError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if len > MAX_SERVER_FRAME {
        return Err(DecodeError::TooLarge(len));
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let end = at + len as usize;
    let Some(payload) = buf.get(at..end) else {
        return Ok(None);
    };
    let mut payload = payload.to_vec();
    if let Some(mask) = mask {
        apply_mask(&mut payload, mask);
    }
    let frame = ServerFrame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0b111,
        opcode: b0 & 0x0f,
        masked,
        payload,
    };
    Ok(Some((frame, end)))
}

/// A short printable rendering of a payload for failure messages.
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = &bytes[..bytes.len().min(MAX)];
    let ellipsis = if bytes.len() > MAX { "..." } else { "" };
    format!("\"{}{ellipsis}\"", shown.escape_ascii())
}

/// A fresh masking key. Masks only need to be unpredictable to intermediaries, not secure;
/// varying them per frame is what catches a server that unmasks with the wrong key offset.
pub fn fresh_mask() -> [u8; 4] {
    (next_random() as u32).to_be_bytes()
}

/// splitmix64 over a process-wide counter seeded from the clock: enough randomness for
/// masks and Sec-WebSocket-Key values without another dependency.
pub fn next_random() -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    static STATE: OnceLock<AtomicU64> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        AtomicU64::new(nanos ^ u64::from(std::process::id()) << 32)
    });
    let mut z = state
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_bytes(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        Frame::new(opcode, payload).fin(fin).unmasked().encode()
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
    fn bits_land_where_rfc_says() {
        let header = Frame::new(0xB, "x")
            .fin(false)
            .rsv(0b101)
            .with_mask([1, 2, 3, 4]);
        assert_eq!(header.header_bytes(), [0x5B, 0x81, 1, 2, 3, 4]);
        assert_eq!(header.encode()[6], b'x' ^ 1);
    }

    #[test]
    fn masked_round_trip_through_decode() {
        let frame = Frame::binary((0..=255u8).collect::<Vec<_>>());
        let (decoded, used) = decode(&frame.encode()).unwrap().unwrap();
        assert_eq!(used, frame.encode().len());
        assert!(decoded.masked);
        assert_eq!(decoded.payload, frame.payload);
    }

    /// Feed a stream whole, byte by byte and in uneven splits: same frames every time.
    #[test]
    fn decode_is_split_invariant() {
        let mut stream = Vec::new();
        stream.extend(server_bytes(false, op::TEXT, b"hel"));
        stream.extend(server_bytes(true, op::PING, b"mid"));
        stream.extend(server_bytes(true, op::CONTINUATION, b"lo"));
        stream.extend(server_bytes(true, op::BINARY, &[7; 300]));
        stream.extend(server_bytes(true, op::BINARY, &[9; 70_000]));
        stream.extend(server_bytes(true, op::CLOSE, &[0x03, 0xe8, b'o', b'k']));

        let whole = decode_all(&stream, &[stream.len()]);
        assert_eq!(whole.len(), 6);
        assert_eq!(whole[5].close_code(), Some(1000));
        assert_eq!(decode_all(&stream, &[1]), whole);
        assert_eq!(decode_all(&stream, &[3, 1, 7, 1000, 13]), whole);
    }

    fn decode_all(stream: &[u8], steps: &[usize]) -> Vec<ServerFrame> {
        let (mut buf, mut frames, mut fed) = (Vec::new(), Vec::new(), 0);
        for step in steps.iter().cycle() {
            if fed == stream.len() {
                break;
            }
            let next = (fed + step).min(stream.len());
            buf.extend_from_slice(&stream[fed..next]);
            fed = next;
            while let Some((frame, used)) = decode(&buf).unwrap() {
                frames.push(frame);
                buf.drain(..used);
            }
        }
        assert!(buf.is_empty());
        frames
    }

    #[test]
    fn refuses_absurd_lengths() {
        let header = Frame::binary(vec![]).announce(u64::MAX >> 1).unmasked();
        assert_eq!(
            decode(&header.header_bytes()),
            Err(DecodeError::TooLarge(u64::MAX >> 1))
        );
    }

    #[test]
    fn masks_vary() {
        assert_ne!(fresh_mask(), fresh_mask());
    }
}
