//! Table and property tests for the URL rules (every rule and rejection of docs/url-rules.md).

use super::*;
use proptest::prelude::*;

fn rules() -> Rules {
    Rules {
        source_hosts: vec![
            SourceHost { host: "github.com".into(), user: None, port: None },
            SourceHost {
                host: "gitlab.example.com".into(),
                user: Some("oauth2".into()),
                port: None,
            },
            SourceHost {
                host: "bitbucket.org".into(),
                user: Some("x-token-auth".into()),
                port: None,
            },
            SourceHost { host: "dev.azure.com".into(), user: Some("svc".into()), port: None },
            SourceHost {
                host: "xn--bcher-kva.example".into(),
                user: Some("svc".into()),
                port: None,
            },
            SourceHost { host: "[2001:db8::1]".into(), user: Some("svc".into()), port: None },
            SourceHost {
                host: "git.corp.example".into(),
                user: Some("svc@corp".into()),
                port: None,
            },
            SourceHost {
                host: "git.ported.example".into(),
                user: Some("svc".into()),
                port: Some(8443),
            },
        ],
        maps: vec![
            PrefixMap {
                from: "https://github.com/old-org/".into(),
                to: "https://github.com/new-org/".into(),
            },
            PrefixMap {
                from: "https://github.com/old-org/special".into(),
                to: "https://gitlab.example.com/moved/special".into(),
            },
            PrefixMap {
                from: "https://legacy.example/".into(),
                to: "https://other.example/".into(),
            },
        ],
        prefer_https: false,
    }
}

fn rw(url: &str) -> Rewrite {
    rw_with(url, None, &rules())
}

fn rw_with(url: &str, last_error: Option<&str>, rules: &Rules) -> Rewrite {
    rewrite(&MirrorInput { url, direction: Direction::Pull, last_error }, rules)
}

/// (input, action, new_url, new_user, new_auth, fixes)
type Case = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Source host over https: credentials replaced, .git added.
    ("https://*****:*****@github.com/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "service-token"),
    ("https://*****@github.com/org/r", "update", "https://github.com/org/r.git", "<token>", "service", "add-dot-git;service-token"),
    ("https://github.com/org/r/", "update", "https://github.com/org/r.git", "<token>", "service", "add-dot-git;service-token"),
    ("https://github.com/org/r.git/", "update", "https://github.com/org/r.git", "<token>", "service", "service-token"),
    ("https://github.com/org/r.GIT", "update", "https://github.com/org/r.GIT", "<token>", "service", "service-token"),
    ("https://github.com:443/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "service-token"),
    ("https://github.com/org/r.git#frag", "update", "https://github.com/org/r.git", "<token>", "service", "service-token"),
    ("HTTPS://GitHub.COM/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "service-token;lowercase-host"),
    // Credentials are scoped to host and port: the default port unless the source host names one.
    ("https://gitlab.example.com:8443/g/sub/r", "skip", "", "", "", ""),
    ("https://*****:*****@github.com:8443/org/r.git", "skip", "", "", "", ""),
    ("https://github.com:8443/org/r", "skip", "", "", "", ""),
    ("https://git.ported.example:8443/g/r", "update", "https://git.ported.example:8443/g/r.git", "svc", "service", "add-dot-git;service-token"),
    ("https://*****:*****@git.ported.example:8443/g/r.git", "update", "https://git.ported.example:8443/g/r.git", "svc", "service", "service-token"),
    ("https://*****:*****@git.ported.example/g/r.git", "skip", "", "", "", ""),
    ("https://git.ported.example:443/g/r.git", "skip", "", "", "", ""),
    ("http://git.ported.example/g/r.git", "update", "https://git.ported.example:8443/g/r.git", "svc", "service", "to-https;service-token"),
    ("git://git.ported.example/g/r.git", "update", "https://git.ported.example:8443/g/r.git", "svc", "service", "to-https;service-token"),
    // to-https.
    ("http://github.com/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "to-https;service-token"),
    ("http://github.com:80/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "to-https;service-token"),
    ("git://github.com/org/r", "update", "https://github.com/org/r.git", "<token>", "service", "to-https;add-dot-git;service-token"),
    ("git://github.com:9418/org/r.git", "update", "https://github.com/org/r.git", "<token>", "service", "to-https;service-token"),
    ("http://github.com:8080/org/r.git", "manual", "", "", "", ""),
    ("git://github.com:9419/org/r.git", "manual", "", "", "", ""),
    // decode-user.
    ("https://svc%2540corp:*****@git.corp.example/r.git", "update", "https://git.corp.example/r.git", "svc@corp", "service", "decode-user;service-token"),
    ("https://svc%40corp:pw@git.corp.example/r.git", "update", "https://git.corp.example/r.git", "svc@corp", "service", "decode-user;service-token"),
    ("https://svc%2540corp:*****@other.example/r.git", "manual", "", "", "", ""),
    // bitbucket-owner.
    ("https://bitbucket.org/team/r.git", "update", "https://bitbucket.org/team/r.git", "x-token-auth", "service", "service-token;bitbucket-owner"),
    ("https://bitbucket.org/team/r/", "update", "https://bitbucket.org/team/r.git", "x-token-auth", "service", "add-dot-git;service-token;bitbucket-owner"),
    // Bitbucket Cloud paths are exactly workspace/repo: anything else is not guessed at.
    ("https://bitbucket.org/repo.git", "manual", "", "", "", ""),
    ("https://*****@bitbucket.org/repo", "manual", "", "", "", ""),
    ("https://bitbucket.org/team/r/src/master", "manual", "", "", "", ""),
    ("https://bitbucket.org/team/sub/r.git", "manual", "", "", "", ""),
    ("git@bitbucket.org:repo.git", "manual", "", "", "", ""),
    ("ssh://git@bitbucket.org/team/r/x.git", "manual", "", "", "", ""),
    ("ssh://git@bitbucket.org/team/r.git", "skip", "", "", "", ""),
    ("https://*****:*****@bitbucket.org/team/r.git", "update", "https://bitbucket.org/team/r.git", "x-token-auth", "service", "service-token"),
    // Azure DevOps: never .git.
    ("https://*****@dev.azure.com/org/proj/_git/repo", "update", "https://dev.azure.com/org/proj/_git/repo", "svc", "service", "service-token"),
    ("https://dev.azure.com/org/proj/_git/repo/", "update", "https://dev.azure.com/org/proj/_git/repo", "svc", "service", "service-token"),
    // IDN and IPv6 source hosts.
    ("https://BÜCHER.example/r", "update", "https://xn--bcher-kva.example/r.git", "svc", "service", "add-dot-git;service-token;lowercase-host"),
    ("https://[2001:DB8:0::1]/r.git", "update", "https://[2001:db8::1]/r.git", "svc", "service", "service-token;lowercase-host"),
    // Unicode SSH hosts are written in their IDNA form: ssh and GitLab do not convert them.
    ("git@bücher.example:org/repo.git", "update", "ssh://git@xn--bcher-kva.example/org/repo.git", "", "unchanged", "scp-to-ssh;lowercase-host"),
    ("git@mañana.example:org/repo.git", "update", "ssh://git@xn--maana-pta.example/org/repo.git", "", "unchanged", "scp-to-ssh;lowercase-host"),
    ("ssh://git@MAÑANA.example/org/repo.git", "update", "ssh://git@xn--maana-pta.example/org/repo.git", "", "unchanged", "lowercase-host"),
    ("ssh://git@xn--maana-pta.example/org/repo.git", "skip", "", "", "", ""),
    // An https host is left as typed (curl and git convert it themselves).
    ("https://mañana.example/org/repo.git", "skip", "", "", "", ""),
    // ssh on a source host: no token, syntax only.
    ("git@github.com:org/r.git", "update", "ssh://git@github.com/org/r.git", "", "unchanged", "scp-to-ssh"),
    ("ssh://git@github.com/org/r.git", "skip", "", "", "", ""),
    ("git+ssh://git@github.com/org/r.git", "update", "ssh://git@github.com/org/r.git", "", "unchanged", "lowercase-host"),
    ("ssh+git://git@github.com/org/r.git", "update", "ssh://git@github.com/org/r.git", "", "unchanged", "lowercase-host"),
    ("SSH://git@GitHub.com:22/org/r.git", "update", "ssh://git@github.com:22/org/r.git", "", "unchanged", "lowercase-host"),
    // SCP forms (git's rules).
    ("git@other.example:org/r.git", "update", "ssh://git@other.example/org/r.git", "", "unchanged", "scp-to-ssh"),
    ("other.example:/abs/r.git", "update", "ssh://other.example/abs/r.git", "", "unchanged", "scp-to-ssh"),
    ("git@other.example:~user/r.git", "update", "ssh://git@other.example/~user/r.git", "", "unchanged", "scp-to-ssh"),
    ("git@other.example:/~user/r.git", "update", "ssh://git@other.example/~user/r.git", "", "unchanged", "scp-to-ssh"),
    ("user@[other.example:2222]:src", "update", "ssh://user@other.example:2222/src", "", "unchanged", "scp-to-ssh"),
    ("[::1]:repo", "update", "ssh://[::1]/repo", "", "unchanged", "scp-to-ssh"),
    ("git@[fe80::2]:r.git", "update", "ssh://git@[fe80::2]/r.git", "", "unchanged", "scp-to-ssh"),
    ("git@other.example:2222/r.git", "update", "ssh://git@other.example/2222/r.git", "", "unchanged", "scp-to-ssh"),
    ("git@other.example:r%20x#y?z", "update", "ssh://git@other.example/r%2520x%23y%3Fz", "", "unchanged", "scp-to-ssh"),
    ("git@other.example:dir/ü.git", "update", "ssh://git@other.example/dir/%C3%BC.git", "", "unchanged", "scp-to-ssh"),
    ("git@Other.Example:org/r", "update", "ssh://git@other.example/org/r", "", "unchanged", "scp-to-ssh;lowercase-host"),
    ("user:pw@host.example:r", "manual", "", "", "", ""),
    ("git@host.example:2222:r", "manual", "", "", "", ""),
    ("::1:repo", "manual", "", "", "", ""),
    ("git@[h.example:123]:src", "manual", "", "", "", ""),
    ("a@b@host.example:r", "manual", "", "", "", ""),
    ("host.example:", "manual", "", "", "", ""),
    ("-oProxyCommand=x:r", "manual", "", "", "", ""),
    // Non-source hosts: byte for byte except syntax fixes.
    ("https://*****:*****@other.example/x", "skip", "", "", "", ""),
    ("https://other.example/x", "skip", "", "", "", ""),
    ("http://other.example:8080/x", "skip", "", "", "", ""),
    ("https://other.example/a%2Fb", "skip", "", "", "", ""),
    ("HTTPS://Other.example/x", "update", "https://other.example/x", "", "none", "lowercase-host"),
    ("HTTPS://*****@Other.example/x", "manual", "", "", "", ""),
    ("https://github.com@evil.example/x", "skip", "", "", "", ""),
    ("https://evil.example#@github.com/x", "skip", "", "", "", ""),
    ("https://github.com%2Eevil.example/x", "skip", "", "", "", ""),
    ("https://github.com./org/r", "skip", "", "", "", ""),
    ("https://github.com.evil.example/org/r", "skip", "", "", "", ""),
    ("https://evilgithub.com/org/r", "skip", "", "", "", ""),
    ("git://other.example/x", "skip", "", "", "", ""),
    // --map.
    ("https://github.com/old-org/r.git", "update", "https://github.com/new-org/r.git", "<token>", "service", "service-token;map-prefix"),
    ("https://*****:*****@github.com/old-org/r.git", "update", "https://github.com/new-org/r.git", "<token>", "service", "service-token;map-prefix"),
    ("https://github.com/old-org/special.git", "update", "https://gitlab.example.com/moved/special.git", "oauth2", "service", "service-token;map-prefix"),
    ("https://legacy.example/x.git", "update", "https://other.example/x.git", "", "none", "map-prefix"),
    ("https://*****@legacy.example/x.git", "manual", "", "", "", ""),
    // Rejections.
    ("", "manual", "", "", "", ""),
    ("   ", "manual", "", "", "", ""),
    ("https://git\thub.com/org/r", "manual", "", "", "", ""),
    ("https://github.com/org/r\n", "update", "https://github.com/org/r.git", "<token>", "service", "add-dot-git;service-token"),
    ("https://github.com/org/r\nx", "manual", "", "", "", ""),
    ("https://github.com/org /r", "manual", "", "", "", ""),
    ("https://github.com/org/%0Ar", "manual", "", "", "", ""),
    ("https://github.com/org/\u{202E}r", "manual", "", "", "", ""),
    ("https://github.com/org/a\u{061C}b.git", "manual", "", "", "", ""),
    ("https://github.com/org/a\u{2062}b.git", "manual", "", "", "", ""),
    ("https://github.com/org/a\u{200B}b.git", "manual", "", "", "", ""),
    ("/srv/git/r.git", "manual", "", "", "", ""),
    ("./foo:bar", "manual", "", "", "", ""),
    ("r.git", "manual", "", "", "", ""),
    ("github.com/org/r", "manual", "", "", "", ""),
    ("file:///srv/r.git", "manual", "", "", "", ""),
    ("FILE:///srv/r.git", "manual", "", "", "", ""),
    ("\\\\server\\share\\r", "manual", "", "", "", ""),
    ("C:\\r", "manual", "", "", "", ""),
    ("C:/r", "manual", "", "", "", ""),
    ("ext::ssh -c x", "manual", "", "", "", ""),
    ("ext::x", "manual", "", "", "", ""),
    ("fd::17", "manual", "", "", "", ""),
    ("https:github.com/org/r", "manual", "", "", "", ""),
    ("https://github.com\\org\\r", "manual", "", "", "", ""),
    ("ftp://github.com/org/r", "manual", "", "", "", ""),
    ("https://github.com/org/r.git?x=1", "manual", "", "", "", ""),
    ("https://other.example/r.git?x=1", "manual", "", "", "", ""),
    ("https://github.com/org/../r.git", "manual", "", "", "", ""),
    ("https://github.com/org/%2e%2E/r.git", "manual", "", "", "", ""),
    ("https://other.example/./r.git", "manual", "", "", "", ""),
    ("https://github.com/org/r@x.git", "manual", "", "", "", ""),
    ("https://github.com:25/org/r.git", "manual", "", "", "", ""),
    ("https://other.example:21/r.git", "manual", "", "", "", ""),
    ("https://github.com:99999/org/r.git", "manual", "", "", "", ""),
    ("https://github.com:x/org/r.git", "manual", "", "", "", ""),
    ("https://github.com/", "manual", "", "", "", ""),
    ("https://github.com", "manual", "", "", "", ""),
    ("https://github.com/org/r/tree/main", "manual", "", "", "", ""),
    ("https://gitlab.example.com/g/r/-/tree/main", "manual", "", "", "", ""),
    ("ssh://git@github.com/org/r.git#x", "manual", "", "", "", ""),
    ("https://[::1/r", "manual", "", "", "", ""),
    ("https:///r", "manual", "", "", "", ""),
    ("https://github.com/a/b%", "manual", "", "", "", ""),
    ("https://a+b:c%25d@github.com/o/r.git", "update", "https://github.com/o/r.git", "<token>", "service", "service-token"),
    ("https://a+b:c%25d@other.example/o/r.git", "skip", "", "", "", ""),
    ("ssh://git@other.example/a/b%zz", "manual", "", "", "", ""),
    ("https://github.com/a%2Fb/c", "update", "https://github.com/a%2Fb/c.git", "<token>", "service", "add-dot-git;service-token"),
];

#[test]
fn table() {
    let r = rules();
    let mut failures = Vec::new();
    for &(input, action, new_url, new_user, new_auth, fixes) in CASES {
        let got = rw_with(input, None, &r);
        let got_tuple = (
            got.action.code(),
            got.new_url.clone().unwrap_or_default(),
            got.new_user.clone().unwrap_or_default(),
            got.new_auth.map(NewAuth::code).unwrap_or_default(),
            Fix::join(&got.fixes),
        );
        let fixes_ok = action != "update" && fixes.is_empty() || got_tuple.4 == fixes;
        if got_tuple.0 != action
            || got_tuple.1 != new_url
            || got_tuple.2 != new_user
            || got_tuple.3 != new_auth
            || !fixes_ok
        {
            failures.push(format!("{input:?}: got {got_tuple:?} ({})", got.reason));
        }
        assert!(!got.reason.is_empty(), "{input:?} has no reason");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_token_for_adversarial_hosts() {
    let r = rules();
    for input in [
        "https://github.com@evil.example/x",
        "https://github.com:443@evil.example/x",
        "https://evil.example#@github.com/x",
        "https://evil.example?@github.com/x",
        "https://github.com%2Eevil.example/x",
        "https://github.com./x/y",
        "https://github.com.evil.example/x/y",
        "https://xgithub.com/x/y",
        "git@evil.example:github.com/x",
        "https://evil.example/github.com/x",
        "https://evil.example/https://github.com/x",
        // Another port of a source host is another server.
        "https://github.com:8443/x/y.git",
        "https://github.com:444/x/y.git",
        "https://git.ported.example/x/y.git",
        "https://git.ported.example:8444/x/y.git",
    ] {
        let got = rw_with(input, None, &r);
        assert_ne!(got.new_auth, Some(NewAuth::Service), "{input}: {got:?}");
        assert_eq!(source_host_for(input, &r), None, "{input}");
    }
    for (input, host) in [
        ("https://github.com/x/y.git", "github.com"),
        ("https://github.com:443/x/y.git", "github.com"),
        ("https://git.ported.example:8443/x/y.git", "git.ported.example"),
    ] {
        assert_eq!(source_host_for(input, &r).map(|s| s.host.as_str()), Some(host), "{input}");
    }
    // The reason says why another port gets no token.
    let got = rw("https://*****:*****@github.com:8443/org/r.git");
    assert!(got.reason.contains("port 8443") && got.reason.contains("port 443"), "{}", got.reason);
    // A --map target that is not a source host gets no token.
    let got = rw("https://*****:*****@legacy.example/x.git");
    assert_eq!(got.action, Action::Manual);
    assert_eq!(got.new_auth, None);
}

#[test]
fn masked_credentials_on_other_hosts_are_manual_when_the_url_must_change() {
    let got = rw("https://*****:*****@Other.Example/x");
    assert_eq!(got.action, Action::Manual);
    assert!(got.reason.contains("re-enter"), "{}", got.reason);
    assert!(got.reason.contains("https://other.example/x"), "{}", got.reason);
    assert_eq!(got.fixes, vec![Fix::LowercaseHost]);
    // ssh with a masked user must not be written back either.
    let got = rw("SSH://*****@Other.Example/x");
    assert_eq!(got.action, Action::Manual, "{got:?}");
}

#[test]
fn http_301_adds_dot_git_on_any_host() {
    let r = rules();
    let err = Some("fatal: unable to access: The requested URL returned error: 301");
    let got = rw_with("https://other.example/org/r/", err, &r);
    assert_eq!(got.action, Action::Update);
    assert_eq!(got.new_url.as_deref(), Some("https://other.example/org/r.git"));
    assert_eq!(got.fixes, vec![Fix::AddDotGit]);
    assert_eq!(got.new_auth, Some(NewAuth::None));
    // Credentials present: manual.
    let got = rw_with("https://*****@other.example/org/r", err, &r);
    assert_eq!(got.action, Action::Manual);
    // Not for ssh, not for Azure, not for "1301".
    assert_eq!(rw_with("ssh://git@other.example/org/r", err, &r).action, Action::Skip);
    assert_eq!(rw_with("https://x.visualstudio.com/p/_git/r", err, &r).action, Action::Skip);
    assert_eq!(rw_with("https://other.example/r", Some("error 1301"), &r).action, Action::Skip);
}

#[test]
fn deadline_exceeded_on_masked_source_url_gets_decode_user() {
    let r = rules();
    let got =
        rw_with("https://*****:*****@git.corp.example/r.git", Some("13:Deadline Exceeded"), &r);
    assert_eq!(got.fixes, vec![Fix::DecodeUser, Fix::ServiceToken]);
    assert_eq!(got.new_user.as_deref(), Some("svc@corp"));
}

#[test]
fn prefer_https() {
    let mut r = rules();
    r.prefer_https = true;
    let got = rw_with("git@github.com:org/r", None, &r);
    assert_eq!(got.action, Action::Update);
    assert_eq!(got.new_url.as_deref(), Some("https://github.com/org/r.git"));
    assert_eq!(got.fixes, vec![Fix::ScpToSsh, Fix::SshToHttps, Fix::AddDotGit, Fix::ServiceToken]);
    let got = rw_with("ssh://git@github.com:2222/org/r.git", None, &r);
    assert_eq!(got.new_url.as_deref(), Some("https://github.com/org/r.git"));
    // The https port of a source host that names one.
    let got = rw_with("ssh://git@git.ported.example:2222/g/r.git", None, &r);
    assert_eq!(got.new_url.as_deref(), Some("https://git.ported.example:8443/g/r.git"));
    // Home-relative paths have no https form.
    assert_eq!(rw_with("git@github.com:~u/r", None, &r).action, Action::Manual);
    // Never for hosts that are not source hosts.
    assert_eq!(rw_with("ssh://git@other.example/org/r.git", None, &r).action, Action::Skip);
}

#[test]
fn token_as_username_only_for_github() {
    let r = Rules {
        source_hosts: vec![SourceHost { host: "gitea.example".into(), user: None, port: None }],
        ..Rules::default()
    };
    let got = rw_with("https://gitea.example/o/r.git", None, &r);
    assert_eq!(got.action, Action::Manual);
    assert!(got.reason.contains("--source-user"), "{}", got.reason);
}

#[test]
fn push_mirrors_cannot_use_git_protocol() {
    let r = rules();
    let push =
        |url| rewrite(&MirrorInput { url, direction: Direction::Push, last_error: None }, &r);
    assert_eq!(push("git://other.example/r.git").action, Action::Manual);
    assert_eq!(rw("git://other.example/r.git").action, Action::Skip);
    let got = push("git://github.com/org/r.git");
    assert_eq!(got.new_url.as_deref(), Some("https://github.com/org/r.git"));
}

#[test]
fn stale_username_encoding_on_other_hosts() {
    let r = rules();
    let push =
        |url| rewrite(&MirrorInput { url, direction: Direction::Push, last_error: None }, &r);
    // %40 is the right encoding for a pull mirror, and stale for a push mirror.
    assert_eq!(rw("https://svc%40corp:pw@other.example/r.git").action, Action::Skip);
    assert_eq!(push("https://svc%40corp:pw@other.example/r.git").action, Action::Manual);
    assert_eq!(rw("https://svc%2540corp:pw@other.example/r.git").action, Action::Manual);
    assert_eq!(push("https://svc@corp.example@other.example/r.git").action, Action::Skip);
}

#[test]
fn oversized_input_is_manual() {
    let long = format!("https://github.com/org/{}", "a".repeat(5000));
    assert_eq!(rw(&long).action, Action::Manual);
}

#[test]
fn authenticated_url_encodes_every_reserved_byte() {
    let token = SecretString::from("glpat-a+b%c@d:e/f".to_owned());
    let url = authenticated_url("https://github.com/org/r.git", None, &token);
    assert_eq!(url.expose_secret(), "https://glpat-a%2Bb%25c%40d%3Ae%2Ff@github.com/org/r.git");
    let url = authenticated_url("https://h.example/r.git", Some("svc@corp"), &token);
    assert_eq!(
        url.expose_secret(),
        "https://svc%40corp:glpat-a%2Bb%25c%40d%3Ae%2Ff@h.example/r.git"
    );
}

#[test]
fn decode_user_rule() {
    assert_eq!(decode_user("a%2540b"), "a@b");
    assert_eq!(decode_user("a%40b"), "a@b");
    assert_eq!(decode_user("a@b"), "a@b");
    assert_eq!(encode_userinfo_part(&decode_user("svc%40corp")), "svc%40corp");
}

#[test]
fn parse_map_rules() {
    let m = parse_map("https://a.example/x/=https://b.example/y/").expect("ok");
    assert_eq!(m.from, "https://a.example/x/");
    assert_eq!(m.to, "https://b.example/y/");
    assert!(parse_map("nope").is_err());
    assert!(parse_map("=x").is_err());
    assert!(parse_map("x=").is_err());
    assert!(parse_map("https://a/=https://a/b/").is_err());
    assert!(parse_map("https://a/=https://u:p@b/").is_err());
    assert!(parse_map("https://a/=https://b /").is_err());
    assert!(parse_map("git@a:=git@b:").is_ok());
}

#[test]
fn validate_new_url_accepts_fixed_points_only() {
    let r = rules();
    assert!(validate_new_url("https://github.com/org/r.git", Direction::Pull, &r).is_ok());
    assert!(validate_new_url("ssh://git@other.example/x.git", Direction::Push, &r).is_ok());
    assert!(validate_new_url("https://github.com/org/r", Direction::Pull, &r).is_err());
    assert!(validate_new_url("git@github.com:org/r.git", Direction::Pull, &r).is_err());
    assert!(validate_new_url("https://u:p@other.example/x", Direction::Pull, &r).is_err());
    assert!(validate_new_url("https://github.com/a/b?c", Direction::Pull, &r).is_err());
    assert!(validate_new_url(" https://github.com/org/r.git", Direction::Pull, &r).is_err());
}

#[test]
fn mask_url_masks_credentials_but_not_ssh_users() {
    assert_eq!(mask_url("https://u:p@h/x"), "https://*****:*****@h/x");
    assert_eq!(mask_url("https://tok@h/x"), "https://*****@h/x");
    assert_eq!(mask_url("ssh://git@h/x"), "ssh://git@h/x");
    assert_eq!(mask_url("ssh://git:pw@h/x"), "ssh://*****:*****@h/x");
    assert_eq!(mask_url("git@h:x"), "git@h:x");
    assert_eq!(mask_url("user:pw@h:x"), "*****:*****@h:x");
    // A URL whose scheme is missing still has its token masked.
    assert_eq!(mask_url("oauth2:tok@gitlab.com/g/r.git"), "*****:*****@gitlab.com/g/r.git");
    // A `@` after the first `/` is a path byte.
    assert_eq!(mask_url("h:org/a:b@c.git"), "h:org/a:b@c.git");
    // What is masked as a password is counted as one in `current_auth`.
    for text in ["user:pw@h:x", "oauth2:tok@gitlab.com/g/r.git", "git@h:x", "h:org/a:b@c.git"] {
        let masked = mask_url(text) != text;
        let counted = crate::plan::CurrentAuth::from_masked_url(text);
        assert_eq!(masked, counted == crate::plan::CurrentAuth::UserPassword, "{text}");
    }
}

// ---- property tests -------------------------------------------------------------------------

fn host_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("github.com".to_owned()),
        Just("GitHub.com".to_owned()),
        Just("gitlab.example.com".to_owned()),
        Just("bitbucket.org".to_owned()),
        Just("other.example".to_owned()),
        Just("github.com.".to_owned()),
        Just("github.com@evil.example".to_owned()),
        Just("[2001:db8::1]".to_owned()),
        Just("bücher.example".to_owned()),
        "[a-z]{1,8}\\.example",
    ]
}

fn url_strategy() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("git://"),
        Just("ssh://git@"),
        Just("HTTPS://"),
        Just("scp"),
    ];
    let creds = prop_oneof![
        Just(""),
        Just("*****:*****@"),
        Just("*****@"),
        Just("user%2540corp:pw@"),
        Just("a+b:c%25d@"),
    ];
    let port = prop_oneof![Just(""), Just(":443"), Just(":8443"), Just(":22")];
    let path = proptest::collection::vec("[A-Za-z0-9_~.-]{1,8}", 1..4);
    let tail = prop_oneof![Just(""), Just("/"), Just(".git"), Just("#f"), Just("?q")];
    (scheme, creds, host_strategy(), port, path, tail).prop_map(
        |(scheme, creds, host, port, path, tail)| {
            let path = path.join("/");
            if scheme == "scp" {
                format!("git@{host}:{path}{tail}")
            } else if scheme == "ssh://git@" {
                format!("{scheme}{host}{port}/{path}{tail}")
            } else {
                format!("{scheme}{creds}{host}{port}/{path}{tail}")
            }
        },
    )
}

fn any_rules(prefer_https: bool) -> Rules {
    Rules { prefer_https, maps: Vec::new(), ..rules() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,60}", b in any::<bool>()) {
        let r = any_rules(b);
        let got = rw_with(&s, Some("301 Deadline Exceeded"), &r);
        prop_assert!(!got.reason.is_empty());
        let _ = source_host_for(&s, &r);
        let _ = validate_new_url(&s, Direction::Push, &r);
    }

    #[test]
    fn url_like_text_is_handled_consistently(
        s in "(https?://|HTTP://|ssh://|git://|git\\+ssh://|git@|\\*\\*\\*\\*\\*@)?[a-zA-Z0-9:/@\\[\\]%.#?~+_*ü-]{0,40}",
        b in any::<bool>(),
    ) {
        let r = any_rules(b);
        let got = rw_with(&s, Some("error: 301"), &r);
        if let Some(new_url) = &got.new_url {
            prop_assert!(url::Url::parse(new_url).is_ok(), "{} -> {}", s, new_url);
            let second = rw_with(new_url, None, &r);
            prop_assert!(second.action != Action::Manual, "{} -> {}: {}", s, new_url, second.reason);
            if second.action == Action::Update {
                prop_assert_eq!(second.new_url.as_deref(), Some(new_url.as_str()), "{}", s);
            }
        }
        if got.new_auth == Some(NewAuth::Service) {
            prop_assert!(source_host_for(got.new_url.as_deref().unwrap_or(""), &r).is_some());
        }
    }

    #[test]
    fn rewriting_is_idempotent(url in url_strategy(), b in any::<bool>()) {
        let r = any_rules(b);
        let first = rw_with(&url, None, &r);
        if let Some(new_url) = &first.new_url {
            let second = rw_with(new_url, None, &r);
            match second.action {
                Action::Update => {
                    prop_assert_eq!(second.new_url.as_deref(), Some(new_url.as_str()));
                    for f in &second.fixes {
                        prop_assert!(
                            matches!(f, Fix::ServiceToken | Fix::BitbucketOwner),
                            "{} -> {}: new fix {:?}", url, new_url, f
                        );
                    }
                }
                Action::Skip => {}
                Action::Manual => prop_assert!(false, "{} -> {} is manual: {}", url, new_url, second.reason),
            }
            prop_assert!(validate_new_url(new_url, Direction::Pull, &r).is_ok(), "{}", new_url);
        }
    }

    #[test]
    fn service_token_only_for_source_hosts(url in url_strategy(), b in any::<bool>()) {
        let r = any_rules(b);
        let got = rw_with(&url, None, &r);
        if got.new_auth == Some(NewAuth::Service) {
            let new_url = got.new_url.clone().unwrap_or_default();
            let parsed = url::Url::parse(&new_url).expect("service URLs parse");
            prop_assert_eq!(parsed.scheme(), "https");
            let host = match parsed.host() {
                Some(url::Host::Ipv6(a)) => format!("[{a}]"),
                Some(h) => h.to_string(),
                None => String::new(),
            };
            prop_assert!(r.source_hosts.iter().any(|s| s.host == host), "{} -> {}", url, new_url);
            prop_assert!(source_host_for(&new_url, &r).is_some());
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
        } else {
            prop_assert_eq!(got.new_user, None);
        }
    }

    #[test]
    fn update_outputs_parse_and_credentials_round_trip(
        url in url_strategy(),
        user in proptest::option::of("[ -~]{1,12}"),
        token in "[ -~]{1,24}",
    ) {
        let r = any_rules(false);
        let got = rw_with(&url, None, &r);
        if got.action == Action::Update {
            let new_url = got.new_url.clone().expect("update has new_url");
            prop_assert!(url::Url::parse(&new_url).is_ok(), "{}", new_url);
            if got.new_auth == Some(NewAuth::Service) {
                let secret = SecretString::from(token.clone());
                let full = authenticated_url(&new_url, user.as_deref(), &secret);
                let parsed = url::Url::parse(full.expose_secret()).expect("parses");
                let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
                match &user {
                    Some(u) => {
                        prop_assert_eq!(&dec(parsed.username()), u);
                        prop_assert_eq!(dec(parsed.password().unwrap_or("")), token);
                    }
                    None => {
                        prop_assert_eq!(dec(parsed.username()), token);
                        prop_assert_eq!(parsed.password(), None);
                    }
                }
                let mut bare = parsed.clone();
                bare.set_username("").expect("https has a host");
                bare.set_password(None).expect("https has a host");
                prop_assert_eq!(bare.as_str(), new_url.as_str());
            }
        }
    }
}
