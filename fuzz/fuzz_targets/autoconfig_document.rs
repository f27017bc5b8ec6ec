//! Thunderbird autoconfig documents (`clientConfig`): decode, encode, decode again, compare.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::autoconfig_document(data);
});
