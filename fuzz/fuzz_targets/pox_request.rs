//! Request bodies as the server receives them: parse, encode, parse again, compare.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::request(data);
});
