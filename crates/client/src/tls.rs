//! Certificate verification (webpki roots plus an optional private CA, ring provider as in the
//! rest of the workspace) and a diagnosis in words when it fails.
//!
//! The verifier is the stock webpki one; a thin wrapper keeps the presented leaf certificate so
//! that a failure can say which names the certificate does cover: "the certificate of
//! autodiscover.customer.example covers only autodiscover.hoster.example" is the most common
//! way a hoster's customer breaks AutoDiscover.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::ClientConfig;
use crate::error::ConfigError;
use crate::report::Failure;

/// The trust store and provider, shared by every connection.
pub(crate) struct TlsSetup {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsSetup {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if config.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &config.extra_roots_pem {
            let certificates = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::CaPem {
                    detail: e.to_string(),
                })?;
            if certificates.is_empty() {
                return Err(ConfigError::CaEmpty);
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|e| ConfigError::CaRefused {
                    detail: e.to_string(),
                })?;
            }
        }
        if roots.is_empty() {
            return Err(ConfigError::NoRoots);
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ConfigError::CaRefused {
                    detail: e.to_string(),
                })?;
        Ok(Self { provider, verifier })
    }

    /// A connector for one connection, and the slot where its verifier leaves the leaf
    /// certificate it saw.
    pub(crate) fn connector(&self) -> (tokio_rustls::TlsConnector, Arc<Mutex<Option<Leaf>>>) {
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier {
            inner: self.verifier.clone(),
            seen: seen.clone(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // AutoDiscover is HTTP/1.1 everywhere; Outlook does not negotiate h2 for it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        (tokio_rustls::TlsConnector::from(Arc::new(config)), seen)
    }
}

/// What the verifier saw of the server's certificate.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// The DNS names (and IP addresses) in its subjectAltName.
    pub(crate) names: Vec<String>,
}

/// The webpki verifier, unchanged, except that it keeps the names of the leaf it was shown.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<Leaf>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Leaf {
                names: certificate_names(end_entity),
            });
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subjectAltName DNS names of a certificate (for diagnosis only, never for verification).
fn certificate_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(certificate) {
        Ok(parsed) => parsed.valid_dns_names().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// Turns a failed handshake into a [`Failure::Tls`] with a diagnosis in words.
pub(crate) fn diagnose(
    host: &str,
    address: &str,
    error: &std::io::Error,
    leaf: Option<Leaf>,
) -> Failure {
    let names = leaf.map(|l| l.names).unwrap_or_default();
    let covers = || describe_names(&names);
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let diagnosis = match tls_error {
        Some(rustls::Error::InvalidCertificate(problem)) => match problem {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                if names.is_empty() {
                    format!(
                        "the certificate of {host} does not cover that name (it names no DNS name at all)"
                    )
                } else {
                    format!("the certificate of {host} covers only {}", covers())
                }
            }
            CertificateError::UnknownIssuer => format!(
                "the certificate of {host} (for {}) is not issued by a trusted authority: it is self-signed or from a private CA that was not added",
                covers()
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                let when = match problem {
                    CertificateError::ExpiredContext { not_after, .. } => {
                        format!(" on {}", date(*not_after))
                    }
                    _ => String::new(),
                };
                format!("the certificate of {host} (for {}) expired{when}", covers())
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!(
                    "the certificate of {host} (for {}) is not valid yet",
                    covers()
                )
            }
            CertificateError::Revoked => format!("the certificate of {host} is revoked"),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!("the certificate of {host} is not meant for TLS servers")
            }
            other => format!("the certificate of {host} is not acceptable: {other:?}"),
        },
        Some(rustls::Error::AlertReceived(alert)) => {
            format!(
                "the server at {address} refused the TLS handshake for {host} (alert {alert:?})"
            )
        }
        Some(rustls::Error::InvalidMessage(_)) => {
            format!("the server at {address} does not speak TLS (plain HTTP on the HTTPS port?)")
        }
        Some(other) => format!("the TLS handshake with {address} for {host} failed: {other}"),
        None => match error.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "the server at {address} closed the connection during the TLS handshake for {host} (no certificate for that name?)"
            ),
            _ => format!("the TLS handshake with {address} for {host} failed: {error}"),
        },
    };
    Failure::Tls {
        host: host.to_owned(),
        diagnosis,
        certificate_names: names,
    }
}

/// `a`, `a and b`, `a, b and c`; wildcards are kept as written (`*.hoster.example`).
fn describe_names(names: &[String]) -> String {
    match names {
        [] => "no name".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A calendar date (UTC) for a certificate time.
fn date(time: UnixTime) -> String {
    let days = (time.as_secs() / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_words() {
        assert_eq!(describe_names(&["a".into()]), "a");
        assert_eq!(describe_names(&["a".into(), "b".into()]), "a and b");
        assert_eq!(
            describe_names(&["a".into(), "b".into(), "*.c".into()]),
            "a, b and *.c"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            date(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01"
        );
        assert_eq!(
            date(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_700_000_000
            ))),
            "2023-11-14"
        );
    }
}
