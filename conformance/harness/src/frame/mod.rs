//! The client side of RFC 6455 framing (§5), written for checking servers rather than for an
//! application.
//!
//! Every header field is free on the way out ([`encode`]): FIN, the three RSV bits, any of the
//! 16 opcodes, masked or not, any length form (non-minimal ones and the forbidden 64-bit MSB
//! too), and an announced length that need not match the bytes that follow. On the way in
//! ([`decode`]) the decoder checks only what it needs to delimit a frame and keeps every bit
//! the server sent (mask, RSV, length form): whether the frame was *legal* is the caller's
//! verdict, because an illegal server frame is a finding, not a decoding failure.
//!
//! Written from RFC 6455 §5.2 directly; it shares no code with wsport-core on purpose.

mod decode;
mod encode;

pub use decode::{decode_frame, DecodeError, ServerFrame};
pub use encode::{encode_frame, Frame, Header, LengthForm};

/// Opcodes, RFC 6455 §5.2 and §11.8. Values 3-7 and 11-15 are reserved.
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;

    /// True for close, ping, pong and the reserved control opcodes 11-15 (§5.5).
    pub fn is_control(op: u8) -> bool {
        op & 0x8 != 0
    }

    /// A short name for messages: "text", "close", "opcode 0x3".
    pub fn name(op: u8) -> String {
        match op {
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

/// XORs `buf` with the masking key (§5.3), `offset` being the position of `buf[0]` within the
/// frame payload, so a payload can be masked piece by piece. Word-wise for the 16 MiB cases;
/// a test holds it to the byte-wise definition.
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

/// Close codes a peer may send (§7.4): the defined ones it may put on the wire and the
/// registered / private ranges 3000-4999. 1004-1006 and 1015 are reserved or must never be
/// sent; 1012-1014 are IANA-registered since RFC 6455 and accepted here.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Payload of a close frame (§5.5.1): optional code, then a reason, raw bytes so that invalid
/// UTF-8 can be sent.
pub fn close_payload(code: Option<u16>, reason: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + reason.len());
    if let Some(code) = code {
        out.extend_from_slice(&code.to_be_bytes());
    }
    out.extend_from_slice(reason);
    out
}

/// A short printable rendering of a payload for failure messages.
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = &bytes[..bytes.len().min(MAX)];
    let ellipsis = if bytes.len() > MAX { "..." } else { "" };
    format!("\"{}{ellipsis}\"", shown.escape_ascii())
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

    #[test]
    fn previews_are_short_and_printable() {
        assert_eq!(preview(b"a\x00"), "\"a\\x00\"");
        assert_eq!(preview(&[b'x'; 50]), format!("\"{}...\"", "x".repeat(40)));
        assert_eq!(opcode::name(0x3), "opcode 0x3");
        assert!(opcode::is_control(0xB) && !opcode::is_control(opcode::BINARY));
    }
}
