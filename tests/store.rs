//! The `Store` implementations against real git: `GitStore` over local, `file://` and
//! HTTP remotes (through the simulator's `GitServer`), and the engine's `MemoryStore`,
//! both held to one contract. Helpers here only set up remotes and change sets.

mod contract;
mod gateway;
mod git;
mod mem;
mod serve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mwsync::store::{CommitId, FileChange, NewCommit};

/// Runs `git` with no user or system configuration and returns its stdout.
///
/// # Panics
/// When git fails, because the test set-up is then broken.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = git_cmd(cwd)
        .args(args)
        .output()
        .expect("git runs because it is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `git` command with a neutral environment.
pub fn git_cmd(cwd: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("HOME", cwd)
        .env("LC_ALL", "C");
    cmd
}

/// Creates an empty bare repository `name` under `dir`.
pub fn bare_remote(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    git(
        dir,
        &[
            "init",
            "--bare",
            "--quiet",
            "--initial-branch=main",
            &path.to_string_lossy(),
        ],
    );
    path
}

/// A change set from `(path, Some(content) | None)` pairs.
pub fn changes(items: &[(&str, Option<&str>)]) -> BTreeMap<String, FileChange> {
    items
        .iter()
        .map(|(p, c)| {
            let c = match c {
                Some(s) => FileChange::Put(s.as_bytes().to_vec()),
                None => FileChange::Delete,
            };
            (p.to_string(), c)
        })
        .collect()
}

/// A new commit on `parents` with `items`.
pub fn new_commit(
    parents: &[&CommitId],
    items: &[(&str, Option<&str>)],
    message: &str,
) -> NewCommit {
    NewCommit {
        parents: parents.iter().map(|c| (*c).clone()).collect(),
        changes: changes(items),
        message: message.to_string(),
    }
}
