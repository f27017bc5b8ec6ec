//! Test support for autodisco's end-to-end tests: a certificate authority made at test time, and
//! the pieces that start real servers on loopback.
//!
//! - [`TestCa`]: an rcgen CA that issues server certificates, so no checked-in key ever expires.
//! - [`https_client`]: a reqwest client that trusts only the test CA and pins names to addresses.

use std::net::SocketAddr;
use std::path::Path;

/// A certificate authority made for one test run.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

/// A certificate issued by the [`TestCa`], with its key.
pub struct IssuedCert {
    /// The leaf certificate followed by the CA certificate, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

impl IssuedCert {
    /// Writes chain and key into one PEM file (the format of `certs_dir` files).
    pub fn write_combined(&self, path: &Path) {
        std::fs::write(path, format!("{}{}", self.chain_pem, self.key_pem)).expect("write certificate");
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A new CA named "autodisco test CA".
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "autodisco test CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { key, cert }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> IssuedCert {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &self.cert, &self.key).expect("sign leaf");
        IssuedCert {
            chain_pem: format!("{}{}", leaf.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
        }
    }
}

/// An HTTPS client that trusts only `ca`, resolves each `(name, address)` pair to that address,
/// and never follows redirects (tests look at them).
pub fn https_client(ca: &TestCa, pins: &[(&str, SocketAddr)]) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA for reqwest");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20));
    for (name, address) in pins {
        builder = builder.resolve(name, *address);
    }
    builder.build().expect("reqwest client")
}
