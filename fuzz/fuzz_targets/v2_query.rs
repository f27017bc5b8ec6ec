//! Autodiscover v2 request lines (`/v1.0/ADDRESS?Email=..&Protocol=..`): parsed, or refused with a JSON answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::v2_query(data);
});
