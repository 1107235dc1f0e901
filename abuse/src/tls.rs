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

/// A TLS connection on a blocking socket with timeouts (any transport in the tests).
pub struct TlsStream<S = TcpStream> {
    conn: ClientConnection,
    io: S,
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
        Ok(TlsStream { conn, io: tcp })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }
}

impl<S: Read + Write> TlsStream<S> {
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
        self.io.write_all(&record)
    }

    /// Read one socket read's worth of records and decrypt them. A server alert is an error,
    /// after our own alert (if decryption failed here) has been sent.
    fn receive(&mut self) -> io::Result<()> {
        self.conn.read_tls(&mut self.io)?;
        let processed = self.conn.process_new_packets();
        let sent = self.send_pending();
        processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        sent
    }

    /// Write every record rustls holds for the peer.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.io)?;
        }
        Ok(())
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
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

impl<S: Read + Write> Write for TlsStream<S> {
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
    use rustls::{Connection, ServerConnection};

    /// A transport whose first read and first write fail with `Interrupted`, as a timed socket
    /// call does when the process is stopped and continued (signal(7)); then it reads `input`
    /// and writes into `output`.
    struct Stopped {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
        read_stopped: bool,
        write_stopped: bool,
    }

    impl Read for Stopped {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !std::mem::replace(&mut self.read_stopped, true) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.input.read(buf)
        }
    }

    impl Write for Stopped {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !std::mem::replace(&mut self.write_stopped, true) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.output.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Move what `from` has to send into `to`.
    fn transfer(from: &mut Connection, to: &mut Connection) {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).unwrap();
        }
        let mut input = &bytes[..];
        while !input.is_empty() {
            to.read_tls(&mut input).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    /// A client and a server (the servers' own self-signed configuration), handshake done in
    /// memory.
    fn handshaken() -> (Connection, Connection) {
        let config = wsport_server_common::tls::from_self_signed().unwrap();
        let mut server = Connection::Server(ServerConnection::new(config).unwrap());
        let mut client = Connection::Client(client(&client_config()).unwrap());
        while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
            transfer(&mut client, &mut server);
            transfer(&mut server, &mut client);
        }
        (client, server)
    }

    /// The abuse's callers retry an interrupted read or write; over TLS that works only if
    /// the stream hands `Interrupted` back without losing or repeating a byte.
    #[test]
    fn an_interrupted_read_or_write_is_retried_whole() {
        let (client, mut server) = handshaken();
        server
            .writer()
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .unwrap();
        let mut input = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut input).unwrap();
        }
        let Connection::Client(conn) = client else {
            unreachable!()
        };
        let io = Stopped {
            input: io::Cursor::new(input),
            output: Vec::new(),
            read_stopped: false,
            write_stopped: false,
        };
        let mut tls = TlsStream { conn, io };
        assert_eq!(crate::wire::read_http_status(&mut tls).unwrap(), 101);
        tls.write_all(b"ping").unwrap();
        tls.flush().unwrap();
        let mut sent = &tls.io.output[..];
        server.read_tls(&mut sent).unwrap();
        server.process_new_packets().unwrap();
        let mut plain = Vec::new();
        let _ = server.reader().read_to_end(&mut plain);
        assert_eq!(plain, b"ping");
    }

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
