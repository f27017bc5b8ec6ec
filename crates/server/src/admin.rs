//! The admin API: JSON over HTTP on its own loopback listener (`[admin] listen`), for control
//! panels. Every change goes through the store, so it is checked, audited under the token's
//! name and picked up by every running instance like a CLI change.
//!
//! - `domains`: `/v1/domains` and `/v1/domains/{name}` (list with keyset pagination and
//!   index-backed filters; create; PUT, PATCH, DELETE with ETag and If-Match), and what the
//!   hoster sees of one: `/v1/domains/{name}/records` (the DNS records it publishes) and
//!   `/v1/domains/{name}/health` (the last `autodisco domain check`), and `POST
//!   /v1/domains/{name}/check` (check it now, through a [`DomainChecker`]).
//! - `resources`: profiles, user overrides and passwords, tokens, the audit log, the status.
//! - `openapi`: the OpenAPI 3.1 description, generated from the handlers, at `/openapi.json`.
//!
//! Tokens (`autodisco token create`) are checked against the stored SHA-256 hashes in constant
//! time; a missing or unknown token is `401`, a read token asking to change something `403`.
//! Work per request is bounded: bodies up to 256 KiB, pages up to 1,000 items, 16 requests at
//! once, a timeout per request.

mod domains;
mod openapi;
mod resources;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use autodisco_directory::{
    Actor, ApiToken, DirectoryError, DomainHealth, LiveDirectory, TokenScope,
};
use autodisco_proto::DomainRecords;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::ToSchema;

use crate::state::Site;

/// The largest request body: a profile or a user override is a few KiB.
const MAX_BODY: usize = 256 * 1024;
/// Requests handled at once; more wait. The API serves a few control panels, not the internet.
const CONCURRENCY: usize = 16;
/// A request taking longer is answered 408 (a directory write waits at most 5 s for the pool).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A live check of one hosted domain: its DNS records and what a mail client meets on the way
/// to the service. The binary supplies one built on the client crate's checker (the same engine
/// as `autodisco domain check`), since the server crate does not depend on the client.
pub trait DomainChecker: Send + Sync + 'static {
    /// Checks the domain whose records should be `expected`; the result as it is stored.
    fn check(&self, expected: DomainRecords) -> BoxFuture<'_, DomainHealth>;
}

/// What a [`DomainChecker`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) directory: LiveDirectory,
    /// The site settings in force (the names customers' records point at).
    pub(crate) site: Arc<ArcSwap<Site>>,
    /// Set once every listener is open: `/readyz` answers 503 until then.
    pub(crate) ready: Arc<AtomicBool>,
    /// How long the directory database may be unreachable before `/readyz` answers 503.
    pub(crate) unready_after: Duration,
    /// Runs `POST /v1/domains/{name}/check`; without one that path is not served (404).
    pub(crate) checker: Option<Arc<dyn DomainChecker>>,
    /// Whether `auth = "basic"` checks directory passwords (passwords can be set either way).
    pub(crate) passwords_checked: bool,
}

/// The admin API's router.
pub(crate) fn router(state: AdminState) -> Router {
    let v1 = Router::new()
        .merge(domains::routes(state.checker.is_some()))
        .merge(resources::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(v1)
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(ConcurrencyLimitLayer::new(CONCURRENCY))
}

/// `GET /healthz`, without a token: the process runs and answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`, without a token: 200 once every listener is open (the directory snapshot is
/// loaded before that), 503 while starting or while the directory database has been unreachable
/// for longer than `[directory] unready_after_secs`, so a load balancer can send clients to an
/// instance whose directory is current. The last good snapshot is still served meanwhile.
async fn readyz(State(state): State<AdminState>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    let outage = state
        .directory
        .health()
        .fault_since
        .and_then(|since| since.elapsed().ok());
    match outage {
        Some(outage) if outage > state.unready_after => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the directory database has been unreachable for {} s\n",
                outage.as_secs()
            ),
        )
            .into_response(),
        _ => (StatusCode::OK, "ready\n").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such path", None)
}

/// The token a request came with, for the handlers that record who acts.
#[derive(Clone)]
pub(crate) struct Caller(pub(crate) ApiToken);

impl Caller {
    /// Who the audit log names for this caller's changes: its token.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Token(self.0.name.clone())
    }
}

/// Checks the bearer token and its scope before any handler runs.
async fn authenticate(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(secret) = bearer(request.headers()) else {
        return unauthorized("send Authorization: Bearer TOKEN (autodisco token create)");
    };
    let token = match state.directory.store().authenticate_token(&secret).await {
        Ok(Some(token)) => token,
        Ok(None) => return unauthorized("the token is unknown or revoked"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let needed = if matches!(*request.method(), Method::GET | Method::HEAD) {
        TokenScope::Read
    } else {
        TokenScope::Write
    };
    if !token.scope.allows(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "token {} has scope {}; changes need write",
                token.name, token.scope
            ),
            None,
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller(token));
    next.run(request).await
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    // The scheme is case-insensitive (RFC 9110 section 11.1).
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message, None).into_response();
    // RFC 6750 section 3.
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"autodisco admin\""),
    );
    response
}

/// Every error answer: a JSON body naming the field at fault, if one is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable word for programs: `not_found`, `conflict`, `invalid`, `precondition_failed`, ...
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// The request field at fault (`name`, `profile`, `alias_of`, ...), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: &str,
        field: Option<&str>,
    ) -> Self {
        Self {
            status,
            body: ErrorBody {
                code,
                message: message.to_owned(),
                field: field.map(str::to_owned),
            },
        }
    }

    /// A request value that cannot be used (422).
    pub(crate) fn invalid(field: &str, message: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            message,
            Some(field),
        )
    }

    /// A body that is not the JSON expected (400).
    pub(crate) fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message, None)
    }

    /// A 422 naming `field`, for a reference in the request that does not resolve (a profile
    /// or primary that does not exist is the request's fault, not a missing resource).
    pub(crate) fn unprocessable(mut self, field: &str) -> Self {
        self.status = StatusCode::UNPROCESSABLE_ENTITY;
        self.body.code = "invalid";
        self.body.field = Some(field.to_owned());
        self
    }

    /// Names `field` as the cause, for errors whose field only the handler knows.
    pub(crate) fn at(mut self, field: &str) -> Self {
        self.body.field = Some(field.to_owned());
        self
    }
}

impl From<DirectoryError> for ApiError {
    fn from(error: DirectoryError) -> Self {
        let message = error.to_string();
        let (status, code, field) = match &error {
            DirectoryError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", None),
            DirectoryError::AlreadyExists { .. } => (StatusCode::CONFLICT, "conflict", None),
            DirectoryError::DomainHasDependents { .. } | DirectoryError::ProfileInUse { .. } => {
                (StatusCode::CONFLICT, "conflict", None)
            }
            DirectoryError::Changed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed", None)
            }
            DirectoryError::InvalidProfileName { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("name"))
            }
            DirectoryError::InvalidTokenName { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("name"))
            }
            DirectoryError::InvalidTokenScope { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("scope"))
            }
            DirectoryError::InvalidProfile { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("profile"))
            }
            DirectoryError::InvalidOverride { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", None)
            }
            DirectoryError::AliasOfAlias { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                Some("alias_of"),
            ),
            DirectoryError::IsAlias { .. } => (StatusCode::CONFLICT, "conflict", Some("profile")),
            DirectoryError::Unreachable { .. } => {
                tracing::error!(%error, "admin API: directory unreachable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the directory database cannot be reached; try again",
                    None,
                );
            }
            _ => {
                // Database details stay in the log.
                tracing::error!(%error, "admin API: directory error");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the directory failed; see the server log",
                    None,
                );
            }
        };
        Self::new(status, code, &message, field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// The `ETag` value of a version tag (a strong validator, RFC 9110 section 8.8.3).
pub(crate) fn etag(version: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("hex is a valid header value")
}

/// The version an `If-Match` header asks for: the tag without quotes, or `*`. A list of tags
/// or a weak tag is refused (400): a change needs one exact version.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(Some("*".to_owned()));
    }
    // RFC 9110 quotes the tag; a bare one is taken too, as many clients send it so.
    let tag = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"'),
        None => Some(value),
    };
    match tag {
        // Tags are lower-case hex, as GET gives them.
        Some(tag)
            if !tag.is_empty()
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(Some(tag.to_owned()))
        }
        // A malformed header is the request's fault (400); 412 is kept for a well-formed
        // version that no longer matches.
        _ => Err(
            ApiError::bad_request("If-Match must be one strong ETag as given by GET, or *")
                .at("If-Match"),
        ),
    }
}

/// Reads the `limit` of a listing: absent is `default`, else 1 to `max` (400 beyond, so a
/// client learns the bound instead of silently getting less).
pub(crate) fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(&format!("limit must be 1 to {max}")).at("limit")),
    }
}

/// Refuses a query or path value with control characters (400 naming it): no name holds one,
/// and PostgreSQL refuses NUL in text outright.
pub(crate) fn plain_text(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    if value.is_some_and(|v| v.chars().any(char::is_control)) {
        return Err(
            ApiError::bad_request(&format!("{field} contains a control character")).at(field),
        );
    }
    Ok(())
}

/// Reads a JSON body into `T`, answering 400 (not JSON) or 422 (JSON of the wrong shape, with
/// the field serde names).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(&format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|f| f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or("body")
            .to_owned();
        ApiError::invalid(&field, &message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_and_if_match_are_read_strictly() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);

        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"0a1b\""));
        assert_eq!(if_match(&headers).unwrap().as_deref(), Some("0a1b"));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&headers).unwrap().as_deref(), Some("*"));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("0a1b"));
        assert_eq!(if_match(&headers).unwrap().as_deref(), Some("0a1b"));
        for bad in [
            "\"0A1B\"",
            "W/\"0a1b\"",
            "\"a\", \"b\"",
            "\"0a1b",
            "\"\"",
            "null",
        ] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(bad));
            let e = if_match(&headers).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn wrong_shapes_name_their_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            name: String,
        }
        let e = json_body::<Body>(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = json_body::<Body>(b"{}").unwrap_err();
        assert_eq!(
            (e.status, e.body.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let e = json_body::<Body>(b"{\"name\": \"a\", \"nme\": 1}").unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("nme"));
    }
}
