//! The accept loop. A hand-rolled hyper loop (rather than `axum::serve`)
//! lets the fault plan drop a connection without answering, with an RST.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sim::Sim;
use crate::{ai, control, gateway, graphql, raw, rest};

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/graphql", post(graphql::handle))
        .route("/rate_limit", get(rest::rate_limit))
        .route("/repos/{owner}/{repo}", get(rest::repo))
        .route("/repos/{owner}/{repo}/{*rest}", get(rest::repo_sub))
        .route("/repositories/{id}", get(rest::repo_by_id))
        .route("/repositories/{id}/{*rest}", get(rest::repo_by_id_sub))
        .route("/raw/{*path}", get(raw::serve))
        .route(
            "/client/v4/accounts/{account}/ai/run/{*model}",
            post(ai::run_rest),
        )
        .route("/_sim/ai-binding/{*model}", post(ai::run_binding))
        .route("/_sim/mutate", post(control::mutate))
        .route(
            "/_sim/faults",
            post(control::set_faults)
                .get(control::get_faults)
                .delete(control::clear_faults),
        )
        .route("/_sim/tokens", get(control::get_tokens))
        .route("/_sim/tokens/revoke", post(control::revoke_token))
        .route("/_sim/tokens/restore", post(control::restore_token))
        .route(
            "/_sim/limits",
            get(control::get_limits).post(control::set_limits),
        )
        .route(
            "/_sim/ai/quota",
            get(control::get_ai_quota).post(control::set_ai_quota),
        )
        .route("/_sim/reset", post(control::reset))
        .route("/_sim/counters", get(control::counters))
        .route("/_sim/counters/reset", post(control::reset_counters))
        .route("/_sim/truth", get(control::truth))
        .route("/_sim/health", get(control::health))
        .fallback(control::not_found)
        .with_state(sim)
}

/// A TCP stream that resets (SO_LINGER 0) instead of closing gracefully
/// when the fault plan asked for it.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until `shutdown` flips to true.
pub(crate) async fn run(listener: TcpListener, sim: Arc<Sim>, mut shutdown: watch::Receiver<bool>) {
    let router = router(sim.clone());
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            inner: stream,
            reset: reset.clone(),
        });
        let sim = sim.clone();
        let router = router.clone();
        connections.spawn(serve_connection(io, sim, router, peer, reset));
    }
    connections.shutdown().await;
}

async fn serve_connection(
    io: TokioIo<ResettableStream>,
    sim: Arc<Sim>,
    router: Router,
    peer: SocketAddr,
    reset: Arc<AtomicBool>,
) {
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let sim = sim.clone();
        let router = router.clone();
        let reset = reset.clone();
        async move {
            let req = req.map(axum::body::Body::new);
            let result = gateway::serve(sim, router, req, peer).await;
            if result.is_err() {
                reset.store(true, Ordering::SeqCst);
            }
            result
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}
