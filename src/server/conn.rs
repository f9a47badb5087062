//! Accepting connections with limits. `axum::serve` reads headers and bodies for as long as a
//! client cares to trickle them and accepts every connection: 200 connections trickling headers
//! were all still open after 70 s, without a token. Here each connection gets a header read
//! timeout (which hyper also runs while a keep-alive connection waits for its next request, so
//! it is the idle timeout too), and at most `max_connections` are served at once; past that the
//! listener stops accepting until one closes (new clients wait in the kernel's backlog). The body
//! read timeout is the intake's (`intake.rs`), the only handler that reads a body.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The limits one connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time to receive a request's whole header block, and the longest a keep-alive connection
    /// may wait idle for its next request.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long open connections get to finish once `stop` fires.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `stop` fires, then lets open connections finish their
/// requests (up to `limits.drain`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // EMFILE and friends: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = permit;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
}
