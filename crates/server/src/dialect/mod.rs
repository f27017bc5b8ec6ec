//! One module per AutoDiscover dialect the HTTPS service answers.
//!
//! - [`pox`]: Outlook's POX ([MS-OXDSCLI]) and the ActiveSync mobilesync schema ([MS-ASCMD]
//!   2.2.1.1), which share `/autodiscover/autodiscover.xml`.
//! - [`autoconfig`]: Mozilla autoconfig (Thunderbird and most others), on both sites.
//! - [`mobileconfig`]: signed Apple configuration profiles and their form page.
//! - [`pacc`]: the IETF PACC document at `ua-auto-config.CUSTOMER`.
//! - [`soap`]: SOAP Autodiscover ([MS-OXWSADISC]) at `/autodiscover/autodiscover.svc`.
//! - [`v2`]: Autodiscover v2 JSON at `/autodiscover/autodiscover.json`.

pub mod autoconfig;
pub mod mobileconfig;
pub mod pacc;
pub mod pox;
pub mod soap;
pub mod v2;
