//! TLS without a reverse proxy: the server's certificate chain and private key, read from PEM
//! files and checked against each other at start, become a rustls configuration (ring
//! provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN). [`crate::api::serve_tls`] runs the
//! handshake inside the same accept loop as plain HTTP, under the connection cap and its own
//! time limit.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Why the certificate or key cannot be used; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {error}")]
    Unreadable { what: &'static str, path: String, error: std::io::Error },
    #[error("the TLS certificate file {0} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate(String),
    #[error("the TLS certificate file {path} is not valid PEM: {error}")]
    BadCertificate { path: String, error: String },
    #[error("the TLS key file {path} holds no usable private key (expected a PEM PKCS#8, PKCS#1 or SEC1 key): {error}")]
    BadKey { path: String, error: String },
    #[error("the TLS certificate {cert} and key {key} do not belong together: {error}")]
    Mismatch { cert: String, key: String, error: String },
}

/// Reads the chain (server certificate first, then any intermediates) and its private key, and
/// builds the server configuration. Fails if either file is missing, unreadable or not PEM,
/// or if the key is not the certificate's.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_name = cert_path.display().to_string();
    let key_name = key_path.display().to_string();
    let cert_pem = std::fs::read(cert_path).map_err(|error| TlsError::Unreadable {
        what: "certificate",
        path: cert_name.clone(),
        error,
    })?;
    let key_pem =
        std::fs::read(key_path).map_err(|error| TlsError::Unreadable { what: "key", path: key_name.clone(), error })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::BadCertificate { path: cert_name.clone(), error: error.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_name));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|error| TlsError::BadKey { path: key_name.clone(), error: error.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Mismatch {
            cert: cert_name.clone(),
            key: key_name.clone(),
            error: error.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Mismatch { cert: cert_name, key: key_name, error: error.to_string() })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
