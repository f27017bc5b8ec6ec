//! Outlook responses as the client receives them: decode, encode, decode again, compare.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::outlook_response(data);
});
