//! The wss client side: rustls in memory, trusting the server's self-signed certificate.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use wsport_server_common::tls;

use crate::Wire;

/// Both ends' rustls configurations, around one certificate.
pub struct Configs {
    /// What the server is started with.
    pub server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Configs {
    /// A fresh self-signed certificate, served by one side and trusted by the other.
    pub fn new() -> Self {
        let (chain, key) = tls::self_signed().expect("a self-signed certificate");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(chain[0].clone())
            .expect("our certificate as a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls' default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            server: tls::build(chain, key).expect("our certificate and key"),
            client: Arc::new(client),
        }
    }
}

impl Default for Configs {
    fn default() -> Self {
        Self::new()
    }
}

/// A rustls client connected to `localhost`.
pub struct TlsClient(rustls::ClientConnection);

impl TlsClient {
    /// A client that has sent nothing yet.
    pub fn new(configs: &Configs) -> Self {
        let name = "localhost".try_into().expect("a server name");
        Self(rustls::ClientConnection::new(Arc::clone(&configs.client), name).expect("a client"))
    }

    /// Whether the TLS handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.0.is_handshaking()
    }
}

impl Wire for TlsClient {
    fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>) {
        self.0
            .writer()
            .write_all(plain)
            .expect("rustls buffers what we write");
        while self.0.wants_write() {
            self.0.write_tls(wire).expect("writing to a Vec");
        }
    }

    /// The server's records must be valid TLS: ours is the only peer, and it is well behaved.
    fn receive(&mut self, mut wire: &[u8], plain: &mut Vec<u8>) {
        while !wire.is_empty() {
            self.0.read_tls(&mut wire).expect("reading from a slice");
            self.0
                .process_new_packets()
                .expect("the server's TLS records are valid");
            match self.0.reader().read_to_end(plain) {
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => panic!("reading the server's plaintext: {error}"),
            }
        }
    }
}
