//! Reading one HTTP response within bounds, and naming what went wrong in transport: the
//! size limits on success and error bodies, and the mapping of a `reqwest` error to a
//! rate-limit [`Attempt`] with a message that carries no URL.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::error::sanitize_excerpt;
use super::rate_limit::Attempt;

/// A response read to the end.
/// A response read within the limits: status, headers and (at most a limit of) its body.
pub(super) struct RawResponse {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

/// Describe a transport error without its URL: kind, then the source chain.
pub(super) fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "response body cut off"
    } else {
        "no response"
    };
    let mut parts = vec![kind.to_owned()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    sanitize_excerpt(&parts.join(": "), 300)
}

pub(super) fn classify_transport(e: &reqwest::Error, detail: &str) -> Attempt {
    let lower = detail.to_ascii_lowercase();
    // rustls speaks of certificates, handshakes, alerts and corrupt records (a plain-HTTP
    // server answered a TLS hello); none of these heals by retrying.
    const TLS_WORDS: [&str; 7] = [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
        "alert",
        "ssl",
    ];
    if TLS_WORDS.iter().any(|w| lower.contains(w)) {
        Attempt::TlsFailed
    } else if e.is_connect() {
        Attempt::ConnectFailed
    } else {
        Attempt::NoResponse
    }
}

/// The most bytes of a successful response glmirror reads: a page of 100 projects is well
/// under 1 MiB, so anything this large is a broken server or proxy, and reading on could
/// exhaust memory.
pub(super) const MAX_BODY_BYTES: usize = 16 << 20;

/// The most bytes of an error response read: only a short excerpt of it is ever shown.
pub(super) const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// Why reading a response failed.
pub(super) enum ReadError {
    /// The transport failed (connect, TLS, timeout, a cut-off body).
    Transport(reqwest::Error),
    /// A successful response's body is larger than [`MAX_BODY_BYTES`]: reading stopped there.
    TooLarge,
}

/// Send a request and read the response, at most [`MAX_BODY_BYTES`] of a success (more is
/// [`ReadError::TooLarge`], found from `Content-Length` or while streaming) and the first
/// [`MAX_ERROR_BODY_BYTES`] of an error. Dropping a response that was not read to its end
/// closes its connection, so the rest is never received.
pub(super) async fn read_response(
    request: reqwest::RequestBuilder,
) -> Result<RawResponse, ReadError> {
    let mut response = request.send().await.map_err(ReadError::Transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let success = status.is_success();
    let limit = if success { MAX_BODY_BYTES } else { MAX_ERROR_BODY_BYTES };
    if success && response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            if success {
                return Err(ReadError::TooLarge);
            }
            body.extend_from_slice(&chunk[..limit - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawResponse { status, headers, body })
}

/// What an oversized response is reported as.
pub(super) fn too_large_detail() -> String {
    format!(
        "the response body is larger than {} MiB; glmirror stopped reading it (a broken server \
         or proxy?)",
        MAX_BODY_BYTES >> 20
    )
}
