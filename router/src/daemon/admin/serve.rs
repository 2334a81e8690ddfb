//! Connections to the admin address: accepted on the admin thread's own small tokio runtime,
//! each served concurrently by hyper (HTTP/1.1, one request per connection), optionally over
//! TLS, within bounds that no client can stretch:
//!
//! - at most [`MAX_CONNECTIONS`] at once; past that, new ones wait in the kernel's backlog;
//! - the TLS handshake and then the request head must each be done within
//!   [`HEADER_TIMEOUT`], the body within [`BODY_TIMEOUT`] and at most [`MAX_BODY`] bytes;
//! - a connection lasts at most [`CONNECTION_TIMEOUT`] from accept, TLS handshake and the
//!   wait for a reload included, so a client that stops reading its response is let go too.
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::access::Conn;
use super::routes::reply;

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_BODY: usize = 64 * 1024;
/// Longer than a reload or a replay may take (60 s), with room to write the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(90);

/// Accepts and serves connections for ever.
pub async fn accept_loop(listener: std::net::TcpListener, tls: Option<TlsAcceptor>, app: Router) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("admin: cannot serve the admin address: {e}");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!("admin: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = tcp.local_addr() else {
            continue;
        };
        let conn = Conn {
            local,
            peer,
            tls: tls.is_some(),
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let served = tokio::time::timeout(CONNECTION_TIMEOUT, serve(tcp, tls, app, conn)).await;
            match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("admin: connection from {peer}: {e}"),
                Err(_) => tracing::debug!("admin: connection from {peer} took too long; closed"),
            }
            drop(permit);
        });
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve(
    tcp: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    conn: Conn,
) -> Result<(), BoxError> {
    match tls {
        Some(acceptor) => {
            // The handshake gets the time a request head gets.
            let stream = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await??;
            http(stream, app, conn).await
        }
        None => http(tcp, app, conn).await,
    }
}

async fn http(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    app: Router,
    conn: Conn,
) -> Result<(), BoxError> {
    let service = TowerToHyperService::new(app.layer(Extension(conn)));
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_BODY)
        .serve_connection(TokioIo::new(io), service)
        .await?;
    Ok(())
}

/// Reads the whole request body (bounded in size and time) before any route sees it, so that
/// no route can be kept waiting by a client that sends its body slowly.
pub async fn bounded_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => reply(413, format!("the request body is over {MAX_BODY} bytes\n")),
        Err(_) => reply(408, "the request body did not arrive in time\n".into()),
    }
}
