//! The bytes an abusive client sends and the answers it reads, written by hand (RFC 6455).

use std::io::{self, Read, Write};

/// The RFC 6455 §1.3 sample key: the server's accept value is not checked, only its status.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The mask every client frame carries (§5.3); fixed, as nothing here relies on its secrecy.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opcodes used here (§5.2).
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A valid upgrade request for `host`, with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(host: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A final frame with `opcode` and `payload`, masked when `masked` (clients must mask, §5.1).
pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = header(opcode, payload.len() as u64, masked);
    let start = out.len();
    out.extend_from_slice(payload);
    if masked {
        for (i, byte) in out[start..].iter_mut().enumerate() {
            *byte ^= MASK[i % 4];
        }
    }
    out
}

/// A final frame's header announcing `len` bytes, in the shortest form §5.2 allows, with the
/// mask key when `masked`. `len` may break the rule that its most significant bit be 0.
pub fn header(opcode: u8, len: u64, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![0x80 | opcode];
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
    }
    out
}

/// Send the upgrade request and read the answer's head; `Ok(status)` once it is complete.
pub fn upgrade(stream: &mut (impl Read + Write), host: &str) -> io::Result<u16> {
    stream.write_all(&upgrade_request(host, ""))?;
    read_http_status(stream)
}

/// Read an HTTP response head up to its blank line and return its status code; an answer that
/// is not HTTP is `InvalidData`, the end of the stream before it `UnexpectedEof`.
pub fn read_http_status(stream: &mut impl Read) -> io::Result<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        // A read with SO_RCVTIMEO is not restarted after a stop signal (signal(7)).
        match stream.read(&mut byte) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too long",
            ));
        }
    }
    parse_status(&head)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP/1.1 response"))
}

/// The status code of `HTTP/1.1 NNN ...`.
pub fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    (words.next()? == "HTTP/1.1").then_some(())?;
    words.next()?.parse().ok()
}

/// One frame from the server (unmasked, §5.1): its opcode and payload.
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The status code of a close frame (§5.5.1), 1005 when it carries none (§7.1.5).
    pub fn close_code(&self) -> u16 {
        match self.payload.get(..2) {
            Some(code) => u16::from_be_bytes([code[0], code[1]]),
            None => 1005,
        }
    }
}

/// Read one frame; control and small data frames only (an abusive client reads little).
pub fn read_frame(stream: &mut impl Read) -> io::Result<ServerFrame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext)?;
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext)?;
            u64::from_be_bytes(ext)
        }
        short => u64::from(short),
    };
    if len > 1 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "server frame over 1 MiB",
        ));
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    Ok(ServerFrame {
        opcode: head[0] & 0x0f,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_the_shortest_length_form() {
        assert_eq!(header(BINARY, 5, false), [0x82, 5]);
        assert_eq!(header(BINARY, 126, false), [0x82, 126, 0, 126]);
        assert_eq!(header(BINARY, 1 << 63, false)[1..3], [127, 0x80]);
        assert_eq!(header(PING, 0, true), [0x89, 0x80, 0x37, 0xfa, 0x21, 0x3d]);
    }

    #[test]
    fn masking_round_trips() {
        let framed = frame(TEXT, b"hello", true);
        let unmasked: Vec<u8> = framed[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(unmasked, b"hello");
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"),
            Some(431)
        );
        assert_eq!(parse_status(b"SSH-2.0\r\n"), None);
    }
}
