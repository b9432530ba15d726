//! The stand-in for a simulator fixture: the git hosts its mirrors point at, derived from the
//! fixture's remote model (`remotes` in `fixtures/sim/demo.json`) so the two cannot disagree.
//!
//! Each remote host becomes a virtual host in its host's style (github.com: GitHub,
//! gitlab.com: GitLab, bitbucket.org: Bitbucket, any other: plain http-backend). Its
//! repositories are the ones the fixture's mirrors name on it, except `missing` ones; every
//! credential the host accepts is an account with write access, except on `restricted`
//! repositories, which only their own list may use; `public`/`public_repos` are readable by
//! anyone; `dumb_http`/`dumb_repos` are served as dumb HTTP. Extra credentials (a test's
//! canary service token, the simulator's `remote_accepts`) become accounts named `svc`,
//! `svc-2`, … on their host. Repositories of one kind share one backing repository, so a
//! fixture of thousands of mirrors starts in a moment.
//!
//! What the stand-in cannot answer like the simulator: `requires_dot_git` on a plain host (it
//! serves the path without `.git`), `redirect_302`, SSH. A credential accepted as a token
//! alone (`password: null`) works on the GitHub style only.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretString;

use super::{AccountSpec, GitHostOptions, HostSpec, HostStyle, RepoContent, RepoSpec};
use crate::sim::fixture::{Credential, RemoteHost};
use crate::sim::{Fixture, RemoteAccept};

/// The account name of the `n`-th (0-based) extra credential on a host: `svc`, `svc-2`, …
pub(crate) fn extra_account(n: usize) -> String {
    if n == 0 { super::scenario::SERVICE_ACCOUNT.to_owned() } else { format!("svc-{}", n + 1) }
}

/// The stand-in's setup for `fixture`'s remote hosts, plus `extra` credentials.
pub fn from_fixture(fixture: &Fixture, extra: &[RemoteAccept]) -> GitHostOptions {
    let repos = repositories(fixture);
    let mut remotes: BTreeMap<String, RemoteHost> = BTreeMap::new();
    for r in &fixture.remotes {
        remotes.insert(r.host.to_ascii_lowercase(), r.clone());
    }
    for e in extra {
        remotes.entry(e.host.to_ascii_lowercase()).or_insert_with(|| RemoteHost {
            host: e.host.to_ascii_lowercase(),
            ..RemoteHost::default()
        });
    }
    let hosts = remotes
        .into_iter()
        .map(|(name, remote)| {
            let extras: Vec<Credential> = extra
                .iter()
                .filter(|e| e.host.eq_ignore_ascii_case(&name))
                .map(|e| Credential { user: e.user.clone(), password: e.password.clone() })
                .collect();
            host(&name, &remote, &extras, repos.get(&name).map(Vec::as_slice).unwrap_or(&[]))
        })
        .collect();
    GitHostOptions::new(hosts)
}

fn style(host: &str) -> HostStyle {
    match host {
        "github.com" => HostStyle::GitHub,
        "gitlab.com" => HostStyle::GitLab,
        "bitbucket.org" => HostStyle::Bitbucket,
        _ => HostStyle::Plain,
    }
}

/// An account for one accepted credential (`None` for one that accepts nothing).
fn account(name: &str, c: &Credential) -> Option<AccountSpec> {
    let secret = |s: &str| SecretString::from(s.to_owned());
    Some(match (&c.user, &c.password) {
        (Some(u), Some(p)) => AccountSpec::new(name, &secret(p)).username(u),
        (None, Some(p)) => AccountSpec::new(name, &secret(p)),
        // The token as the username, no password (GitHub's form).
        (Some(u), None) => AccountSpec::new(name, &secret(u)),
        (None, None) => return None,
    })
}

fn host(name: &str, remote: &RemoteHost, extra: &[Credential], paths: &[String]) -> HostSpec {
    let mut spec = HostSpec::new(name, style(name));
    let mut everyone = Vec::new();
    let mut known: Vec<(Credential, String)> = Vec::new();
    for (i, c) in remote.accept.iter().enumerate() {
        if let Some(a) = account(&format!("fixture-{}", i + 1), c) {
            known.push((c.clone(), a.name.clone()));
            everyone.push(a.name.clone());
            spec = spec.account(a);
        }
    }
    for (i, c) in extra.iter().enumerate() {
        if let Some(a) = account(&extra_account(i), c) {
            everyone.push(a.name.clone());
            spec = spec.account(a);
        }
    }
    let same = |path: &str, list: &[String]| {
        list.iter().any(|r| r.trim_end_matches(".git") == path.trim_end_matches(".git"))
    };
    for path in paths {
        if same(path, &remote.missing) {
            continue;
        }
        let dumb = remote.dumb_http || same(path, &remote.dumb_repos);
        let content = if dumb { RepoContent::Dumb } else { RepoContent::Commit };
        let mut repo = RepoSpec::new(path, content).shared_as(if dumb { "dumb" } else { "commit" });
        if remote.public || same(path, &remote.public_repos) {
            repo = repo.public();
        }
        let restricted =
            remote.restricted.iter().find(|r| same(path, std::slice::from_ref(&r.repo)));
        let allowed: Vec<String> = match restricted {
            None => everyone.clone(),
            Some(r) => r
                .accept
                .iter()
                .filter_map(|c| {
                    if let Some((_, name)) = known.iter().find(|(k, _)| k == c) {
                        return Some(name.clone());
                    }
                    let a = account(&format!("fixture-r{}", known.len() + 1), c)?;
                    known.push((c.clone(), a.name.clone()));
                    let n = a.name.clone();
                    spec.accounts.push(a);
                    Some(n)
                })
                .collect(),
        };
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        spec = spec.repo(repo.write(&allowed));
    }
    spec
}

/// Every repository path (with `.git`) the fixture's mirrors name, by host.
fn repositories(fixture: &Fixture) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let urls = fixture.projects.iter().flat_map(|p| {
        p.pull
            .iter()
            .map(|m| m.import_url.as_str())
            .chain(p.remote_mirrors.iter().map(|m| m.url.as_str()))
    });
    for url in urls {
        if let Some((host, path)) = host_and_path(url) {
            out.entry(host).or_default().insert(path);
        }
    }
    out.into_iter().map(|(host, paths)| (host, paths.into_iter().collect())).collect()
}

/// `(host, path.git)` of a mirror URL (a `scheme://` URL or an SCP-like `user@host:path`).
fn host_and_path(url: &str) -> Option<(String, String)> {
    let (host, path) = if url.contains("://") {
        let u = url::Url::parse(url).ok()?;
        (u.host_str()?.to_ascii_lowercase(), u.path().to_owned())
    } else {
        let rest = url.rsplit_once('@').map_or(url, |(_, r)| r);
        let (h, p) = rest.split_once(':')?;
        (h.to_ascii_lowercase(), p.to_owned())
    };
    let path = path.trim_matches('/');
    if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return None;
    }
    let path = if path.ends_with(".git") { path.to_owned() } else { format!("{path}.git") };
    Some((host, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fixture_becomes_its_hosts() {
        let extra = [RemoteAccept {
            host: "github.com".into(),
            user: Some("ghp_CANARYextra".into()),
            password: None,
        }];
        let opts = from_fixture(&Fixture::demo(), &extra);
        let gh = opts.hosts.iter().find(|h| h.name == "github.com").expect("github.com");
        assert_eq!(gh.style, HostStyle::GitHub);
        let repo = |path: &str| gh.repos.iter().find(|r| r.path == path);
        assert!(repo("acme/old-sdk.git").is_none(), "missing repositories are not served");
        assert!(repo("acme/linux-tools.git").expect("public").public);
        assert_eq!(repo("acme/legacy-wiki.git").expect("dumb").content, RepoContent::Dumb);
        assert!(repo("acme/svn-bridge.git").is_some(), "a URL without .git names the repo");
        assert!(repo("acme/deploy-scripts.git").is_some(), "SCP-like URLs count");
        let api = repo("acme/api-gateway.git").expect("api-gateway");
        assert!(api.write.iter().any(|a| a == "svc"), "the extra credential may write");
        let payroll = repo("acme/payroll.git").expect("payroll");
        assert!(!payroll.write.iter().any(|a| a == "svc"), "restricted: {payroll:?}");
        assert_eq!(payroll.write.len(), 1, "only mwilson: {payroll:?}");
        let mwilson = gh.accounts.iter().find(|a| a.name == payroll.write[0]).unwrap();
        assert_eq!(mwilson.username.as_deref(), Some("mwilson"));
        assert!(gh.accounts.iter().any(|a| a.name == "svc" && a.username.is_none()));
        let names: Vec<&str> = opts.hosts.iter().map(|h| h.name.as_str()).collect();
        for h in ["gitlab.com", "bitbucket.org", "dumb.example.net", "dev.azure.com"] {
            assert!(names.contains(&h), "{names:?}");
        }
        assert!(!format!("{opts:?}").contains("CANARY"), "accounts hold secrets only");
    }
}
