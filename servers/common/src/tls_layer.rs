//! wss's byte layer: rustls' unbuffered server connection working on the connection buffer
//! itself, so that no TLS byte is copied into or out of a rustls-owned buffer.
//!
//! The connection buffer, seen through a [`Wire`], holds records to send at its front, then
//! input already consumed, then input not yet read:
//!
//! ```text
//! [ output records | consumed input | unread input (a partial record, usually none) ]
//! 0                out               read                                          len
//! ```
//!
//! [`TlsLayer::read`] decrypts the complete records in the unread part and appends their
//! plaintext to the caller's plaintext buffer; [`TlsLayer::write`] encrypts a reply into the
//! room the consumed input left. The output is then `buf[..out]`, the bytes up to `read` are
//! consumed, and what follows (a partial record, or bytes rustls holds back) stays for the
//! next read, as the session's [`Step`](crate::session::Step) contract wants.
//!
//! # Copies per wss message (rustls 0.23.46)
//!
//! - receive: the kernel writes the records into the connection buffer; rustls decrypts
//!   them there, in place, then copies each record's plaintext into a `Vec` of its own
//!   (`ReadTraffic` does not yet hand out the in-place plaintext: a TODO in rustls'
//!   `conn/unbuffered.rs`), and the session copies that into its plaintext buffer, where the
//!   WebSocket layer unmasks and echoes in place: **2 copies** (1 inside rustls, 1 ours);
//! - send: [`WriteTraffic::encrypt`](rustls::unbuffered::WriteTraffic::encrypt) copies the
//!   reply into a record `Vec`, seals it in place and copies the record into the connection
//!   buffer: **2 copies**, both inside rustls, none of ours.
//!
//! rustls' buffered `ServerConnection`, used before, made 5: `read_tls` into its deframer
//! buffer, the record's plaintext into a `Vec`, `reader()` into ours, `writer()` sealing into
//! a record `Vec`, `write_tls` into ours. The input no longer passes through a rustls buffer,
//! and the output no longer waits in one. Unread input is moved only when a reply is longer
//! than the input it answers (the handshake's flight, or a message whose start came in an
//! earlier read): then the partial record behind it moves back to make room.

use std::ops::Range;
use std::sync::Arc;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    AppDataRecord, ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic,
};

/// Largest plaintext in one record (RFC 8446 §5.1, RFC 5246 §6.2.1: 2^14 bytes): a reply is
/// encrypted in chunks of at most this, one record each.
const MAX_FRAGMENT_LEN: usize = 16 * 1024;

/// Most bytes a record adds to its plaintext with the suites the ring provider offers:
/// TLS 1.2 AES-GCM's 5-byte header, 8-byte explicit nonce and 16-byte tag (TLS 1.3: 5 + 1 + 16).
/// Only sizes the room made before encrypting; rustls' own count decides.
const MAX_RECORD_OVERHEAD: usize = 29;

/// A TLS record header: type, version, length (RFC 8446 §5.1).
const RECORD_HEADER_LEN: usize = 5;

/// Why the TLS layer cannot go on with a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the peer's records (a malformed or undecryptable record, a failed
    /// handshake, a fatal alert from the peer): the peer's fault. rustls queued an alert for
    /// the peer where one is due; [`TlsLayer::flush_alert`] writes it.
    #[error("the peer's TLS was refused: {0}")]
    Peer(#[from] rustls::Error),
    /// The peer split a handshake message sent after the handshake (a key update, a
    /// renegotiation attempt) over several records: rustls would keep its first records in
    /// the connection buffer, which the paths that encrypt outside a read (timers,
    /// `--broadcast`) do not have. No real client does this; the connection is refused.
    #[error("the peer split a post-handshake handshake message over several records")]
    SplitPostHandshake,
    /// rustls cannot encrypt any more with these keys (its confidentiality limit): our side.
    #[error("cannot encrypt: {0}")]
    Encrypt(#[from] EncryptError),
    /// rustls refused to write a handshake record it queued (it was written already): a
    /// misuse on our side, never the peer's doing.
    #[error("cannot write a handshake record: {0}")]
    Encode(#[from] EncodeError),
}

/// The connection buffer as the TLS layer writes and reads it (see the module doc).
pub struct Wire<'b> {
    buf: &'b mut Vec<u8>,
    /// Output ends here.
    out: usize,
    /// Unread input starts here.
    read: usize,
}

impl<'b> Wire<'b> {
    /// `buf` holds input only (everything received and not yet consumed).
    pub fn over_input(buf: &'b mut Vec<u8>) -> Self {
        Self {
            buf,
            out: 0,
            read: 0,
        }
    }

    /// `buf` takes output only, appended after what it holds (a control frame, a broadcast).
    fn appending(buf: &'b mut Vec<u8>) -> Self {
        let len = buf.len();
        Self {
            buf,
            out: len,
            read: len,
        }
    }

    /// The output, in the buffer.
    pub fn output(&self) -> Range<usize> {
        0..self.out
    }

    /// Input consumed up to here: the unread input after it must be kept.
    pub fn consumed(&self) -> usize {
        self.read
    }

    /// Consume all input, read or not.
    pub fn discard_all(&mut self) {
        self.read = self.buf.len();
    }

    /// End an appending wire: the buffer holds its old bytes and the output, no room after.
    fn finish_appending(self) {
        debug_assert_eq!(self.read, self.buf.len(), "an appending wire has no input");
        self.buf.truncate(self.out);
    }

    fn unread(&mut self) -> &mut [u8] {
        &mut self.buf[self.read..]
    }

    fn discard(&mut self, n: usize) {
        self.read += n;
    }

    /// The room for output: the consumed input between the output and the unread input.
    fn room(&mut self) -> &mut [u8] {
        &mut self.buf[self.out..self.read]
    }

    /// Make the room at least `n` bytes, moving the unread input back if it is in the way.
    fn reserve(&mut self, n: usize) {
        let room = self.read - self.out;
        if room >= n {
            return;
        }
        let shift = n - room;
        let len = self.buf.len();
        self.buf.resize(len + shift, 0);
        self.buf.copy_within(self.read..len, self.read + shift);
        self.read += shift;
    }

    fn wrote(&mut self, n: usize) {
        self.out += n;
    }

    /// Whether the unread input starts with a complete record, one rustls has seen but not
    /// let go of (it reads every complete record before asking for more input).
    fn holds_complete_record(&self) -> bool {
        let unread = &self.buf[self.read..];
        unread.len() >= RECORD_HEADER_LEN
            && unread.len()
                >= RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([unread[3], unread[4]]))
    }
}

/// Whether [`TlsLayer::read`] asks rustls again after a state.
enum Next {
    Again,
    /// Only if input is left that rustls has not read yet, or it has records to send.
    IfMoreInput,
    Stop,
}

/// rustls' unbuffered server side of one wss connection.
pub struct TlsLayer {
    conn: UnbufferedServerConnection,
    /// The peer's close_notify came: rustls reads nothing after it (RFC 8446 §6.1 says to
    /// ignore what follows), so neither do we.
    peer_closed: bool,
}

impl TlsLayer {
    /// A connection that has received nothing yet.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(Self {
            conn: UnbufferedServerConnection::new(config)?,
            peer_closed: false,
        })
    }

    /// Whether the TLS handshake is still under way (no application data yet).
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Read every complete record in the wire's unread input: application data is appended
    /// to `plain`, the handshake's answers are written to the wire. Stops when rustls needs
    /// more input; a partial record stays unread.
    pub fn read(&mut self, wire: &mut Wire<'_>, plain: &mut Vec<u8>) -> Result<(), TlsError> {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(wire.unread());
            let state = match state {
                Ok(state) => state,
                Err(error) => {
                    wire.discard(discard);
                    return Err(error.into());
                }
            };
            let (next, extra) = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    let mut extra = 0;
                    while let Some(record) = records.next_record() {
                        extra += take_record(record?, plain);
                    }
                    (Next::IfMoreInput, extra)
                }
                // Early data is off (`max_early_data_size` 0), but drained all the same: left
                // in rustls, it would be offered again forever.
                ConnectionState::ReadEarlyData(mut records) => {
                    let mut extra = 0;
                    while let Some(record) = records.next_record() {
                        extra += take_record(record?, plain);
                    }
                    (Next::IfMoreInput, extra)
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    wire.discard(discard);
                    write_records(wire, |room| encode.encode(room), encode_needs)?;
                    continue;
                }
                // The records are in the output, which is sent before the next read.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    (Next::Again, 0)
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    (Next::Again, 0)
                }
                _ => (Next::Stop, 0),
            };
            wire.discard(discard + extra);
            let again = match next {
                Next::Again => true,
                // The common end of a read: the data records are taken and no whole record
                // is left, so rustls would only say what `write` asks it again (one call of
                // three per message saved). Records it queued are written by `write` first.
                Next::IfMoreInput => wire.holds_complete_record() || self.conn.wants_write(),
                Next::Stop => false,
            };
            if !again {
                break;
            }
        }
        if self.peer_closed {
            wire.discard_all();
        } else if !self.is_handshaking() && wire.holds_complete_record() {
            return Err(TlsError::SplitPostHandshake);
        }
        Ok(())
    }

    /// Encrypt `plain` into records written to the wire, at most [`MAX_FRAGMENT_LEN`] of it
    /// per record. Writes nothing when the connection carries no data (closed).
    pub fn write(&mut self, wire: &mut Wire<'_>, plain: &[u8]) -> Result<(), TlsError> {
        if plain.is_empty() {
            return Ok(());
        }
        if wire.room().len() < plain.len() {
            // Clearly short (a reply to input that came in earlier reads): room for all of it
            // at once, rather than moving the unread input once per record.
            let records = plain.len().div_ceil(MAX_FRAGMENT_LEN);
            wire.reserve(plain.len() + records * MAX_RECORD_OVERHEAD);
        }
        self.with_write_traffic(wire, |traffic, wire| -> Result<(), TlsError> {
            for chunk in plain.chunks(MAX_FRAGMENT_LEN) {
                write_records(wire, |room| traffic.encrypt(chunk, room), encrypt_needs)?;
            }
            Ok(())
        })?
        .unwrap_or(Ok(()))
    }

    /// Encrypt `plain` into records appended to `out` (a control frame, a broadcast batch).
    pub fn append(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), TlsError> {
        let mut wire = Wire::appending(out);
        let written = self.write(&mut wire, plain);
        wire.finish_appending();
        written
    }

    /// Write our close_notify: we send nothing after it.
    pub fn close(&mut self, wire: &mut Wire<'_>) -> Result<(), TlsError> {
        self.with_write_traffic(wire, |traffic, wire| {
            write_records(wire, |room| traffic.queue_close_notify(room), encrypt_needs)
        })?
        .unwrap_or(Ok(()))
        .map_err(TlsError::from)
    }

    /// After [`TlsError::Peer`]: write the alert rustls queued for the peer, if it did.
    pub fn flush_alert(&mut self, wire: &mut Wire<'_>) {
        // While records are queued, rustls hands them out before it looks at any input: given
        // none, it neither parses the bad bytes again (a second fatal alert) nor looks for
        // bytes it holds back (an index past the empty slice).
        while self.conn.wants_write() {
            let UnbufferedStatus {
                state: Ok(ConnectionState::EncodeTlsData(mut encode)),
                ..
            } = self.conn.process_tls_records(&mut [])
            else {
                return;
            };
            if write_records(wire, |room| encode.encode(room), encode_needs).is_err() {
                return;
            }
        }
    }

    /// Run `write` with rustls' permission to send data, after writing any handshake record
    /// rustls has queued first; `None` when no data may be sent now (handshake under way, or
    /// both sides closed).
    ///
    /// Called after [`TlsLayer::read`] has taken every complete record, or with no input at
    /// all, so rustls meets no new record here.
    fn with_write_traffic<R>(
        &mut self,
        wire: &mut Wire<'_>,
        write: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>, &mut Wire<'_>) -> R,
    ) -> Result<Option<R>, TlsError> {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(wire.unread());
            match state? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    wire.discard(discard);
                    return Ok(Some(write(&mut traffic, wire)));
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    wire.discard(discard);
                    write_records(wire, |room| encode.encode(room), encode_needs)?;
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    wire.discard(discard);
                }
                _ => {
                    wire.discard(discard);
                    return Ok(None);
                }
            }
        }
    }
}

/// Append a decrypted record's plaintext to `plain`; the bytes it adds to the discard.
fn take_record(record: AppDataRecord<'_>, plain: &mut Vec<u8>) -> usize {
    plain.extend_from_slice(record.payload);
    record.discard
}

/// Write with `write`, which fills the room it is given or says how much it needs (`needs`
/// reads that from its error): the room is made once more if it must.
fn write_records<E>(
    wire: &mut Wire<'_>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let written = match write(wire.room()) {
        Ok(written) => written,
        Err(error) => {
            let Some(required) = needs(&error) else {
                return Err(error);
            };
            wire.reserve(required);
            write(wire.room())?
        }
    };
    wire.wrote(written);
    Ok(())
}

fn encode_needs(error: &EncodeError) -> Option<usize> {
    match error {
        EncodeError::InsufficientSize(size) => Some(size.required_size),
        _ => None,
    }
}

fn encrypt_needs(error: &EncryptError) -> Option<usize> {
    match error {
        EncryptError::InsufficientSize(size) => Some(size.required_size),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn making_room_moves_the_unread_input_back_intact() {
        let mut buf = b"consumedPARTIAL".to_vec();
        let mut wire = Wire::over_input(&mut buf);
        wire.discard(8);
        wire.reserve(12);
        assert_eq!(wire.room().len(), 12);
        wire.room()[..12].copy_from_slice(b"twelve bytes");
        wire.wrote(12);
        assert_eq!(wire.output(), 0..12);
        assert_eq!(wire.consumed(), 12);
        assert_eq!(&buf[..12], b"twelve bytes");
        assert_eq!(&buf[12..], b"PARTIAL");
    }

    #[test]
    fn room_already_there_moves_nothing() {
        let mut buf = b"consumedPARTIAL".to_vec();
        let mut wire = Wire::over_input(&mut buf);
        wire.discard(8);
        wire.reserve(5);
        assert_eq!(wire.consumed(), 8);
        assert_eq!(buf.len(), 15);
    }

    #[test]
    fn an_appending_wire_keeps_what_was_there() {
        let mut out = b"old".to_vec();
        let mut wire = Wire::appending(&mut out);
        wire.reserve(10);
        wire.room()[..3].copy_from_slice(b"new");
        wire.wrote(3);
        wire.finish_appending();
        assert_eq!(out, b"oldnew");
    }

    #[test]
    fn a_complete_record_is_told_from_a_partial_one() {
        let record = [23, 3, 3, 0, 2, 0xaa, 0xbb];
        for len in 0..record.len() {
            let mut buf = record[..len].to_vec();
            let wire = Wire::over_input(&mut buf);
            assert!(!wire.holds_complete_record(), "{len} bytes");
        }
        let mut buf = record.to_vec();
        assert!(Wire::over_input(&mut buf).holds_complete_record());
    }
}
