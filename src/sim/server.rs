//! The simulator's server plumbing: a listener whose connections can be cut without an answer
//! (the fault layer's dropped connections), the axum app that puts the fault layer in front of
//! the `/api/v4` router, and the `/__sim/*` control endpoints (simulator-only).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State as AxState;
use axum::extract::connect_info::Connected;
use axum::middleware;
use axum::routing::{get, put};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::faults::{self, ConnKill};
use super::state::Shared;
use super::{Faults, LoggedRequest};

/// A TCP listener whose connections carry a kill switch.
struct SimListener(TcpListener);

/// A connection that, once killed, fails every read and write, so hyper closes it without
/// sending a byte of the response.
struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl axum::serve::Listener for SimListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let _ = inner.set_nodelay(true);
                    let io = KillableStream { inner, killed: Arc::new(AtomicBool::new(false)) };
                    return (io, addr);
                }
                // Out of file descriptors and the like: back off briefly, like axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<axum::serve::IncomingStream<'_, SimListener>> for ConnKill {
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        ConnKill::new(Arc::clone(&stream.io().killed))
    }
}

fn killed_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "simulated dropped connection")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serve until `stop` resolves.
pub(crate) async fn serve_shared(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/__sim/requests", get(control_requests))
        .route("/__sim/state", get(control_state))
        .route("/__sim/faults", put(control_faults))
        .fallback(super::routes::api)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), faults::fault_layer))
        .with_state(shared);
    axum::serve(SimListener(listener), app.into_make_service_with_connect_info::<ConnKill>())
        .with_graceful_shutdown(stop)
        .await
}

async fn control_requests(AxState(shared): AxState<Arc<Shared>>) -> Json<Vec<LoggedRequest>> {
    Json(shared.lock().log.clone())
}

async fn control_state(AxState(shared): AxState<Arc<Shared>>) -> Json<super::StateSnapshot> {
    Json(shared.lock().snapshot())
}

async fn control_faults(
    AxState(shared): AxState<Arc<Shared>>,
    Json(f): Json<Faults>,
) -> Json<Faults> {
    faults::set(&mut shared.lock(), f.clone());
    Json(f)
}
