//! The standard stand-in world the tests (and `demo`) use: one service account `svc` with the
//! same token on every host, and one repository per probe result.
//!
//! | host (style) | repository | content | `svc` may | probe (pull / push) |
//! |---|---|---|---|---|
//! | github.com (GitHub) | `acme/api.git` | commit | write | `ok` / `ok` |
//! | | `acme/empty.git` | empty | write | `ok` (v2 hides emptiness) / `ok-empty` |
//! | | `acme/readonly.git` | commit | read | `ok` / `forbidden` |
//! | | `acme/private.git` | commit | — (only `person`) | `no-access-or-missing` |
//! | | `acme/old-name.git` | moved to `acme/api.git` | — | `redirect` |
//! | | `acme/public.git` | commit, public | read | `ok` |
//! | | `corp/sso.git` | SSO login page | — | `not-git` |
//! | | `bulk/*.git` | one shared commit | write | `ok` (any name: scale tests) |
//! | gitlab.example.com (GitLab, `svc` a service account) | `group/app.git` | commit | write | `ok`; `group/app` → `redirect` (adds `.git`) |
//! | | `group/hidden.git` | commit | — | `auth-rejected`, or `no-access-or-missing` when the watch found the token valid |
//! | | `group/empty.git` | empty | write | `ok` / `ok-empty` |
//! | | `bulk/*.git` | one shared commit | write | `ok` |
//! | bitbucket.org (Bitbucket, user `x-token-auth`) | `team/repo.git` | commit | read | `ok` / `forbidden` |
//! | | `team/secret.git` | commit | — | `auth-rejected` |
//! | | `bulk/*.git` | one shared commit | write | `ok` |
//! | git.example.com (plain http-backend) | `plain/repo.git` | commit | write | `ok` |
//! | | `dumb/repo.git` | dumb HTTP | read | `dumb-http` |
//! | | `plain/locked.git` | commit | — | `forbidden` |
//! | | anything else | — | — | `not-found` |
//! | ghe.example.com (GitHub) | `corp/tool.git` | commit | write | `ok` |
//!
//! Every host also knows `person` (a second token) for access-list contrasts. Token-watch
//! endpoints: api.github.com (for github.com), ghe.example.com `/api/v3/user`,
//! gitlab.example.com `/api/v4/personal_access_tokens/self`.

use secrecy::SecretString;

use super::{AccountSpec, GitHostOptions, HostSpec, HostStyle, RepoContent, RepoSpec};

/// The service account's name on every host.
pub(crate) const SERVICE_ACCOUNT: &str = "svc";
/// The other account's name on every host.
pub(crate) const PERSON: &str = "person";
/// The GitLab-style host.
pub const GITLAB_HOST: &str = "gitlab.example.com";
/// The plain git server (dumb and smart repositories).
pub const PLAIN_HOST: &str = "git.example.com";
/// The GitHub Enterprise host.
pub const GHE_HOST: &str = "ghe.example.com";
/// The Bitbucket Cloud username for access tokens.
pub const BITBUCKET_USER: &str = "x-token-auth";

/// The standard world with `service_token` for `svc` and `person_token` for `person`.
pub fn standard(service_token: &SecretString, person_token: &SecretString) -> GitHostOptions {
    use RepoContent::*;
    let svc = || AccountSpec::new(SERVICE_ACCOUNT, service_token);
    let person = || AccountSpec::new(PERSON, person_token);
    let s = &[SERVICE_ACCOUNT];
    let p = &[PERSON];
    let github = HostSpec::new("github.com", HostStyle::GitHub)
        .account(svc().scopes(&["repo"]))
        .account(person())
        .repo(RepoSpec::new("acme/api.git", Commit).write(s))
        .repo(RepoSpec::new("acme/empty.git", Empty).write(s))
        .repo(RepoSpec::new("acme/readonly.git", Commit).read(s))
        .repo(RepoSpec::new("acme/private.git", Commit).write(p))
        .repo(RepoSpec::new("acme/old-name.git", Moved { to: "acme/api.git".into() }))
        .repo(RepoSpec::new("acme/public.git", Commit).public())
        .repo(RepoSpec::new("corp/sso.git", LoginPage))
        .repo(RepoSpec::new("bulk/*.git", Commit).write(s));
    let gitlab = HostSpec::new(GITLAB_HOST, HostStyle::GitLab)
        .account(svc().service_account().scopes(&["read_repository", "write_repository"]))
        .account(person())
        .repo(RepoSpec::new("group/app.git", Commit).write(s))
        .repo(RepoSpec::new("group/hidden.git", Commit).write(p))
        .repo(RepoSpec::new("group/empty.git", Empty).write(s))
        .repo(RepoSpec::new("bulk/*.git", Commit).write(s));
    let bitbucket = HostSpec::new("bitbucket.org", HostStyle::Bitbucket)
        .account(svc().username(BITBUCKET_USER))
        .account(person().username(BITBUCKET_USER))
        .repo(RepoSpec::new("team/repo.git", Commit).read(s))
        .repo(RepoSpec::new("team/secret.git", Commit).write(p))
        .repo(RepoSpec::new("bulk/*.git", Commit).write(s));
    let plain = HostSpec::new(PLAIN_HOST, HostStyle::Plain)
        .account(svc())
        .account(person())
        .repo(RepoSpec::new("plain/repo.git", Commit).write(s))
        .repo(RepoSpec::new("dumb/repo.git", Dumb).read(s))
        .repo(RepoSpec::new("plain/locked.git", Commit).write(p));
    let ghe = HostSpec::new(GHE_HOST, HostStyle::GitHub)
        .account(svc())
        .repo(RepoSpec::new("corp/tool.git", Commit).write(s));
    GitHostOptions::new(vec![github, gitlab, bitbucket, plain, ghe])
}
