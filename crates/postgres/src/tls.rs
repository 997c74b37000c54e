//! TLS for connections to a server over TCP, with libpq's `sslmode` meanings:
//! `disable` never encrypts; `allow`/`prefer` encrypt when the server offers
//! it; `require` insists on encryption without checking the certificate;
//! `verify-ca` checks the chain against `sslrootcert` (or the public web
//! roots); `verify-full` checks the host name too. `sslcert`/`sslkey` give a
//! client certificate. Unix sockets (the embedded cluster) never use TLS.

use pm_core::error::{Code, Problem};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// What the target says about TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: String,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl TlsSettings {
    /// tokio-postgres's mode: `require` and the `verify-*` modes refuse a
    /// server without TLS; `allow` behaves as `prefer`.
    pub fn ssl_mode(&self) -> Result<SslMode, Problem> {
        Ok(match self.mode.as_str() {
            "disable" => SslMode::Disable,
            "" | "allow" | "prefer" => SslMode::Prefer,
            "require" | "verify-ca" | "verify-full" => SslMode::Require,
            other => {
                return Err(Problem::new(
                    Code::ConnectSslmode,
                    format!("unknown sslmode `{other}`"),
                )
                .help("use one of disable, allow, prefer, require, verify-ca, verify-full"))
            }
        })
    }

    /// The connector for these settings.
    pub fn connector(&self) -> Result<MakeRustlsConnect, Problem> {
        self.ssl_mode()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Problem::new(Code::ConnectTls, format!("cannot set up TLS: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode.as_str() {
            "verify-ca" | "verify-full" => {
                let mut roots = RootCertStore::empty();
                match &self.root_cert {
                    Some(path) => {
                        for cert in read_pem_certs(path, "sslrootcert")? {
                            roots.add(cert).map_err(|e| {
                                Problem::new(
                                    Code::ConnectTls,
                                    format!(
                                        "sslrootcert {path} holds a certificate pm cannot use: {e}"
                                    ),
                                )
                            })?;
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Problem::new(
                        Code::ConnectTls,
                        format!("cannot use the root certificates: {e}"),
                    )
                    .help("point sslrootcert at the PEM file of the server's certificate authority")
                        })?;
                Arc::new(Verify {
                    webpki,
                    check_name: self.mode == "verify-full",
                })
            }
            // libpq's require/prefer: encrypted, the certificate not checked.
            _ => Arc::new(Unchecked(provider)),
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_pem_certs(cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    Problem::new(
                        Code::ConnectTls,
                        format!("cannot read the private key sslkey {key}: {e}"),
                    )
                    .help("sslkey must be a PEM file with the client certificate's private key")
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Problem::new(
                        Code::ConnectTls,
                        format!("sslcert and sslkey do not make a client certificate: {e}"),
                    )
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Problem::new(
                    Code::ConnectTls,
                    "sslcert and sslkey go together: only one is set",
                )
                .help("set both (PEM files), or neither"))
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

fn read_pem_certs(path: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Problem::new(Code::ConnectTls, format!("cannot read {key} {path}: {e}"))
                .help(format!("{key} must name a PEM file of certificates"))
        })?;
    if certs.is_empty() {
        return Err(Problem::new(
            Code::ConnectTls,
            format!("{key} {path} holds no certificate"),
        )
        .help(format!("{key} must name a PEM file of certificates")));
    }
    Ok(certs)
}

/// `verify-ca` / `verify-full`.
#[derive(Debug)]
struct Verify {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` / `require`: the handshake's signatures are checked, the
/// certificate's issuer and name are not (as libpq does).
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::TlsSettings;

    #[test]
    fn modes() {
        let s = |m: &str| TlsSettings {
            mode: m.into(),
            ..Default::default()
        };
        for m in [
            "",
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert!(s(m).connector().is_ok(), "{m}");
        }
        let e = s("requre").connector().err().map(|p| p.message);
        assert_eq!(e.as_deref(), Some("unknown sslmode `requre`"));
        let half = TlsSettings {
            mode: "require".into(),
            cert: Some("/nonexistent.pem".into()),
            ..Default::default()
        };
        assert!(half
            .connector()
            .err()
            .is_some_and(|p| p.message.contains("only one is set")));
    }
}
