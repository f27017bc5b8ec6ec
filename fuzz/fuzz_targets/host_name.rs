//! Host headers (`name[:port]`) as domain names: a name that parses is canonical and fits DNS.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = autodisco_proto::round_trip::host_name(data);
});
