//! rustls client configuration for `wss://` targets.
//!
//! The servers under test generate a self-signed certificate when given none, so the common
//! case is `--insecure`: any certificate is accepted, but the handshake signatures are still
//! verified against it (the TLS layer itself stays honest; only the identity is not checked).
//! `--ca FILE` verifies against the given PEM certificates instead.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use wsport_harness::tls::accept_any_certificate;

/// Builds the client configuration: `insecure` accepts any server certificate, else `ca`
/// holds the trusted roots.
pub fn client_config(insecure: bool, ca: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(accept_any_certificate(&provider))
            .with_no_client_auth()
    } else if let Some(ca) = ca {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("reading {}", ca.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing PEM certificates in {}", ca.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", ca.display());
        }
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("adding a certificate of {} as a root", ca.display()))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        bail!(
            "wss:// URLs need --ca FILE (the server's certificate or its CA, PEM) or --insecure \
             (the wsport servers use a self-signed certificate unless given --cert/--key)"
        );
    };
    Ok(Arc::new(config))
}
