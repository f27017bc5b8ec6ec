//! Times the XML reader on hostile bodies under the 64 KiB limit (issue 10):
//!
//! ```sh
//! cargo run --release -p autodisco-proto --example hostile_xml
//! ```
//!
//! Each body is parsed as a POX request and as a SOAP request, many times over; the output is
//! the mean time per parse and how the request was answered. Timing is printed, never asserted:
//! the unit tests check the outcomes.

use std::time::Instant;

use autodisco_proto::xml::{
    MAX_ATTRIBUTES, MAX_ELEMENTS, MAX_NAMESPACE_URI_BYTES, MAX_NAMESPACES_IN_SCOPE,
};

fn bodies() -> Vec<(&'static str, String)> {
    let long_uri = format!("urn:{}", "x".repeat(30_000));
    let cap_uri = format!("urn:{}", "x".repeat(MAX_NAMESPACE_URI_BYTES - 4));
    // Open elements declare as many prefixes as may be in force, then the deepest one holds as
    // many prefixed children as fit: the most namespace bindings each name is resolved against.
    let levels = MAX_NAMESPACES_IN_SCOPE / MAX_ATTRIBUTES;
    let declarations = |level: usize| -> String {
        (0..MAX_ATTRIBUTES)
            .map(|i| format!(" xmlns:p{level}x{i}=\"urn:{i}\""))
            .collect()
    };
    let deep_open: String = (0..levels)
        .map(|level| format!("<e{}>", declarations(level)))
        .collect();
    let deep_close: String = (0..levels).map(|_| "</e>").collect();
    let prefixed = "<p0x0:c/>".repeat(MAX_ELEMENTS - levels);
    let attributes: String = (0..MAX_ATTRIBUTES)
        .map(|i| format!(" a{i}=\"&amp;&#x41;\""))
        .collect();
    vec![
        (
            "30 KB namespace, 8,000 children (issue 10)",
            format!("<r xmlns=\"{long_uri}\">{}</r>", "<c/>".repeat(8_000)),
        ),
        (
            "512-byte namespace, elements up to the cap",
            format!(
                "<r xmlns=\"{cap_uri}\">{}</r>",
                "<c/>".repeat(MAX_ELEMENTS - 1)
            ),
        ),
        (
            "512-byte namespace declared on each of 120 children",
            format!("<r>{}</r>", format!("<c xmlns=\"{cap_uri}\"/>").repeat(120)),
        ),
        (
            "64 declarations in force, prefixed children up to the cap",
            format!("{deep_open}{prefixed}{deep_close}"),
        ),
        (
            "32 attributes with references on each of 90 elements",
            format!("<r>{}</r>", format!("<c{attributes}/>").repeat(90)),
        ),
    ]
}

fn main() {
    const ROUNDS: u32 = 50;
    for (name, body) in bodies() {
        let body = &body.as_bytes()[..body.len().min(64 * 1024)];
        let start = Instant::now();
        let mut outcome = String::new();
        for _ in 0..ROUNDS {
            outcome = match autodisco_proto::parse_request(body) {
                Ok(_) => "parsed".to_owned(),
                Err(error) => error.to_string(),
            };
            let _ = autodisco_proto::soap::parse_request(body);
        }
        let per_parse = start.elapsed() / (2 * ROUNDS);
        println!(
            "{name}: {} bytes, {:.2} ms per parse; {outcome}",
            body.len(),
            per_parse.as_secs_f64() * 1000.0
        );
    }
}
