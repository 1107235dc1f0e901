//! Connection state machines after the opening handshake (RFC 6455 §5–§7).
//!
//! Both sides share one frame [`Reader`] that enforces the rules of §5 in the order they are
//! cheapest to check, so a violation is found with the fewest bytes read:
//! the header first (reserved bits, masking by role, size limits, fragmentation), then the
//! payload as it arrives (unmasking and UTF-8 validation are incremental, so invalid text
//! fails at its first bad byte even inside a frame still arriving, §8.1 "fail fast").
//!
//! Calling order, for either side: put received bytes in a buffer and call `handle_frame` on
//! the unprocessed part. [`Decoded::NeedMore`] means the frame at the start of the slice is not
//! complete: keep those bytes, append more, and call again with the same frame at the start
//! (the reader remembers how much of its payload it already unmasked and validated).
//! [`Decoded::Frame`] reports a complete frame whose payload is now unmasked in place.
//!
//! The server adds [`ServerConnection::echo_in_place`], the whole echo loop over one buffer:
//! the reply to a client frame is never longer than the frame (the server header has no
//! 4-byte masking key), so replies are written over the frames they answer and nothing is
//! allocated or copied on the common path of one message per read.

use std::ops::Range;

use crate::frame::{self, FrameHeader, OpCode};
use crate::mask::apply_mask;
use crate::utf8::{self, Utf8Validator};
use crate::{CloseCode, ProtocolError};

/// Size limits; frames or messages over them fail the connection with 1009 (§7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted. A frame is buffered whole, so this bounds the memory
    /// one connection can make the server hold.
    pub max_frame_bytes: u64,
    /// Largest message (sum of its fragments) accepted.
    pub max_message_bytes: u64,
}

impl Default for Limits {
    /// 16 MiB frames and 64 MiB messages, as tungstenite's defaults.
    fn default() -> Self {
        Self {
            max_frame_bytes: 16 << 20,
            max_message_bytes: 64 << 20,
        }
    }
}

/// What a complete frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// First (or only) frame of a text message; its payload is valid UTF-8 so far.
    Text,
    /// First (or only) frame of a binary message.
    Binary,
    /// A later fragment of the message in progress.
    Continuation,
    /// Ping: answer with a pong carrying the same payload (§5.5.2).
    Ping,
    /// Pong.
    Pong,
    /// Close, with its status code if the payload had one (§5.5.1). The reason is the rest of
    /// the payload, already checked to be UTF-8.
    Close(Option<CloseCode>),
}

/// A complete frame at the start of the slice given to `handle_frame`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: FrameKind,
    /// FIN: for data frames, the message ends here. Always set on control frames.
    pub fin: bool,
    /// The payload, unmasked in place.
    pub payload: Range<usize>,
    /// Bytes of the whole frame: the next frame starts here.
    pub len: usize,
}

/// The result of `handle_frame`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decoded {
    /// A complete frame.
    Frame(Frame),
    /// The frame at the start of the slice is incomplete. `frame_len` is its whole length once
    /// the header is known: the buffer must be able to hold that much.
    NeedMore {
        /// Header plus payload length, when the header has arrived.
        frame_len: Option<usize>,
    },
}

/// The frame rules of §5, shared by both roles.
#[derive(Debug, Clone)]
struct Reader {
    /// Servers require masked frames, clients require unmasked ones (§5.1).
    expect_mask: bool,
    limits: Limits,
    /// The fragmented message in progress: whether it is text, and its length so far.
    message: Option<(bool, u64)>,
    /// Payload bytes of the incomplete frame at the start of the input already unmasked
    /// and validated by an earlier call.
    done: usize,
    utf8: Utf8Validator,
    close_received: bool,
    error: Option<ProtocolError>,
}

impl Reader {
    fn new(expect_mask: bool, limits: Limits) -> Self {
        Self {
            expect_mask,
            limits,
            message: None,
            done: 0,
            utf8: Utf8Validator::new(),
            close_received: false,
            error: None,
        }
    }

    fn handle_frame(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = self.decode(buf);
        if let Err(error) = result {
            self.error = Some(error);
        }
        result
    }

    fn decode(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        if self.close_received {
            return Err(ProtocolError::FrameAfterClose);
        }
        let Some((header, header_len)) = FrameHeader::decode(buf)? else {
            return Ok(Decoded::NeedMore { frame_len: None });
        };
        let is_text = self.check_header(&header)?;
        // Fits: check_header bounded it by max_frame_bytes, a usize-sized buffer length.
        let payload_len = header.payload_len as usize;
        let frame_len = header_len + payload_len;
        let arrived = (buf.len() - header_len).min(payload_len);
        if arrived > self.done {
            let piece = &mut buf[header_len + self.done..header_len + arrived];
            if let Some(key) = header.mask {
                apply_mask(piece, key, self.done);
            }
            if is_text {
                self.utf8
                    .feed(piece)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            self.done = arrived;
        }
        if arrived < payload_len {
            return Ok(Decoded::NeedMore {
                frame_len: Some(frame_len),
            });
        }
        self.done = 0;
        let payload = header_len..frame_len;
        let kind = match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                self.end_data_frame(&header, is_text)?
            }
            OpCode::Ping => FrameKind::Ping,
            OpCode::Pong => FrameKind::Pong,
            OpCode::Close => {
                self.close_received = true;
                FrameKind::Close(parse_close(&buf[payload.clone()])?)
            }
        };
        Ok(Decoded::Frame(Frame {
            kind,
            fin: header.fin,
            payload,
            len: frame_len,
        }))
    }

    /// Check what the header alone tells; return whether the payload is text to validate.
    fn check_header(&self, header: &FrameHeader) -> Result<bool, ProtocolError> {
        // §5.2: "MUST be 0 unless an extension is negotiated" — none ever is.
        if header.rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match (self.expect_mask, header.mask.is_some()) {
            (true, false) => return Err(ProtocolError::UnmaskedFrame),
            (false, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let limits = self.limits;
        if header.payload_len > limits.max_frame_bytes {
            let (len, limit) = (header.payload_len, limits.max_frame_bytes);
            return Err(ProtocolError::FrameTooBig { len, limit });
        }
        let (is_text, so_far) = match (header.opcode, self.message) {
            // §5.4: control frames may come between fragments; they never join the message.
            (op, _) if op.is_control() => return Ok(false),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(message)) => message,
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (op, None) => (op == OpCode::Text, 0),
        };
        let len = so_far + header.payload_len;
        if len > limits.max_message_bytes {
            return Err(ProtocolError::MessageTooBig {
                len,
                limit: limits.max_message_bytes,
            });
        }
        Ok(is_text)
    }

    /// Account a complete data frame to its message.
    fn end_data_frame(
        &mut self,
        header: &FrameHeader,
        is_text: bool,
    ) -> Result<FrameKind, ProtocolError> {
        let kind = match header.opcode {
            OpCode::Text => FrameKind::Text,
            OpCode::Binary => FrameKind::Binary,
            _ => FrameKind::Continuation,
        };
        if header.fin {
            self.message = None;
            if is_text {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        } else {
            let so_far = self.message.map_or(0, |(_, len)| len);
            self.message = Some((is_text, so_far + header.payload_len));
        }
        Ok(kind)
    }
}

/// The close payload (§5.5.1): empty, or a 2-byte code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<CloseCode>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            utf8::validate(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

/// How a connection ends, reported by [`ServerConnection::echo_in_place`]. In every case the
/// caller sends the output, then closes its side of TCP (the server closes first, §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The peer started the close handshake; the output ends with our answering close frame.
    Answered(Option<CloseCode>),
    /// The peer answered a close frame we sent earlier: the handshake is complete.
    Completed,
    /// The peer broke the protocol; the output ends with a close frame carrying this error's
    /// code (§7.1.7 "Fail the WebSocket Connection").
    Failed(ProtocolError),
}

/// The result of [`ServerConnection::echo_in_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Echo {
    /// Bytes to send, in the buffer.
    pub output: Range<usize>,
    /// Input processed up to here. `buf[consumed..]` is an incomplete frame: keep it (see
    /// [`compact`]) and append the next bytes after it.
    pub consumed: usize,
    /// Length of that incomplete frame when its header has arrived; the buffer must grow to
    /// hold it (it is at most `max_frame_bytes` plus a header).
    pub need: Option<usize>,
    /// Data frames echoed.
    pub frames: u64,
    /// Messages completed (data frames with FIN).
    pub messages: u64,
    /// Set when the connection is closing.
    pub closing: Option<Closing>,
}

/// The server side of a connection after a successful handshake.
#[derive(Debug, Clone)]
pub struct ServerConnection {
    reader: Reader,
    /// We sent a close frame (shutdown, idle timeout): send no more data, await the peer's.
    close_sent: bool,
}

impl ServerConnection {
    /// A connection whose handshake just completed.
    pub fn new(limits: Limits) -> Self {
        Self {
            reader: Reader::new(true, limits),
            close_sent: false,
        }
    }

    /// Decode the frame at the start of `buf`, unmasking its payload in place.
    pub fn handle_frame(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        self.reader.handle_frame(buf)
    }

    /// Echo every complete frame in `buf[input..]` back to the client, in the same buffer.
    ///
    /// `output` is the range already holding bytes to send (empty, or e.g. the handshake
    /// response); it must end at or before `input`. Replies are appended to it: data frames
    /// with their opcode and FIN as received (so fragmented messages are echoed fragment by
    /// fragment with the same content), pongs for pings, the answer to a close. A protocol
    /// violation appends a close frame with its code and stops. `buf` only grows to append
    /// that close frame when the bytes left after the last reply are fewer than its 4 bytes.
    pub fn echo_in_place(&mut self, buf: &mut Vec<u8>, output: Range<usize>, input: usize) -> Echo {
        debug_assert!(output.end <= input && input <= buf.len());
        let mut echo = Echo {
            output,
            consumed: input,
            need: None,
            frames: 0,
            messages: 0,
            closing: None,
        };
        while echo.closing.is_none() {
            let frame = match self.reader.handle_frame(&mut buf[echo.consumed..]) {
                Ok(Decoded::Frame(frame)) => frame,
                Ok(Decoded::NeedMore { frame_len }) => {
                    echo.need = frame_len;
                    break;
                }
                Err(error) => {
                    buf.truncate(echo.output.end);
                    let code = error.close_code().to_bytes();
                    frame::write_frame(buf, true, OpCode::Close, None, &code);
                    echo.output.end = buf.len();
                    echo.consumed = buf.len();
                    echo.closing = Some(Closing::Failed(error));
                    break;
                }
            };
            let at = echo.consumed;
            echo.consumed += frame.len;
            let reply = match frame.kind {
                _ if self.close_sent && !matches!(frame.kind, FrameKind::Close(_)) => None,
                FrameKind::Text => Some(OpCode::Text),
                FrameKind::Binary => Some(OpCode::Binary),
                FrameKind::Continuation => Some(OpCode::Continuation),
                FrameKind::Ping => Some(OpCode::Pong),
                FrameKind::Pong => None,
                FrameKind::Close(code) => {
                    if self.close_sent {
                        echo.closing = Some(Closing::Completed);
                        None
                    } else {
                        // §5.5.1: answer with a close frame, "typically echoing the status
                        // code it received". The reason is not echoed: it was the peer's.
                        let reply_len = code.map_or(0, |_| 2);
                        echo.closing = Some(Closing::Answered(code));
                        let payload =
                            at + frame.payload.start..at + frame.payload.start + reply_len;
                        self.place_reply(buf, &mut echo.output, OpCode::Close, true, payload);
                        continue;
                    }
                }
            };
            let Some(opcode) = reply else { continue };
            if opcode != OpCode::Pong {
                echo.frames += 1;
                echo.messages += u64::from(frame.fin);
            }
            let payload = at + frame.payload.start..at + frame.payload.end;
            self.place_reply(buf, &mut echo.output, opcode, frame.fin, payload);
        }
        echo
    }

    /// Write a reply frame for `payload` (which lies in `buf` after `output`) at the end of
    /// `output`, moving the payload only when the reply cannot stay where the frame was.
    fn place_reply(
        &self,
        buf: &mut [u8],
        output: &mut Range<usize>,
        opcode: OpCode,
        fin: bool,
        payload: Range<usize>,
    ) {
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let header_len = header.encoded_len();
        // The unmasked header is shorter than the masked one, so it fits just before the
        // payload, inside the bytes the client's header took.
        let in_place = payload.start - header_len;
        if output.start == output.end {
            *output = in_place..in_place;
        }
        if output.end != in_place {
            buf.copy_within(payload.clone(), output.end + header_len);
        }
        header
            .encode(&mut buf[output.end..])
            .expect("a reply is never longer than its frame");
        output.end += header_len + payload.len();
    }

    /// Append a close frame we start (shutdown: 1001, idle timeout), and stop echoing data.
    /// The connection then waits for the peer's close ([`Closing::Completed`]).
    pub fn write_close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_bytes());
        // Control payloads are at most 125 bytes (§5.5); reasons are ours, short and ASCII.
        payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        frame::write_frame(out, true, OpCode::Close, None, &payload);
        self.close_sent = true;
    }

    /// Append a ping (heartbeats). The payload is at most 125 bytes.
    pub fn write_ping(&self, payload: &[u8], out: &mut Vec<u8>) {
        frame::write_frame(
            out,
            true,
            OpCode::Ping,
            None,
            &payload[..payload.len().min(125)],
        );
    }

    /// Whether we sent a close frame and await the peer's.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }
}

/// Move the unprocessed tail `buf[consumed..]` to the front, after its output was sent.
pub fn compact(buf: &mut Vec<u8>, consumed: usize) {
    let keep = buf.len() - consumed;
    buf.copy_within(consumed.., 0);
    buf.truncate(keep);
}

/// The client side of a connection after a successful handshake (used by the bench client).
///
/// The caller supplies masking keys: §5.3 wants them unpredictable, and randomness is the
/// caller's to provide in a sans-IO core.
#[derive(Debug, Clone)]
pub struct ClientConnection {
    reader: Reader,
}

impl ClientConnection {
    /// A connection whose handshake just completed.
    pub fn new(limits: Limits) -> Self {
        Self {
            reader: Reader::new(false, limits),
        }
    }

    /// Decode the server frame at the start of `buf`.
    pub fn handle_frame(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        self.reader.handle_frame(buf)
    }

    /// Append a masked frame.
    pub fn write_frame(
        &self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        key: [u8; 4],
        out: &mut Vec<u8>,
    ) {
        frame::write_frame(out, fin, opcode, Some(key), payload);
    }

    /// Append a masked close frame.
    pub fn write_close(&self, code: CloseCode, key: [u8; 4], out: &mut Vec<u8>) {
        frame::write_frame(out, true, OpCode::Close, Some(key), &code.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::write_frame;

    const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, fin, opcode, Some(KEY), payload);
        out
    }

    fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, fin, opcode, None, payload);
        out
    }

    /// Feed `stream` to a fresh server in pieces cut at `splits`, as a runtime would:
    /// append, echo, send the output, compact. Returns all bytes sent and how it closed.
    fn echo_stream(stream: &[u8], splits: &[usize], limits: Limits) -> (Vec<u8>, Option<Closing>) {
        let mut conn = ServerConnection::new(limits);
        let mut buf = Vec::new();
        let mut sent = Vec::new();
        let mut start = 0;
        for &end in splits.iter().chain(std::iter::once(&stream.len())) {
            buf.extend_from_slice(&stream[start..end]);
            start = end;
            let echo = conn.echo_in_place(&mut buf, 0..0, 0);
            assert!(echo.output.end <= echo.consumed);
            sent.extend_from_slice(&buf[echo.output.clone()]);
            compact(&mut buf, echo.consumed);
            if echo.closing.is_some() {
                return (sent, echo.closing);
            }
        }
        (sent, None)
    }

    fn echo_whole(stream: &[u8]) -> (Vec<u8>, Option<Closing>) {
        echo_stream(stream, &[], Limits::default())
    }

    #[test]
    fn echoes_text_and_binary_in_place() {
        for size in [0, 1, 125, 126, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
            for opcode in [OpCode::Text, OpCode::Binary] {
                let (sent, closing) = echo_whole(&client_frame(true, opcode, &payload));
                assert_eq!(sent, server_frame(true, opcode, &payload), "size {size}");
                assert_eq!(closing, None);
            }
        }
    }

    #[test]
    fn pipelined_frames_are_compacted_in_order() {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..50u32 {
            let payload = i.to_string().repeat(i as usize % 7 + 1);
            stream.extend(client_frame(true, OpCode::Text, payload.as_bytes()));
            expected.extend(server_frame(true, OpCode::Text, payload.as_bytes()));
        }
        assert_eq!(echo_whole(&stream).0, expected);
    }

    /// The same stream whole, byte by byte, and in random splits gives the same bytes out.
    #[test]
    fn any_split_gives_the_same_output() {
        let mut stream = Vec::new();
        stream.extend(client_frame(true, OpCode::Binary, &[7; 300]));
        stream.extend(client_frame(false, OpCode::Text, "κό".as_bytes()));
        stream.extend(client_frame(true, OpCode::Ping, b"are you there"));
        stream.extend(client_frame(true, OpCode::Continuation, "σμε".as_bytes()));
        stream.extend(client_frame(true, OpCode::Pong, b"unsolicited"));
        stream.extend(client_frame(
            true,
            OpCode::Close,
            &[0x03, 0xE8, b'b', b'y', b'e'],
        ));
        let whole = echo_whole(&stream);
        assert_eq!(whole.1, Some(Closing::Answered(Some(CloseCode::NORMAL))));
        let byte_by_byte: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(
            echo_stream(&stream, &byte_by_byte, Limits::default()),
            whole
        );
        let mut rng_state = 0x9E37_79B9u32;
        for _ in 0..200 {
            let mut splits: Vec<usize> = (0..5)
                .map(|_| {
                    rng_state ^= rng_state << 13;
                    rng_state ^= rng_state >> 17;
                    rng_state ^= rng_state << 5;
                    rng_state as usize % stream.len()
                })
                .collect();
            splits.sort_unstable();
            assert_eq!(
                echo_stream(&stream, &splits, Limits::default()),
                whole,
                "{splits:?}"
            );
        }
    }

    #[test]
    fn ping_is_answered_with_pong() {
        let (sent, _) = echo_whole(&client_frame(true, OpCode::Ping, b"hi"));
        assert_eq!(sent, server_frame(true, OpCode::Pong, b"hi"));
    }

    #[test]
    fn close_is_echoed_without_reason() {
        let (sent, closing) = echo_whole(&client_frame(true, OpCode::Close, &[0x0F, 0xA0, b'x']));
        assert_eq!(sent, server_frame(true, OpCode::Close, &[0x0F, 0xA0]));
        assert_eq!(closing, Some(Closing::Answered(Some(CloseCode(4000)))));
        let (sent, closing) = echo_whole(&client_frame(true, OpCode::Close, &[]));
        assert_eq!(sent, server_frame(true, OpCode::Close, &[]));
        assert_eq!(closing, Some(Closing::Answered(None)));
    }

    fn fails_with(stream: &[u8], limits: Limits) -> (CloseCode, ProtocolError) {
        let (sent, closing) = echo_stream(stream, &[], limits);
        let Some(Closing::Failed(error)) = closing else {
            panic!("not failed: {closing:?}")
        };
        let tail = &sent[sent.len() - 4..];
        assert_eq!(&tail[..2], &[0x88, 0x02], "ends with a close frame");
        (CloseCode(u16::from_be_bytes([tail[2], tail[3]])), error)
    }

    #[test]
    fn protocol_violations_close_with_1002() {
        let mut rsv = client_frame(true, OpCode::Text, b"x");
        rsv[0] |= 0x40;
        let mut reserved_op = client_frame(true, OpCode::Binary, b"x");
        reserved_op[0] = 0x83;
        let mut long_ping = client_frame(true, OpCode::Ping, &[0; 125]);
        long_ping[1] = 0x80 | 126;
        long_ping.splice(2..2, [0, 126]);
        long_ping.push(0);
        let mut fragmented_ping = client_frame(true, OpCode::Ping, b"x");
        fragmented_ping[0] &= 0x7F;
        let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
            (
                "unmasked",
                server_frame(true, OpCode::Text, b"x"),
                ProtocolError::UnmaskedFrame,
            ),
            ("rsv", rsv, ProtocolError::ReservedBits(4)),
            ("opcode", reserved_op, ProtocolError::ReservedOpCode(3)),
            ("long ping", long_ping, ProtocolError::ControlTooLong(126)),
            (
                "fragmented ping",
                fragmented_ping,
                ProtocolError::FragmentedControl,
            ),
            (
                "lone continuation",
                client_frame(true, OpCode::Continuation, b"x"),
                ProtocolError::UnexpectedContinuation,
            ),
            (
                "text inside fragmented",
                [
                    client_frame(false, OpCode::Text, b"a"),
                    client_frame(true, OpCode::Text, b"b"),
                ]
                .concat(),
                ProtocolError::ExpectedContinuation,
            ),
            (
                "close 1 byte",
                client_frame(true, OpCode::Close, &[3]),
                ProtocolError::CloseTooShort,
            ),
            (
                "close 1005",
                client_frame(true, OpCode::Close, &[0x03, 0xED]),
                ProtocolError::InvalidCloseCode(1005),
            ),
        ];
        for (name, stream, expected) in cases {
            assert_eq!(
                fails_with(&stream, Limits::default()),
                (CloseCode::PROTOCOL_ERROR, expected),
                "{name}"
            );
        }
    }

    #[test]
    fn invalid_utf8_closes_with_1007_at_the_first_bad_byte() {
        let (code, _) = fails_with(
            &client_frame(true, OpCode::Text, b"ok\xff"),
            Limits::default(),
        );
        assert_eq!(code, CloseCode::INVALID_PAYLOAD);
        // Fail fast: the bad first fragment fails before any continuation arrives.
        let (code, _) = fails_with(
            &client_frame(false, OpCode::Text, b"\xf4\x90\x80\x80"),
            Limits::default(),
        );
        assert_eq!(code, CloseCode::INVALID_PAYLOAD);
        // Truncated character at the end of the final fragment.
        let stream = [
            client_frame(false, OpCode::Text, b"ok"),
            client_frame(true, OpCode::Continuation, b"\xe2\x82"),
        ]
        .concat();
        assert_eq!(
            fails_with(&stream, Limits::default()).0,
            CloseCode::INVALID_PAYLOAD
        );
        // Close reason.
        let close = client_frame(true, OpCode::Close, &[0x03, 0xE8, 0xff]);
        assert_eq!(
            fails_with(&close, Limits::default()).0,
            CloseCode::INVALID_PAYLOAD
        );
    }

    /// Inside one frame still arriving: the bad byte is found before the frame completes.
    #[test]
    fn invalid_utf8_fails_before_the_frame_is_complete() {
        let frame = client_frame(
            true,
            OpCode::Text,
            &[b"abc\xc0".as_slice(), &[b'z'; 1000]].concat(),
        );
        let mut conn = ServerConnection::new(Limits::default());
        let mut partial = frame[..20].to_vec();
        let echo = conn.echo_in_place(&mut partial, 0..0, 0);
        assert_eq!(
            echo.closing,
            Some(Closing::Failed(ProtocolError::InvalidUtf8))
        );
    }

    #[test]
    fn sizes_over_the_limits_close_with_1009_from_the_header_alone() {
        let limits = Limits {
            max_frame_bytes: 1000,
            max_message_bytes: 2500,
        };
        let header_only = &client_frame(true, OpCode::Binary, &[0; 1001])[..8];
        let (code, error) = fails_with(header_only, limits);
        assert_eq!(
            (code, error),
            (
                CloseCode::TOO_BIG,
                ProtocolError::FrameTooBig {
                    len: 1001,
                    limit: 1000
                }
            )
        );
        let fragments = [
            client_frame(false, OpCode::Binary, &[0; 1000]),
            client_frame(false, OpCode::Continuation, &[0; 1000]),
            client_frame(true, OpCode::Continuation, &[0; 1000]),
        ]
        .concat();
        assert_eq!(fails_with(&fragments, limits).0, CloseCode::TOO_BIG);
        // 2^63 - 1 announced: refused without allocating anything.
        let huge = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        assert_eq!(fails_with(&huge, Limits::default()).0, CloseCode::TOO_BIG);
    }

    #[test]
    fn errors_are_sticky() {
        let mut conn = ServerConnection::new(Limits::default());
        let mut bad = server_frame(true, OpCode::Text, b"x");
        assert_eq!(
            conn.handle_frame(&mut bad),
            Err(ProtocolError::UnmaskedFrame)
        );
        let mut good = client_frame(true, OpCode::Text, b"x");
        assert_eq!(
            conn.handle_frame(&mut good),
            Err(ProtocolError::UnmaskedFrame)
        );
    }

    #[test]
    fn server_close_then_peer_close_completes() {
        let mut conn = ServerConnection::new(Limits::default());
        let mut out = Vec::new();
        conn.write_close(CloseCode::GOING_AWAY, "shutdown", &mut out);
        assert_eq!(&out[..4], &[0x88, 10, 0x03, 0xE9]);
        let mut buf = [
            client_frame(true, OpCode::Text, b"late"),
            client_frame(true, OpCode::Close, &[0x03, 0xE9]),
        ]
        .concat();
        let echo = conn.echo_in_place(&mut buf, 0..0, 0);
        assert!(echo.output.is_empty(), "no data after our close");
        assert_eq!(echo.closing, Some(Closing::Completed));
    }

    #[test]
    fn output_after_a_handshake_response_stays_contiguous() {
        let response = b"HTTP/1.1 101 ok\r\n\r\n";
        let mut buf = response.to_vec();
        buf.extend(client_frame(true, OpCode::Text, b"hello"));
        let mut conn = ServerConnection::new(Limits::default());
        let echo = conn.echo_in_place(&mut buf, 0..response.len(), response.len());
        let expected = [
            response.as_slice(),
            &server_frame(true, OpCode::Text, b"hello"),
        ]
        .concat();
        assert_eq!(&buf[echo.output], expected.as_slice());
    }

    #[test]
    fn client_reads_server_frames_and_rejects_masked_ones() {
        let mut client = ClientConnection::new(Limits::default());
        let mut buf = server_frame(true, OpCode::Binary, b"data");
        let Ok(Decoded::Frame(frame)) = client.handle_frame(&mut buf) else {
            panic!()
        };
        assert_eq!(&buf[frame.payload], b"data");
        let mut masked = client_frame(true, OpCode::Binary, b"data");
        assert_eq!(
            client.handle_frame(&mut masked),
            Err(ProtocolError::MaskedFrame)
        );
    }
}
