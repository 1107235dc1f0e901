//! The rustls server configuration for `wss://` listeners: from PEM files (`--cert/--key`)
//! or from a self-signed certificate generated at start, so the default run needs no setup.
//!
//! The crypto provider is always `ring`, named explicitly rather than taken from a
//! process-wide default, so every server binary negotiates the same cipher suites and the
//! comparison stays about the runtime. ALPN offers `http/1.1` (RFC 6455 §4.1 runs over
//! HTTP/1.1). The byte-level TLS layer, rustls' unbuffered server connection over the
//! connection buffer, is in [`tls_layer`](crate::tls_layer).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names a generated certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why the TLS configuration cannot be built. File errors name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The file cannot be read.
    #[error("cannot read {what} file {}: {source}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has PEM markers but a block in it is malformed.
    #[error("{what} file {} is not valid PEM: {detail}", path.display())]
    MalformedPem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// No `-----BEGIN CERTIFICATE-----` block in the file.
    #[error("no certificate (-----BEGIN CERTIFICATE----- block) in {}: --cert wants a PEM certificate chain, leaf first", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No PKCS#8, PKCS#1 or SEC1 private key block in the file.
    #[error("no private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) in {}: --key wants a PEM private key", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the one the certificate was issued for.
    #[error("private key {} does not match certificate {}: pass the key the certificate was issued for", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate or key (unsupported key type, bad DER, ...).
    #[error("cannot use certificate {} with key {}: {source}", cert.display(), key.display())]
    Rejected {
        /// The certificate file (`<generated>` for the self-signed one).
        cert: PathBuf,
        /// The key file (`<generated>` for the self-signed one).
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rcgen could not generate the self-signed certificate.
    #[error("cannot generate a self-signed certificate: {0}; pass --cert/--key instead")]
    Generate(#[source] rcgen::Error),
}

/// Builds the server configuration from a PEM certificate chain (leaf first) and a PEM private
/// key (PKCS#8, PKCS#1 or SEC1).
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let chain = load_certs(cert)?;
    let private = load_key(key)?;
    build(chain, private).map_err(|source| match source {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsSetupError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }
        }
        source => TlsSetupError::Rejected {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        },
    })
}

/// Builds the server configuration around a freshly generated self-signed certificate for
/// [`SELF_SIGNED_NAMES`].
pub fn from_self_signed() -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let (chain, key) = self_signed()?;
    build(chain, key).map_err(|source| TlsSetupError::Rejected {
        cert: PathBuf::from("<generated>"),
        key: PathBuf::from("<generated>"),
        source,
    })
}

/// Generates a self-signed certificate (ECDSA P-256) for `localhost`, `127.0.0.1` and `::1`,
/// returning the one-certificate chain and its PKCS#8 key. Clients must be told to trust it
/// (the bench client and the tests accept it explicitly).
pub fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError>
{
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    // rcgen turns names that parse as IP addresses into iPAddress SANs, the rest into dNSName.
    let certified = rcgen::generate_simple_self_signed(names).map_err(TlsSetupError::Generate)?;
    let cert = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    Ok((vec![cert], PrivateKeyDer::Pkcs8(key)))
}

/// Builds the server configuration from DER parts: `ring` provider, safe default protocol
/// versions, no client authentication, ALPN `http/1.1`. rustls checks here that the key
/// matches the leaf certificate (`InconsistentKeys::KeyMismatch` otherwise).
pub fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads every certificate in a PEM file, in file order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    const WHAT: &str = "certificate";
    let bytes = read(WHAT, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(WHAT, path, e))?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    const WHAT: &str = "private key";
    let bytes = read(WHAT, path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsSetupError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(e) => Err(malformed(WHAT, path, e)),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn malformed(what: &'static str, path: &Path, e: pem::Error) -> TlsSetupError {
    let detail = match e {
        // The parser's own Display prints these lines as byte arrays; say it in words.
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "missing end line {:?}",
            String::from_utf8_lossy(&end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed BEGIN line {:?}", String::from_utf8_lossy(&line))
        }
        other => other.to_string(),
    };
    TlsSetupError::MalformedPem {
        what,
        path: path.to_owned(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_config_offers_http11() {
        let config = from_self_signed().expect("self-signed config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
