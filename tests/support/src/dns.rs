//! An authoritative DNS server on loopback, serving zones built in the test (hickory-server with
//! in-memory authorities), so the probe resolves names exactly as it would in production.
//!
//! ```ignore
//! let dns = TestDns::start(block.ip(53), vec![
//!     Zone::new("customer.example")
//!         .a("@", block.v4(10))
//!         .cname("autodiscover", "autodiscoverredirect.hoster.example.")
//!         .srv("_autodiscover._tcp", 0, 0, 443, "autodiscover.hoster.example.")
//!         .mx("@", 10, "mx.hoster.example."),
//! ]).await;
//! // --dns dns.address()
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, CNAME, MX, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

/// Time to live of every test record; the probe's resolver is new for each run anyway.
const TTL: u32 = 60;

/// How many answers a TCP connection may have waiting to be written.
const TCP_RESPONSE_BUFFER: usize = 16;

/// One zone's records.
pub struct Zone {
    origin: Name,
    records: Vec<Record>,
}

impl Zone {
    /// An empty zone (with its SOA) for `origin`, such as `customer.example`.
    pub fn new(origin: &str) -> Self {
        let origin =
            Name::from_ascii(format!("{}.", origin.trim_end_matches('.'))).expect("zone origin");
        let soa = SOA::new(
            Name::from_ascii("ns.test.").expect("mname"),
            Name::from_ascii("hostmaster.test.").expect("rname"),
            1,
            3600,
            600,
            86_400,
            TTL,
        );
        let records = vec![Record::from_rdata(origin.clone(), TTL, RData::SOA(soa))];
        Self { origin, records }
    }

    /// `label` relative to the origin (`@` is the origin itself); a name ending in a dot is
    /// taken as absolute.
    fn name(&self, label: &str) -> Name {
        if label == "@" {
            self.origin.clone()
        } else if label.ends_with('.') {
            Name::from_ascii(label).expect("absolute name")
        } else {
            Name::from_ascii(label)
                .expect("label")
                .append_domain(&self.origin)
                .expect("name in zone")
        }
    }

    fn absolute(target: &str) -> Name {
        Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).expect("target name")
    }

    /// An A record.
    pub fn a(mut self, label: &str, address: Ipv4Addr) -> Self {
        let name = self.name(label);
        self.records
            .push(Record::from_rdata(name, TTL, RData::A(A(address))));
        self
    }

    /// A CNAME record pointing to `target` (absolute).
    pub fn cname(mut self, label: &str, target: &str) -> Self {
        let name = self.name(label);
        self.records.push(Record::from_rdata(
            name,
            TTL,
            RData::CNAME(CNAME(Self::absolute(target))),
        ));
        self
    }

    /// An SRV record.
    pub fn srv(mut self, label: &str, priority: u16, weight: u16, port: u16, target: &str) -> Self {
        let name = self.name(label);
        self.records.push(Record::from_rdata(
            name,
            TTL,
            RData::SRV(SRV::new(priority, weight, port, Self::absolute(target))),
        ));
        self
    }

    /// An MX record.
    pub fn mx(mut self, label: &str, preference: u16, exchange: &str) -> Self {
        let name = self.name(label);
        self.records.push(Record::from_rdata(
            name,
            TTL,
            RData::MX(MX::new(preference, Self::absolute(exchange))),
        ));
        self
    }

    /// A TXT record holding one string.
    pub fn txt(mut self, label: &str, text: &str) -> Self {
        let name = self.name(label);
        self.records.push(Record::from_rdata(
            name,
            TTL,
            RData::TXT(TXT::new(vec![text.to_owned()])),
        ));
        self
    }

    fn into_handler(self) -> (LowerName, Arc<dyn ZoneHandler>) {
        let mut handler: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(self.origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        for record in self.records {
            assert!(
                handler.upsert_mut(record, 1),
                "record refused by the zone {}",
                self.origin
            );
        }
        (LowerName::new(&self.origin), Arc::new(handler))
    }
}

/// The DNS server; stops when dropped.
pub struct TestDns {
    address: SocketAddr,
    _server: Server<Catalog>,
}

impl TestDns {
    /// Serves `zones` over UDP and TCP on `ip`, on one port chosen by the system.
    pub async fn start(ip: IpAddr, zones: Vec<Zone>) -> Self {
        let mut catalog = Catalog::new();
        for zone in zones {
            let (name, handler) = zone.into_handler();
            catalog.upsert(name, vec![handler]);
        }
        // UDP and TCP share the port, as resolvers expect of one server address.
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .expect("bind DNS UDP socket");
            let port = udp.local_addr().expect("UDP address").port();
            if let Ok(tcp) = tokio::net::TcpListener::bind(SocketAddr::new(ip, port)).await {
                break (udp, tcp);
            }
        };
        let address = udp.local_addr().expect("UDP address");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), TCP_RESPONSE_BUFFER);
        Self {
            address,
            _server: server,
        }
    }

    /// Where it listens (UDP and TCP), for `--dns`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}
