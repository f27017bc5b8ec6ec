//! PACC documents: decode, encode, decode again, compare; the digest record vouches for the encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::pacc_document(data);
});
