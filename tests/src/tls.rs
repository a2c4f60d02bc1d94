//! TLS material made at test time: a self-signed certificate for `localhost` and
//! `127.0.0.1`, and a rustls client configuration that trusts it (and nothing else).

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A freshly generated self-signed certificate and its key.
pub struct SelfSigned {
    /// The certificate, PEM (for `[listen.tls] cert`).
    pub cert_pem: String,
    /// The private key, PEM (for `[listen.tls] key`).
    pub key_pem: String,
    /// The certificate, DER (for the client's trust store).
    cert_der: CertificateDer<'static>,
}

impl SelfSigned {
    /// A new certificate valid for `localhost` and `127.0.0.1`.
    pub fn localhost() -> Self {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("generate a self-signed certificate");
        Self {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            cert_der: made.cert.der().clone(),
        }
    }

    /// A client configuration (ring provider) that trusts only this certificate. Its ALPN
    /// list is empty; callers set the protocols they offer.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .expect("trust the self-signed certificate");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}
