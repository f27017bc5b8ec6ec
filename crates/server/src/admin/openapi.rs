//! The OpenAPI 3.1 description of the admin API, generated from the handlers' annotations, so
//! it cannot drift from the code; schemathesis checks the running API against it (`./test`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{ErrorBody, domains, resources};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "autodisco admin API",
        description = "Domains, profiles, user overrides, tokens and the audit log of an autodisco installation. Every request needs `Authorization: Bearer TOKEN` (`autodisco token create NAME --scope read|write`); GET needs a read or write token, changes a write token. Single resources carry an ETag; send it back in If-Match on PUT, PATCH and DELETE to be refused (412) when someone else changed the resource meanwhile. Without If-Match the change is applied unconditionally.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        domains::list, domains::create, domains::show, domains::put, domains::patch,
        domains::remove, domains::records, domains::health,
        domains::check,
        resources::list_profiles, resources::show_profile, resources::put_profile,
        resources::remove_profile,
        resources::show_user, resources::put_user, resources::remove_user,
        resources::set_password, resources::remove_password,
        resources::list_tokens, resources::create_token, resources::revoke_token,
        resources::audit, resources::status,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
)]
struct AdminApi;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`, without a token: the description is no secret.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(AdminApi::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_is_openapi_3_1_with_every_path() {
        let json = serde_json::to_value(AdminApi::openapi()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let paths = json["paths"].as_object().unwrap();
        for path in [
            "/v1/domains",
            "/v1/domains/{name}",
            "/v1/domains/{name}/records",
            "/v1/domains/{name}/health",
            "/v1/domains/{name}/check",
            "/v1/profiles",
            "/v1/profiles/{name}",
            "/v1/users/{address}",
            "/v1/users/{address}/password",
            "/v1/tokens",
            "/v1/tokens/{name}",
            "/v1/audit",
            "/v1/status",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
