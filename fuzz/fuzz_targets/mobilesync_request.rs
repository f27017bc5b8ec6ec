//! The same check as `pox_request` (one parser serves both dialects), started from the
//! mobilesync seeds so the fuzzer explores that branch first.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::request(data);
});
