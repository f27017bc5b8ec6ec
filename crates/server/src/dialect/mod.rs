//! One module per AutoDiscover dialect the HTTPS service answers.
//!
//! - [`pox`]: Outlook's POX ([MS-OXDSCLI]) and the ActiveSync mobilesync schema ([MS-ASCMD]
//!   2.2.1.1), which share `/autodiscover/autodiscover.xml`.

pub mod pox;
