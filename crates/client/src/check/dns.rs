//! The records, looked up live: one query per record set (owner and type), compared with what
//! [`DomainRecords`] says should be there.

use autodisco_proto::DomainRecords;
use autodisco_proto::records::{DnsRecord, Purpose, RecordData};
use hickory_resolver::proto::rr::{RData, RecordType};

use super::{CheckStatus, Checker, Collected, RecordCheck};
use crate::report::Failure;

/// The longest CNAME chain followed. Resolvers give up around here too (BIND follows 16,
/// hickory 8); a customer record needs one hop.
const MAX_CNAME_CHAIN: usize = 8;

/// What one lookup gave.
enum Lookup {
    /// Records of the type asked, in presentation format.
    Found(Vec<RData>),
    /// The name does not exist (NXDOMAIN).
    NoName,
    /// The name exists without records of this type.
    NoRecords,
    /// SERVFAIL, REFUSED, a timeout: in words.
    Failed(String),
}

impl Checker {
    async fn lookup(&self, name: &str, record_type: RecordType) -> Lookup {
        let lookup = self.client.net.lookup(name, record_type);
        match tokio::time::timeout(self.step_timeout(), lookup).await {
            Ok(Ok(records)) if records.is_empty() => Lookup::NoRecords,
            Ok(Ok(records)) => Lookup::Found(records),
            Ok(Err(Failure::NoSuchName { .. })) => Lookup::NoName,
            Ok(Err(Failure::NoRecords { .. })) => Lookup::NoRecords,
            Ok(Err(failure)) => Lookup::Failed(failure.to_string()),
            Err(_) => Lookup::Failed(format!(
                "the DNS query for {name} got no answer within {} s",
                self.step_timeout().as_secs_f32()
            )),
        }
    }
}

/// Checks the domain itself, then every record set.
pub(super) async fn check_records(
    checker: &Checker,
    expected: &DomainRecords,
    collected: &mut Collected,
) {
    let domain = expected.domain.as_str();
    // A domain that does not exist, or whose name servers fail, makes every record fail the
    // same way: one finding says it better than a dozen.
    match checker.lookup(domain, RecordType::SOA).await {
        Lookup::NoName => {
            collected.finding(
                CheckStatus::Error,
                format!("{domain} does not exist in DNS (NXDOMAIN): check that the domain is registered and delegated to its name servers"),
            );
            return;
        }
        Lookup::Failed(detail) => {
            collected.finding(
                CheckStatus::Error,
                format!("{domain} cannot be looked up ({detail}): check the domain's name servers"),
            );
            return;
        }
        Lookup::Found(_) | Lookup::NoRecords => {}
    }
    let mut sets: Vec<Vec<&DnsRecord>> = Vec::new();
    for record in &expected.records {
        let same = |set: &&mut Vec<&DnsRecord>| {
            set[0].name == record.name && set[0].data.type_name() == record.data.type_name()
        };
        match sets.iter_mut().find(|set| same(set)) {
            Some(set) => set.push(record),
            None => sets.push(vec![record]),
        }
    }
    // The record sets are independent: looked up at once, so a domain costs its slowest
    // lookup rather than the sum of a dozen.
    let parts = sets.into_iter().map(|set| async move {
        let mut part = Collected::default();
        let check = match &set[0].data {
            RecordData::Cname { target } => {
                let record = set[0];
                let cname = CnameCheck {
                    checker,
                    record,
                    target,
                };
                cname.run(&mut part).await
            }
            _ => check_set(checker, &set, &mut part).await,
        };
        part.records.push(check);
        part
    });
    collected.merge(futures_util::future::join_all(parts).await);
    unpublished_note(domain, collected);
}

/// Whether the walk can say anything new: not when `autodiscover.DOMAIN` is missing or broken
/// (its finding says it all) or the domain itself failed.
pub(super) fn walk_possible(collected: &Collected) -> bool {
    let autodiscover = collected.records.first();
    autodiscover.is_some_and(|r| matches!(r.status, CheckStatus::Ok | CheckStatus::Wrong))
}

fn record_check(set: &[&DnsRecord], found: Vec<String>, status: CheckStatus) -> RecordCheck {
    RecordCheck {
        name: set[0].name.clone(),
        record_type: set[0].data.type_name().to_owned(),
        expected: set.iter().map(|r| r.data.to_string()).collect(),
        found,
        status,
        required: set.iter().any(|r| r.required),
    }
}

/// A missing record: a finding when clients need it. Missing optional records are summed up
/// in one note at the end ([`unpublished_note`]).
fn missing(set: &[&DnsRecord], collected: &mut Collected) {
    let record = set[0];
    if !set.iter().any(|r| r.required) {
        return;
    }
    let lines: Vec<String> = set
        .iter()
        .map(|r| format!("{}. {} {}", r.name, r.data.type_name(), r.data))
        .collect();
    collected.finding(
        CheckStatus::Missing,
        format!(
            "{} has no {} record: add {}",
            record.name,
            record.data.type_name(),
            lines.join(" and ")
        ),
    );
}

/// One note for every optional record not published: the domain works without them, and
/// `dns records` prints them for whoever wants the methods they add.
fn unpublished_note(domain: &str, collected: &mut Collected) {
    let unpublished: Vec<String> = collected
        .records
        .iter()
        .filter(|r| r.status == CheckStatus::Missing && !r.required)
        .map(|r| format!("{} {}", r.name, r.record_type))
        .collect();
    if !unpublished.is_empty() {
        collected.notes.push(format!(
            "optional records not published: {}; `autodisco dns records {domain}` prints them",
            unpublished.join(", ")
        ));
    }
}

fn lookup_failed(name: &str, detail: &str, collected: &mut Collected) {
    collected.finding(
        CheckStatus::Error,
        format!("{name} cannot be looked up ({detail}): check the domain's name servers"),
    );
}

/// One CNAME record to check.
struct CnameCheck<'a> {
    checker: &'a Checker,
    record: &'a DnsRecord,
    /// The canonical name it should point to.
    target: &'a str,
}

impl CnameCheck<'_> {
    fn done(&self, found: Vec<String>, status: CheckStatus) -> RecordCheck {
        record_check(&[self.record], found, status)
    }

    /// Follows the CNAME chain from the record's name; ok when it reaches the target (at the
    /// first hop, normally).
    async fn run(&self, collected: &mut Collected) -> RecordCheck {
        let (name, target) = (self.record.name.as_str(), self.target);
        let mut chain: Vec<String> = Vec::new();
        let mut at = name.to_owned();
        loop {
            match self.checker.lookup(&at, RecordType::CNAME).await {
                Lookup::Found(data) => {
                    let Some(next) = data.iter().find_map(cname_target) else {
                        break;
                    };
                    let looped =
                        same_name(&next, name) || chain.iter().any(|hop| same_name(hop, &next));
                    chain.push(next.clone());
                    if looped {
                        let path = format!("{name} → {}", chain.join(" → "));
                        collected.finding(
                            CheckStatus::Error,
                            format!("the CNAME chain of {name} loops ({path}): replace {name} with a CNAME to {target}"),
                        );
                        return self.done(chain, CheckStatus::Error);
                    }
                    if same_name(&next, target) {
                        return self.done(chain, CheckStatus::Ok);
                    }
                    if chain.len() > MAX_CNAME_CHAIN {
                        collected.finding(
                            CheckStatus::Error,
                            format!("the CNAME chain of {name} is longer than {MAX_CNAME_CHAIN} names: point {name} straight at {target}"),
                        );
                        return self.done(chain, CheckStatus::Error);
                    }
                    at = next;
                }
                Lookup::NoName | Lookup::NoRecords if !chain.is_empty() => break,
                Lookup::NoName => {
                    missing(&[self.record], collected);
                    return self.done(Vec::new(), CheckStatus::Missing);
                }
                Lookup::NoRecords => return self.not_a_cname(collected).await,
                Lookup::Failed(detail) => {
                    lookup_failed(&at, &detail, collected);
                    return self.done(chain, CheckStatus::Error);
                }
            }
        }
        collected.finding(
            CheckStatus::Wrong,
            format!(
                "{name} points to {}, not to {target}: change the CNAME",
                chain[0]
            ),
        );
        self.done(chain, CheckStatus::Wrong)
    }

    /// The name exists without a CNAME: address records of its own are wrong (clients go
    /// there, not to the hoster); nothing at all is missing.
    async fn not_a_cname(&self, collected: &mut Collected) -> RecordCheck {
        let name = self.record.name.as_str();
        let addresses: Vec<String> = match self.checker.lookup(name, RecordType::A).await {
            Lookup::Found(data) => data
                .iter()
                .filter_map(|d| match d {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if addresses.is_empty() {
            missing(&[self.record], collected);
            return self.done(Vec::new(), CheckStatus::Missing);
        }
        collected.finding(
            CheckStatus::Wrong,
            format!(
                "{name} has address records ({}) instead of a CNAME to {}: replace them with the CNAME",
                addresses.join(", "),
                self.target
            ),
        );
        let found = addresses.iter().map(|a| format!("A {a}")).collect();
        self.done(found, CheckStatus::Wrong)
    }
}

/// SRV, TXT and MX sets: one lookup, then compared as sets.
async fn check_set(
    checker: &Checker,
    set: &[&DnsRecord],
    collected: &mut Collected,
) -> RecordCheck {
    let record = set[0];
    let record_type = match record.data {
        RecordData::Srv { .. } => RecordType::SRV,
        RecordData::Txt { .. } => RecordType::TXT,
        _ => RecordType::MX,
    };
    let data = match checker.lookup(&record.name, record_type).await {
        Lookup::Found(data) => data,
        Lookup::NoName | Lookup::NoRecords => {
            missing(set, collected);
            return record_check(set, Vec::new(), CheckStatus::Missing);
        }
        Lookup::Failed(detail) => {
            lookup_failed(&record.name, &detail, collected);
            return record_check(set, Vec::new(), CheckStatus::Error);
        }
    };
    let found: Vec<RecordData> = data.iter().filter_map(record_data).collect();
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    let status = compare(set, &found);
    if status != CheckStatus::Ok {
        collected.finding(status, mismatch(set, &shown, status));
    }
    record_check(set, shown, status)
}

/// Ok when every expected record is there and nothing else points elsewhere. SRV records match
/// on port and target (priorities and weights are the customer's to tune); a TXT set needs the
/// one digest among its strings.
fn compare(set: &[&DnsRecord], found: &[RecordData]) -> CheckStatus {
    let key = |data: &RecordData| match data {
        RecordData::Srv { port, target, .. } => format!("{port} {}", target.to_ascii_lowercase()),
        RecordData::Mx { exchange, .. } => exchange.to_ascii_lowercase(),
        RecordData::Txt { text } => text.clone(),
        RecordData::Cname { target } => target.to_ascii_lowercase(),
    };
    if let RecordData::Txt { text } = &set[0].data {
        let texts = found.iter().filter_map(|d| match d {
            RecordData::Txt { text } => Some(text.as_str()),
            _ => None,
        });
        return compare_digest(text, texts);
    }
    let expected: Vec<String> = set.iter().map(|r| key(&r.data)).collect();
    let found: Vec<String> = found.iter().map(key).collect();
    let all_there = expected.iter().all(|e| found.contains(e));
    // MX sets may carry the customer's own backup exchangers; SRV sets must not point
    // clients anywhere else.
    let nothing_else = set[0].purpose == Purpose::Mx || found.iter().all(|f| expected.contains(f));
    if all_there && nothing_else {
        CheckStatus::Ok
    } else {
        CheckStatus::Wrong
    }
}

/// The PACC digest: the same digest is ok, another `v=UAAC1` record is drift (the profile
/// changed since it was published), anything else is wrong.
fn compare_digest<'a>(expected: &str, found: impl Iterator<Item = &'a str>) -> CheckStatus {
    let digest = |text: &str| {
        let tags: Vec<(String, String)> = text
            .split(';')
            .filter_map(|tag| tag.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |name: &str| tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        (get("v"), get("d"))
    };
    let (_, want) = digest(expected);
    let mut status = CheckStatus::Wrong;
    for text in found {
        match digest(text) {
            (_, d) if d == want => return CheckStatus::Ok,
            (Some(v), _) if v == "UAAC1" => status = CheckStatus::Drift,
            _ => {}
        }
    }
    status
}

/// The sentence for a record set that is there but not right.
fn mismatch(set: &[&DnsRecord], shown: &[String], status: CheckStatus) -> String {
    let record = set[0];
    let name = &record.name;
    let expected: Vec<String> = set.iter().map(|r| r.data.to_string()).collect();
    let found = shown.join(", ");
    match (&record.data, status) {
        (RecordData::Txt { .. }, CheckStatus::Drift) => format!(
            "{name} carries the digest of an older PACC document (the profile changed since): change the TXT record to {}",
            expected[0]
        ),
        (RecordData::Txt { .. }, _) => format!(
            "{name} TXT is {found}, not the PACC digest: change it to {}",
            expected[0]
        ),
        (RecordData::Srv { target, .. }, _) if target == "." => format!(
            "{name} SRV names {found}, but the profile offers no such service: change it to 0 0 0 . or remove it"
        ),
        (RecordData::Srv { .. }, _) => format!(
            "{name} SRV names {found}, not {}: change the SRV records",
            expected.join(" and ")
        ),
        _ => format!(
            "{name} MX names {found}, not {}: change the MX records",
            expected.join(" and ")
        ),
    }
}

fn cname_target(data: &RData) -> Option<String> {
    match data {
        RData::CNAME(target) => Some(target.0.to_string().trim_end_matches('.').to_owned()),
        _ => None,
    }
}

/// A found record in the proto crate's terms, for comparing and showing.
fn record_data(data: &RData) -> Option<RecordData> {
    let name = |n: &hickory_resolver::proto::rr::Name| {
        let text = n.to_string();
        if text == "." {
            text
        } else {
            text.trim_end_matches('.').to_owned()
        }
    };
    match data {
        RData::SRV(srv) => Some(RecordData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: name(&srv.target),
        }),
        RData::MX(mx) => Some(RecordData::Mx {
            preference: mx.preference,
            exchange: name(&mx.exchange),
        }),
        RData::TXT(txt) => Some(RecordData::Txt {
            text: txt
                .txt_data
                .iter()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect(),
        }),
        _ => None,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_by_tag() {
        let expected = "v=UAAC1; a=sha256; d=abc=";
        assert_eq!(
            compare_digest(expected, ["d=abc= ; v=UAAC1;a=sha256"].into_iter()),
            CheckStatus::Ok
        );
        assert_eq!(
            compare_digest(expected, ["v=UAAC1; a=sha256; d=old="].into_iter()),
            CheckStatus::Drift
        );
        assert_eq!(
            compare_digest(expected, ["google-site-verification=x"].into_iter()),
            CheckStatus::Wrong
        );
    }

    #[test]
    fn names_compare_without_case_and_dot() {
        assert!(same_name("A.Example.", "a.example"));
        assert!(!same_name("a.example", "b.example"));
    }
}
