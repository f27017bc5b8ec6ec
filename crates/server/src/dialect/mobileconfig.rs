//! `GET /mobileconfig?emailaddress=ADDRESS`: an Apple configuration profile for one mailbox,
//! signed with the service's certificate; `GET /mobileconfig` without the parameter: a small
//! page with a form, for a person on a phone.
//!
//! The profile is `application/x-apple-aspen-config`, which Safari on iOS and macOS hands to the
//! profile installer. It holds no password (see [`autodisco_proto::mobileconfig`]).

use autodisco_proto::EmailAddress;
use autodisco_proto::mobileconfig::{self, MobileConfig, ProfileOptions, reverse_dns};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::auth::privacy::Caller;
use crate::reply::{empty, private_document, with_log};
use crate::request_log::RequestLog;
use crate::request_parts::query_parameter;
use crate::state::AppState;

const DIALECT: &str = "mobileconfig";

/// The form page. Static: nothing from the request is echoed into it.
const FORM_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set up mail on iPhone, iPad or Mac</title>
<style>
body { font-family: -apple-system, system-ui, sans-serif; margin: 2em auto; max-width: 30em; padding: 0 1em; line-height: 1.4; }
input, button { font-size: 1.1em; width: 100%; box-sizing: border-box; margin: 0.4em 0; padding: 0.5em; }
</style>
</head>
<body>
<main>
<h1>Set up mail on iPhone, iPad or Mac</h1>
<form method="get" action="/mobileconfig">
<label for="emailaddress">Your email address</label>
<input type="email" id="emailaddress" name="emailaddress" required autocomplete="email" autocapitalize="off" spellcheck="false">
<button type="submit">Download the profile</button>
</form>
<p>Open this page in Safari. After the download, install the profile: on iPhone and iPad in
Settings, "Profile Downloaded"; on a Mac in System Settings, Privacy &amp; Security, Profiles.
You will be asked for your mail password there; the profile does not contain it.</p>
</main>
</body>
</html>
"#;

/// Answers one GET or HEAD.
pub(crate) fn handle(state: &AppState, request: &Request) -> Response {
    // A query that cannot be read at all gets the form, as one without the parameter.
    let parameter = query_parameter(request, "emailaddress").ok().flatten();
    let Some(parameter) = parameter else {
        return html(StatusCode::OK, FORM_PAGE, "form", None);
    };
    let Ok(address) = EmailAddress::parse(&parameter) else {
        return html(StatusCode::BAD_REQUEST, FORM_PAGE, "invalid-address", None);
    };
    let domain = Some(address.domain().to_string());
    let snapshot = state.directory.snapshot();
    // With authentication on, the domain's profile: no user's override shows to anyone.
    let caller = Caller::anonymous(&state.auth);
    let Some(settings) = caller.settings_following_redirect(&snapshot, &address) else {
        return html(
            StatusCode::NOT_FOUND,
            "<!DOCTYPE html><title>Not found</title><p>This address is not served here.</p>\n",
            "not-hosted",
            domain,
        );
    };
    let hoster = state.site.load().hoster.clone();
    let options = ProfileOptions {
        identifier_prefix: reverse_dns(hoster.as_str()),
        organization: hoster.to_string(),
    };
    let profile = match MobileConfig::for_account(&settings, &options) {
        Ok(profile) => profile,
        Err(error) => {
            tracing::debug!(%error, "no Apple profile for this service profile");
            return empty(StatusCode::NOT_FOUND, DIALECT, "nothing-to-offer", domain);
        }
    };
    let plist = profile.to_plist_xml();
    let (body, outcome) = match state.signer.sign(&plist) {
        Ok(Some(signed)) => (signed, "signed"),
        Ok(None) => (plist, "unsigned"),
        Err(error) => {
            tracing::error!(%error, "signing an Apple profile failed");
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            return empty(status, DIALECT, "signing-failed", domain);
        }
    };
    let file_name = format!(
        "attachment; filename=\"{}.mobileconfig\"",
        settings.address.domain()
    );
    let log = RequestLog::new(DIALECT, outcome, domain);
    let mut response = private_document(StatusCode::OK, body, mobileconfig::CONTENT_TYPE, log);
    // The file name comes from a canonical domain name: letters, digits, '-' and '.'.
    if let Ok(disposition) = HeaderValue::from_str(&file_name) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

fn html(
    status: StatusCode,
    page: &'static str,
    outcome: &'static str,
    domain: Option<String>,
) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    with_log(response, DIALECT, outcome, domain)
}
