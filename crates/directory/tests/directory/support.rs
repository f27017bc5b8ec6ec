//! A fresh, private database per test: a SQLite file in a temporary directory, or a PostgreSQL
//! database created for the test and dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use autodisco_directory::Store;
use autodisco_proto::{Domain, EmailAddress, ServiceProfile};
use sqlx::postgres::PgConnection;
use sqlx::{AnyPool, Connection, Executor};
use tempfile::TempDir;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Where the PostgreSQL tests connect to create their databases.
const DEFAULT_POSTGRES: &str = "postgres://root@127.0.0.1:5432/test";

pub(crate) fn postgres_admin_url() -> String {
    std::env::var("AUTODISCO_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// A database of its own for one test.
pub(crate) struct TestDb {
    /// The URL [`Store::connect`] takes, for a second store ("another process").
    pub(crate) url: String,
    /// A store connected to it.
    pub(crate) store: Store,
    /// The PostgreSQL database's name, if this is PostgreSQL.
    pub(crate) pg_name: Option<String>,
    _dir: Option<TempDir>,
    _pg: Option<PgDatabase>,
}

impl TestDb {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("directory.db").display());
        let store = Store::connect(&url).await.expect("connect to SQLite");
        Self {
            url,
            store,
            pg_name: None,
            _dir: Some(dir),
            _pg: None,
        }
    }

    /// Panics if PostgreSQL is unreachable: a skipped PostgreSQL test must not look like a pass.
    pub(crate) async fn postgres() -> Self {
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        let admin = postgres_admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "autodisco_test_{}_{}_{nanos}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin} is unreachable ({e}); the PostgreSQL directory tests need it \
                 (set AUTODISCO_TEST_POSTGRES to another server)"
            )
        });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let pg = PgDatabase {
            admin: admin.clone(),
            name: name.clone(),
        };
        let url = with_database(&admin, &name);
        let store = Store::connect(&url).await.expect("connect to PostgreSQL");
        Self {
            url,
            store,
            pg_name: Some(name),
            _dir: None,
            _pg: Some(pg),
        }
    }

    /// Another store on the same database, as the CLI or a second instance would have.
    pub(crate) async fn second_store(&self) -> Store {
        Store::connect(&self.url)
            .await
            .expect("connect a second store")
    }

    /// Every text value of the token and audit tables, to check what is stored.
    pub(crate) async fn dump_text(&self) -> String {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&self.url).await.expect("raw connection");
        let mut text = String::new();
        for sql in [
            "SELECT name || ' ' || scope || ' ' || token_hash FROM api_tokens",
            "SELECT actor || ' ' || action || ' ' || object || ' ' || COALESCE(before_json, '') || ' ' || COALESCE(after_json, '') FROM audit_log",
        ] {
            for row in sqlx::query_scalar::<_, String>(sql)
                .fetch_all(&pool)
                .await
                .expect("raw query")
            {
                text.push_str(&row);
                text.push('\n');
            }
        }
        pool.close().await;
        text
    }

    /// Runs raw SQL, bypassing the store's checks, to play a hand edit gone wrong.
    pub(crate) async fn raw_sql(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&self.url).await.expect("raw connection");
        pool.execute(sql).await.expect("raw SQL");
        pool.close().await;
    }
}

/// Drops the test's PostgreSQL database when the test ends, passed or failed.
struct PgDatabase {
    admin: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and the test's runtime may be gone or busy: use a runtime of our own
        // on a thread of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                conn.execute(sql.as_str()).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Runs each named test function (taking a [`TestDb`]) once against SQLite and once against
/// PostgreSQL, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::support::TestDb::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::support::TestDb::postgres().await).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

pub(crate) fn d(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

pub(crate) fn a(address: &str) -> EmailAddress {
    EmailAddress::parse(address).unwrap()
}

pub(crate) fn profile(hoster: &str) -> ServiceProfile {
    ServiceProfile::default_for_hoster(hoster)
}

/// Waits until `condition` holds, checking often; panics with `what` after `limit`.
pub(crate) async fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The events this crate logged, for tests that check what an operator would see.
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<(Level, String)>>>);

impl CapturedLogs {
    /// Captures this thread's events until the guard drops. `#[tokio::test]` runs the test and
    /// its spawned tasks on this one thread.
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    /// Messages logged at `level` or more severe.
    pub(crate) fn at_least(&self, level: Level) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| *l <= level)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub(crate) fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains(needle))
    }
}

impl<S: Subscriber> Layer<S> for CapturedLogs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("autodisco_directory") {
            return;
        }
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
}

#[test]
fn database_names_are_replaced() {
    assert_eq!(
        with_database("postgres://root@127.0.0.1:5432/test", "x"),
        "postgres://root@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://root@h/test?sslmode=disable", "x"),
        "postgres://root@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://root@h", "x"),
        "postgres://root@h/x"
    );
}
