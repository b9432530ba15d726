//! Creating the stand-in's bare repositories with `git`: one commit on `main` through
//! `git fast-import` (no work tree, two processes per repository), an empty one, and dumb
//! ones (`git update-server-info`). git runs without the user's configuration.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{GitHostError, HostSpec, RepoContent, backing_dir};

/// A `git` command that ignores the user's and the system's configuration.
pub(super) fn git(git: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(git);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    cmd
}

fn run(mut cmd: Command, what: &str, input: Option<&[u8]>) -> Result<(), GitHostError> {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child =
        cmd.spawn().map_err(|e| GitHostError::Git(format!("cannot run git for {what}: {e}")))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(data)
            .map_err(|e| GitHostError::Git(format!("git {what}: cannot write input: {e}")))?;
    }
    let out =
        child.wait_with_output().map_err(|e| GitHostError::Git(format!("git {what}: {e}")))?;
    if !out.status.success() {
        return Err(GitHostError::Git(format!(
            "git {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The fast-import stream for one commit with a README on `main`.
fn first_commit(repo: &str) -> Vec<u8> {
    let readme = format!("# {repo}\n\nServed by glmirror's git host stand-in.\n");
    let message = "Initial commit\n";
    format!(
        "blob\nmark :1\ndata {}\n{readme}\ncommit refs/heads/main\nmark :2\n\
         author Stand-in <stand-in@example.invalid> 1700000000 +0000\n\
         committer Stand-in <stand-in@example.invalid> 1700000000 +0000\n\
         data {}\n{message}M 100644 :1 README.md\n\n",
        readme.len(),
        message.len()
    )
    .into_bytes()
}

/// Create every host's repositories under `root/<host>/`.
pub(super) fn create_all(
    git_bin: &Path,
    root: &Path,
    hosts: &[HostSpec],
) -> Result<(), GitHostError> {
    for host in hosts {
        let host_dir = root.join(host.name.to_ascii_lowercase());
        std::fs::create_dir_all(&host_dir).map_err(|source| GitHostError::Io {
            what: format!("cannot create {}", host_dir.display()),
            source,
        })?;
        for repo in &host.repos {
            if backing_dir(&repo.path).split('/').any(|s| s.is_empty() || s == "." || s == "..") {
                return Err(GitHostError::Spec(format!("bad repository path {:?}", repo.path)));
            }
            let dir = host_dir.join(repo.backing());
            if repo.shared.is_some() && dir.exists() {
                continue; // a shared repository is made once
            }
            let what = format!("{}/{}", host.name, repo.path);
            match &repo.content {
                RepoContent::Moved { .. } | RepoContent::LoginPage => continue,
                RepoContent::Commit | RepoContent::Empty | RepoContent::Dumb => {}
            }
            let mut init = git(git_bin, root);
            init.args(["init", "--bare", "--quiet", "--initial-branch=main"]).arg(&dir);
            run(init, &format!("init {what}"), None)?;
            if repo.content == RepoContent::Empty {
                continue;
            }
            let mut import = git(git_bin, root);
            import.arg("--git-dir").arg(&dir).args(["fast-import", "--quiet"]);
            run(import, &format!("fast-import {what}"), Some(&first_commit(&repo.path)))?;
            if repo.content == RepoContent::Dumb {
                let mut info = git(git_bin, root);
                info.arg("--git-dir").arg(&dir).arg("update-server-info");
                run(info, &format!("update-server-info {what}"), None)?;
            }
        }
    }
    Ok(())
}
