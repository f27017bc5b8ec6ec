//! Admission: what a request must pass before a handler spends work on it.
//!
//! Every check here costs a constant amount of work and memory per request, whatever the
//! request says, and every table is bounded:
//!
//! 1. **Request rate per client**: a token bucket per [`ClientKey`] (an IPv4 address, or an IPv6
//!    /64, since one subscriber usually holds a whole /64), refilled at
//!    `limits.per_ip_requests_per_sec` with a burst of twice that. Over it: `429 Too Many
//!    Requests` with `Retry-After`.
//! 2. **The request body** (HTTPS service only) is read here, before a processing slot is taken:
//!    it must keep a minimum rate ([`Limits::body_min_rate`] after a short grace) and arrive
//!    whole within `limits.body_timeout`; all bodies being read at once share one byte budget
//!    ([`BODY_BUDGET_BYTES`]). A trickling body therefore ties up only its own connection, never
//!    a slot another client needs.
//! 3. **A processing slot of the site**: the redirect site and the HTTPS service each have their
//!    own [`Limits::max_requests_in_flight`], so neither can starve the other. Waiting for a
//!    slot is bounded by `limits.queue_timeout`; then `503 Service Unavailable` with
//!    `Retry-After`, never an unbounded queue.
//!
//! Open connections per client are counted by [`ConnectionCount`] in the accept loop; failed
//! logins (`crate::auth::limiter`) are counted per [`ClientKey`] too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;
use crate::request_log::RequestLog;
use crate::request_parts::ConnectionInfo;

/// Bytes of request bodies held at once across the whole service while they are being read and
/// answered: 1,024 full-size bodies. Beyond it new body bytes are refused with `503`.
pub(crate) const BODY_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Client keys the rate table tracks at most. A full table first forgets clients whose bucket
/// has refilled (they hold nothing a new bucket lacks); clients it cannot track share one bucket.
const MAX_TRACKED_CLIENTS: usize = 100_000;
/// How often a full rate table may be swept for refilled buckets: a sweep walks the whole table,
/// so an attacker with many addresses must not trigger one per request.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// A body may take this long before [`Limits::body_min_rate`] applies (TCP slow start, a
/// mobile radio waking up).
const BODY_RATE_GRACE: Duration = Duration::from_secs(2);

/// Who a limit counts: an IPv4 address, or the /64 an IPv6 address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// One IPv4 address (IPv4-mapped IPv6 addresses count here too).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Open connections per client, for the accept loop. Entries exist only while a client has a
/// connection open, so the table never holds more than the listener's connection cap.
#[derive(Debug)]
pub(crate) struct ConnectionCount {
    per_client: usize,
    open: Mutex<HashMap<ClientKey, usize>>,
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    count: Arc<ConnectionCount>,
    key: ClientKey,
}

impl ConnectionCount {
    pub(crate) fn new(per_client: usize) -> Self {
        Self {
            per_client,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `ip`, or `None` when that client has its share open.
    pub(crate) fn open(self: &Arc<Self>, ip: IpAddr) -> Option<OpenConnection> {
        let key = ClientKey::from(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            count: self.clone(),
            key,
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self.count.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

#[derive(Debug)]
struct RateTable {
    buckets: HashMap<ClientKey, Bucket>,
    /// Shared by the clients a full table cannot track, so a flood of new addresses neither
    /// grows the table nor resets the buckets of clients already in it.
    overflow: Bucket,
    next_sweep: Instant,
}

/// Requests per second per client: one token bucket per [`ClientKey`].
#[derive(Debug)]
pub(crate) struct RequestRate {
    rate: f64,
    burst: f64,
    max_tracked: usize,
    table: Mutex<RateTable>,
}

impl RequestRate {
    pub(crate) fn new(per_sec: u32) -> Self {
        Self::with_capacity(per_sec, MAX_TRACKED_CLIENTS)
    }

    fn with_capacity(per_sec: u32, max_tracked: usize) -> Self {
        let rate = f64::from(per_sec);
        let burst = 2.0 * rate;
        let now = Instant::now();
        Self {
            rate,
            burst,
            max_tracked,
            table: Mutex::new(RateTable {
                buckets: HashMap::new(),
                overflow: Bucket::full(burst, now),
                next_sweep: now,
            }),
        }
    }

    /// Counts one request from `ip` at `now`: `Err` with the time to wait when over the rate.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = ClientKey::from(ip);
        let (rate, burst) = (self.rate, self.burst);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = table.buckets.get_mut(&key) {
            return bucket.take(rate, burst, now);
        }
        if table.buckets.len() >= self.max_tracked && now >= table.next_sweep {
            table.next_sweep = now + SWEEP_INTERVAL;
            table.buckets.retain(|_, bucket| {
                bucket.refill(rate, burst, now);
                bucket.tokens < burst
            });
        }
        if table.buckets.len() >= self.max_tracked {
            return table.overflow.take(rate, burst, now);
        }
        let bucket = table.buckets.entry(key).or_insert(Bucket::full(burst, now));
        bucket.take(rate, burst, now)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

/// What the listeners of one server share: the per-client tables and the body budget.
#[derive(Debug)]
pub(crate) struct ClientLimits {
    pub(crate) connections: Arc<ConnectionCount>,
    rate: RequestRate,
    body_budget: Arc<Semaphore>,
}

impl ClientLimits {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            connections: Arc::new(ConnectionCount::new(limits.per_ip_connections)),
            rate: RequestRate::new(limits.per_ip_requests_per_sec),
            body_budget: Arc::new(Semaphore::new(BODY_BUDGET_BYTES)),
        }
    }
}

/// The admission state of one site (the redirect site or the HTTPS service).
#[derive(Debug, Clone)]
pub(crate) struct SiteAdmission {
    clients: Arc<ClientLimits>,
    slots: Arc<Semaphore>,
    limits: Limits,
    /// Whether bodies are read here (the HTTPS service) or left unread (the redirect site
    /// answers from the head alone).
    read_bodies: bool,
}

impl SiteAdmission {
    pub(crate) fn new(clients: Arc<ClientLimits>, limits: &Limits, read_bodies: bool) -> Self {
        Self {
            clients,
            slots: Arc::new(Semaphore::new(limits.max_requests_in_flight)),
            limits: limits.clone(),
            read_bodies,
        }
    }
}

/// The middleware: rate, body, slot, in that order (see the module docs).
pub(crate) async fn admit(
    State(site): State<SiteAdmission>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectionInfo>()
        .map(|c| c.peer.ip());
    if let Some(ip) = peer
        && let Err(wait) = site.clients.rate.check(ip, Instant::now())
    {
        return refusal(StatusCode::TOO_MANY_REQUESTS, wait, "rate-limited");
    }
    let (request, _body_bytes) = if site.read_bodies {
        match pre_read(request, &site).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        }
    } else {
        (request, None)
    };
    let slot = tokio::time::timeout(
        site.limits.queue_timeout,
        site.slots.clone().acquire_owned(),
    )
    .await;
    let _slot = match slot {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) | Err(_) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::ZERO,
                "overloaded",
            );
        }
    };
    next.run(request).await
}

/// Reads the body into memory under the rate, time and budget rules, and puts it back into the
/// request, so handlers read it at once. A body over the size limit is kept cut at one byte past
/// the limit, and one that did not arrive is replaced by a failing body: the handlers then
/// answer in their protocol's words, as for any bad body.
async fn pre_read(
    request: Request,
    site: &SiteAdmission,
) -> Result<(Request, Option<OwnedSemaphorePermit>), Response> {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return Ok((Request::from_parts(parts, body), None));
    }
    let limit = site.limits.max_body_bytes;
    let outcome = read_at_rate(
        body,
        limit,
        &site.clients.body_budget,
        site.limits.body_timeout,
        site.limits.body_min_rate,
    )
    .await;
    let (body, permit) = match outcome {
        BodyOutcome::Complete(bytes, permit) | BodyOutcome::TooLarge(bytes, permit) => {
            (Body::from(bytes), permit)
        }
        BodyOutcome::Late => (failing_body(), None),
        BodyOutcome::OverBudget => {
            return Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::ZERO,
                "body-budget",
            ));
        }
    };
    Ok((Request::from_parts(parts, body), permit))
}

enum BodyOutcome {
    Complete(Bytes, Option<OwnedSemaphorePermit>),
    /// The first `limit + 1` bytes: enough for the handler to see the limit was passed.
    TooLarge(Bytes, Option<OwnedSemaphorePermit>),
    /// Too slow, cut off, or broken.
    Late,
    /// The service holds [`BODY_BUDGET_BYTES`] of bodies already.
    OverBudget,
}

/// Reads `body` up to `limit + 1` bytes. Each frame must come before the deadline that the
/// minimum rate sets for the bytes so far (`grace + (received + 1) / rate`), and all of it
/// within `timeout`.
async fn read_at_rate(
    mut body: Body,
    limit: usize,
    budget: &Arc<Semaphore>,
    timeout: Duration,
    min_rate: u32,
) -> BodyOutcome {
    let started = tokio::time::Instant::now();
    let hard_deadline = started + timeout;
    let mut collected = Vec::new();
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        let rate_deadline = started
            + BODY_RATE_GRACE
            + Duration::from_secs_f64((collected.len() + 1) as f64 / f64::from(min_rate.max(1)));
        let deadline = rate_deadline.min(hard_deadline);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) | Ok(Some(Err(_))) => return BodyOutcome::Late,
            Ok(None) => return BodyOutcome::Complete(Bytes::from(collected), permit),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing we use
        };
        let keep = data.len().min(limit + 1 - collected.len());
        if keep > 0 {
            let Ok(more) = budget.clone().try_acquire_many_owned(keep as u32) else {
                return BodyOutcome::OverBudget;
            };
            match permit.as_mut() {
                Some(held) => held.merge(more),
                None => permit = Some(more),
            }
            collected.extend_from_slice(&data[..keep]);
        }
        if collected.len() > limit {
            return BodyOutcome::TooLarge(Bytes::from(collected), permit);
        }
    }
}

/// A body whose first read fails, for a request whose body did not arrive in time.
fn failing_body() -> Body {
    Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request body too slow",
        ))
    }))
}

/// A refusal with `Retry-After` (whole seconds, at least one).
fn refusal(status: StatusCode, wait: Duration, outcome: &'static str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (status, "").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
        .extensions_mut()
        .insert(RequestLog::new("-", outcome, None));
    response
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn ipv6_clients_count_per_slash_64() {
        assert_eq!(
            ClientKey::from(v6("2001:db8:1:2::1")),
            ClientKey::from(v6("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            ClientKey::from(v6("2001:db8:1:2::1")),
            ClientKey::from(v6("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::from(v6("::ffff:192.0.2.7")),
            ClientKey::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_ne!(
            ClientKey::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            ClientKey::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
        );
    }

    #[test]
    fn bucket_allows_a_burst_of_twice_the_rate_then_the_rate() {
        let rate = RequestRate::new(10);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let now = Instant::now();
        for i in 0..20 {
            assert!(rate.check(ip, now).is_ok(), "request {i} of the burst");
        }
        let wait = rate.check(ip, now).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        // A tenth of a second later one more token is there, and only one.
        let later = now + Duration::from_millis(100);
        assert!(rate.check(ip, later).is_ok());
        assert!(rate.check(ip, later).is_err());
        // Another client is not affected.
        assert!(
            rate.check(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), later)
                .is_ok()
        );
    }

    #[test]
    fn a_full_table_keeps_the_counts_of_active_clients() {
        let rate = RequestRate::with_capacity(1, 4);
        let now = Instant::now();
        let attacker = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        for _ in 0..2 {
            rate.check(attacker, now).unwrap();
        }
        assert!(rate.check(attacker, now).is_err());
        // A flood of new addresses fills the table and then shares the overflow bucket.
        for i in 0..100u32 {
            let _ = rate.check(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), now);
        }
        assert_eq!(rate.tracked(), 4);
        assert!(
            rate.check(attacker, now).is_err(),
            "the attacker's empty bucket was not reset"
        );
        // Once buckets have refilled, a sweep makes room for new clients again.
        let later = now + Duration::from_secs(5);
        let newcomer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert!(rate.check(newcomer, later).is_ok());
        assert!(rate.tracked() <= 4);
    }

    #[test]
    fn connections_are_counted_per_client_and_given_back() {
        let count = Arc::new(ConnectionCount::new(2));
        let ip = v6("2001:db8::1");
        let first = count.open(ip).unwrap();
        let _second = count.open(v6("2001:db8::2")).unwrap();
        assert!(count.open(ip).is_none(), "the same /64 has its two open");
        assert!(count.open(v6("2001:db8:0:1::1")).is_some());
        drop(first);
        assert!(count.open(ip).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_cut_off_at_the_minimum_rate() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
        let body = Body::from_stream(futures_util::stream::unfold(receiver, |mut rx| async {
            rx.recv()
                .await
                .map(|bytes| (Ok::<_, std::io::Error>(bytes), rx))
        }));
        let budget = Arc::new(Semaphore::new(BODY_BUDGET_BYTES));
        let reader = tokio::spawn(async move {
            read_at_rate(body, 65_536, &budget, Duration::from_secs(10), 1024).await
        });
        sender.send(Bytes::from_static(b"<")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = sender.send(Bytes::from_static(b"A")).await;
        assert!(matches!(reader.await.unwrap(), BodyOutcome::Late));
    }

    #[tokio::test]
    async fn bodies_share_one_budget_and_give_it_back() {
        let budget = Arc::new(Semaphore::new(100));
        let first = read_at_rate(
            Body::from(vec![b'a'; 80]),
            1000,
            &budget,
            Duration::from_secs(1),
            1024,
        )
        .await;
        let BodyOutcome::Complete(bytes, held) = first else {
            panic!("the first body fits");
        };
        assert_eq!(bytes.len(), 80);
        let second = read_at_rate(
            Body::from(vec![b'b'; 80]),
            1000,
            &budget,
            Duration::from_secs(1),
            1024,
        )
        .await;
        assert!(matches!(second, BodyOutcome::OverBudget));
        drop(held);
        assert_eq!(budget.available_permits(), 100);
        let over = read_at_rate(
            Body::from(vec![b'c'; 50]),
            10,
            &budget,
            Duration::from_secs(1),
            1024,
        )
        .await;
        let BodyOutcome::TooLarge(bytes, _) = over else {
            panic!("over the limit");
        };
        assert_eq!(bytes.len(), 11);
    }
}
