//! Certificates: the hoster's own, per-customer ones chosen by SNI, and hot reload.
//!
//! The live set sits behind an [`ArcSwap`]: a handshake reads it without locking, and a reload
//! builds a complete new set before swapping it in, so a broken file never takes the service down
//! and open connections are never dropped.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use thiserror::Error;

use crate::config::TlsSource;

/// Why certificates could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file holds no certificate, or no key, or something that is not PEM.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// rustls refused the key (unsupported algorithm, or not matching the certificate).
    #[error("{path}: the private key cannot be used: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A per-domain certificate does not cover the name its file is named after.
    #[error("{path}: the certificate does not cover {name}")]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name from the file name.
        name: String,
    },
    /// Making the self-signed certificate failed.
    #[error("cannot create the self-signed certificate {path}: {reason}")]
    SelfSigned {
        /// Where it was to be written.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The certificates in force: the hoster's default, and per-name ones from `certs_dir`.
struct CertSet {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

/// A file's identity for change detection: path, modification time, length.
type FileStamp = (PathBuf, Option<SystemTime>, u64);

/// The live certificate store; hand [`CertStore::resolver`] to rustls.
pub(crate) struct CertStore {
    source: TlsSource,
    certs_dir: Option<PathBuf>,
    /// The names the self-signed certificate must cover.
    self_signed_names: Vec<String>,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertSet>,
    stamps: Mutex<Vec<FileStamp>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("source", &self.source)
            .field("certs_dir", &self.certs_dir)
            .finish_non_exhaustive()
    }
}

/// What a (re)load found: how many per-domain certificates, and the files it skipped.
#[derive(Debug, Default)]
pub(crate) struct LoadReport {
    /// Names served with their own certificate.
    pub per_domain: usize,
    /// Per-domain files that were skipped, with the reason.
    pub skipped: Vec<TlsError>,
    /// Of those, how many names kept the certificate they had before the reload.
    pub kept_previous: usize,
}

impl CertStore {
    /// Loads the certificates, creating the self-signed one first if the config asks for it.
    /// `self_signed_names` are the names a new self-signed certificate covers.
    pub(crate) fn load(
        source: TlsSource,
        certs_dir: Option<PathBuf>,
        self_signed_names: Vec<String>,
    ) -> Result<(Self, LoadReport), TlsError> {
        let provider = Arc::new(server_provider());
        let (set, report, stamps) = build_set(
            &source,
            certs_dir.as_deref(),
            &self_signed_names,
            &provider,
            None,
        )?;
        let store = Self {
            source,
            certs_dir,
            self_signed_names,
            provider,
            current: ArcSwap::from_pointee(set),
            stamps: Mutex::new(stamps),
        };
        Ok((store, report))
    }

    /// Reads every file again and swaps the new set in; on error the old set stays.
    pub(crate) fn reload(&self) -> Result<LoadReport, TlsError> {
        // One reload at a time (SIGHUP and the poll may meet); the lock also guards the stamps.
        let mut stamps_guard = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.current.load();
        let (set, report, stamps) = build_set(
            &self.source,
            self.certs_dir.as_deref(),
            &self.self_signed_names,
            &self.provider,
            Some(&previous),
        )?;
        self.current.store(Arc::new(set));
        *stamps_guard = stamps;
        Ok(report)
    }

    /// Reloads only if a file changed (by modification time, length, or the folder's listing).
    /// Returns `None` when nothing changed.
    pub(crate) fn reload_if_changed(&self) -> Option<Result<LoadReport, TlsError>> {
        let now = stamp_files(&self.source, self.certs_dir.as_deref());
        {
            // Remember the new state even if loading it fails, so a broken file is reported once,
            // not on every poll; the next edit triggers the next attempt.
            let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *stamps == now {
                return None;
            }
            *stamps = now;
        }
        Some(self.reload())
    }

    /// A rustls server config that picks certificates from this store by SNI, with ALPN for
    /// HTTP/2 and HTTP/1.1.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver(self.clone())));
        // Our order, not the client's: see `server_provider`.
        config.ignore_client_order = true;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The certificate a handshake for `server_name` gets.
    fn pick(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let set = self.current.load();
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(key) = set.by_name.get(&name) {
                return key.clone();
            }
            // A wildcard file covers one label below its base name (RFC 6125 6.4.3).
            if let Some(key) = name
                .split_once('.')
                .and_then(|(_, parent)| set.by_name.get(&format!("*.{parent}")))
            {
                return key.clone();
            }
        }
        set.default.clone()
    }
}

/// ring's provider with AES-128-GCM/SHA-256 first. Many clients (and load generators) list
/// AES-256-GCM/SHA-384 first, whose SHA-384 key schedule has no hardware path in ring on common
/// x86 servers; AES-128-GCM is equally safe here and makes new connections markedly cheaper.
fn server_provider() -> CryptoProvider {
    use rustls::crypto::ring::cipher_suite;
    let mut provider = rustls::crypto::ring::default_provider();
    let preferred = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
    ];
    let rest: Vec<_> = provider
        .cipher_suites
        .iter()
        .filter(|suite| !preferred.iter().any(|p| p.suite() == suite.suite()))
        .copied()
        .collect();
    provider.cipher_suites = preferred.into_iter().chain(rest).collect();
    provider
}

#[derive(Debug)]
struct SniResolver(Arc<CertStore>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.pick(hello.server_name()))
    }
}

fn build_set(
    source: &TlsSource,
    certs_dir: Option<&Path>,
    self_signed_names: &[String],
    provider: &CryptoProvider,
    previous: Option<&CertSet>,
) -> Result<(CertSet, LoadReport, Vec<FileStamp>), TlsError> {
    // Stamp before reading: a file replaced while we read it is then seen as changed next time.
    let stamps = stamp_files(source, certs_dir);
    let default = match source {
        TlsSource::Files { cert, key } => {
            let chain = read_chain(cert)?;
            let key_der = read_key(key)?;
            certified_key(chain, key_der, key, provider)?
        }
        TlsSource::SelfSigned { path } => {
            if !path.exists() {
                create_self_signed(path, self_signed_names)?;
            }
            let chain = read_chain(path)?;
            let key_der = read_key(path)?;
            certified_key(chain, key_der, path, provider)?
        }
    };
    let mut report = LoadReport::default();
    let mut by_name = HashMap::new();
    if let Some(dir) = certs_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| TlsError::Read {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = name_for_file(&path) else {
                continue;
            };
            match load_named(&path, &name, provider) {
                Ok(key) => {
                    by_name.insert(name, Arc::new(key));
                }
                Err(e) => {
                    // A file caught half-written during a renewal must not send the customer
                    // back to the hoster's certificate: keep what that name had.
                    if let Some(old) = previous.and_then(|set| set.by_name.get(&name)) {
                        by_name.insert(name, old.clone());
                        report.kept_previous += 1;
                    }
                    report.skipped.push(e);
                }
            }
        }
    }
    report.per_domain = by_name.len();
    Ok((
        CertSet {
            default: Arc::new(default),
            by_name,
        },
        report,
        stamps,
    ))
}

/// The host name a certs-folder file serves: `NAME.pem` serves NAME, and
/// `_wildcard.customer.example.pem` serves `*.customer.example`. Other files are ignored.
fn name_for_file(path: &Path) -> Option<String> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".pem")?;
    Some(match stem.strip_prefix("_wildcard.") {
        Some(base) => format!("*.{}", base.to_ascii_lowercase()),
        None => stem.to_ascii_lowercase(),
    })
}

/// Loads one certs-folder file (chain and key in one PEM file) for `name`.
fn load_named(
    path: &Path,
    name: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(path)?;
    let key = certified_key(chain, read_key(path)?, path, provider)?;
    // Refuse a file whose certificate does not cover its own name: serving it would only move
    // the certificate warning from the redirect to the handshake.
    let leaf = key.end_entity_cert().map_err(|e| TlsError::Key {
        path: path.to_owned(),
        source: e,
    })?;
    let check_name = name.replacen("*.", "wildcard-check.", 1);
    let covered = webpki::EndEntityCert::try_from(leaf)
        .ok()
        .zip(ServerName::try_from(check_name.as_str()).ok())
        .is_some_and(|(cert, server_name)| {
            cert.verify_is_valid_for_subject_name(&server_name).is_ok()
        });
    if !covered {
        return Err(TlsError::NameMismatch {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(key)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("not a valid PEM file: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: format!("holds no usable PRIVATE KEY block: {e}"),
    })
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let key_error = |source| TlsError::Key {
        path: key_path.to_owned(),
        source,
    };
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(key_error)?;
    Ok(certified)
}

fn stamp_files(source: &TlsSource, certs_dir: Option<&Path>) -> Vec<FileStamp> {
    let stamp = |path: PathBuf| {
        let meta = std::fs::metadata(&path).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let len = meta.map_or(0, |m| m.len());
        (path, modified, len)
    };
    let mut stamps = match source {
        TlsSource::Files { cert, key } => vec![stamp(cert.clone()), stamp(key.clone())],
        TlsSource::SelfSigned { path } => vec![stamp(path.clone())],
    };
    if let Some(dir) = certs_dir {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        stamps.extend(entries.into_iter().map(stamp));
    }
    stamps
}

/// Writes a new self-signed certificate and key (one PEM file, mode 0600) covering `names`.
pub fn create_self_signed(path: &Path, names: &[String]) -> Result<(), TlsError> {
    let fail = |reason: String| TlsError::SelfSigned {
        path: path.to_owned(),
        reason,
    };
    let key_pair = rcgen::KeyPair::generate().map_err(|e| fail(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(|e| fail(e.to_string()))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| fail(e.to_string()))?;
    let pem = format!("{}{}", cert.pem(), key_pair.serialize_pem());
    write_private(path, pem.as_bytes()).map_err(|e| fail(e.to_string()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn fingerprint(key: &CertifiedKey) -> Vec<u8> {
        key.end_entity_cert().unwrap().to_vec()
    }

    #[test]
    fn self_signed_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("self.pem");
        let source = TlsSource::SelfSigned { path: path.clone() };
        let (first, _) =
            CertStore::load(source.clone(), None, names(&["autodiscover.h.test"])).unwrap();
        let (second, _) = CertStore::load(source, None, names(&["autodiscover.h.test"])).unwrap();
        assert_eq!(
            fingerprint(&first.pick(None)),
            fingerprint(&second.pick(None))
        );
    }

    #[test]
    fn sni_picks_per_domain_certificates_and_skips_mismatched_files() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        create_self_signed(
            &certs.join("autodiscover.customer.example.pem"),
            &names(&["autodiscover.customer.example"]),
        )
        .unwrap();
        create_self_signed(
            &certs.join("_wildcard.wild.example.pem"),
            &names(&["*.wild.example"]),
        )
        .unwrap();
        create_self_signed(
            &certs.join("autodiscover.liar.example.pem"),
            &names(&["other.example"]),
        )
        .unwrap();
        std::fs::write(certs.join("README.txt"), "not a certificate").unwrap();
        let source = TlsSource::SelfSigned {
            path: dir.path().join("self.pem"),
        };
        let (store, report) =
            CertStore::load(source, Some(certs.clone()), names(&["autodiscover.h.test"])).unwrap();
        assert_eq!(report.per_domain, 2);
        assert_eq!(report.skipped.len(), 1);
        assert!(matches!(report.skipped[0], TlsError::NameMismatch { .. }));
        let default = fingerprint(&store.pick(None));
        assert_ne!(
            fingerprint(&store.pick(Some("Autodiscover.Customer.Example."))),
            default
        );
        assert_ne!(
            fingerprint(&store.pick(Some("autodiscover.wild.example"))),
            default
        );
        assert_eq!(
            fingerprint(&store.pick(Some("autodiscover.liar.example"))),
            default
        );
        assert_eq!(fingerprint(&store.pick(Some("a.b.wild.example"))), default);
    }

    #[test]
    fn a_broken_per_domain_file_keeps_its_previous_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        let file = certs.join("autodiscover.customer.example.pem");
        create_self_signed(&file, &names(&["autodiscover.customer.example"])).unwrap();
        let source = TlsSource::SelfSigned {
            path: dir.path().join("self.pem"),
        };
        let (store, _) =
            CertStore::load(source, Some(certs), names(&["autodiscover.h.test"])).unwrap();
        let before = fingerprint(&store.pick(Some("autodiscover.customer.example")));
        // Half-written during a renewal.
        std::fs::write(&file, "-----BEGIN CERTIFICATE-----\nMII").unwrap();
        let report = store.reload_if_changed().unwrap().unwrap();
        assert_eq!((report.skipped.len(), report.kept_previous), (1, 1));
        assert_eq!(
            fingerprint(&store.pick(Some("autodiscover.customer.example"))),
            before
        );
    }

    #[test]
    fn reload_keeps_the_old_set_when_the_new_files_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        create_self_signed(&cert, &names(&["autodiscover.h.test"])).unwrap();
        let source = TlsSource::Files {
            cert: cert.clone(),
            key: cert.clone(),
        };
        let (store, _) = CertStore::load(source, None, Vec::new()).unwrap();
        let before = fingerprint(&store.pick(None));
        assert!(store.reload_if_changed().is_none());
        std::fs::write(&cert, "garbage").unwrap();
        assert!(matches!(store.reload_if_changed(), Some(Err(_))));
        assert_eq!(fingerprint(&store.pick(None)), before);
        std::fs::remove_file(&cert).unwrap();
        create_self_signed(&cert, &names(&["autodiscover.h.test"])).unwrap();
        assert!(matches!(store.reload_if_changed(), Some(Ok(_))));
        assert_ne!(fingerprint(&store.pick(None)), before);
    }
}
