//! The settings SOAP Autodiscover knows, and how autodisco fills each from the service profile.
//!
//! [MS-OXWSADISC] 2.2.4.1 lists the user setting names. A requested name outside that list gets
//! a `UserSettingError` with `InvalidSetting`; a listed name the profile has no value for gets
//! `SettingIsNotAvailable`. Neither is a fault, and only requested settings are returned.
//!
//! | setting | from the profile |
//! |---|---|
//! | `UserDisplayName` | the user override's display name |
//! | `UserDN`, `UserDeploymentId`, `AutoDiscoverSMTPAddress` | as in POX (LegacyDN, DeploymentId, primary address) |
//! | `ExternalEwsUrl`, `InternalEwsUrl` | `ews.url` |
//! | `EwsSupportedSchemas` | Exchange2007 up to Exchange2016 when the profile has EWS |
//! | `CasVersion`, `ExternalEwsVersion` | the version in `ServerVersionInfo` |
//! | `ExternalOABUrl`, `InternalOABUrl` | `ews.oab_url` |
//! | `ExternalUMUrl`, `InternalUMUrl` | `ews.um_url` |
//! | `ExternalEcpUrl`, `InternalEcpUrl` | `ews.ecp_url` |
//! | `ExternalWebClientUrls`, `InternalWebClientUrls` | `ews.owa_url` (forms-based sign-in) |
//! | `ExternalMailboxServer`, `...RequiresSSL`, `...AuthenticationMethods` | `ews.rpc_http_server`, `ews.auth_package` |
//! | `InternalMailboxServer` | `ews.mailbox_server` |
//! | `{External,Internal}{Imap4,Pop3,Smtp}Connections` | `imap`, `pop3`, `smtp` |
//! | `MapiHttpEnabled` | whether `mapi_http` is set |
//! | `ExternalActiveSyncUrl`, `InternalActiveSyncUrl` | `activesync_url` (autodisco's names: the schema has none for ActiveSync) |

use crate::answer::{AccountSettings, Answer};
use crate::pox::ProtocolSettings;
use crate::profile::{MailServer, ServiceProfile};

pub use super::response::NEWEST_EWS_SCHEMA;
use super::response::{
    DomainResponse, DomainSetting, ProtocolConnection, ServerVersionInfo, SettingError,
    SettingValue, SoapErrorCode, UserResponse, UserSetting, WebClientUrl,
};

/// `EwsSupportedSchemas`: every schema up to [`NEWEST_EWS_SCHEMA`], oldest first.
pub const EWS_SUPPORTED_SCHEMAS: &str = "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016";

/// Every user setting name autodisco recognises: the schema's list plus its two ActiveSync
/// names. Anything else is `InvalidSetting`.
pub const USER_SETTINGS: &[&str] = &[
    "UserDisplayName",
    "UserDN",
    "UserDeploymentId",
    "InternalMailboxServer",
    "InternalRpcClientServer",
    "InternalMailboxServerDN",
    "InternalEcpUrl",
    "InternalEcpVoicemailUrl",
    "InternalEcpEmailSubscriptionsUrl",
    "InternalEcpTextMessagingUrl",
    "InternalEcpDeliveryReportUrl",
    "InternalEcpRetentionPolicyTagsUrl",
    "InternalEcpPublishingUrl",
    "InternalEcpPhotoUrl",
    "InternalEcpConnectUrl",
    "InternalEcpTeamMailboxUrl",
    "InternalEcpTeamMailboxCreatingUrl",
    "InternalEcpTeamMailboxEditingUrl",
    "InternalEcpTeamMailboxHidingUrl",
    "InternalEcpExtensionInstallationUrl",
    "InternalEwsUrl",
    "InternalEmwsUrl",
    "InternalOABUrl",
    "InternalPhotosUrl",
    "InternalUMUrl",
    "InternalWebClientUrls",
    "MailboxDN",
    "PublicFolderServer",
    "ActiveDirectoryServer",
    "ExternalMailboxServer",
    "ExternalMailboxServerRequiresSSL",
    "ExternalMailboxServerAuthenticationMethods",
    "EcpVoicemailUrlFragment",
    "EcpEmailSubscriptionsUrlFragment",
    "EcpTextMessagingUrlFragment",
    "EcpDeliveryReportUrlFragment",
    "EcpRetentionPolicyTagsUrlFragment",
    "EcpPublishingUrlFragment",
    "EcpPhotoUrlFragment",
    "EcpConnectUrlFragment",
    "EcpTeamMailboxUrlFragment",
    "EcpTeamMailboxCreatingUrlFragment",
    "EcpTeamMailboxEditingUrlFragment",
    "EcpExtensionInstallationUrlFragment",
    "ExternalEcpUrl",
    "ExternalEcpVoicemailUrl",
    "ExternalEcpEmailSubscriptionsUrl",
    "ExternalEcpTextMessagingUrl",
    "ExternalEcpDeliveryReportUrl",
    "ExternalEcpRetentionPolicyTagsUrl",
    "ExternalEcpPublishingUrl",
    "ExternalEcpPhotoUrl",
    "ExternalEcpConnectUrl",
    "ExternalEcpTeamMailboxUrl",
    "ExternalEcpTeamMailboxCreatingUrl",
    "ExternalEcpTeamMailboxEditingUrl",
    "ExternalEcpTeamMailboxHidingUrl",
    "ExternalEcpExtensionInstallationUrl",
    "ExternalEwsUrl",
    "ExternalEmwsUrl",
    "ExternalOABUrl",
    "ExternalPhotosUrl",
    "ExternalUMUrl",
    "ExternalWebClientUrls",
    "CrossOrganizationSharingEnabled",
    "AlternateMailboxes",
    "CasVersion",
    "EwsSupportedSchemas",
    "InternalPop3Connections",
    "ExternalPop3Connections",
    "InternalImap4Connections",
    "ExternalImap4Connections",
    "InternalSmtpConnections",
    "ExternalSmtpConnections",
    "InternalServerExclusiveConnect",
    "ExternalEwsVersion",
    "MobileMailboxPolicy",
    "DocumentSharingLocations",
    "UserMSOnline",
    "InternalMailboxServerAuthenticationMethods",
    "MailboxVersion",
    "SPMySiteHostURL",
    "SiteMailboxCreationURL",
    "InternalRpcHttpServer",
    "InternalRpcHttpConnectivityRequiresSsl",
    "InternalRpcHttpAuthenticationMethod",
    "ExternalServerExclusiveConnect",
    "ExchangeRpcUrl",
    "ShowGalAsDefaultView",
    "AutoDiscoverSMTPAddress",
    "InteropExternalEwsUrl",
    "InteropExternalEwsVersion",
    "PublicFolderInformation",
    "RedirectUrl",
    "EwsPartnerUrl",
    "MapiHttpUrls",
    "GroupingInformation",
    "MapiHttpEnabled",
    "MapiHttpEnabledForUser",
    "MobileMailboxPolicyInterop",
    "ExternalActiveSyncUrl",
    "InternalActiveSyncUrl",
];

/// The domain setting names ([MS-OXWSADISC] 2.2.4.2 DomainSettingName).
pub const DOMAIN_SETTINGS: &[&str] = &["ExternalEwsUrl", "ExternalEwsVersion"];

/// The canonical spelling of a known setting name; names match in any case.
fn canonical(known: &'static [&'static str], name: &str) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

/// The `AuthenticationMethods` autodisco gives the web mail URL (as POX's `OWAUrl`).
const OWA_AUTHENTICATION: &str = "Fba";

/// The `UserResponse` for the directory's answer about one mailbox, with the `requested`
/// settings.
pub fn user_response(answer: &Answer, requested: &[String]) -> UserResponse {
    match answer {
        Answer::Settings(account) => {
            let mut response = UserResponse::error(SoapErrorCode::NoError);
            for name in requested {
                match canonical(USER_SETTINGS, name) {
                    None => response
                        .setting_errors
                        .push(SettingError::new(name, SoapErrorCode::InvalidSetting)),
                    Some(name) => match user_setting(name, account) {
                        Some(value) => {
                            // A name asked for twice is answered once.
                            if response.settings.iter().all(|s| s.name != name) {
                                response.settings.push(UserSetting {
                                    name: name.to_owned(),
                                    value,
                                });
                            }
                        }
                        None => response.setting_errors.push(SettingError::new(
                            name,
                            SoapErrorCode::SettingIsNotAvailable,
                        )),
                    },
                }
            }
            response
        }
        Answer::RedirectAddr(address) => {
            let mut response = UserResponse::error(SoapErrorCode::RedirectAddress);
            response.redirect_target = Some(address.to_string());
            response
        }
        Answer::RedirectUrl(url) => {
            let mut response = UserResponse::error(SoapErrorCode::RedirectUrl);
            response.redirect_target = Some(soap_url(url));
            response
        }
        Answer::NotHosted => UserResponse::error(SoapErrorCode::InvalidUser),
    }
}

/// The answer for a mailbox that is not a valid address: the same as for an unhosted one.
pub fn invalid_user() -> UserResponse {
    UserResponse::error(SoapErrorCode::InvalidUser)
}

/// A redirect URL stored for POX (`.../autodiscover/autodiscover.xml`) names the other
/// service's Autodiscover endpoint; a SOAP client needs that service's `.svc` endpoint.
fn soap_url(url: &str) -> String {
    let cut = url.len().saturating_sub(crate::pox::PATH.len());
    match url.get(cut..) {
        Some(tail) if tail.eq_ignore_ascii_case(crate::pox::PATH) => {
            format!("{}{}", &url[..cut], crate::soap::PATH)
        }
        _ => url.to_owned(),
    }
}

fn connections(servers: &[MailServer]) -> Option<SettingValue> {
    if servers.is_empty() {
        return None;
    }
    Some(SettingValue::ProtocolConnections(
        servers
            .iter()
            .map(|server| ProtocolConnection {
                hostname: server.host.clone(),
                port: server.port,
                encryption_method: ProtocolSettings::security_elements(server.security)
                    .1
                    .as_str()
                    .to_owned(),
            })
            .collect(),
    ))
}

/// The value of the known setting `name` for `account`; `None` when the profile lacks it.
fn user_setting(name: &str, account: &AccountSettings) -> Option<SettingValue> {
    // Every field is named: a new profile field does not compile here until this dialect
    // decides whether it has a place for it.
    let ServiceProfile {
        imap,
        pop3,
        smtp,
        ews,
        mapi_http,
        activesync_url,
        // Per-user settings have no place for the provider's name or a help page.
        display_name: _,
        documentation_url: _,
    } = &*account.profile;
    let ews = ews.as_ref();
    let url = |template: Option<&String>| template.map(|t| SettingValue::String(account.url(t)));
    let text = |value: String| Some(SettingValue::String(value));
    match name {
        "UserDisplayName" => account.display_name.clone().and_then(text),
        "UserDN" => text(account.legacy_dn()),
        "UserDeploymentId" => text(account.deployment_id.to_string()),
        "AutoDiscoverSMTPAddress" => text(account.address.to_string()),
        "CasVersion" | "ExternalEwsVersion" => text(ServerVersionInfo::autodisco().build()),
        "EwsSupportedSchemas" => ews.and_then(|_| text(EWS_SUPPORTED_SCHEMAS.to_owned())),
        "ExternalEwsUrl" | "InternalEwsUrl" => url(ews.map(|e| &e.url)),
        "ExternalOABUrl" | "InternalOABUrl" => url(ews.and_then(|e| e.oab_url.as_ref())),
        "ExternalUMUrl" | "InternalUMUrl" => url(ews.and_then(|e| e.um_url.as_ref())),
        "ExternalEcpUrl" | "InternalEcpUrl" => url(ews.and_then(|e| e.ecp_url.as_ref())),
        "ExternalWebClientUrls" | "InternalWebClientUrls" => {
            let owa = ews.and_then(|e| e.owa_url.as_ref())?;
            Some(SettingValue::WebClientUrls(vec![WebClientUrl {
                authentication_methods: OWA_AUTHENTICATION.to_owned(),
                url: account.url(owa),
            }]))
        }
        "ExternalMailboxServer" => ews.and_then(|e| e.rpc_http_server.clone()).and_then(text),
        "ExternalMailboxServerRequiresSSL" => ews
            .and_then(|e| e.rpc_http_server.as_ref())
            .and_then(|_| text("True".to_owned())),
        "ExternalMailboxServerAuthenticationMethods" => ews
            .filter(|e| e.rpc_http_server.is_some())
            .and_then(|e| e.auth_package.clone())
            .and_then(text),
        "InternalMailboxServer" => ews.and_then(|e| e.mailbox_server.clone()).and_then(text),
        "ExternalImap4Connections" | "InternalImap4Connections" => connections(imap),
        "ExternalPop3Connections" | "InternalPop3Connections" => connections(pop3),
        "ExternalSmtpConnections" | "InternalSmtpConnections" => connections(smtp),
        "MapiHttpEnabled" => text(if mapi_http.is_some() { "True" } else { "False" }.to_owned()),
        "ExternalActiveSyncUrl" | "InternalActiveSyncUrl" => url(activesync_url.as_ref()),
        _ => None,
    }
}

/// The `DomainResponse` for a domain, given the settings of an account in it (`None` when the
/// domain is not hosted).
pub fn domain_response(
    hosted: Option<(&crate::address::Domain, &crate::profile::ServiceProfile)>,
    requested: &[String],
) -> DomainResponse {
    let Some((domain, profile)) = hosted else {
        return DomainResponse::error(SoapErrorCode::InvalidDomain);
    };
    let mut response = DomainResponse::error(SoapErrorCode::NoError);
    for name in requested {
        let Some(name) = canonical(DOMAIN_SETTINGS, name) else {
            response
                .setting_errors
                .push(SettingError::new(name, SoapErrorCode::InvalidSetting));
            continue;
        };
        let value = match name {
            // A domain has no mailbox: only %EMAILDOMAIN% can be filled in, and a URL that needs
            // a mailbox is not available at domain level.
            "ExternalEwsUrl" => profile
                .ews
                .as_ref()
                .map(|e| e.url.replace("%EMAILDOMAIN%", domain.as_str()))
                .filter(|url| !url.contains("%EMAIL")),
            _ => Some(ServerVersionInfo::autodisco().build()),
        };
        match value {
            Some(value) if response.settings.iter().all(|s| s.name != name) => {
                response.settings.push(DomainSetting {
                    name: name.to_owned(),
                    value,
                });
            }
            Some(_) => {}
            None => response.setting_errors.push(SettingError::new(
                name,
                SoapErrorCode::SettingIsNotAvailable,
            )),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::address::EmailAddress;
    use crate::profile::ServiceProfile;

    fn account() -> AccountSettings {
        AccountSettings::new(
            EmailAddress::parse("jane@a.example").unwrap(),
            Arc::new(ServiceProfile::default_for_hoster("hoster.example")),
        )
    }

    #[test]
    fn only_requested_settings_are_returned() {
        let answer = Answer::Settings(account());
        let requested: Vec<String> = [
            "externalewsurl",
            "NoSuchSetting",
            "UserDisplayName",
            "ExternalEwsUrl",
        ]
        .map(String::from)
        .to_vec();
        let response = user_response(&answer, &requested);
        assert_eq!(response.error_code, SoapErrorCode::NoError);
        assert_eq!(response.settings.len(), 1);
        assert_eq!(
            response.string_setting("ExternalEwsUrl"),
            Some("https://mail.hoster.example/EWS/Exchange.asmx")
        );
        let errors: Vec<_> = response
            .setting_errors
            .iter()
            .map(|e| (e.name.as_str(), e.error_code.clone()))
            .collect();
        assert_eq!(
            errors,
            vec![
                ("NoSuchSetting", SoapErrorCode::InvalidSetting),
                ("UserDisplayName", SoapErrorCode::SettingIsNotAvailable)
            ]
        );
    }

    #[test]
    fn newest_schema_is_one_clients_know() {
        let newest = EWS_SUPPORTED_SCHEMAS
            .split(',')
            .map(str::trim)
            .max()
            .unwrap();
        assert_eq!(newest, NEWEST_EWS_SCHEMA);
    }

    #[test]
    fn redirects_and_unhosted() {
        let response = user_response(
            &Answer::RedirectUrl("https://other.example/Autodiscover/Autodiscover.xml".into()),
            &[],
        );
        assert_eq!(response.error_code, SoapErrorCode::RedirectUrl);
        assert_eq!(
            response.redirect_target.as_deref(),
            Some("https://other.example/autodiscover/autodiscover.svc")
        );
        let response = user_response(&Answer::NotHosted, &["ExternalEwsUrl".into()]);
        assert_eq!(response.error_code, SoapErrorCode::InvalidUser);
        assert!(response.settings.is_empty() && response.setting_errors.is_empty());
    }

    #[test]
    fn domain_settings() {
        let account = account();
        let response = domain_response(
            Some((account.address.domain(), &account.profile)),
            &[
                "ExternalEwsUrl".into(),
                "ExternalEwsVersion".into(),
                "Bogus".into(),
            ],
        );
        assert_eq!(response.settings.len(), 2);
        assert_eq!(response.setting_errors.len(), 1);
        assert_eq!(
            domain_response(None, &[]).error_code,
            SoapErrorCode::InvalidDomain
        );
    }
}
