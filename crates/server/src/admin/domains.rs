//! `/v1/domains`: hosted domains and aliases.

use autodisco_directory::{
    DirectoryError, DomainHealth, DomainInfo, DomainKind, DomainQuery, DomainRecord, DomainRemoval,
    DomainStatus, DomainTarget, DomainUpdate, ObjectKind,
};
use autodisco_proto::Domain;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    AdminState, ApiError, Caller, ErrorBody, etag, if_match, json_body, page_limit, plain_text,
};

/// The domain routes; `live_checks` adds `POST /v1/domains/{name}/check` (a server started
/// without a checker does not offer it).
pub(super) fn routes(live_checks: bool) -> Router<AdminState> {
    let router = Router::new()
        .route("/v1/domains", get(list).post(create))
        .route(
            "/v1/domains/{name}",
            get(show).put(put).patch(patch).delete(remove),
        )
        .route("/v1/domains/{name}/records", get(records))
        .route("/v1/domains/{name}/health", get(health));
    if live_checks {
        router.route("/v1/domains/{name}/check", post(check))
    } else {
        router
    }
}

/// The DNS records the domain publishes: `{"domain", "primary", "records": [{"name", "type",
/// "data", "purpose", "required", "why"}], "notes": [...]}`, as `autodisco dns records
/// --format json` prints them (one computation for both).
#[utoipa::path(get, path = "/v1/domains/{name}/records", tag = "domains",
    params(("name" = String, Path, description = "The domain (primary or alias)")),
    responses(
        (status = 200, description = "The records", body = Object),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "Not hosted", body = ErrorBody),
        (status = 422, description = "Not a domain name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn records(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = domain("name", &name)?;
    let targets = state.site.load().record_targets.clone();
    let records = state
        .directory
        .store()
        .domain_records(&name, &targets)
        .await?;
    Ok(Json(records).into_response())
}

/// The last live check of a domain (`autodisco domain check`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HealthView {
    /// When, in seconds since the Unix epoch.
    checked_at: u64,
    /// `healthy` or `unhealthy`.
    status: String,
    /// The records, steps and findings, as the check wrote them.
    #[schema(value_type = Object)]
    findings: serde_json::Value,
}

/// The result of the last live check of the domain; 404 when it was never checked.
#[utoipa::path(get, path = "/v1/domains/{name}/health", tag = "domains",
    params(("name" = String, Path, description = "The domain (primary or alias)")),
    responses(
        (status = 200, description = "The last check", body = HealthView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "Not hosted, or never checked", body = ErrorBody),
        (status = 422, description = "Not a domain name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn health(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = domain("name", &name)?;
    let Some(health) = state.directory.store().health(&name).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_checked",
            &format!("{name} has not been checked yet: POST /v1/domains/{name}/check"),
            None,
        ));
    };
    Ok(Json(health_view(health)).into_response())
}

fn health_view(health: DomainHealth) -> HealthView {
    HealthView {
        checked_at: health.checked_at,
        status: health.status.as_str().to_owned(),
        // Stored by the checker as JSON; text that is not is shown as a string.
        findings: serde_json::from_str(&health.findings)
            .unwrap_or(serde_json::Value::String(health.findings)),
    }
}

/// Check the domain live now (its DNS records, then what Outlook meets on the way to the
/// service), store the result as `/health` shows it, and return it. Takes up to the checker's
/// per-domain timeout.
#[utoipa::path(post, path = "/v1/domains/{name}/check", tag = "domains",
    params(("name" = String, Path, description = "The domain (primary or alias)")),
    responses(
        (status = 200, description = "The check's result, now stored", body = HealthView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "Not hosted, or this server runs no live checks", body = ErrorBody),
        (status = 422, description = "Not a domain name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn check(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = domain("name", &name)?;
    let targets = state.site.load().record_targets.clone();
    let store = state.directory.store();
    let expected = store.domain_records(&name, &targets).await?;
    let Some(checker) = state.checker.clone() else {
        // Not routed without a checker (see `routes`).
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server runs no live checks",
            None,
        ));
    };
    let health = checker.check(expected).await;
    store.put_health(std::slice::from_ref(&health)).await?;
    Ok(Json(health_view(health)).into_response())
}

/// Whether a domain is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Status {
    Active,
    Suspended,
}

impl From<Status> for DomainStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Active => DomainStatus::Active,
            Status::Suspended => DomainStatus::Suspended,
        }
    }
}

impl From<DomainStatus> for Status {
    fn from(status: DomainStatus) -> Self {
        match status {
            DomainStatus::Active => Status::Active,
            DomainStatus::Suspended => Status::Suspended,
        }
    }
}

/// A domain in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DomainItem {
    /// The canonical name (lower case, A-labels).
    name: String,
    status: Status,
    /// A primary's profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    /// An alias's primary domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
}

/// One page of domains.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DomainPage {
    domains: Vec<DomainItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// One domain with what hangs on it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DomainView {
    name: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
    /// A primary's alias domains.
    aliases: Vec<String>,
    /// How many user overrides a primary has.
    users: u64,
}

/// A new domain: a primary with a profile, or an alias of a hosted primary.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDomain {
    name: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    alias_of: Option<String>,
    #[serde(default)]
    status: Option<Status>,
}

/// The whole state of a domain (PUT): created if missing, else brought to this state.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainPut {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    alias_of: Option<String>,
    #[serde(default)]
    status: Option<Status>,
}

/// A partial change (PATCH): suspend, resume, move to another profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainPatch {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", nullable = false)]
    cursor: Option<String>,
    /// Only primaries with this profile.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", nullable = false)]
    profile: Option<String>,
    /// Only domains with this status.
    status: Option<Status>,
    /// Only names starting with this.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$", nullable = false)]
    q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RemoveParams {
    /// Also remove a primary's aliases and user overrides (else 409 while it has any).
    cascade: Option<bool>,
}

fn item(record: DomainRecord) -> DomainItem {
    let (profile, alias_of) = match record.target {
        DomainTarget::Profile(profile) => (Some(profile), None),
        DomainTarget::AliasOf(primary) => (None, Some(primary.to_string())),
    };
    DomainItem {
        name: record.name.to_string(),
        status: record.status.into(),
        profile,
        alias_of,
    }
}

fn view(info: &DomainInfo) -> DomainView {
    let (profile, alias_of, aliases, users) = match &info.kind {
        DomainKind::Primary {
            profile,
            aliases,
            users,
        } => (
            Some(profile.clone()),
            None,
            aliases.iter().map(ToString::to_string).collect(),
            *users,
        ),
        DomainKind::Alias { primary } => (None, Some(primary.to_string()), Vec::new(), 0),
    };
    DomainView {
        name: info.name.to_string(),
        status: info.status.into(),
        profile,
        alias_of,
        aliases,
        users,
    }
}

/// The domain as JSON with its ETag.
fn answer(status: StatusCode, info: &DomainInfo) -> Response {
    let mut response = (status, Json(view(info))).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&info.version()));
    if status == StatusCode::CREATED
        && let Ok(location) = format!("/v1/domains/{}", info.name).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn domain(field: &str, name: &str) -> Result<Domain, ApiError> {
    Domain::parse(name)
        .map_err(|e| ApiError::invalid(field, &format!("{name:?} is not a domain name: {e}")))
}

/// List domains, by name, a page at a time.
#[utoipa::path(get, path = "/v1/domains", tag = "domains", params(ListParams),
    responses(
        (status = 200, description = "One page", body = DomainPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list(
    State(state): State<AdminState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<DomainPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(&e.body_text()))?;
    let limit = page_limit(params.limit, 100, DomainQuery::MAX_LIMIT)?;
    plain_text("cursor", params.cursor.as_deref())?;
    plain_text("profile", params.profile.as_deref())?;
    plain_text("q", params.q.as_deref())?;
    let query = DomainQuery {
        after: params.cursor,
        limit,
        profile: params.profile,
        status: params.status.map(Into::into),
        prefix: params.q,
    };
    let page = state.directory.store().list_domains_page(&query).await?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|r| r.name.to_string()))
        .flatten();
    Ok(Json(DomainPage {
        domains: page.into_iter().map(item).collect(),
        next_cursor,
    }))
}

/// Host a domain: `{"name", "profile"}` for a primary, `{"name", "alias_of"}` for an alias.
#[utoipa::path(post, path = "/v1/domains", tag = "domains", request_body = NewDomain,
    responses(
        (status = 201, description = "Created", body = DomainView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "Exists already", body = ErrorBody),
        (status = 422, description = "A field cannot be used", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewDomain = json_body(&body)?;
    let name = domain("name", &new.name)?;
    let info = add(
        &state,
        &caller,
        &name,
        new.profile,
        new.alias_of,
        new.status,
    )
    .await?;
    Ok(answer(StatusCode::CREATED, &info))
}

/// Creates `name` as a primary or an alias, then applies `status`.
async fn add(
    state: &AdminState,
    caller: &Caller,
    name: &Domain,
    profile: Option<String>,
    alias_of: Option<String>,
    status: Option<Status>,
) -> Result<DomainInfo, ApiError> {
    let store = state.directory.store();
    let by = caller.actor();
    match (profile, alias_of) {
        (Some(profile), None) => {
            store
                .add_domain(&by, name, &profile)
                .await
                .map_err(|e| match e {
                    DirectoryError::NotFound {
                        kind: ObjectKind::Profile,
                        ..
                    } => ApiError::from(e).unprocessable("profile"),
                    e => ApiError::from(e).at("name"),
                })?
        }
        (None, Some(primary)) => {
            let primary = domain("alias_of", &primary)?;
            store
                .add_alias(&by, name, &primary)
                .await
                .map_err(|e| match e {
                    DirectoryError::NotFound { .. } | DirectoryError::AliasOfAlias { .. } => {
                        ApiError::from(e).unprocessable("alias_of")
                    }
                    e => ApiError::from(e).at("name"),
                })?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "alias_of",
                "give profile or alias_of, not both: an alias uses its primary's profile",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "profile",
                "give profile (a primary domain) or alias_of (an alias)",
            ));
        }
    }
    if let Some(Status::Suspended) = status {
        store.set_status(&by, name, DomainStatus::Suspended).await?;
    }
    Ok(store.get_domain(name).await?)
}

/// One domain, with its ETag for If-Match.
#[utoipa::path(get, path = "/v1/domains/{name}", tag = "domains",
    params(("name" = String, Path, description = "The domain")),
    responses(
        (status = 200, description = "The domain", body = DomainView, headers(("ETag" = String))),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "Not hosted", body = ErrorBody),
        (status = 422, description = "Not a domain name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn show(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = domain("name", &name)?;
    let info = state.directory.store().get_domain(&name).await?;
    Ok(answer(StatusCode::OK, &info))
}

/// Create the domain, or bring it to the state given (idempotent). With If-Match, only if it
/// is unchanged since that GET (412 otherwise); without, unconditionally.
#[utoipa::path(put, path = "/v1/domains/{name}", tag = "domains", request_body = DomainPut,
    params(("name" = String, Path, description = "The domain"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the version this change is based on", pattern = r#"^(\*|[0-9a-f]+|"[0-9a-f]+")$"#)),
    responses(
        (status = 200, description = "Updated (or already so)", body = DomainView, headers(("ETag" = String))),
        (status = 201, description = "Created", body = DomainView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "Conflicts with the stored domain", body = ErrorBody),
        (status = 412, description = "Changed since read", body = ErrorBody),
        (status = 422, description = "A field cannot be used", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn put(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let name = domain("name", &name)?;
    let wanted: DomainPut = json_body(&body)?;
    let store = state.directory.store();
    let current = match store.get_domain(&name).await {
        Ok(info) => Some(info),
        Err(DirectoryError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(current) = current else {
        if expected.is_some() {
            return Err(DirectoryError::Changed {
                kind: ObjectKind::Domain,
                name: name.to_string(),
                current: "none".into(),
            }
            .into());
        }
        let info = add(
            &state,
            &caller,
            &name,
            wanted.profile,
            wanted.alias_of,
            wanted.status,
        )
        .await?;
        return Ok(answer(StatusCode::CREATED, &info));
    };
    let stored_primary = match &current.kind {
        DomainKind::Alias { primary } => Some(primary.to_string()),
        DomainKind::Primary { .. } => None,
    };
    if let Some(primary) = &wanted.alias_of
        && stored_primary.as_deref() != Some(primary.as_str())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            &format!(
                "{name} is stored as {}; a domain does not change kind or primary: delete it and create it again",
                stored_primary.map_or("a primary domain".to_owned(), |p| format!(
                    "an alias of {p}"
                ))
            ),
            Some("alias_of"),
        ));
    }
    update(
        &state,
        &caller,
        &name,
        wanted.profile,
        wanted.status,
        expected,
    )
    .await
}

/// Suspend, resume, or move a primary to another profile. If-Match as for PUT.
#[utoipa::path(patch, path = "/v1/domains/{name}", tag = "domains", request_body = DomainPatch,
    params(("name" = String, Path, description = "The domain"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the version this change is based on", pattern = r#"^(\*|[0-9a-f]+|"[0-9a-f]+")$"#)),
    responses(
        (status = 200, description = "Updated", body = DomainView, headers(("ETag" = String))),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "Not hosted", body = ErrorBody),
        (status = 409, description = "An alias has no profile of its own", body = ErrorBody),
        (status = 412, description = "Changed since read", body = ErrorBody),
        (status = 422, description = "A field cannot be used", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn patch(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let name = domain("name", &name)?;
    let change: DomainPatch = json_body(&body)?;
    update(
        &state,
        &caller,
        &name,
        change.profile,
        change.status,
        expected,
    )
    .await
}

async fn update(
    state: &AdminState,
    caller: &Caller,
    name: &Domain,
    profile: Option<String>,
    status: Option<Status>,
    expected: Option<String>,
) -> Result<Response, ApiError> {
    let change = DomainUpdate {
        profile,
        status: status.map(Into::into),
    };
    let info = state
        .directory
        .store()
        .update_domain(&caller.actor(), name, &change, expected.as_deref())
        .await
        .map_err(|e| match e {
            DirectoryError::NotFound {
                kind: ObjectKind::Profile,
                ..
            } => ApiError::from(e).unprocessable("profile"),
            e => ApiError::from(e),
        })?;
    Ok(answer(StatusCode::OK, &info))
}

/// Stop hosting the domain. If-Match as for PUT.
#[utoipa::path(delete, path = "/v1/domains/{name}", tag = "domains",
    params(("name" = String, Path, description = "The domain"), RemoveParams,
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the version this change is based on", pattern = r#"^(\*|[0-9a-f]+|"[0-9a-f]+")$"#)),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "Not hosted", body = ErrorBody),
        (status = 409, description = "Has aliases or user overrides", body = ErrorBody),
        (status = 412, description = "Changed since read", body = ErrorBody),
        (status = 422, description = "Not a domain name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn remove(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    params: Result<Query<RemoveParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(&e.body_text()))?;
    let expected = if_match(&headers)?;
    let name = domain("name", &name)?;
    let removal = if params.cascade.unwrap_or(false) {
        DomainRemoval::Cascade
    } else {
        DomainRemoval::OnlyIfUnused
    };
    state
        .directory
        .store()
        .remove_domain_if(&caller.actor(), &name, removal, expected.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
