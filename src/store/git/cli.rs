//! Runs the `git` command line for transport (fetch and push) with the API key in the
//! environment, never on the command line, and removes every secret from what git says.
//! It owns the process environment of git and the scrubbing of its output; it must not
//! decide what to fetch or push.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;

use super::{AuthMode, GitRemote};
use crate::store::StoreError;

/// A prepared way to run `git` against one bare cache and one remote.
pub(crate) struct GitCli {
    /// The bare cache repository (`--git-dir`), also used as a neutral `HOME`.
    git_dir: PathBuf,
    /// The remote URL exactly as given (may carry `user:password@`).
    url: String,
    /// The `Authorization` header value, when the remote is http(s) and a key is set.
    header: Option<String>,
    /// Strings that must never leave this module: the key, its encodings, the header value.
    secrets: Vec<String>,
}

/// What happened to a `git` run, with stdout and stderr already scrubbed.
pub(crate) struct Ran {
    /// True when git exited with status 0.
    pub ok: bool,
    /// Scrubbed standard output.
    pub stdout: String,
    /// Scrubbed standard error.
    pub stderr: String,
}

impl GitCli {
    /// Prepares the runner for `remote` over the cache at `git_dir`.
    pub(crate) fn new(git_dir: &Path, remote: &GitRemote) -> GitCli {
        let mut secrets = Vec::new();
        let is_http = remote.url.starts_with("http://") || remote.url.starts_with("https://");
        let header = match (&remote.api_key, is_http) {
            (Some(key), true) => {
                secrets.push(key.clone());
                Some(match &remote.auth {
                    AuthMode::Basic { user } => {
                        let pair = format!("{user}:{key}");
                        let token = base64::engine::general_purpose::STANDARD.encode(&pair);
                        secrets.push(pair);
                        secrets.push(token.clone());
                        format!("Authorization: Basic {token}")
                    }
                    AuthMode::Bearer => format!("Authorization: Bearer {key}"),
                })
            }
            (Some(key), false) => {
                secrets.push(key.clone());
                None
            }
            (None, _) => None,
        };
        if let Some(h) = &header {
            secrets.push(h.clone());
        }
        if let Some(pw) = url_password(&remote.url) {
            secrets.push(pw);
        }
        // Longest first, so a secret that contains another is removed whole.
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        GitCli {
            git_dir: git_dir.to_path_buf(),
            url: remote.url.clone(),
            header,
            secrets,
        }
    }

    /// The remote URL for git's command line.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Removes every secret and any `user:password@` from `text`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = scrub_userinfo(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// Runs `git --git-dir=<cache> <args>` and returns its scrubbed outcome. Fails only when
    /// git cannot be started at all.
    pub(crate) fn run(&self, args: &[&str]) -> Result<Ran, StoreError> {
        let mut cmd = Command::new("git");
        // Nothing from the caller's git environment (GIT_DIR, GIT_INDEX_FILE, …) may leak in.
        let inherited: Vec<OsString> = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_string_lossy().starts_with("GIT_"))
            .collect();
        for k in inherited {
            cmd.env_remove(k);
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", null_device())
            .env("HOME", &self.git_dir)
            .env("XDG_CONFIG_HOME", &self.git_dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env_remove("SSH_ASKPASS")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C");
        let mut config: Vec<(&str, &str)> = vec![
            // No credential helper may answer for us or store the key.
            ("credential.helper", ""),
            ("core.askPass", ""),
            // The cache holds unreferenced local commits; never let a background gc prune them.
            ("gc.auto", "0"),
            ("maintenance.auto", "false"),
            // Keep fetched objects as packs, never millions of loose files.
            ("fetch.unpackLimit", "1"),
            ("transfer.unpackLimit", "1"),
            // Map little of the packs, as libgit2 does here (`bound_libgit2_memory`): every
            // mapped page git reads counts as resident, so a repack that copies the cache's
            // packs would otherwise grow as large as the repository.
            ("core.packedGitWindowSize", "4m"),
            ("core.packedGitLimit", "32m"),
            // A stalled connection fails instead of hanging forever.
            ("http.lowSpeedLimit", "1"),
            ("http.lowSpeedTime", "120"),
        ];
        if let Some(h) = &self.header {
            config.push(("http.extraHeader", h.as_str()));
        }
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), k);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), v);
        }
        cmd.arg(format!("--git-dir={}", self.git_dir.display()));
        cmd.args(args);
        cmd.stdin(std::process::Stdio::null());
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().map_err(|e| StoreError::Local {
            detail: format!("cannot run `git` (is it installed and on PATH?): {e}"),
        })?;
        Ok(Ran {
            ok: status.success(),
            stdout: self.scrub(&String::from_utf8_lossy(&stdout)),
            stderr: self.scrub(&String::from_utf8_lossy(&stderr)),
        })
    }

    /// Turns a failed transport run into `Auth` or `Transport`.
    pub(crate) fn failure(&self, what: &str, ran: &Ran) -> StoreError {
        let detail = format!(
            "{what} {} failed: {}",
            self.scrub(&self.url),
            ran.stderr.trim()
        );
        if is_auth_failure(&ran.stderr) {
            StoreError::Auth { detail }
        } else {
            StoreError::Transport { detail }
        }
    }
}

/// True when git's message says the credentials were refused.
pub(crate) fn is_auth_failure(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "authentication failed",
        "error: 401",
        "error: 403",
        " 401 ",
        " 403 ",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
    ]
    .iter()
    .any(|p| s.contains(p))
}

/// The password in `scheme://user:password@host…`, if any.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    let pw = &userinfo[colon + 1..];
    (!pw.is_empty()).then(|| pw.to_string())
}

/// Replaces the userinfo of every `scheme://userinfo@host` in `text` with `***`.
pub(crate) fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'')
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out.push_str("***");
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// The platform's empty file, used as git's global config.
fn null_device() -> &'static str {
    if cfg!(windows) { "NUL" } else { "/dev/null" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(url: &str, key: Option<&str>, auth: AuthMode) -> GitCli {
        let remote = GitRemote {
            url: url.to_string(),
            api_key: key.map(str::to_string),
            auth,
        };
        GitCli::new(Path::new("/nonexistent"), &remote)
    }

    /// Userinfo in any URL inside a message is replaced, host and path kept.
    #[test]
    fn userinfo_is_scrubbed_from_urls() {
        let s = scrub_userinfo("fatal: unable to access 'https://bob:hunter2@h:8/r.git/': 403");
        assert_eq!(s, "fatal: unable to access 'https://***@h:8/r.git/': 403");
        assert_eq!(scrub_userinfo("no url here"), "no url here");
        assert_eq!(scrub_userinfo("http://h/x@y"), "http://h/x@y");
    }

    /// The key, the Basic token and the header never survive scrubbing.
    #[test]
    fn key_and_its_encodings_are_scrubbed() {
        let c = cli(
            "https://u:pw123@h/r",
            Some("sekrit-key"),
            AuthMode::Basic {
                user: "mwsync".into(),
            },
        );
        let token = base64::engine::general_purpose::STANDARD.encode("mwsync:sekrit-key");
        let msg = format!("a sekrit-key b {token} c pw123 d mwsync:sekrit-key");
        let s = c.scrub(&msg);
        assert!(!s.contains("sekrit"), "{s}");
        assert!(!s.contains(&token), "{s}");
        assert!(!s.contains("pw123"), "{s}");
        let b = cli("http://h/r", Some("tok"), AuthMode::Bearer);
        assert_eq!(b.header.as_deref(), Some("Authorization: Bearer tok"));
        assert_eq!(b.scrub("x tok y"), "x *** y");
    }

    /// No header is made for a local remote, and none when no key is set.
    #[test]
    fn header_only_for_http_with_key() {
        assert!(
            cli("/tmp/r.git", Some("k"), AuthMode::Bearer)
                .header
                .is_none()
        );
        assert!(cli("https://h/r", None, AuthMode::Bearer).header.is_none());
        assert!(
            cli("https://h/r", Some("k"), AuthMode::Bearer)
                .header
                .is_some()
        );
    }

    /// Git's typical refusals are classed as authentication failures, others are not.
    #[test]
    fn auth_failures_are_recognised() {
        assert!(is_auth_failure(
            "fatal: could not read Username for 'http://127.0.0.1:1': terminal prompts disabled"
        ));
        assert!(is_auth_failure(
            "fatal: unable to access 'x': The requested URL returned error: 403"
        ));
        assert!(is_auth_failure("fatal: Authentication failed for 'x'"));
        assert!(!is_auth_failure(
            "fatal: unable to access 'x': Failed to connect to 127.0.0.1 port 1"
        ));
    }
}
