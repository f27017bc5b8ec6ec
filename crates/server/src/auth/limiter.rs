//! Counting failed authentication attempts per address and per client IP.
//!
//! Fixed windows: the first failure opens a window of [`WINDOW`]; once an address has
//! [`MAX_FAILURES_PER_ADDRESS`] failures in its window, or an IP [`MAX_FAILURES_PER_IP`], every
//! attempt for it is refused unchecked until the window ends. A success clears the address's
//! count (not the IP's). Memory is bounded: at most [`MAX_TRACKED`] keys per table, expired ones
//! dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may have per window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 5;
/// Failures one client IP may have per window (a NAT may hide several users).
pub const MAX_FAILURES_PER_IP: u32 = 30;
/// The window length.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Keys tracked per table.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    ends: Instant,
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Window>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Table<K> {
    fn count(&self, key: &K, now: Instant) -> u32 {
        self.entries
            .get(key)
            .filter(|w| w.ends > now)
            .map_or(0, |w| w.failures)
    }

    fn add(&mut self, key: K, now: Instant) {
        if self.entries.len() >= MAX_TRACKED && !self.entries.contains_key(&key) {
            self.entries.retain(|_, w| w.ends > now);
            if self.entries.len() >= MAX_TRACKED {
                // Still full of live windows: an attack from many keys. Forget the oldest half
                // rather than grow.
                let mut ends: Vec<Instant> = self.entries.values().map(|w| w.ends).collect();
                ends.sort_unstable();
                let cut = ends[ends.len() / 2];
                self.entries.retain(|_, w| w.ends > cut);
            }
        }
        let window = self.entries.entry(key).or_insert(Window {
            failures: 0,
            ends: now + WINDOW,
        });
        if window.ends <= now {
            *window = Window {
                failures: 0,
                ends: now + WINDOW,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

/// The failure counters of one server.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    addresses: Mutex<Table<String>>,
    ips: Mutex<Table<IpAddr>>,
}

impl FailureLimiter {
    /// Whether attempts for `address` (a lookup key) or from `peer` are refused for now.
    pub fn is_limited(&self, address: &str, peer: IpAddr, now: Instant) -> bool {
        lock(&self.addresses).count(&address.to_owned(), now) >= MAX_FAILURES_PER_ADDRESS
            || lock(&self.ips).count(&peer, now) >= MAX_FAILURES_PER_IP
    }

    /// Counts a failure for `address` (when it was one) and `peer`.
    pub fn record_failure(&self, address: Option<&str>, peer: IpAddr, now: Instant) {
        if let Some(address) = address {
            lock(&self.addresses).add(address.to_owned(), now);
        }
        lock(&self.ips).add(peer, now);
    }

    /// Clears the failures of `address` after a successful login.
    pub fn record_success(&self, address: &str) {
        lock(&self.addresses).entries.remove(address);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_ip_with_windows() {
        let limiter = FailureLimiter::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other_ip: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_ADDRESS {
            assert!(!limiter.is_limited("jane@a.example", ip, now));
            limiter.record_failure(Some("jane@a.example"), ip, now);
        }
        // The address is limited from any IP; others from this IP are not (yet).
        assert!(limiter.is_limited("jane@a.example", other_ip, now));
        assert!(!limiter.is_limited("joe@a.example", ip, now));
        // The window ends.
        assert!(!limiter.is_limited("jane@a.example", ip, now + WINDOW));
        // Many addresses from one IP: the IP is limited.
        for i in 0..MAX_FAILURES_PER_IP {
            limiter.record_failure(Some(&format!("u{i}@a.example")), other_ip, now);
        }
        assert!(limiter.is_limited("fresh@a.example", other_ip, now));
        limiter.record_success("jane@a.example");
        assert!(!limiter.is_limited("jane@a.example", ip, now));
    }
}
