//! wsport-core: a sans-IO implementation of the WebSocket protocol (RFC 6455).
//!
//! Nothing here touches a socket, a clock or a random source: the caller passes bytes, buffers
//! and (where needed) randomness in, and the core reports what it consumed and what to send as
//! counts and ranges into the caller's buffers. That one rule lets a borrowed-buffer runtime
//! (tokio's `read_buf`) and an owned-buffer runtime (io_uring, where the `Vec` travels into the
//! kernel and back) drive the same code without a copy.
//!
//! Layers, bottom up:
//! - [`mask`]: the XOR masking of §5.3 (fast path beside its scalar reference),
//! - [`utf8`]: incremental UTF-8 validation of text messages across fragments (§8.1),
//! - [`close`]: close status codes (§7.4),
//! - [`frame`]: frame headers (§5.2),
//! - [`handshake`]: the opening handshake, server and client side (§4),
//! - [`conn`]: the connection state machines that tie them together.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod close;
pub mod conn;
mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use conn::{
    ClientConnection, Closing, Decoded, Echo, Frame, FrameKind, Limits, ServerConnection,
};
pub use error::ProtocolError;
pub use frame::{FrameHeader, OpCode};
