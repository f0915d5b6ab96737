//! HTTPS served directly with rustls (TLS 1.2 and 1.3, rustls's modern suites), with the
//! certificate reloadable without dropping connections (SIGHUP).

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Reads a PEM certificate chain and private key.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid certificate PEM in {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let signing = ring::sign::any_supported_type(&private)
        .map_err(|e| format!("unsupported private key in {}: {e}", key.display()))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The certificate in use, swappable while connections go on.
#[derive(Debug)]
pub struct Reloadable {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Reloadable {
    pub fn open(cert_path: PathBuf, key_path: PathBuf) -> Result<Reloadable, String> {
        let first = load(&cert_path, &key_path)?;
        Ok(Reloadable {
            cert_path,
            key_path,
            current: RwLock::new(Arc::new(first)),
        })
    }

    /// Rereads the files; on failure the previous certificate stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(load(&self.cert_path, &self.key_path)?);
        match self.current.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(c) => Some(c.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// A server configuration over the reloadable certificate.
pub fn server_config(cert: Arc<Reloadable>) -> Result<rustls::ServerConfig, String> {
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
