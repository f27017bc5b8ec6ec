//! Profiles, user overrides and passwords, tokens, the audit log and the server's status.

use std::time::SystemTime;

use autodisco_directory::{
    AuditEntry, Backend, Redirect, TokenScope, Upsert, UserOverride, format_time, profile_version,
};
use autodisco_proto::{EmailAddress, ServiceProfile};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    AdminState, ApiError, Caller, ErrorBody, etag, if_match, json_body, page_limit, plain_text,
};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/v1/profiles", get(list_profiles))
        .route(
            "/v1/profiles/{name}",
            get(show_profile).put(put_profile).delete(remove_profile),
        )
        .route(
            "/v1/users/{address}",
            get(show_user).put(put_user).delete(remove_user),
        )
        .route(
            "/v1/users/{address}/password",
            put(set_password).delete(remove_password),
        )
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{name}", axum::routing::delete(revoke_token))
        .route("/v1/audit", get(audit))
        .route("/v1/status", get(status))
}

fn created_or_ok(upsert: Upsert) -> StatusCode {
    match upsert {
        Upsert::Created => StatusCode::CREATED,
        Upsert::Replaced => StatusCode::OK,
    }
}

/// A profile in the listing.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProfileItem {
    name: String,
    /// How many primary domains use it.
    domains: u64,
    /// Its settings, as `GET /v1/profiles/{name}` gives them.
    #[schema(value_type = Object)]
    settings: serde_json::Value,
}

/// Every profile.
#[utoipa::path(get, path = "/v1/profiles", tag = "profiles",
    responses((status = 200, description = "Every profile", body = Vec<ProfileItem>),
              (status = 401, description = "No valid token", body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_profiles(
    State(state): State<AdminState>,
) -> Result<Json<Vec<ProfileItem>>, ApiError> {
    let profiles = state.directory.store().list_profiles().await?;
    Ok(Json(
        profiles
            .into_iter()
            .map(|entry| ProfileItem {
                settings: serde_json::to_value(&entry.profile)
                    .expect("a ServiceProfile always serialises"),
                name: entry.name,
                domains: entry.domains,
            })
            .collect(),
    ))
}

/// One profile's settings (the keys of a `[profiles.NAME]` table in the config), with its
/// ETag.
#[utoipa::path(get, path = "/v1/profiles/{name}", tag = "profiles",
    params(("name" = String, Path, description = "The profile", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")),
    responses((status = 200, description = "The settings", body = Object, headers(("ETag" = String))),
              (status = 400, description = "A control character in the name", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 404, description = "No such profile", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_profile(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    plain_text("name", Some(&name))?;
    let profile = state.directory.store().get_profile(&name).await?;
    Ok(profile_answer(StatusCode::OK, &profile))
}

fn profile_answer(status: StatusCode, profile: &ServiceProfile) -> Response {
    let mut response = (status, Json(profile)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&profile_version(profile)));
    response
}

/// Create or replace a profile (idempotent). Domains using it answer with the new settings
/// within a second. If-Match: only if unchanged since that GET.
#[utoipa::path(put, path = "/v1/profiles/{name}", tag = "profiles", request_body = Object,
    params(("name" = String, Path, description = "The profile", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag this change is based on", pattern = r#"^(\*|[0-9a-f]+|"[0-9a-f]+")$"#)),
    responses((status = 200, description = "Replaced", body = Object, headers(("ETag" = String))),
              (status = 201, description = "Created", body = Object, headers(("ETag" = String))),
              (status = 400, description = "Not JSON", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 412, description = "Changed since read", body = ErrorBody),
              (status = 422, description = "Invalid settings or name", body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_profile(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    plain_text("name", Some(&name))?;
    let expected = if_match(&headers)?;
    let profile: ServiceProfile = json_body(&body)?;
    let upsert = state
        .directory
        .store()
        .put_profile_if(&caller.actor(), &name, &profile, expected.as_deref())
        .await?;
    Ok(profile_answer(created_or_ok(upsert), &profile))
}

/// Remove a profile no domain uses.
#[utoipa::path(delete, path = "/v1/profiles/{name}", tag = "profiles",
    params(("name" = String, Path, description = "The profile", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
           ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag this change is based on", pattern = r#"^(\*|[0-9a-f]+|"[0-9a-f]+")$"#)),
    responses((status = 204, description = "Removed"),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 400, description = "Malformed If-Match", body = ErrorBody),
              (status = 404, description = "No such profile", body = ErrorBody),
              (status = 409, description = "Still used by domains", body = ErrorBody),
              (status = 412, description = "Changed since read", body = ErrorBody)),
    security(("bearer" = [])))]
async fn remove_profile(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    plain_text("name", Some(&name))?;
    let expected = if_match(&headers)?;
    state
        .directory
        .store()
        .remove_profile_if(&caller.actor(), &name, expected.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A per-user override: what differs for one mailbox from its domain's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserView {
    /// The mailbox, in its primary domain (read only; the path names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_name: Option<String>,
    /// The mailbox moved: clients go to this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_addr: Option<String>,
    /// The mailbox is served elsewhere: clients go to this https URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_url: Option<String>,
}

fn user_view(user: &UserOverride) -> UserView {
    let (redirect_addr, redirect_url) = match &user.redirect {
        Some(Redirect::Address(target)) => (Some(target.to_string()), None),
        Some(Redirect::Url(url)) => (None, Some(url.clone())),
        None => (None, None),
    };
    UserView {
        address: Some(user.address.to_string()),
        display_name: user.display_name.clone(),
        login_name: user.login_name.clone(),
        redirect_addr,
        redirect_url,
    }
}

fn address(text: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(text)
        .map_err(|e| ApiError::invalid("address", &format!("{text:?} is not an address: {e}")))
}

/// The override of one mailbox (given in its primary or an alias domain).
#[utoipa::path(get, path = "/v1/users/{address}", tag = "users",
    params(("address" = String, Path, description = "The mailbox")),
    responses((status = 200, description = "The override", body = UserView),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 404, description = "No override, or the domain is not hosted", body = ErrorBody),
              (status = 422, description = "Not an address", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_user(
    State(state): State<AdminState>,
    Path(text): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.directory.store().get_user(&address(&text)?).await?;
    Ok(Json(user_view(&user)))
}

/// Set a mailbox's override, replacing any it had (idempotent).
#[utoipa::path(put, path = "/v1/users/{address}", tag = "users", request_body = UserView,
    params(("address" = String, Path, description = "The mailbox")),
    responses((status = 200, description = "Replaced", body = UserView),
              (status = 201, description = "Created", body = UserView),
              (status = 400, description = "Not JSON", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 404, description = "The domain is not hosted", body = ErrorBody),
              (status = 422, description = "A field cannot be used", body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_user(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mailbox = address(&text)?;
    let wanted: UserView = json_body(&body)?;
    let mut user = UserOverride::new(mailbox);
    user.display_name = wanted.display_name;
    user.login_name = wanted.login_name;
    user.redirect = match (wanted.redirect_addr, wanted.redirect_url) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "redirect_url",
                "give redirect_addr or redirect_url, not both",
            ));
        }
        (Some(target), None) => Some(Redirect::Address(
            EmailAddress::parse(&target)
                .map_err(|e| ApiError::invalid("redirect_addr", &e.to_string()))?,
        )),
        (None, Some(url)) => Some(Redirect::Url(url)),
        (None, None) => None,
    };
    let (stored, upsert) = state
        .directory
        .store()
        .put_user(&caller.actor(), &user)
        .await?;
    Ok((created_or_ok(upsert), Json(user_view(&stored))).into_response())
}

/// Remove a mailbox's override: it gets its domain's answer again.
#[utoipa::path(delete, path = "/v1/users/{address}", tag = "users",
    params(("address" = String, Path, description = "The mailbox")),
    responses((status = 204, description = "Removed"),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 404, description = "No override", body = ErrorBody),
              (status = 422, description = "Not an address", body = ErrorBody)),
    security(("bearer" = [])))]
async fn remove_user(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .store()
        .remove_user(&caller.actor(), &address(&text)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPassword {
    /// 1 to 1024 characters; only an argon2 hash is stored.
    password: String,
}

/// Set the password a mailbox signs in with when `auth = "basic"` checks the directory.
#[utoipa::path(put, path = "/v1/users/{address}/password", tag = "users", request_body = NewPassword,
    params(("address" = String, Path, description = "The mailbox")),
    responses((status = 204, description = "Set"),
              (status = 400, description = "Not JSON", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 404, description = "The domain is not hosted", body = ErrorBody),
              (status = 422, description = "Empty or too long", body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_password(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let mailbox = address(&text)?;
    let NewPassword { password } = json_body(&body)?;
    let length = password.chars().count();
    if length == 0 || length > 1024 {
        return Err(ApiError::invalid(
            "password",
            "the password must have 1 to 1024 characters",
        ));
    }
    // argon2 takes tens of milliseconds of CPU: off the async threads.
    let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(|_| ApiError::bad_request("the password could not be hashed"))?
        .map_err(|_| ApiError::invalid("password", "the password could not be hashed"))?;
    state
        .directory
        .store()
        .set_password_hash(&caller.actor(), &mailbox, &hash)
        .await?;
    if !state.passwords_checked {
        tracing::info!(address = %mailbox, "password set; this server's auth does not check directory passwords");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a mailbox's password.
#[utoipa::path(delete, path = "/v1/users/{address}/password", tag = "users",
    params(("address" = String, Path, description = "The mailbox")),
    responses((status = 204, description = "Removed"),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 404, description = "No password", body = ErrorBody),
              (status = 422, description = "Not an address", body = ErrorBody)),
    security(("bearer" = [])))]
async fn remove_password(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .store()
        .remove_password(&caller.actor(), &address(&text)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token (never its secret, except once when created).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TokenView {
    name: String,
    /// `read` or `write`.
    scope: String,
    /// RFC 3339, UTC.
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<String>,
    /// The secret: present only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    /// Letters, digits, '.', '_', '-'; not `cli` or `config`.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    name: String,
    /// `read` or `write` (read here as text, so a wrong one is a 422 naming the field).
    #[schema(value_type = ScopeName)]
    scope: String,
}

/// What a token may do.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub(super) enum ScopeName {
    Read,
    Write,
}

/// Every token, revoked ones included.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "Every token", body = Vec<TokenView>),
              (status = 401, description = "No valid token", body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_tokens(State(state): State<AdminState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.directory.store().list_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                name: t.name,
                scope: t.scope.to_string(),
                created: format_time(t.created),
                revoked: t.revoked.map(format_time),
                token: None,
            })
            .collect(),
    ))
}

/// Create a token; its secret is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, description = "Created, with its secret", body = TokenView),
              (status = 400, description = "Not JSON", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 409, description = "The name is taken", body = ErrorBody),
              (status = 422, description = "Bad name or scope", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_token(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewToken = json_body(&body)?;
    let scope: TokenScope = new.scope.parse().map_err(ApiError::from)?;
    let secret = state
        .directory
        .store()
        .create_token(&caller.actor(), &new.name, scope)
        .await
        .map_err(|e| ApiError::from(e).at("name"))?;
    let view = TokenView {
        name: new.name,
        scope: scope.to_string(),
        created: format_time(unix_now()),
        revoked: None,
        token: Some(secret),
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Revoke a token: refused from the next request on.
#[utoipa::path(delete, path = "/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")),
    responses((status = 204, description = "Revoked"),
              (status = 400, description = "A control character in the name", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 403, description = "Read-only token", body = ErrorBody),
              (status = 404, description = "No such token", body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_token(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    plain_text("name", Some(&name))?;
    state
        .directory
        .store()
        .revoke_token(&caller.actor(), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditParams {
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.[0-9]{1,18}$", nullable = false)]
    cursor: Option<String>,
}

/// A change in the log.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditItem {
    /// RFC 3339, UTC.
    time: String,
    /// `cli`, `config` or a token's name.
    actor: String,
    /// `domain.add`, `profile.put`, `user.remove`, ...
    action: String,
    object: String,
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
    /// The directory revision the change committed as.
    revision: u64,
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditPage {
    entries: Vec<AuditItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "One page", body = AuditPage),
              (status = 400, description = "Bad query", body = ErrorBody),
              (status = 401, description = "No valid token", body = ErrorBody)),
    security(("bearer" = [])))]
async fn audit(
    State(state): State<AdminState>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(&e.body_text()))?;
    let limit = page_limit(params.limit, 100, 1000)?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .split_once('.')
                .and_then(|(r, s)| Some((r.parse().ok()?, s.parse().ok()?)))
                .ok_or_else(|| ApiError::bad_request("cursor is not a next_cursor value"))?,
        ),
    };
    let entries = state.directory.store().audit_log(limit, before).await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| format!("{}.{}", e.revision, e.seq)))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(audit_item).collect(),
        next_cursor,
    }))
}

fn audit_item(entry: AuditEntry) -> AuditItem {
    AuditItem {
        time: format_time(entry.time),
        actor: entry.actor,
        action: entry.action,
        object: entry.object,
        before: entry.before,
        after: entry.after,
        revision: entry.revision,
    }
}

/// What the server serves.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StatusView {
    /// The directory's revision in the database.
    revision: u64,
    /// The revision of the snapshot being served (it follows within the poll interval).
    snapshot_revision: u64,
    /// Seconds since that snapshot was loaded.
    snapshot_age_seconds: u64,
    /// Why the directory cannot refresh right now, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<String>,
    /// `sqlite` or `postgres`.
    backend: String,
    profiles: usize,
    primary_domains: usize,
    alias_domains: usize,
    user_overrides: usize,
}

/// The server's directory: revisions, counts, snapshot age, backend.
#[utoipa::path(get, path = "/v1/status", tag = "status",
    responses((status = 200, description = "The status", body = StatusView),
              (status = 401, description = "No valid token", body = ErrorBody),
              (status = 503, description = "The database cannot be reached", body = ErrorBody)),
    security(("bearer" = [])))]
async fn status(State(state): State<AdminState>) -> Result<Json<StatusView>, ApiError> {
    let store = state.directory.store();
    let revision = store.revision().await?;
    let health = state.directory.health();
    let counts = state.directory.snapshot().counts();
    Ok(Json(StatusView {
        revision,
        snapshot_revision: health.revision,
        snapshot_age_seconds: SystemTime::now()
            .duration_since(health.loaded_at)
            .map_or(0, |d| d.as_secs()),
        fault: health.fault,
        backend: match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            _ => "other",
        }
        .to_owned(),
        profiles: counts.profiles,
        primary_domains: counts.primary_domains,
        alias_domains: counts.alias_domains,
        user_overrides: counts.users,
    }))
}
