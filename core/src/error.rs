//! The error of the framing layer: what a peer did wrong, and how to close for it.

use crate::CloseCode;

/// A protocol violation by the peer, found while decoding its frames.
///
/// Every variant maps to the close code the connection is failed with (§7.4.1): 1002 for
/// broken framing, 1007 for invalid UTF-8, 1009 for sizes over the configured limits. Errors
/// are sticky: once a connection has returned one, it returns it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Opcodes 0x3–0x7 and 0xB–0xF are reserved (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpCode(u8),
    /// RSV bits set without a negotiated extension (§5.2).
    #[error("reserved bits {0:#05b} set without an extension")]
    ReservedBits(u8),
    /// A client frame without a mask (§5.1: the server must close).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server frame with a mask (§5.1: the client must close).
    #[error("server frame is masked")]
    MaskedFrame,
    /// A control frame with FIN clear (§5.5).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    #[error("control frame of {0} bytes (limit 125)")]
    ControlTooLong(u64),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    #[error("payload length with the top bit set")]
    LengthTopBitSet,
    /// A continuation frame with no fragmented message in progress (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// Text that is not UTF-8, in a message or a close reason (§8.1).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1: a body starts with a 2-byte code).
    #[error("close frame with a 1-byte payload")]
    CloseTooShort,
    /// A close code a peer may not send (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A frame longer than the configured maximum.
    #[error("frame of {len} bytes over the limit of {limit}")]
    FrameTooBig {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A message that grew past the configured maximum.
    #[error("message of {len}+ bytes over the limit of {limit}")]
    MessageTooBig {
        /// Bytes of the message so far, including the frame that crossed the limit.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A data frame after the close frame (§5.5.1: the close frame is the last one).
    #[error("frame after close")]
    FrameAfterClose,
}

impl ProtocolError {
    /// The status code to fail the connection with.
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}
