//! Counting failed authentication attempts, reserved before they are checked.
//!
//! Two tables, both keyed by client: one by (account, client), one by client alone. A client is
//! an IPv4 address or an IPv6 /64 (whoever has one address of a /64 usually has all of them);
//! IPv4-mapped IPv6 addresses count as the IPv4 address. The account is the address in its
//! primary domain, so an alias address shares its primary's counter as it shares its password.
//!
//! - **Reserve, then verify.** [`FailureLimiter::reserve`] counts an attempt as a failure before
//!   the backend sees it; the [`Reservation`] is settled when the verdict is known (a success
//!   clears the pair's count, a temporary backend error gives the attempt back). So however
//!   many guesses arrive at once, at most the free quota of them reach the backend.
//! - **Progressive back-off, no lock-out.** A key has [`FREE_FAILURES_PER_ACCOUNT`] (per pair)
//!   or [`FREE_FAILURES_PER_CLIENT`] (per client) failures free; after that one attempt at a
//!   time is let through, [`FIRST_BACKOFF`] after the last failure, doubling with each further
//!   failure up to [`MAX_BACKOFF`]. An attacker guessing from one client slows only their own
//!   pair: the real user, from another client, is not affected.
//! - **Windows.** A key with no failure for [`FORGET_AFTER`] starts again from zero.
//! - **Bounded memory.** Each table holds at most [`MAX_TRACKED`] keys. When a new key finds the
//!   table full, forgettable entries (idle for [`FORGET_AFTER`], nothing in flight) are swept,
//!   at most once per [`SWEEP_INTERVAL`] so the sweep's cost stays bounded. Live counters are
//!   never dropped: if the table is still full, the new key is not tracked and its attempt
//!   must take a token from a small shared bucket ([`OVERFLOW_PER_SEC`]). An attacker who
//!   fills the table thus gets at most that many unchecked guesses per second in all, while
//!   real users still get through, slowly, instead of being locked out or freeing the
//!   attacker's counters.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

// One notion of "a client" for every per-client limit: an IPv4 address or an IPv6 /64.
use crate::admission::ClientKey;

/// Failures one account may have from one client before back-off starts.
pub const FREE_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failures one client may have over all accounts before back-off starts (a NAT may hide
/// several users who mistype).
pub(crate) const FREE_FAILURES_PER_CLIENT: u32 = 30;
/// The wait after the last failure once the free failures are used up; it doubles with each
/// further failure.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(15);
/// The longest wait between two attempts of one key.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long is forgotten. At least [`MAX_BACKOFF`], so a key is
/// never forgotten while it backs off.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Keys tracked per table: about 100 bytes each, so a full table costs about 10 MB.
pub(crate) const MAX_TRACKED: usize = 100_000;
/// The least time between two sweeps of a full table.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Attempts per second, over all keys, that a full table lets through untracked.
pub(crate) const OVERFLOW_PER_SEC: u32 = 2;

/// Why an attempt was not let through (for the log; the client sees the same `401`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The account from this client, or this client, is backing off.
    BackingOff,
    /// The table is full of live counters and the overflow bucket is empty.
    Full,
}

/// The counters of one key.
#[derive(Debug, Clone, Copy)]
struct Counter {
    /// Failures in the current window.
    failures: u32,
    /// Attempts reserved and not yet settled: counted as failures until they are.
    pending: u32,
    last_failure: Instant,
}

impl Counter {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            pending: 0,
            last_failure: now,
        }
    }

    fn is_forgettable(&self, now: Instant) -> bool {
        self.pending == 0 && now.saturating_duration_since(self.last_failure) >= FORGET_AFTER
    }

    /// Whether one more attempt may start now, with `free` failures free.
    fn admits(&self, free: u32, now: Instant) -> bool {
        if self.failures.saturating_add(self.pending) < free {
            return true;
        }
        self.pending == 0 && now >= self.last_failure + backoff(self.failures, free)
    }
}

/// The wait after `failures` failures with `free` of them free.
fn backoff(failures: u32, free: u32) -> Duration {
    let Some(beyond) = failures.checked_sub(free) else {
        return Duration::ZERO;
    };
    FIRST_BACKOFF
        .checked_mul(1u32.checked_shl(beyond).unwrap_or(u32::MAX))
        .map_or(MAX_BACKOFF, |wait| wait.min(MAX_BACKOFF))
}

/// Where a reserved attempt of one table is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Tracked,
    /// The table was full: the attempt took an overflow token and is not counted.
    Untracked,
}

#[derive(Debug)]
struct Table<K> {
    counters: HashMap<K, Counter>,
    free: u32,
    last_sweep: Option<Instant>,
    overflow_tokens: f64,
    overflow_refilled: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(free: u32) -> Self {
        Self {
            counters: HashMap::new(),
            free,
            last_sweep: None,
            overflow_tokens: f64::from(OVERFLOW_PER_SEC),
            overflow_refilled: None,
        }
    }

    /// Whether an attempt for `key` may start now, and where it will be counted. Changes
    /// nothing but the sweep and overflow state.
    fn admit(&mut self, key: &K, now: Instant) -> Result<Slot, Refusal> {
        if let Some(counter) = self.counters.get_mut(key) {
            if counter.is_forgettable(now) {
                *counter = Counter::new(now);
            }
            return if counter.admits(self.free, now) {
                Ok(Slot::Tracked)
            } else {
                Err(Refusal::BackingOff)
            };
        }
        if self.counters.len() < MAX_TRACKED || self.sweep(now) {
            return Ok(Slot::Tracked);
        }
        if self.take_overflow_token(now) {
            Ok(Slot::Untracked)
        } else {
            Err(Refusal::Full)
        }
    }

    /// Drops forgettable counters unless a sweep ran lately; whether there is room now.
    fn sweep(&mut self, now: Instant) -> bool {
        let due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_INTERVAL);
        if due {
            self.last_sweep = Some(now);
            self.counters
                .retain(|_, counter| !counter.is_forgettable(now));
        }
        self.counters.len() < MAX_TRACKED
    }

    fn take_overflow_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(OVERFLOW_PER_SEC);
        if let Some(last) = self.overflow_refilled {
            let earned = now.saturating_duration_since(last).as_secs_f64() * rate;
            self.overflow_tokens = (self.overflow_tokens + earned).min(rate);
        }
        self.overflow_refilled = Some(now);
        if self.overflow_tokens >= 1.0 {
            self.overflow_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn reserve(&mut self, key: K, now: Instant) {
        let counter = self
            .counters
            .entry(key)
            .or_insert_with(|| Counter::new(now));
        counter.pending = counter.pending.saturating_add(1);
    }

    /// Settles one reserved attempt of `key`: a failure (counted), or not (given back).
    /// `clear` also forgets the key's earlier failures.
    fn settle(&mut self, key: &K, failed: bool, clear: bool, now: Instant) {
        let Some(counter) = self.counters.get_mut(key) else {
            return;
        };
        counter.pending = counter.pending.saturating_sub(1);
        if failed {
            counter.failures = counter.failures.saturating_add(1);
            counter.last_failure = now;
        }
        if clear {
            counter.failures = 0;
        }
        if counter.failures == 0 && counter.pending == 0 {
            self.counters.remove(key);
        }
    }
}

#[derive(Debug)]
struct Tables {
    pairs: Table<(String, ClientKey)>,
    clients: Table<ClientKey>,
}

/// The failure counters of one server.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    tables: Mutex<Tables>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self {
            tables: Mutex::new(Tables {
                pairs: Table::new(FREE_FAILURES_PER_ACCOUNT),
                clients: Table::new(FREE_FAILURES_PER_CLIENT),
            }),
        }
    }
}

impl FailureLimiter {
    /// Reserves one attempt for `account` (a lookup key; `None` when the user name is not an
    /// address) from `peer`, counted as a failure until it is settled; or says why not.
    pub(crate) fn reserve(
        &self,
        account: Option<&str>,
        peer: IpAddr,
        now: Instant,
    ) -> Result<Reservation<'_>, Refusal> {
        let client = ClientKey::from(peer);
        let pair = account.map(|account| (account.to_owned(), client));
        let mut tables = self.lock();
        let client_slot = tables.clients.admit(&client, now)?;
        let pair_slot = match &pair {
            Some(pair) => Some(tables.pairs.admit(pair, now)?),
            None => None,
        };
        let client = (client_slot == Slot::Tracked).then_some(client);
        if let Some(client) = client {
            tables.clients.reserve(client, now);
        }
        let pair = pair.filter(|_| pair_slot == Some(Slot::Tracked));
        if let Some(pair) = &pair {
            tables.pairs.reserve(pair.clone(), now);
        }
        Ok(Reservation {
            limiter: self,
            pair,
            client,
            settled: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let tables = self.lock();
        (tables.pairs.counters.len(), tables.clients.counters.len())
    }
}

/// One attempt, counted as a failure until settled. Dropped unsettled (the request was
/// cancelled mid-check), it stays a failure: cancelling must not be a free guess.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    limiter: &'a FailureLimiter,
    pair: Option<(String, ClientKey)>,
    client: Option<ClientKey>,
    settled: bool,
}

impl Reservation<'_> {
    /// The password was right: the pair's failures are forgotten; the client's stay (one good
    /// account must not wash a client's guesses at others).
    pub(crate) fn succeeded(mut self) {
        self.settle(false, Instant::now());
    }

    /// The password was wrong (or the user unknown): the attempt stays a failure.
    pub(crate) fn failed(mut self, now: Instant) {
        self.settle(true, now);
    }

    /// The backend could not answer: the attempt is given back, not counted.
    pub(crate) fn given_back(mut self) {
        self.settled = true;
        let mut tables = self.limiter.lock();
        let now = Instant::now();
        if let Some(pair) = &self.pair {
            tables.pairs.settle(pair, false, false, now);
        }
        if let Some(client) = &self.client {
            tables.clients.settle(client, false, false, now);
        }
    }

    fn settle(&mut self, failed: bool, now: Instant) {
        self.settled = true;
        let mut tables = self.limiter.lock();
        if let Some(pair) = &self.pair {
            tables.pairs.settle(pair, failed, !failed, now);
        }
        if let Some(client) = &self.client {
            tables.clients.settle(client, failed, false, now);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(true, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(4, 5), Duration::ZERO);
        assert_eq!(backoff(5, 5), FIRST_BACKOFF);
        assert_eq!(backoff(6, 5), FIRST_BACKOFF * 2);
        assert_eq!(backoff(7, 5), FIRST_BACKOFF * 4);
        assert_eq!(backoff(40, 5), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, 5), MAX_BACKOFF);
    }

    #[test]
    fn concurrent_attempts_beyond_the_quota_are_refused_before_any_verdict() {
        let limiter = FailureLimiter::default();
        let now = Instant::now();
        let attacker = ip("192.0.2.7");
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..200 {
            match limiter.reserve(Some("jane@a.example"), attacker, now) {
                Ok(reservation) => held.push(reservation),
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::BackingOff);
                    refused += 1;
                }
            }
        }
        assert_eq!(held.len(), FREE_FAILURES_PER_ACCOUNT as usize);
        assert_eq!(refused, 200 - FREE_FAILURES_PER_ACCOUNT as usize);
        for reservation in held {
            reservation.failed(now);
        }
        // The pair backs off; the account from elsewhere does not.
        assert!(
            limiter
                .reserve(Some("jane@a.example"), attacker, now)
                .is_err()
        );
        limiter
            .reserve(Some("jane@a.example"), ip("198.51.100.9"), now)
            .unwrap()
            .succeeded();
    }

    #[test]
    fn backoff_lets_one_attempt_through_per_doubling_wait() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        let peer = ip("2001:db8::1");
        // Another address of the same /64 is the same client.
        let same_64 = ip("2001:db8::ffff");
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            limiter
                .reserve(Some("joe@a.example"), peer, start)
                .unwrap()
                .failed(start);
        }
        assert_eq!(
            limiter
                .reserve(Some("joe@a.example"), same_64, start + FIRST_BACKOFF / 2)
                .unwrap_err(),
            Refusal::BackingOff
        );
        let later = start + FIRST_BACKOFF;
        let one = limiter
            .reserve(Some("joe@a.example"), same_64, later)
            .unwrap();
        // Only one at a time once backing off.
        assert!(limiter.reserve(Some("joe@a.example"), peer, later).is_err());
        one.failed(later);
        assert!(
            limiter
                .reserve(Some("joe@a.example"), peer, later + FIRST_BACKOFF)
                .is_err()
        );
        let next = later + FIRST_BACKOFF * 2;
        let two = limiter.reserve(Some("joe@a.example"), peer, next).unwrap();
        // A backend that cannot answer gives the attempt back: no doubling for it.
        two.given_back();
        limiter
            .reserve(Some("joe@a.example"), peer, next)
            .unwrap()
            .succeeded();
        // A success forgets the pair's failures.
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            limiter
                .reserve(Some("joe@a.example"), peer, next)
                .unwrap()
                .failed(next);
        }
        // After a quiet window the key starts again.
        assert!(
            limiter
                .reserve(Some("joe@a.example"), peer, next + FORGET_AFTER)
                .is_ok()
        );
    }

    #[test]
    fn a_dropped_reservation_is_a_failure() {
        let limiter = FailureLimiter::default();
        let now = Instant::now();
        let peer = ip("192.0.2.9");
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            drop(limiter.reserve(Some("x@a.example"), peer, now).unwrap());
        }
        assert!(limiter.reserve(Some("x@a.example"), peer, now).is_err());
    }

    #[test]
    fn one_client_guessing_many_accounts_backs_off() {
        let limiter = FailureLimiter::default();
        let now = Instant::now();
        let peer = ip("192.0.2.10");
        for i in 0..FREE_FAILURES_PER_CLIENT {
            limiter
                .reserve(Some(&format!("u{i}@a.example")), peer, now)
                .unwrap()
                .failed(now);
        }
        assert_eq!(
            limiter
                .reserve(Some("fresh@a.example"), peer, now)
                .unwrap_err(),
            Refusal::BackingOff
        );
        // Not even user names that are no address get through.
        assert!(limiter.reserve(None, peer, now).is_err());
        assert!(limiter.reserve(None, ip("192.0.2.11"), now).is_ok());
    }

    #[test]
    fn a_full_table_keeps_live_counters_and_slows_new_keys() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        // An attacker at the quota on jane, then the table filled with live counters from
        // many clients.
        let attacker = ip("192.0.2.1");
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            limiter
                .reserve(Some("jane@a.example"), attacker, start)
                .unwrap()
                .failed(start);
        }
        {
            let mut tables = limiter.lock();
            for i in 1..MAX_TRACKED as u32 {
                let client = ClientKey::from(IpAddr::V4((0x0a00_0000 + i).into()));
                tables
                    .pairs
                    .reserve((format!("u{i}@a.example"), client), start);
                tables
                    .pairs
                    .settle(&(format!("u{i}@a.example"), client), true, false, start);
            }
        }
        let (pairs, _) = limiter.tracked();
        assert_eq!(pairs, MAX_TRACKED);
        // The attacker's counter survives the pressure.
        let soon = start + Duration::from_secs(2);
        assert_eq!(
            limiter
                .reserve(Some("jane@a.example"), attacker, soon)
                .unwrap_err(),
            Refusal::BackingOff
        );
        // New keys share the overflow bucket: a few get through, untracked, then none.
        let mut through = 0;
        for i in 0..20 {
            if let Ok(reservation) =
                limiter.reserve(Some(&format!("new{i}@a.example")), ip("203.0.113.5"), soon)
            {
                through += 1;
                reservation.failed(soon);
            }
        }
        assert_eq!(through, OVERFLOW_PER_SEC);
        assert_eq!(limiter.tracked().0, MAX_TRACKED);
        // Once the counters are idle for a window, a sweep makes room.
        let idle = start + FORGET_AFTER + Duration::from_secs(1);
        limiter
            .reserve(Some("new@a.example"), ip("203.0.113.5"), idle)
            .unwrap()
            .failed(idle);
        assert!(limiter.tracked().0 < 10);
    }
}
