//! Lazy pagination: GitLab list endpoints as `Stream`s that fetch one page at a time.
//!
//! Keyset pagination (`/projects`) follows the `Link: <…>; rel="next"` header exactly and
//! never builds a next URL itself; offset pagination (`/groups/:id/projects`,
//! `/projects/:id/remote_mirrors`) follows `rel="next"` or `X-Next-Page`. Both stop at an
//! empty page or when no next page is announced, and never trust `X-Total` (GitLab omits it
//! above 10,000 rows). Source: `doc/api/rest/_index.md` (Pagination).

use std::collections::VecDeque;

use futures::Stream;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use url::Url;

use super::client::GitLabClient;
use super::error::GitLabError;
use crate::redact::mask_userinfo;

/// Which pagination scheme an endpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageMode {
    /// `pagination=keyset`: only `Link rel="next"` is followed.
    Keyset,
    /// `page=`: `Link rel="next"`, else `X-Next-Page`.
    Offset,
}

/// The target of the `rel="next"` entry of one or more `Link` header values (RFC 8288).
pub(crate) fn link_next<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    values.into_iter().find_map(|value| {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let tail = &after[close + 1..];
            let params_end = tail.find('<').unwrap_or(tail.len());
            let params = &tail[..params_end];
            let is_next = params.split(';').any(|p| {
                let Some((key, val)) = p.trim().split_once('=') else {
                    return false;
                };
                key.trim().eq_ignore_ascii_case("rel")
                    && val
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target);
            }
            rest = tail;
        }
        None
    })
}

/// Work out the URL of the page after `current`, or `None` at the end.
///
/// A next link must stay on the origin of `base` (scheme, host and port): the token is
/// sent with every page, so a link elsewhere is an error, never followed.
pub(crate) fn next_page_url(
    base: &Url,
    current: &Url,
    headers: &HeaderMap,
    mode: PageMode,
) -> Result<Option<Url>, String> {
    let links = headers.get_all("link").iter().filter_map(|v| v.to_str().ok());
    if let Some(target) = link_next(links) {
        let next =
            current.join(target.trim()).map_err(|e| format!("unreadable next-page link ({e})"))?;
        if next.origin() != base.origin() {
            let mut shown = next.clone();
            shown.set_query(None);
            return Err(format!(
                "next-page link points to another origin ({}); not followed",
                mask_userinfo(shown.as_str())
            ));
        }
        if next == *current {
            return Err("next-page link points to the same page".to_owned());
        }
        return Ok(Some(next));
    }
    if mode == PageMode::Keyset {
        return Ok(None);
    }
    let next_page = headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(page) = next_page else {
        return Ok(None);
    };
    let page: u64 = page.parse().map_err(|_| "unreadable X-Next-Page header".to_owned())?;
    let mut next = current.clone();
    let kept: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = next.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("page", &page.to_string());
    }
    if next == *current {
        return Err("X-Next-Page points to the same page".to_owned());
    }
    Ok(Some(next))
}

struct PageState<T> {
    next: Option<Url>,
    items: VecDeque<T>,
    error: Option<GitLabError>,
    /// The next page, already requested while this one is consumed.
    ahead: Option<(Url, Prefetch<T>)>,
}

/// A page fetch running in the background; dropping it (the stream was dropped) cancels it.
struct Prefetch<T>(tokio::task::JoinHandle<Result<(Vec<T>, HeaderMap), GitLabError>>);

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stream every item of a paginated list starting at `first`. While a page is consumed the
/// next one is already being fetched (one page ahead: list pages then cost no idle round
/// trip), so memory stays at two pages. After an error the stream yields it and ends.
pub(crate) fn paginate<'a, T>(
    client: &'a GitLabClient,
    first: Url,
    mode: PageMode,
) -> impl Stream<Item = Result<T, GitLabError>> + Send + 'a
where
    T: DeserializeOwned + Send + 'static,
{
    let state = PageState { next: Some(first), items: VecDeque::new(), error: None, ahead: None };
    futures::stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(item) = st.items.pop_front() {
                return Some((Ok(item), st));
            }
            if let Some(err) = st.error.take() {
                return Some((Err(err), st));
            }
            let (url, page) = match st.ahead.take() {
                Some((url, mut fetch)) => {
                    let page = match (&mut fetch.0).await {
                        Ok(page) => page,
                        Err(join) => Err(client.protocol_error(
                            "GET",
                            &url,
                            format!("page fetch stopped: {join}"),
                        )),
                    };
                    (url, page)
                }
                None => {
                    let url = st.next.take()?;
                    let page = client.get_page::<T>(&url).await;
                    (url, page)
                }
            };
            match page {
                Ok((items, headers)) => {
                    if items.is_empty() {
                        return None;
                    }
                    match next_page_url(client.base_url(), &url, &headers, mode) {
                        Ok(Some(next)) => {
                            let (c, u) = (client.clone(), next.clone());
                            let fetch = tokio::spawn(async move { c.get_page::<T>(&u).await });
                            st.ahead = Some((next, Prefetch(fetch)));
                        }
                        Ok(None) => {}
                        Err(detail) => {
                            st.error = Some(client.protocol_error("GET", &url, detail));
                        }
                    }
                    st.items.extend(items);
                }
                Err(e) => return Some((Err(e), st)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn finds_the_next_link() {
        let gitlab = r#"<https://gl.example/api/v4/projects?id_after=42&order_by=id&pagination=keyset&per_page=100&sort=asc>; rel="next""#;
        assert_eq!(
            link_next([gitlab]),
            Some(
                "https://gl.example/api/v4/projects?id_after=42&order_by=id&pagination=keyset&per_page=100&sort=asc"
            )
        );
        let offset = r#"<https://h/api/v4/x?page=1>; rel="prev", <https://h/api/v4/x?page=3>; rel="next", <https://h/api/v4/x?page=1>; rel="first""#;
        assert_eq!(link_next([offset]), Some("https://h/api/v4/x?page=3"));
        assert_eq!(link_next([r#"<https://h/a>; rel="first last""#]), None);
        assert_eq!(link_next([r#"<https://h/a>; REL=next"#]), Some("https://h/a"));
        assert_eq!(
            link_next([r#"<https://h/a>; rel="prev""#, r#"<https://h/b>; rel="next""#]),
            Some("https://h/b")
        );
        assert_eq!(link_next(["garbage"]), None);
        assert_eq!(link_next(["<unterminated"]), None);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn next_page_rules() {
        let base = Url::parse("https://gl.example/").unwrap();
        let cur =
            Url::parse("https://gl.example/api/v4/groups/3/projects?per_page=100&page=2").unwrap();
        // Offset: X-Next-Page replaces page, keeps the other parameters.
        let next = next_page_url(&base, &cur, &headers(&[("x-next-page", "3")]), PageMode::Offset)
            .unwrap()
            .unwrap();
        assert_eq!(
            next.as_str(),
            "https://gl.example/api/v4/groups/3/projects?per_page=100&page=3"
        );
        // Empty X-Next-Page: the end. X-Total is never consulted.
        let end = headers(&[("x-next-page", ""), ("x-total", "9999")]);
        assert_eq!(next_page_url(&base, &cur, &end, PageMode::Offset).unwrap(), None);
        // Keyset ignores X-Next-Page.
        let h = headers(&[("x-next-page", "3")]);
        assert_eq!(next_page_url(&base, &cur, &h, PageMode::Keyset).unwrap(), None);
        // A foreign origin is refused, credentials masked, query dropped.
        let h = headers(&[(
            "link",
            r#"<https://u:pw@evil.example/api/v4/projects?private_token=x>; rel="next""#,
        )]);
        let err = next_page_url(&base, &cur, &h, PageMode::Keyset).unwrap_err();
        assert!(
            err.contains("evil.example") && !err.contains("pw") && !err.contains("private_token"),
            "{err}"
        );
        // Another scheme or port on the same host is another origin too.
        let h =
            headers(&[("link", r#"<http://gl.example/api/v4/projects?id_after=1>; rel="next""#)]);
        assert!(next_page_url(&base, &cur, &h, PageMode::Keyset).is_err());
        let h = headers(&[("link", r#"<https://gl.example:8443/api/v4/projects>; rel="next""#)]);
        assert!(next_page_url(&base, &cur, &h, PageMode::Keyset).is_err());
        // A link to the current page would loop forever.
        let h = headers(&[("link", &format!("<{cur}>; rel=\"next\""))]);
        assert!(next_page_url(&base, &cur, &h, PageMode::Offset).is_err());
    }
}
