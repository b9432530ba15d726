//! A small HTTP CONNECT proxy on 127.0.0.1 for `HTTPS_PROXY`: it tunnels `NAME:443` for the
//! stand-in's host names to the stand-in's TLS listener (so clients check certificates for
//! the real names) and refuses, and records, everything else. Every CONNECT target is
//! recorded, so a test can prove that no connection left this machine.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Shared;

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRecord {
    /// `host:port` of a CONNECT, or the method and target of anything else.
    pub target: String,
    /// Whether it was tunnelled to the stand-in.
    pub allowed: bool,
}

const MAX_HEAD: usize = 8 * 1024;

pub(super) fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    upstream: SocketAddr,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                if let Err(e) = handle(conn, &shared, upstream).await {
                    tracing::debug!("githost proxy: {e}");
                }
            });
        }
    })
}

async fn handle(mut conn: TcpStream, shared: &Shared, upstream: SocketAddr) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if head.len() > MAX_HEAD {
            return refuse(&mut conn, "431 Request Header Fields Too Large").await;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let first = text.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !method.eq_ignore_ascii_case("CONNECT") {
        shared.record_connect(format!("{method} {}", strip_userinfo(target)), false);
        return refuse(&mut conn, "403 Forbidden").await;
    }
    let target = target.to_ascii_lowercase();
    let allowed = match target.rsplit_once(':') {
        Some((host, "443")) => shared.serves(host),
        _ => false,
    };
    shared.record_connect(target, allowed);
    if !allowed {
        return refuse(&mut conn, "403 Forbidden").await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    if head.len() > end {
        up.write_all(&head[end..]).await?;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
    Ok(())
}

async fn refuse(conn: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    conn.write_all(reply.as_bytes()).await?;
    conn.shutdown().await
}

/// A proxy request target without any `user:password@`.
fn strip_userinfo(target: &str) -> String {
    match url::Url::parse(target) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => crate::redact::mask_userinfo(target),
    }
}
