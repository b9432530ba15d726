//! Where a request's token comes from (`PRIVATE-TOKEN`, `Authorization: Bearer`, or the
//! `private_token`/`access_token` query parameter); shared by authentication and the fault
//! layer's rate-limit keys.

use axum::http::{HeaderMap, header};

/// The token a request carries (header or query), used as the rate-limit key.
pub(crate) fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_owned());
        }
    }
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "private_token" || k == "access_token")
        .map(|(_, v)| v.into_owned())
}
