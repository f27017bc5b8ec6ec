//! Signing Apple configuration profiles: CMS SignedData (RFC 5652) over the plist.
//!
//! iOS and macOS show a signed profile as "Verified" when the signer's chain leads to a root
//! they trust, so by default the profile is signed with the HTTPS service's own certificate and
//! key (a publicly trusted server certificate is what hosters sign profiles with); a separate
//! certificate can be configured (`[signing]`). A self-signed certificate verifies nowhere, so
//! with one the profile is served unsigned, and the start says so in the log.
//!
//! The signature comes from the same `ring` code that rustls signs handshakes with: the key is
//! loaded through rustls ([`CertifiedKey::from_der`], which also checks it belongs to the
//! certificate), so every key rustls serves (ECDSA P-256 and P-384, RSA) signs profiles too.
//! The CMS structures are RustCrypto's `cms` and `x509-cert` types, DER-encoded.
//!
//! The structure ([RFC 5652] sections 5.1 to 5.4):
//!
//! - `ContentInfo` of type id-signedData, holding `SignedData` version 1 with the plist as
//!   encapsulated id-data content (attached, as profiles must be);
//! - the certificate chain as given (leaf first), so the device can build the path;
//! - one `SignerInfo`: issuer and serial of the leaf, SHA-256 (SHA-384 for P-384 keys), and
//!   signed attributes content-type, message-digest and signing-time ([RFC 5652] section 11),
//!   the signature computed over their DER `SET OF` encoding (section 5.4).
//!
//! [RFC 5652]: https://www.rfc-editor.org/rfc/rfc5652

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{
    ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_256, ID_SHA_384, SHA_256_WITH_RSA_ENCRYPTION,
};
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256, Sha384};
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::der::asn1::{OctetString, SetOfVec, UtcTime};
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::config::TlsSource;

/// The signature schemes profiles are signed with, in preference order.
const SCHEMES: [SignatureScheme; 3] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// Why profiles cannot be signed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no certificate or key, or not PEM.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate that is not valid DER X.509.
    #[error("{path}: certificate {index} cannot be read: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Its position in the chain, 0 for the leaf.
        index: usize,
        /// The DER decoder's reason.
        source: x509_cert::der::Error,
    },
    /// rustls refused the key: not matching the certificate, or an algorithm it cannot load.
    #[error("{path}: the private key cannot be used: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The key signs with none of ECDSA P-256, ECDSA P-384 or RSA PKCS#1 with SHA-256.
    #[error("{path}: the key type cannot sign profiles (ECDSA P-256, P-384 or RSA are needed)")]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
    },
    /// Encoding the CMS structure failed (does not happen with valid certificates).
    #[error("CMS encoding: {0}")]
    Encoding(#[from] x509_cert::der::Error),
    /// The key failed to sign.
    #[error("signing failed: {0}")]
    Sign(rustls::Error),
}

/// What a signer was set up with, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerStatus {
    /// Profiles are signed by this certificate (its subject).
    Signing {
        /// The leaf certificate's subject, as text.
        subject: String,
    },
    /// Profiles are served unsigned, and why.
    Unsigned {
        /// Why no device could verify a signature.
        reason: &'static str,
    },
}

/// A loaded certificate chain and key.
struct Material {
    chain: Vec<Certificate>,
    key: CertifiedKey,
    key_path: PathBuf,
}

/// Signs profiles with the certificate in force; reloaded with the HTTPS certificates.
pub struct ProfileSigner {
    source: TlsSource,
    material: ArcSwapOption<Material>,
}

impl std::fmt::Debug for ProfileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSigner")
            .field("source", &self.source)
            .field("signing", &self.material.load().is_some())
            .finish()
    }
}

impl ProfileSigner {
    /// A signer for `source`: the separate signing certificate when one is configured, else the
    /// HTTPS service's certificate.
    pub fn load(source: TlsSource) -> Result<(Self, SignerStatus), SigningError> {
        let signer = Self {
            source,
            material: ArcSwapOption::empty(),
        };
        let status = signer.reload()?;
        Ok((signer, status))
    }

    /// Reads the files again; on error the previous material stays.
    pub fn reload(&self) -> Result<SignerStatus, SigningError> {
        let (cert, key) = match &self.source {
            TlsSource::SelfSigned { .. } => {
                self.material.store(None);
                return Ok(SignerStatus::Unsigned {
                    reason: "the HTTPS service has a self-signed certificate, which no device can verify",
                });
            }
            TlsSource::Files { cert, key } => (cert, key),
        };
        let material = load_material(cert, key)?;
        let leaf = &material.chain[0].tbs_certificate;
        if material.chain.len() == 1 && leaf.issuer == leaf.subject {
            self.material.store(None);
            return Ok(SignerStatus::Unsigned {
                reason: "the signing certificate is self-signed, which no device can verify",
            });
        }
        let subject = leaf.subject.to_string();
        self.material.store(Some(Arc::new(material)));
        Ok(SignerStatus::Signing { subject })
    }

    /// Whether profiles are signed.
    pub fn is_signing(&self) -> bool {
        self.material.load().is_some()
    }

    /// `content` wrapped in a DER CMS SignedData, or `None` when profiles are served unsigned.
    pub fn sign(&self, content: &[u8]) -> Result<Option<Vec<u8>>, SigningError> {
        let Some(material) = self.material.load_full() else {
            return Ok(None);
        };
        sign_with(&material, content, SystemTime::now()).map(Some)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    std::fs::read(path).map_err(|source| SigningError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load_material(cert_path: &Path, key_path: &Path) -> Result<Material, SigningError> {
    let pem_error = |path: &Path, reason: String| SigningError::Pem {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = read(cert_path)?;
    let ders = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, format!("not a valid PEM file: {e}")))?;
    if ders.is_empty() {
        return Err(pem_error(cert_path, "holds no CERTIFICATE block".into()));
    }
    let chain = ders
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der).map_err(|source| SigningError::Certificate {
                path: cert_path.to_owned(),
                index,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_der = PrivateKeyDer::from_pem_slice(&read(key_path)?)
        .map_err(|e| pem_error(key_path, format!("holds no usable PRIVATE KEY block: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    // Also checks that the key is the certificate's.
    let key =
        CertifiedKey::from_der(ders, key_der, &provider).map_err(|source| SigningError::Key {
            path: key_path.to_owned(),
            source,
        })?;
    if key.key.choose_scheme(&SCHEMES).is_none() {
        return Err(SigningError::UnsupportedKey {
            path: key_path.to_owned(),
        });
    }
    Ok(Material {
        chain,
        key,
        key_path: key_path.to_owned(),
    })
}

fn algorithm(oid: ObjectIdentifier, null_parameters: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        // RSA signature identifiers carry an explicit NULL (RFC 4055 section 5); ECDSA and
        // hash identifiers in CMS carry none (RFC 5754 sections 2 and 3.3).
        parameters: null_parameters.then(|| Any::from(x509_cert::der::asn1::Null)),
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SigningError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

fn sign_with(
    material: &Material,
    content: &[u8],
    now: SystemTime,
) -> Result<Vec<u8>, SigningError> {
    let signer =
        material
            .key
            .key
            .choose_scheme(&SCHEMES)
            .ok_or_else(|| SigningError::UnsupportedKey {
                path: material.key_path.clone(),
            })?;
    // The content digest uses the signature's hash: verifiers (OpenSSL among them) hash the
    // signed attributes with the SignerInfo's digestAlgorithm (RFC 5753 section 2.1.1).
    let (signature_algorithm, digest_algorithm, digest) = match signer.scheme() {
        SignatureScheme::ECDSA_NISTP256_SHA256 => (
            algorithm(ECDSA_WITH_SHA_256, false),
            ID_SHA_256,
            Sha256::digest(content).to_vec(),
        ),
        SignatureScheme::ECDSA_NISTP384_SHA384 => (
            algorithm(ECDSA_WITH_SHA_384, false),
            ID_SHA_384,
            Sha384::digest(content).to_vec(),
        ),
        _ => (
            algorithm(SHA_256_WITH_RSA_ENCRYPTION, true),
            ID_SHA_256,
            Sha256::digest(content).to_vec(),
        ),
    };
    let signed_attributes: SetOfVec<Attribute> = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest)?)?,
        )?,
        // UTCTime for dates before 2050 (RFC 5652 section 11.3).
        attribute(
            ID_SIGNING_TIME,
            Any::encode_from(&UtcTime::from_system_time(now)?)?,
        )?,
    ])?;
    // The signature covers the attributes' DER encoding with the SET OF tag, not the [0]
    // IMPLICIT tag they carry inside SignerInfo (RFC 5652 section 5.4).
    let signature = signer
        .sign(&signed_attributes.to_der()?)
        .map_err(SigningError::Sign)?;
    let leaf = &material.chain[0].tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.issuer.clone(),
            serial_number: leaf.serial_number.clone(),
        }),
        digest_alg: algorithm(digest_algorithm, false),
        signed_attrs: Some(signed_attributes),
        signature_algorithm,
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let certificates = CertificateSet::try_from(
        material
            .chain
            .iter()
            .cloned()
            .map(CertificateChoices::Certificate)
            .collect::<Vec<_>>(),
    )?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(digest_algorithm, false)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: Some(Any::encode_from(&OctetString::new(content.to_vec())?)?),
        },
        certificates: Some(certificates),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    let content_info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    };
    Ok(content_info.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_ca_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "signing test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["autodiscover.h.test".to_owned()])
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        let cert_path = dir.join("chain.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    #[test]
    fn signs_with_a_ca_issued_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_ca_signed(dir.path());
        let (signer, status) = ProfileSigner::load(TlsSource::Files { cert, key }).unwrap();
        assert!(matches!(status, SignerStatus::Signing { .. }), "{status:?}");
        let der = signer.sign(b"<plist/>").unwrap().unwrap();
        let info = ContentInfo::from_der(&der).unwrap();
        assert_eq!(info.content_type, ID_SIGNED_DATA);
        let signed: SignedData = info.content.decode_as().unwrap();
        assert_eq!(signed.certificates.unwrap().0.len(), 2);
        let content: OctetString = signed
            .encap_content_info
            .econtent
            .unwrap()
            .decode_as()
            .unwrap();
        assert_eq!(content.as_bytes(), b"<plist/>");
        let signer_info = signed.signer_infos.0.get(0).unwrap();
        assert_eq!(signer_info.signature_algorithm.oid, ECDSA_WITH_SHA_256);
        assert_eq!(signer_info.signed_attrs.as_ref().unwrap().len(), 3);
    }

    /// RSA and P-384 keys (made by openssl, as a hoster's CA would) sign profiles openssl
    /// verifies.
    #[test]
    fn rsa_and_p384_keys_sign_verifiable_profiles() {
        let openssl = |dir: &Path, args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("openssl is needed for this test");
            assert!(
                out.status.success(),
                "openssl {args:?} in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for key_args in [
            &["-newkey", "rsa:2048"][..],
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let with = |base: &[&'static str]| [base, key_args].concat();
            openssl(
                d,
                &with(&[
                    "req",
                    "-x509",
                    "-nodes",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-subj",
                    "/CN=test CA",
                    "-days",
                    "2",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ]),
            );
            openssl(
                d,
                &with(&[
                    "req",
                    "-nodes",
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=autodiscover.h.test",
                ]),
            );
            // Extensions make it a v3 certificate, as every real server certificate is.
            std::fs::write(
                d.join("leaf.ext"),
                "subjectAltName=DNS:autodiscover.h.test\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(
                d,
                &[
                    "x509",
                    "-extfile",
                    "leaf.ext",
                    "-req",
                    "-in",
                    "leaf.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "leaf.pem",
                    "-days",
                    "2",
                ],
            );
            let chain = format!(
                "{}{}",
                std::fs::read_to_string(d.join("leaf.pem")).unwrap(),
                std::fs::read_to_string(d.join("ca.pem")).unwrap()
            );
            std::fs::write(d.join("chain.pem"), chain).unwrap();
            let (signer, status) = ProfileSigner::load(TlsSource::Files {
                cert: d.join("chain.pem"),
                key: d.join("leaf.key"),
            })
            .unwrap();
            assert!(
                matches!(status, SignerStatus::Signing { .. }),
                "{key_args:?}"
            );
            std::fs::write(
                d.join("signed.der"),
                signer.sign(b"<plist/>").unwrap().unwrap(),
            )
            .unwrap();
            openssl(
                d,
                &[
                    "cms",
                    "-verify",
                    "-inform",
                    "DER",
                    "-purpose",
                    "any",
                    "-CAfile",
                    "ca.pem",
                    "-in",
                    "signed.der",
                    "-out",
                    "content",
                ],
            );
            assert_eq!(std::fs::read(d.join("content")).unwrap(), b"<plist/>");
        }
    }

    #[test]
    fn self_signed_certificates_do_not_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("self.pem");
        crate::tls::create_self_signed(&path, &["autodiscover.h.test".to_owned()]).unwrap();
        let (signer, status) = ProfileSigner::load(TlsSource::Files {
            cert: path.clone(),
            key: path.clone(),
        })
        .unwrap();
        assert!(matches!(status, SignerStatus::Unsigned { .. }));
        assert_eq!(signer.sign(b"x").unwrap(), None);
        let (signer, _) = ProfileSigner::load(TlsSource::SelfSigned { path }).unwrap();
        assert!(!signer.is_signing());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_ca_signed(dir.path());
        let other = dir.path().join("other.pem");
        std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let error = ProfileSigner::load(TlsSource::Files { cert, key: other }).unwrap_err();
        assert!(matches!(error, SigningError::Key { .. }), "{error}");
    }
}
