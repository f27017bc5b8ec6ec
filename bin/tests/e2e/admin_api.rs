//! The admin API over HTTP against the real server: tokens and scopes, every resource, status
//! codes with a JSON body naming the field, ETag and If-Match between two concurrent writers,
//! and a domain created through the API answered by the HTTPS service within 2 seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use autodisco_directory::{Actor, TokenScope};
use autodisco_test_support::{Backend, TestServer, outlook_request};
use serde_json::{Value, json};

use crate::{element, post, seeded_server_with};

on_both_backends!(
    api_over_http,
    two_writers_on_one_domain,
    records_and_health_over_http
);

/// The admin listener every API test adds to the seeded server's config.
pub(crate) const ADMIN: &str = "[admin]\nlisten = [\"127.0.0.1:0\"]\n";

/// A plain-HTTP client of the admin API with one token.
pub(crate) struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// An answer: status, ETag, JSON body (`Null` when empty).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) etag: Option<String>,
    pub(crate) body: Value,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Api {
    pub(crate) fn new(address: SocketAddr, token: &str) -> Self {
        Self {
            base: format!("http://{address}"),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("admin API request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let etag = headers.get("etag").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Answer {
            status,
            etag,
            body,
            headers,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[]).await
    }
}

/// The seeded server with the admin API on, and a write and a read token.
async fn server_with_api(backend: Backend) -> (TestServer, Api, Api) {
    let server = seeded_server_with(backend, ADMIN).await;
    let store = &server.store;
    let write = store
        .create_token(&Actor::Cli, "panel", TokenScope::Write)
        .await
        .unwrap();
    let read = store
        .create_token(&Actor::Cli, "monitor", TokenScope::Read)
        .await
        .unwrap();
    let address = server.server.admin_addrs[0];
    (server, Api::new(address, &write), Api::new(address, &read))
}

fn assert_error(answer: &Answer, status: u16, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.body["message"].as_str().is_some(), "{}", answer.body);
    assert_eq!(answer.body["field"].as_str(), field, "{}", answer.body);
}

async fn api_over_http(backend: Backend) {
    let (server, api, reader) = server_with_api(backend).await;

    // Tokens: none, unknown, read-only for a change.
    let anonymous = Api::new(server.server.admin_addrs[0], "");
    let answer = anonymous.get("/v1/domains").await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.headers["www-authenticate"],
        "Bearer realm=\"autodisco admin\""
    );
    let stranger = Api::new(server.server.admin_addrs[0], "adt_0000");
    assert_eq!(stranger.get("/v1/status").await.status, 401);
    let answer = reader
        .send(
            "POST",
            "/v1/domains",
            Some(json!({"name": "x.example", "profile": "default"})),
            &[],
        )
        .await;
    assert_error(&answer, 403, None);
    assert_eq!(reader.get("/v1/domains").await.status, 200);

    // The OpenAPI description needs no token.
    let answer = anonymous.get("/openapi.json").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["openapi"], "3.1.0");

    // Create, and the running service answers the new domain within 2 seconds.
    let (_, _, before) = post(&server, outlook_request("someone@new.example"), &[]).await;
    assert_eq!(element(&before, "ErrorCode"), Some("500"));
    let created = api
        .send(
            "POST",
            "/v1/domains",
            Some(json!({"name": "New.Example.", "profile": "business"})),
            &[],
        )
        .await;
    let at = Instant::now();
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["name"], "new.example");
    assert_eq!(created.headers["location"], "/v1/domains/new.example");
    assert!(created.etag.is_some());
    loop {
        let (_, _, body) = post(&server, outlook_request("someone@new.example"), &[]).await;
        if element(&body, "Action") == Some("settings") {
            break;
        }
        assert!(
            at.elapsed() < Duration::from_secs(2),
            "not answered within 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Refusals name their field.
    let create = |body: Value| api.send("POST", "/v1/domains", Some(body), &[]);
    assert_error(
        &create(json!({"name": "new.example", "profile": "default"})).await,
        409,
        Some("name"),
    );
    assert_error(
        &create(json!({"name": "y.example", "profile": "gold"})).await,
        422,
        Some("profile"),
    );
    assert_error(
        &create(json!({"name": "y..example", "profile": "default"})).await,
        422,
        Some("name"),
    );
    assert_error(
        &create(json!({"name": "y.example"})).await,
        422,
        Some("profile"),
    );
    assert_error(
        &create(json!({"name": "y.example", "alias_of": "alias.example"})).await,
        422,
        Some("alias_of"),
    );
    assert_error(
        &create(json!({"name": "y.example", "plan": "x"})).await,
        422,
        Some("plan"),
    );
    let answer = api
        .http
        .post(format!("{}/v1/domains", api.base))
        .bearer_auth(&api.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let alias = create(json!({"name": "alias2.example", "alias_of": "customer.example"})).await;
    assert_eq!(alias.status, 201);
    assert_eq!(alias.body["alias_of"], "customer.example");

    // Listing: keyset pages and filters.
    let page = api.get("/v1/domains?limit=2").await;
    assert_eq!(page.status, 200);
    let names = |page: &Answer| -> Vec<String> {
        page.body["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page), vec!["alias.example", "alias2.example"]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = api
        .get(&format!("/v1/domains?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(names(&next), vec!["business.example", "customer.example"]);
    let business = api.get("/v1/domains?profile=business").await;
    assert_eq!(names(&business), vec!["business.example", "new.example"]);
    assert!(business.body["next_cursor"].is_null());
    let suspended = api.get("/v1/domains?status=suspended").await;
    assert_eq!(names(&suspended), vec!["suspended.example"]);
    assert_eq!(
        names(&api.get("/v1/domains?q=cus").await),
        vec!["customer.example"]
    );
    assert_eq!(api.get("/v1/domains?status=paused").await.status, 400);

    // One domain: ETag, If-Match, idempotent PUT, PATCH, DELETE.
    let shown = api.get("/v1/domains/customer.example").await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.body["aliases"],
        json!(["alias.example", "alias2.example"])
    );
    assert_eq!(shown.body["users"], 3);
    let tag = shown.etag.clone().unwrap();
    let wanted = json!({"profile": "default", "status": "active"});
    let unchanged = api
        .send(
            "PUT",
            "/v1/domains/customer.example",
            Some(wanted.clone()),
            &[("if-match", &tag)],
        )
        .await;
    assert_eq!(
        (unchanged.status, unchanged.etag.as_deref()),
        (200, Some(tag.as_str()))
    );
    let audit_before = api.get("/v1/audit?limit=1").await.body;
    let again = api
        .send("PUT", "/v1/domains/customer.example", Some(wanted), &[])
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        api.get("/v1/audit?limit=1").await.body,
        audit_before,
        "an idempotent PUT writes nothing"
    );
    let moved = api
        .send(
            "PATCH",
            "/v1/domains/new.example",
            Some(json!({"status": "suspended"})),
            &[],
        )
        .await;
    assert_eq!(
        (moved.status, moved.body["status"].as_str()),
        (200, Some("suspended"))
    );
    let stale = api
        .send(
            "PATCH",
            "/v1/domains/new.example",
            Some(json!({"status": "active"})),
            &[("if-match", created.etag.as_deref().unwrap())],
        )
        .await;
    assert_error(&stale, 412, None);
    assert_error(
        &api.send(
            "PATCH",
            "/v1/domains/alias.example",
            Some(json!({"profile": "business"})),
            &[],
        )
        .await,
        409,
        Some("profile"),
    );
    assert_error(
        &api.send(
            "PUT",
            "/v1/domains/alias.example",
            Some(json!({"alias_of": "business.example"})),
            &[],
        )
        .await,
        409,
        Some("alias_of"),
    );
    let put_new = api
        .send(
            "PUT",
            "/v1/domains/put.example",
            Some(json!({"profile": "default", "status": "suspended"})),
            &[],
        )
        .await;
    assert_eq!(
        (put_new.status, put_new.body["status"].as_str()),
        (201, Some("suspended"))
    );
    assert_error(
        &api.send("DELETE", "/v1/domains/customer.example", None, &[])
            .await,
        409,
        None,
    );
    let gone = api
        .send(
            "DELETE",
            "/v1/domains/customer.example?cascade=true",
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, 204);
    assert_error(&api.get("/v1/domains/customer.example").await, 404, None);
    assert_error(&api.get("/v1/domains/alias2.example").await, 404, None);

    // Profiles.
    let profile = api.get("/v1/profiles/business").await;
    assert_eq!(profile.status, 200);
    let mut settings = profile.body.clone();
    settings["display_name"] = json!("Business Mail");
    let replaced = api
        .send(
            "PUT",
            "/v1/profiles/business",
            Some(settings.clone()),
            &[("if-match", profile.etag.as_deref().unwrap())],
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let stale = api
        .send(
            "PUT",
            "/v1/profiles/business",
            Some(settings.clone()),
            &[("if-match", profile.etag.as_deref().unwrap())],
        )
        .await;
    assert_error(&stale, 412, None);
    assert_eq!(
        api.send("PUT", "/v1/profiles/gold", Some(settings), &[])
            .await
            .status,
        201
    );
    assert_error(
        &api.send("PUT", "/v1/profiles/empty", Some(json!({})), &[])
            .await,
        422,
        Some("profile"),
    );
    assert_error(
        &api.send("DELETE", "/v1/profiles/business", None, &[]).await,
        409,
        None,
    );
    assert_eq!(
        api.send("DELETE", "/v1/profiles/gold", None, &[])
            .await
            .status,
        204
    );
    let listed = api.get("/v1/profiles").await.body;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "business" && p["domains"] == 2)
    );

    // User overrides and passwords.
    let user = api
        .send(
            "PUT",
            "/v1/users/jane@business.example",
            Some(json!({"display_name": "Jane"})),
            &[],
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.body);
    assert_eq!(
        api.get("/v1/users/jane@business.example").await.body["display_name"],
        "Jane"
    );
    assert_error(
        &api.send(
            "PUT",
            "/v1/users/jane@business.example",
            Some(json!({})),
            &[],
        )
        .await,
        422,
        None,
    );
    assert_error(&api.get("/v1/users/jane@nowhere.example").await, 404, None);
    let password = api
        .send(
            "PUT",
            "/v1/users/jane@business.example/password",
            Some(json!({"password": "s3cret pass"})),
            &[],
        )
        .await;
    assert_eq!(password.status, 204);
    let hash = server
        .store
        .password_hash(&autodisco_proto::EmailAddress::parse("jane@business.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert_eq!(
        api.send("DELETE", "/v1/users/jane@business.example", None, &[])
            .await
            .status,
        204
    );

    // Tokens through the API.
    let made = api
        .send(
            "POST",
            "/v1/tokens",
            Some(json!({"name": "script", "scope": "read"})),
            &[],
        )
        .await;
    assert_eq!(made.status, 201);
    let script = Api::new(
        server.server.admin_addrs[0],
        made.body["token"].as_str().unwrap(),
    );
    assert_eq!(script.get("/v1/status").await.status, 200);
    let tokens = api.get("/v1/tokens").await.body;
    assert!(
        !tokens
            .to_string()
            .contains(made.body["token"].as_str().unwrap())
    );
    assert_eq!(
        api.send("DELETE", "/v1/tokens/script", None, &[])
            .await
            .status,
        204
    );
    assert_eq!(script.get("/v1/status").await.status, 401);
    assert_error(
        &api.send(
            "POST",
            "/v1/tokens",
            Some(json!({"name": "cli", "scope": "read"})),
            &[],
        )
        .await,
        422,
        Some("name"),
    );

    // The audit log names the token; the status counts what is served.
    let audit = api.get("/v1/audit?limit=500").await.body;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"] == "panel"
        && e["action"] == "domain.add"
        && e["object"] == "new.example"));
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == "panel" && e["action"] == "token.revoke")
    );
    server.refresh().await;
    let status = api.get("/v1/status").await.body;
    assert_eq!(
        status["backend"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    assert_eq!(status["primary_domains"], 4, "{status}");
    assert!(status["revision"].as_u64().unwrap() >= status["snapshot_revision"].as_u64().unwrap());
    assert_error(&api.get("/v1/nothing").await, 404, None);
    server.stop().await;
}

async fn two_writers_on_one_domain(backend: Backend) {
    let (server, api, _) = server_with_api(backend).await;
    let other = Api::new(
        server.server.admin_addrs[0],
        &server
            .store
            .create_token(&Actor::Cli, "panel2", TokenScope::Write)
            .await
            .unwrap(),
    );
    for round in 0..5 {
        // Each writer changes something real relative to what both read, so neither change is
        // a no-op that could be serialised after the other without conflict.
        let read = api.get("/v1/domains/business.example").await;
        let tag = read.etag.unwrap();
        let condition = [("if-match", tag.as_str())];
        let status = if read.body["status"] == "active" {
            "suspended"
        } else {
            "active"
        };
        let profile = if read.body["profile"] == "business" {
            "default"
        } else {
            "business"
        };
        let (first, second) = tokio::join!(
            api.send(
                "PATCH",
                "/v1/domains/business.example",
                Some(json!({"status": status})),
                &condition
            ),
            other.send(
                "PUT",
                "/v1/domains/business.example",
                Some(json!({"profile": profile})),
                &condition
            ),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 412],
            "round {round}: {} / {}",
            first.body,
            second.body
        );
        let winner = if first.status == 200 { &first } else { &second };
        let now = api.get("/v1/domains/business.example").await;
        assert_eq!(now.body, winner.body);
        assert_eq!(now.etag, winner.etag);
    }
    // Two panels creating the same domain: one 201, one 409.
    let body = json!({"name": "race.example", "profile": "default"});
    let (a, b) = tokio::join!(
        api.send("POST", "/v1/domains", Some(body.clone()), &[]),
        other.send("POST", "/v1/domains", Some(body), &[]),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    server.stop().await;
}

/// `/records` is exactly what `autodisco dns records --format json` prints (one computation);
/// `/health` is 404 until a check is stored, then the stored verdict and findings.
async fn records_and_health_over_http(backend: Backend) {
    let (server, _api, reader) = server_with_api(backend).await;
    let records = reader.get("/v1/domains/customer.example/records").await;
    assert_eq!(records.status, 200, "{}", records.body);
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(&server.config_path)
        .args(["dns", "records", "customer.example", "--format", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let printed: Value = serde_json::from_slice(&cli.stdout).unwrap();
    let printed = printed.as_array().map_or(&printed, |all| &all[0]);
    assert_eq!(&records.body, printed);
    let autodiscover = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "autodiscover.customer.example")
        .expect("the autodiscover record");
    assert_eq!(autodiscover["type"], "CNAME", "{autodiscover}");
    assert_error(
        &reader.get("/v1/domains/nowhere.example/records").await,
        404,
        None,
    );

    let never = reader.get("/v1/domains/customer.example/health").await;
    assert_error(&never, 404, None);
    let domain = autodisco_proto::Domain::parse("customer.example").unwrap();
    let findings = r#"{"findings":["autodiscover.customer.example is missing"]}"#;
    server
        .store
        .put_health(&[autodisco_directory::DomainHealth {
            domain,
            checked_at: 1_700_000_000,
            status: autodisco_directory::HealthStatus::Unhealthy,
            findings: findings.to_owned(),
        }])
        .await
        .unwrap();
    let health = reader.get("/v1/domains/customer.example/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["status"], "unhealthy");
    assert_eq!(health.body["checked_at"], 1_700_000_000);
    assert_eq!(
        health.body["findings"]["findings"][0],
        "autodiscover.customer.example is missing"
    );
}
