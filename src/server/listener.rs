//! The accept loop: connections bounded in number and in time, and a shutdown with a deadline.
//!
//! `axum::serve` has no header or body read timeout and no connection cap, so a thousand
//! clients sending a byte a second could hold the process's file descriptors forever. Here each
//! connection is served by hyper directly, with:
//! - a header read timeout ([`ServerConfig::header_read_timeout`]), which hyper also applies to
//!   the wait for the next request on a keep-alive connection, so idle connections close too;
//! - a body read timeout and a body limit, in the handlers (`read_body`);
//! - at most [`ServerConfig::max_connections`] open connections: one more is closed at once
//!   (counted in `/metrics`), so the process never runs out of file descriptors;
//! - on SIGINT/SIGTERM: the listener closes, idle connections close, in-flight requests get
//!   [`ServerConfig::shutdown_grace`] to finish, and whatever is left is then dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{AppState, ServerConfig, router};

/// Pause after a failed `accept` (such as running out of file descriptors), so the loop waits
/// for connections to close instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Bind and serve until SIGINT/SIGTERM (see the module docs). `on_bound` gets the actual address
/// (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    on_bound(listener.local_addr()?);
    serve_listener(listener, config, shutdown_signal()).await
}

/// Serve on a bound listener until `shutdown` resolves, then shut down within the grace period.
pub async fn serve_listener(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let grace = config.shutdown_grace;
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let state = Arc::new(AppState::new(config)?);
    let flusher = tokio::spawn(flush_sessions_periodically(Arc::clone(&state)));
    let service = TowerToHyperService::new(router(Arc::clone(&state)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the cap: closing now tells the client at once, where queueing would hang it.
            state.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(stream), service.clone()));
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            state.metrics.connection(true);
            if connection.await.is_err() {
                state.metrics.connection_dropped();
            }
            state.metrics.connection(false);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            // Stalled connections (half-sent headers, a body that never comes) are dropped with
            // the runtime when `serve` returns.
            eprintln!("triad serve: shutdown grace of {grace:?} over; dropping open connections");
        }
    }
    flusher.abort();
    flush_sessions(&state);
    Ok(())
}

/// Write changed sessions to the session directory, reporting (not failing on) an error: the
/// sessions stay in memory and dirty writes are retried at the next flush.
fn flush_sessions(state: &AppState) {
    if let Err(error) = state.sessions.flush() {
        eprintln!("triad serve: writing sessions: {error}");
    }
}

async fn flush_sessions_periodically(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(crate::online::store::DEFAULT_FLUSH_INTERVAL);
    loop {
        interval.tick().await;
        let state = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || flush_sessions(&state)).await;
    }
}
