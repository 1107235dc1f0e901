//! The abuse's TLS client: a rustls configuration that accepts the servers' self-signed
//! certificates, and a blocking stream over it that makes exactly the socket calls its caller
//! asks for.
//!
//! Why not `rustls::StreamOwned`: its `write`, once the socket is full, goes on to read the
//! socket (`complete_io` reads whenever the connection wants to), so a never-read client would
//! read after all and the server would never have to stop reading it. Here `write` only
//! writes and `read` only reads, as on a `TcpStream`, and every socket error (a timeout,
//! `WouldBlock` on a non-blocking socket, `Interrupted` after a stop signal) reaches the caller
//! unchanged, so the callers' retries work over both.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};

use rustls::crypto;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use wsport_harness::tls::accept_any_certificate;

/// A client configuration that accepts any certificate (the servers make up their own when
/// started without `--cert`) and still checks the handshake signatures against it.
pub fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(accept_any_certificate(&provider))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// A fresh client connection; the name is not checked (see [`client_config`]).
pub fn client(config: &Arc<ClientConfig>) -> io::Result<ClientConnection> {
    let name = ServerName::try_from("localhost").expect("valid DNS name");
    ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)
}

/// The records a fresh client sends first: its ClientHello.
pub fn client_hello(config: &Arc<ClientConfig>) -> io::Result<Vec<u8>> {
    let mut conn = client(config)?;
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello)?;
    }
    Ok(hello)
}

/// The server's alert inside an IO error from a TLS stream, as its code (RFC 8446 §6).
pub fn alert_received(error: &io::Error) -> Option<u8> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(u8::from(*alert)),
        _ => None,
    }
}

/// A TLS connection on a blocking socket with timeouts.
pub struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl TlsStream {
    /// Run the handshake on `tcp` to its end. A server alert fails it as `InvalidData` (see
    /// [`alert_received`]), the end of the stream as `UnexpectedEof`.
    pub fn handshake(config: &Arc<ClientConfig>, mut tcp: TcpStream) -> io::Result<TlsStream> {
        let mut conn = client(config)?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut tcp) {
                Ok(_) => {}
                // A timed socket call is not restarted after a stop signal (signal(7)).
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(TlsStream { conn, tcp })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Send `plaintext` as a record whose last byte (part of the AEAD tag) is flipped: a record
    /// well framed but that cannot be decrypted.
    pub fn send_tampered(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.send_pending()?;
        self.conn.writer().write_all(plaintext)?;
        let mut record = Vec::new();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut record)?;
        }
        if let Some(last) = record.last_mut() {
            *last ^= 0xff;
        }
        self.tcp.write_all(&record)
    }

    /// Read one socket read's worth of records and decrypt them. A server alert is an error,
    /// after our own alert (if decryption failed here) has been sent.
    fn receive(&mut self) -> io::Result<()> {
        self.conn.read_tls(&mut self.tcp)?;
        let processed = self.conn.process_new_packets();
        let sent = self.send_pending();
        processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        sent
    }

    /// Write every record rustls holds for the peer.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                // No plaintext yet, and no end of stream: read more records.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.receive()?,
                done => return done,
            }
        }
    }
}

impl Write for TlsStream {
    /// Earlier records go out first, so a socket that stopped taking bytes shows here as the
    /// socket's own error; then `buf` is taken and sent as far as the socket allows (what is
    /// left goes with the next call, whose error it then is).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_pending()?;
        let taken = self.conn.writer().write(buf)?;
        let _ = self.send_pending();
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_hello_is_one_handshake_record() {
        let hello = client_hello(&client_config()).unwrap();
        assert_eq!(hello[0], 22, "handshake content type");
        assert_eq!(hello[5], 1, "ClientHello");
        assert_eq!(
            usize::from(u16::from_be_bytes([hello[3], hello[4]])),
            hello.len() - 5
        );
    }

    #[test]
    fn only_a_received_alert_is_an_alert() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac);
        let error = io::Error::new(io::ErrorKind::InvalidData, alert);
        assert_eq!(alert_received(&error), Some(20));
        let other = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(alert_received(&other), None);
        assert_eq!(alert_received(&io::ErrorKind::UnexpectedEof.into()), None);
    }
}
