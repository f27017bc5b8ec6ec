//! Email addresses as requests carry them: one that parses prints as text that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::email_address(data);
});
