//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2, bounded and gracefully stoppable.
//!
//! `axum::serve` speaks plain TCP only, so this follows axum's low-level-rustls example: accept,
//! handshake (with a timeout), then hand the connection to hyper (HTTP/2 when ALPN chose it,
//! HTTP/1.1 otherwise). A semaphore bounds open connections, [`ConnectionCount`] the connections
//! of one client; every connection has a maximum age and is closed when it sits idle; a shutdown
//! signal stops accepting and lets requests in flight finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::admission::ConnectionCount;
use crate::config::Limits;
use crate::request_parts::ConnectionInfo;

/// A connection is closed gracefully after this long, so no client holds a slot forever.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);

/// Serves `app` on `listener` until `shutdown` turns true, then waits up to
/// `limits.shutdown_grace` for requests in flight and closes what is left.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    clients: Arc<ConnectionCount>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(error = %e, "listener has no local address");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let http1 = Arc::new(builder(&limits, Protocol::Http1));
    let http2 = Arc::new(builder(&limits, Protocol::Http2));
    let mut connections = JoinSet::new();

    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, %local, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let Some(counted) = clients.open(peer.ip()) else {
            // Closing at once costs less than any answer; a real client behind the same address
            // retries when one of its own connections is done.
            tracing::debug!(%peer, "connection refused: this client has its share of connections open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let (http1, http2) = (http1.clone(), http2.clone());
        let limits = limits.clone();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _counted = counted;
            let info = ConnectionInfo { peer };
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        limits.handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    // ALPN decides the protocol, so no bytes are sniffed without a timeout.
                    let builder = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        http2
                    } else {
                        http1
                    };
                    serve_connection(stream, app, info, &builder, &limits, stop).await;
                }
                None => {
                    // The redirect site speaks HTTP/1.1 only; a client that connects and sends
                    // nothing is dropped after the header timeout.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(limits.header_timeout, stream.peek(&mut first)).await
                    {
                        Ok(Ok(n)) if n > 0 => {
                            serve_connection(stream, app, info, &http1, &limits, stop).await
                        }
                        _ => tracing::debug!(%peer, "no request within the header timeout"),
                    }
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(%local, grace = ?limits.shutdown_grace, "connections still open after the grace period; closing them");
        connections.shutdown().await;
    }
}

/// HTTP/2 flow-control window, per stream and per connection: the protocol's initial 65,535
/// bytes, which is also the largest body any endpoint reads.
const H2_WINDOW: u32 = 65_535;

#[derive(Clone, Copy)]
enum Protocol {
    Http1,
    Http2,
}

fn builder(limits: &Limits, protocol: Protocol) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(100)
        .max_buf_size(64 * 1024);
    // HTTP/2: a client may park at most one small window of unread body per connection (the
    // default 1 MiB windows would let 20,000 connections hold 20 GiB), open few streams at once,
    // and reset only a few of them before the connection is closed (CVE-2023-44487).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(16)
        .initial_stream_window_size(H2_WINDOW)
        .initial_connection_window_size(H2_WINDOW)
        .adaptive_window(false)
        .max_frame_size(16 * 1024)
        .max_send_buf_size(64 * 1024)
        .max_header_list_size(16 * 1024)
        .max_pending_accept_reset_streams(Some(16))
        .max_local_error_reset_streams(Some(64))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
    }
}

/// Runs one connection until it ends, the server shuts down, or it reaches its maximum age;
/// the last two close it gracefully (requests in flight finish) within the grace period.
async fn serve_connection<S>(
    stream: S,
    app: Router,
    info: ConnectionInfo,
    builder: &auto::Builder<TokioExecutor>,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = info.peer;
    let activity = Arc::new(Activity::new());
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(info.clone());
        let busy = tracked.begin();
        let answer = app.clone().oneshot(request);
        async move {
            let response = answer.await;
            drop(busy);
            response
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        () = stopped(&mut shutdown) => {}
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
        () = activity.idle(limits.header_timeout, limits.idle_timeout) => {
            tracing::debug!(%peer, "idle connection closed");
        }
    }
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(limits.shutdown_grace, conn)
        .await
        .is_err()
    {
        tracing::debug!(%peer, "connection closed after the grace period");
    }
}

/// Requests in progress on one connection and when the last one ended, so that a connection with
/// nothing to do (an HTTP/2 client that never sends its preface or a request, an HTTP/1.1
/// keep-alive left open) is closed instead of holding its place until its maximum age.
struct Activity {
    started: tokio::time::Instant,
    in_progress: AtomicUsize,
    /// Milliseconds after `started` at which the connection last became idle; `u64::MAX` while it
    /// has served nothing yet.
    idle_since_ms: AtomicU64,
}

/// Marks a request in progress until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(u64::MAX),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Resolves once the connection has been idle for `idle` (or for `first` before its first
    /// request).
    async fn idle(&self, first: Duration, idle: Duration) {
        let mut deadline = self.started + first;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.in_progress.load(Ordering::SeqCst) > 0 {
                deadline = tokio::time::Instant::now() + idle;
                continue;
            }
            let since = match self.idle_since_ms.load(Ordering::SeqCst) {
                u64::MAX => return, // nothing asked within `first`
                ms => self.started + Duration::from_millis(ms),
            };
            if since + idle <= tokio::time::Instant::now() {
                return;
            }
            deadline = since + idle;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = self.0.started.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(ms, Ordering::SeqCst);
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves once the shutdown flag is set (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Drop the borrow guard before returning: it must not be held across an await.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}
