//! The directory as the server sees it: the current snapshot, kept fresh in the background.
//!
//! Requests read the snapshot through an [`ArcSwap`], which costs an atomic load and never
//! waits for the refresher. The refresher polls the store's revision counter; when it changes
//! (through this process, the CLI or another instance), it loads a complete new snapshot and
//! swaps it in. A load that fails leaves the old snapshot in place, so a database outage or a
//! bad edit degrades to "answers are a little stale", never to "nothing is hosted".

use std::mem::{Discriminant, discriminant};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;

use crate::error::DirectoryError;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// How often the refresher asks for the revision unless told otherwise: a change shows within
/// about a second plus the load time.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How fresh the served directory is, for health checks and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryHealth {
    /// The revision of the snapshot being served.
    pub revision: u64,
    /// When that snapshot was swapped in.
    pub loaded_at: SystemTime,
    /// Why the directory cannot refresh right now, if it cannot; the last good snapshot is
    /// served meanwhile.
    pub fault: Option<String>,
    /// Since when it cannot (the first failed refresh of the current outage), for readiness.
    pub fault_since: Option<SystemTime>,
}

/// The current [`Snapshot`] plus the means to keep it fresh. Cheap to clone; clones share
/// everything.
#[derive(Clone)]
pub struct LiveDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    current: ArcSwap<Snapshot>,
    /// Only health reports and the refresher touch this, never a request.
    health: Mutex<DirectoryHealth>,
    /// Serialises refreshes, so a slow load of an older revision can never be swapped in over
    /// a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveDirectory")
            .field("snapshot", &*self.inner.current.load())
            .finish_non_exhaustive()
    }
}

impl LiveDirectory {
    /// Loads the first snapshot from `store`. Fails if the store cannot be read: a server should
    /// not start answering "not hosted" for everyone.
    pub async fn load(store: Store) -> Result<Self, DirectoryError> {
        let snapshot = store.load_snapshot().await?;
        Ok(Self::with_snapshot(store, snapshot))
    }

    /// Starts from a snapshot the caller already has (built by hand, or loaded earlier).
    pub fn with_snapshot(store: Store, snapshot: Snapshot) -> Self {
        let health = DirectoryHealth {
            revision: snapshot.revision(),
            loaded_at: SystemTime::now(),
            fault: None,
            fault_since: None,
        };
        Self {
            inner: Arc::new(Inner {
                store,
                current: ArcSwap::from_pointee(snapshot),
                health: Mutex::new(health),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The current snapshot: lock-free, for the request path. Hold it for one request, not
    /// longer, so old snapshots are freed after a swap.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// The store snapshots are loaded from.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// How fresh the served snapshot is.
    pub fn health(&self) -> DirectoryHealth {
        self.health_guard().clone()
    }

    fn health_guard(&self) -> std::sync::MutexGuard<'_, DirectoryHealth> {
        // The guarded data is plain values, valid even if a holder panicked.
        self.inner
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the revision now and, if it changed, loads and swaps in a new snapshot. Returns
    /// whether it swapped. On error the current snapshot stays.
    pub async fn refresh(&self) -> Result<bool, DirectoryError> {
        let _serialised = self.inner.refreshing.lock().await;
        let revision = self.inner.store.revision().await?;
        if revision == self.inner.current.load().revision() {
            return Ok(false);
        }
        // Only a complete snapshot reaches this point: load_snapshot returns all or an error.
        let snapshot = Arc::new(self.inner.store.load_snapshot().await?);
        let mut health = self.health_guard();
        health.revision = snapshot.revision();
        health.loaded_at = SystemTime::now();
        drop(health);
        self.inner.current.store(snapshot);
        Ok(true)
    }

    /// Runs [`run_refresher`](Self::run_refresher) as a tokio task. Abort the handle to stop it.
    pub fn spawn_refresher(&self, poll_interval: Duration) -> JoinHandle<()> {
        tokio::spawn(self.clone().run_refresher(poll_interval))
    }

    /// Checks the revision `poll_interval` after the previous check ended and swaps in new
    /// snapshots, forever.
    ///
    /// A fault is logged once when it starts (and again only if a different kind of fault
    /// follows), not at every poll; the recovery is logged too. Meanwhile the last good
    /// snapshot is served and [`health`](Self::health) reports the fault.
    pub async fn run_refresher(self, poll_interval: Duration) {
        let mut fault: Option<Discriminant<DirectoryError>> = None;
        loop {
            // Sleep after each check rather than ticking at a fixed rate: at a million domains a
            // load takes a second or two, and a steady stream of changes must not turn into
            // back-to-back loads that keep a core busy.
            tokio::time::sleep(poll_interval).await;
            match self.refresh().await {
                Ok(swapped) => {
                    if fault.take().is_some() {
                        let mut health = self.health_guard();
                        health.fault = None;
                        health.fault_since = None;
                        drop(health);
                        tracing::info!(
                            revision = self.inner.current.load().revision(),
                            "directory database is back; refreshing again"
                        );
                    }
                    if swapped {
                        let snapshot = self.inner.current.load();
                        tracing::info!(
                            revision = snapshot.revision(),
                            counts = ?snapshot.counts(),
                            "directory snapshot replaced"
                        );
                    }
                }
                Err(error) => {
                    let kind = discriminant(&error);
                    if fault != Some(kind) {
                        let serving = self.inner.current.load().revision();
                        if error.is_unreachable() {
                            tracing::warn!(
                                %error,
                                serving,
                                "directory database unreachable; serving the last good snapshot until it returns"
                            );
                        } else {
                            tracing::error!(
                                %error,
                                serving,
                                "directory refresh failed; serving the last good snapshot until it is fixed"
                            );
                        }
                        fault = Some(kind);
                    }
                    let mut health = self.health_guard();
                    health.fault_since.get_or_insert_with(SystemTime::now);
                    health.fault = Some(error.to_string());
                }
            }
        }
    }
}
