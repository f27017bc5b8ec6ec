//! One module per AutoDiscover dialect the HTTPS service answers: each reads its request and
//! writes its answer. Which path and method reach them is decided in [`crate::routes`]; what
//! they share to do it is in [`crate::reply`] and [`crate::request_parts`].
//!
//! - [`pox`]: Outlook's POX ([MS-OXDSCLI]) and the ActiveSync mobilesync schema ([MS-ASCMD]
//!   2.2.1.1), which share `/autodiscover/autodiscover.xml`.
//! - [`autoconfig`]: Mozilla autoconfig (Thunderbird and most others), on both sites.
//! - [`mobileconfig`]: signed Apple configuration profiles and their form page.
//! - [`pacc`]: the IETF PACC document at `ua-auto-config.CUSTOMER`.
//! - [`soap`]: SOAP Autodiscover ([MS-OXWSADISC]) at `/autodiscover/autodiscover.svc`.
//! - [`v2`]: Autodiscover v2 JSON at `/autodiscover/autodiscover.json`.

pub(crate) mod autoconfig;
pub(crate) mod mobileconfig;
pub(crate) mod pacc;
pub(crate) mod pox;
pub(crate) mod soap;
pub(crate) mod v2;
