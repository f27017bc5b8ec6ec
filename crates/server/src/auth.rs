//! Optional HTTP Basic authentication of the AutoDiscover POSTs (`auth = "basic"`).
//!
//! Exchange answers an unauthenticated POST with `401` and a challenge, and EWS clients probe
//! for that before they send credentials; with `auth = "basic"` autodisco does the same for the
//! POX and SOAP endpoints (v2 JSON stays anonymous, as on Exchange). Passwords are checked by a
//! [`PasswordBackend`]:
//!
//! - [`DirectoryBackend`]: argon2 hashes in the directory, set with `autodisco user passwd`;
//! - [`imap::ImapBackend`]: the hoster's IMAP server; a successful `LOGIN` over TLS means the
//!   password is right.
//!
//! Rules every backend gets from [`Authenticator`]:
//!
//! - a wrong password, an unknown user, an unhosted domain, a malformed header and a
//!   rate-limited attempt all get the same answer: `401`, the same challenge, an empty body, and
//!   no sooner than [`FAILURE_FLOOR`] after the request arrived, so neither content nor timing
//!   tells them apart;
//! - every attempt is reserved with the [`limiter`] before the backend sees it, counted per
//!   (account, client) and per client with progressive back-off; the account is the address in
//!   its primary domain, so alias addresses share their primary's counter;
//! - a backend that cannot answer (an IMAP `NO [UNAVAILABLE]`, a timeout, too many checks in
//!   flight) is no wrong password: the attempt is not counted, nothing is cached, and the
//!   client gets `503` with `Retry-After`;
//! - verdicts are cached for [`VERDICT_TTL`] under a keyed SHA-256 of address and password (the
//!   key is random per process): the password itself is never kept, and never logged;
//! - Basic is never accepted over plain HTTP: the redirect site refuses any request carrying it
//!   ([`refuse_basic_over_http`]) without looking at it;
//! - with authentication on, anonymous endpoints give no per-user data and an authenticated
//!   user gets only their own mailbox ([`privacy`]).

pub(crate) mod imap;
pub(crate) mod limiter;
pub(crate) mod privacy;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use autodisco_directory::{DirectoryError, LiveDirectory, Store};
use autodisco_proto::{AccountSettings, Answer, EmailAddress};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::{AuthConfig, AuthMode};
use crate::request_log::RequestLog;

/// The least time a refused attempt takes, so a cheap refusal (unknown user, rate limit, cache
/// hit) cannot be told from an expensive one (an argon2 verification, an IMAP login).
pub const FAILURE_FLOOR: Duration = Duration::from_millis(300);

/// How long a verdict is reused before the backend is asked again.
pub(crate) const VERDICT_TTL: Duration = Duration::from_secs(60);

/// The most verdicts cached at once.
const MAX_CACHED: usize = 10_000;

/// The longest `Authorization` header looked at.
const MAX_AUTHORIZATION_LEN: usize = 2048;

/// argon2 verifications at once: each takes about 19 MiB, so a burst of attempts cannot eat
/// the server's memory.
const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

/// The longest a verification waits for one of the [`MAX_CONCURRENT_VERIFICATIONS`] slots.
const VERIFICATION_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// `Retry-After` of the `503` sent when the backend cannot answer, in seconds.
const RETRY_AFTER_SECS: &str = "10";

/// A future returned by a backend.
pub(crate) type BackendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<bool, BackendError>> + Send + 'a>>;

/// Where passwords are checked.
pub(crate) trait PasswordBackend: Send + Sync + 'static {
    /// A short name for logs (`directory`, `imap`).
    fn name(&self) -> &'static str;

    /// Whether `password` is right for `address`, whose login name at the mail servers is
    /// `login`. `Ok(false)` for a wrong password and for an unknown user alike; `Err` only when
    /// the backend cannot answer at all.
    fn verify<'a>(
        &'a self,
        address: &'a EmailAddress,
        login: &'a str,
        password: &'a str,
    ) -> BackendFuture<'a>;
}

/// Why a backend could not answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub(crate) enum BackendError {
    /// The directory database failed.
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The IMAP server could not be asked.
    #[error("IMAP: {0}")]
    Imap(#[from] imap::ImapError),
    /// A verification task failed.
    #[error("password verification did not finish")]
    Verification,
    /// Every verification slot stayed taken for the whole queue wait.
    #[error(
        "{MAX_CONCURRENT_VERIFICATIONS} verifications in flight for {VERIFICATION_QUEUE_WAIT:?}"
    )]
    Busy,
}

/// One of `slots`, waiting at most `wait` for it.
pub(crate) async fn slot_within(slots: &Semaphore, wait: Duration) -> Option<SemaphorePermit<'_>> {
    tokio::time::timeout(wait, slots.acquire()).await.ok()?.ok()
}

/// Why authentication could not be set up at start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// The IMAP backend's TLS settings are unusable.
    #[error("auth_imap: {0}")]
    Imap(#[from] imap::ImapError),
    /// The dummy hash could not be made.
    #[error("cannot hash passwords: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hashes a password for the directory: argon2id with the crate's default cost (19 MiB, two
/// passes) and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Passwords from the directory (`autodisco user passwd`).
pub(crate) struct DirectoryBackend {
    store: Store,
    /// Verified when the user has no password, so an unknown user costs what a known one does.
    dummy_hash: String,
    permits: Semaphore,
}

impl DirectoryBackend {
    /// A backend reading hashes from `store`.
    pub(crate) fn new(store: Store) -> Result<Self, AuthSetupError> {
        let mut random = [0u8; 16];
        OsRng.fill_bytes(&mut random);
        let dummy_hash = hash_password(&base64::engine::general_purpose::STANDARD.encode(random))
            .map_err(AuthSetupError::Hash)?;
        Ok(Self {
            store,
            dummy_hash,
            permits: Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
        })
    }
}

impl PasswordBackend for DirectoryBackend {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn verify<'a>(
        &'a self,
        address: &'a EmailAddress,
        _login: &'a str,
        password: &'a str,
    ) -> BackendFuture<'a> {
        Box::pin(async move {
            let stored = self.store.password_hash(address).await?;
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
            let password = password.to_owned();
            let _permit = slot_within(&self.permits, VERIFICATION_QUEUE_WAIT)
                .await
                .ok_or(BackendError::Busy)?;
            let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
                .await
                .map_err(|_| BackendError::Verification)?;
            Ok(known && matches)
        })
    }
}

/// What [`Authenticator::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go on: authentication is off, or the credentials are right.
    Allowed,
    /// `401` with the challenge; the word is for the log only.
    Refused(&'static str),
    /// The backend cannot answer: `503`.
    Unavailable,
}

/// The verdict cache: keyed SHA-256 of (address, password) to (verdict, expiry).
struct VerdictCache {
    secret: [u8; 32],
    entries: HashMap<[u8; 32], (bool, Instant)>,
}

impl VerdictCache {
    fn new() -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        Self {
            secret,
            entries: HashMap::new(),
        }
    }

    fn key(&self, address: &EmailAddress, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(address.lookup_key().as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<bool> {
        match self.entries.get(key) {
            Some((verdict, expires)) if *expires > now => Some(*verdict),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: [u8; 32], verdict: bool, now: Instant) {
        if self.entries.len() >= MAX_CACHED {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= MAX_CACHED {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (verdict, now + VERDICT_TTL));
    }
}

/// Checks the credentials of requests when `auth = "basic"`.
pub(crate) struct Authenticator {
    mode: AuthMode,
    backend: Option<Arc<dyn PasswordBackend>>,
    challenge: HeaderValue,
    cache: Mutex<VerdictCache>,
    limiter: limiter::FailureLimiter,
    directory: Option<LiveDirectory>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("backend", &self.backend.as_ref().map(|b| b.name()))
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Authentication off: every request is allowed.
    pub(crate) fn disabled() -> Self {
        Self {
            mode: AuthMode::None,
            backend: None,
            challenge: HeaderValue::from_static("Basic"),
            cache: Mutex::new(VerdictCache::new()),
            limiter: limiter::FailureLimiter::default(),
            directory: None,
        }
    }

    /// The authenticator a configuration asks for; `realm` names the service in the challenge.
    pub(crate) fn from_config(
        config: &AuthConfig,
        directory: &LiveDirectory,
        realm: &str,
    ) -> Result<Self, AuthSetupError> {
        if config.mode == AuthMode::None {
            return Ok(Self::disabled());
        }
        let backend: Arc<dyn PasswordBackend> = match &config.imap {
            Some(imap) => Arc::new(imap::ImapBackend::from_config(imap)?),
            None => Arc::new(DirectoryBackend::new(directory.store().clone())?),
        };
        Ok(Self::with_backend(backend, Some(directory.clone()), realm))
    }

    /// Basic authentication with `backend`. `directory`, when given, supplies login names (the
    /// profile's IMAP username for the address) and maps alias-domain addresses to primaries.
    pub(crate) fn with_backend(
        backend: Arc<dyn PasswordBackend>,
        directory: Option<LiveDirectory>,
        realm: &str,
    ) -> Self {
        // The realm is a host name, so it never needs escaping; anything odd falls back.
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .unwrap_or_else(|_| HeaderValue::from_static("Basic charset=\"UTF-8\""));
        Self {
            mode: AuthMode::Basic,
            backend: Some(backend),
            challenge,
            cache: Mutex::new(VerdictCache::new()),
            limiter: limiter::FailureLimiter::default(),
            directory,
        }
    }

    /// Whether requests need credentials.
    pub(crate) fn is_enabled(&self) -> bool {
        self.mode == AuthMode::Basic
    }

    /// Decides about one request's `Authorization` header, from `peer`.
    pub(crate) async fn check(&self, headers: &HeaderMap, peer: IpAddr) -> Verdict {
        let Some(backend) = self.backend.as_ref().filter(|_| self.is_enabled()) else {
            return Verdict::Allowed;
        };
        let started = tokio::time::Instant::now();
        let verdict = self.decide(backend.as_ref(), headers, peer).await;
        if let Verdict::Refused(_) = verdict {
            tokio::time::sleep_until(started + FAILURE_FLOOR).await;
        }
        verdict
    }

    async fn decide(
        &self,
        backend: &dyn PasswordBackend,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Verdict {
        let Some((user, password)) = basic_credentials(headers) else {
            return Verdict::Refused("no-credentials");
        };
        let now = Instant::now();
        // Not an address: nobody we know, but an attempt all the same, counted for the client.
        let account = EmailAddress::parse(&user).ok().map(|a| self.account(&a));
        let key = account.as_ref().map(|(address, _)| address.lookup_key());
        // Reserved before anything is checked, so concurrent guesses cannot all pass the limit.
        let reservation = match self.limiter.reserve(key.as_deref(), peer, now) {
            Ok(reservation) => reservation,
            Err(refusal) => {
                tracing::info!(target: "autodisco::auth", address = key.as_deref().unwrap_or("-"), %peer, ?refusal, "authentication rate-limited");
                return Verdict::Refused("rate-limited");
            }
        };
        let Some((address, login)) = account else {
            reservation.failed(now);
            return Verdict::Refused("bad-credentials");
        };
        let cache_key = self.lock_cache().key(&address, &password);
        let cached = self.lock_cache().get(&cache_key, now);
        let ok = match cached {
            Some(verdict) => verdict,
            None => match backend.verify(&address, &login, &password).await {
                Ok(verdict) => {
                    self.lock_cache().put(cache_key, verdict, Instant::now());
                    verdict
                }
                Err(error) => {
                    reservation.given_back();
                    tracing::warn!(target: "autodisco::auth", backend = backend.name(), %error, "cannot check a password");
                    return Verdict::Unavailable;
                }
            },
        };
        if ok {
            reservation.succeeded();
            Verdict::Allowed
        } else {
            reservation.failed(Instant::now());
            tracing::info!(target: "autodisco::auth", address = %address.lookup_key(), %peer, "authentication failed");
            Verdict::Refused("bad-credentials")
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, VerdictCache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The address in its primary domain and its login name at the mail servers. An alias
    /// address maps to its primary whatever overrides the primary has, so both share one
    /// account (one password, one failure counter).
    fn account(&self, address: &EmailAddress) -> (EmailAddress, String) {
        let Some(directory) = &self.directory else {
            return (address.clone(), address.to_string());
        };
        let snapshot = directory.snapshot();
        let Some((primary, profile)) = snapshot.domain_profile(address.domain()) else {
            return (address.clone(), address.to_string());
        };
        let settings = match snapshot.resolve(address) {
            Answer::Settings(settings) => settings,
            // A redirected mailbox still logs in with the domain's username template.
            _ => AccountSettings::new(address.with_domain(primary), profile),
        };
        let login = match settings.profile.imap.first() {
            Some(server) => settings.username_for(server),
            None => settings.address.to_string(),
        };
        (settings.address, login)
    }

    /// The `401` every refusal gets, whatever its reason.
    fn challenge_response(&self, outcome: &'static str, dialect: &'static str) -> Response {
        let mut response = (StatusCode::UNAUTHORIZED, "").into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
            .extensions_mut()
            .insert(RequestLog::new(dialect, outcome, None));
        response
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks a request's `headers` from `peer` when authentication is on: `None` to go on, or the
/// answer to send instead (`401` with the challenge, or `503` when the backend cannot answer).
pub(crate) async fn require(
    authenticator: &Authenticator,
    headers: &HeaderMap,
    peer: IpAddr,
    dialect: &'static str,
) -> Option<Response> {
    if !authenticator.is_enabled() {
        return None;
    }
    match authenticator.check(headers, peer).await {
        Verdict::Allowed => None,
        Verdict::Refused(outcome) => Some(authenticator.challenge_response(outcome, dialect)),
        Verdict::Unavailable => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, "").into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            response
                .extensions_mut()
                .insert(RequestLog::new(dialect, "auth-unavailable", None));
            Some(response)
        }
    }
}

/// Middleware for the plain-HTTP redirect site: a request carrying `Authorization: Basic` is
/// refused with `403` before anything looks at it, so a client that sent a password in clear
/// learns that it must not.
pub(crate) async fn refuse_basic_over_http(request: Request, next: Next) -> Response {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().get(..6))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"basic "));
    if basic {
        let mut response = (StatusCode::FORBIDDEN, "").into_response();
        response
            .extensions_mut()
            .insert(RequestLog::new("redirect", "basic-over-http", None));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A backend that knows one password and counts its calls.
    struct Fixed {
        calls: std::sync::atomic::AtomicUsize,
    }

    impl PasswordBackend for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn verify<'a>(
            &'a self,
            address: &'a EmailAddress,
            _login: &'a str,
            password: &'a str,
        ) -> BackendFuture<'a> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ok = address.to_string() == "jane@a.example" && password == "right: one";
            Box::pin(async move { Ok(ok) })
        }
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let hash = hash_password("s3cret ü").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "s3cret ü"));
        assert!(!verify_password(&hash, "s3cret u"));
        assert_ne!(hash, hash_password("s3cret ü").unwrap());
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn credentials_are_read_from_basic_only() {
        assert_eq!(
            basic_credentials(&basic("jane@a.example", "p:w")),
            Some(("jane@a.example".into(), "p:w".into()))
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&headers), None);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_look_alike_and_verdicts_are_cached() {
        let backend = Arc::new(Fixed {
            calls: Default::default(),
        });
        let auth = Authenticator::with_backend(backend.clone(), None, "autodiscover.h.example");
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            auth.check(&basic("jane@a.example", "right: one"), peer)
                .await,
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(&basic("jane@a.example", "right: one"), peer)
                .await,
            Verdict::Allowed
        );
        assert_eq!(backend.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        for headers in [
            basic("jane@a.example", "wrong"),
            basic("nobody@a.example", "right: one"),
            basic("not-an-address", "x"),
        ] {
            let started = tokio::time::Instant::now();
            assert_eq!(
                auth.check(&headers, peer).await,
                Verdict::Refused("bad-credentials")
            );
            assert!(started.elapsed() >= FAILURE_FLOOR);
        }
        assert_eq!(
            auth.check(&HeaderMap::new(), peer).await,
            Verdict::Refused("no-credentials")
        );
        // The cache holds keyed digests, never a password.
        let cache = auth.lock_cache();
        assert!(cache.entries.len() >= 2);
        let debug = format!("{:?}", cache.entries);
        assert!(!debug.contains("right") && !debug.contains("wrong"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_per_address_and_client() {
        let backend = Arc::new(Fixed {
            calls: Default::default(),
        });
        let auth = Authenticator::with_backend(backend.clone(), None, "h.example");
        let peer: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..limiter::FREE_FAILURES_PER_ACCOUNT {
            let verdict = auth
                .check(&basic("jane@a.example", &format!("guess{i}")), peer)
                .await;
            assert_eq!(verdict, Verdict::Refused("bad-credentials"));
        }
        // From this client even the right password is refused now, the same way, unchecked.
        let calls = backend.calls.load(std::sync::atomic::Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        assert_eq!(
            auth.check(&basic("jane@a.example", "right: one"), peer)
                .await,
            Verdict::Refused("rate-limited")
        );
        assert!(started.elapsed() >= FAILURE_FLOOR);
        assert_eq!(
            backend.calls.load(std::sync::atomic::Ordering::SeqCst),
            calls
        );
        // Jane, from elsewhere, is not locked out.
        let elsewhere: IpAddr = "2001:db8:7::1".parse().unwrap();
        assert_eq!(
            auth.check(&basic("jane@a.example", "right: one"), elsewhere)
                .await,
            Verdict::Allowed
        );
        assert!(auth.challenge.to_str().unwrap().starts_with("Basic realm="));
    }

    /// A directory with the domain a.example (alias b.example) and jane@a.example logging in
    /// to IMAP as `jdoe`; the CA file of `imap` in `folder`.
    async fn imap_directory(
        imap: &autodisco_test_support::imap::ImapTestServer,
        folder: &std::path::Path,
    ) -> (LiveDirectory, AuthConfig) {
        use autodisco_directory::UserOverride;
        use autodisco_proto::{Domain, ServiceProfile};

        let store = Store::connect(&format!("sqlite://{}", folder.join("d.sqlite").display()))
            .await
            .unwrap();
        store
            .put_profile(
                &autodisco_directory::Actor::Cli,
                "p",
                &ServiceProfile::default_for_hoster("h.example"),
            )
            .await
            .unwrap();
        let a = Domain::parse("a.example").unwrap();
        store
            .add_domain(&autodisco_directory::Actor::Cli, &a, "p")
            .await
            .unwrap();
        store
            .add_alias(
                &autodisco_directory::Actor::Cli,
                &Domain::parse("b.example").unwrap(),
                &a,
            )
            .await
            .unwrap();
        let mut jane = UserOverride::new(EmailAddress::parse("jane@a.example").unwrap());
        jane.login_name = Some("jdoe".into());
        store
            .put_user(&autodisco_directory::Actor::Cli, &jane)
            .await
            .unwrap();
        let directory = LiveDirectory::load(store).await.unwrap();
        let config = AuthConfig {
            mode: AuthMode::Basic,
            imap: Some(imap::tests::backend_for(imap, folder)),
        };
        (directory, config)
    }

    /// The IMAP backend from a config: the login is the profile's IMAP username for the
    /// address (here a per-user login name), checked over TLS with the configured CA.
    #[tokio::test]
    async fn imap_backend_from_the_config() {
        let server =
            autodisco_test_support::imap::ImapTestServer::start(&[("jdoe", "imap secret")]).await;
        let folder = tempfile::tempdir().unwrap();
        let (directory, config) = imap_directory(&server, folder.path()).await;
        let auth = Authenticator::from_config(&config, &directory, "h.example").unwrap();
        let peer: IpAddr = "192.0.2.3".parse().unwrap();
        assert_eq!(
            auth.check(&basic("jane@a.example", "imap secret"), peer)
                .await,
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(&basic("jane@a.example", "nope"), peer).await,
            Verdict::Refused("bad-credentials")
        );
        // A server that cannot be reached is not a wrong password.
        let down = AuthConfig {
            mode: AuthMode::Basic,
            imap: Some(crate::config::ImapAuth {
                host: "localhost".into(),
                port: 1,
                ca_file: None,
            }),
        };
        let auth = Authenticator::from_config(&down, &directory, "h.example").unwrap();
        assert_eq!(
            auth.check(&basic("jane@a.example", "imap secret"), peer)
                .await,
            Verdict::Unavailable
        );
    }

    /// `NO [UNAVAILABLE]` is no wrong password: not counted, not cached, and the same password
    /// works as soon as the server is back. An alias address is its primary's account.
    #[tokio::test]
    async fn imap_temporary_failures_are_not_wrong_passwords() {
        let server =
            autodisco_test_support::imap::ImapTestServer::start(&[("jdoe", "imap secret")]).await;
        let folder = tempfile::tempdir().unwrap();
        let (directory, config) = imap_directory(&server, folder.path()).await;
        let auth = Authenticator::from_config(&config, &directory, "h.example").unwrap();
        let peer: IpAddr = "192.0.2.4".parse().unwrap();
        server.set_unavailable(true);
        for _ in 0..limiter::FREE_FAILURES_PER_ACCOUNT * 2 {
            assert_eq!(
                auth.check(&basic("jane@b.example", "imap secret"), peer)
                    .await,
                Verdict::Unavailable
            );
        }
        assert_eq!(
            server.logins(),
            limiter::FREE_FAILURES_PER_ACCOUNT as usize * 2
        );
        server.set_unavailable(false);
        assert_eq!(
            auth.check(&basic("jane@a.example", "imap secret"), peer)
                .await,
            Verdict::Allowed
        );
        // Guesses on the alias address use up the primary's quota.
        for i in 0..limiter::FREE_FAILURES_PER_ACCOUNT {
            assert_eq!(
                auth.check(&basic("JANE@b.example", &format!("guess {i}")), peer)
                    .await,
                Verdict::Refused("bad-credentials")
            );
        }
        assert_eq!(
            auth.check(&basic("jane@a.example", "imap secret"), peer)
                .await,
            Verdict::Refused("rate-limited")
        );
    }

    #[tokio::test]
    async fn disabled_allows_everything() {
        let auth = Authenticator::disabled();
        assert_eq!(
            auth.check(&HeaderMap::new(), IpAddr::V4(Ipv4Addr::LOCALHOST))
                .await,
            Verdict::Allowed
        );
    }
}
