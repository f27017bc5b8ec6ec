//! The autoconfig query string: the `emailaddress` parameter is an address that prints and parses back, or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::autoconfig_query(data);
});
