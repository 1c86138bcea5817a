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
#[derive(Clone)]
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
    /// How git ended, in words (`exit status 128`, `killed by signal 15`).
    pub ended: String,
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

    /// Removes every secret and any `user:password@` from `text`. A secret is removed where
    /// it stands as a whole token, so a short key does not eat into ordinary words
    /// (`exists` stays `exists` when the key is `x`).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = scrub_userinfo(text);
        for s in &self.secrets {
            out = replace_tokens(&out, s);
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
        // Its own process group: a Ctrl-C or SIGTERM meant for mwsync does not cut a push
        // short; mwsync finishes the step and stops.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().map_err(|e| StoreError::Local {
            detail: format!("cannot run `git` (is it installed and on PATH?): {e}"),
        })?;
        Ok(Ran {
            ok: status.success(),
            ended: ended(&status),
            stdout: self.scrub(&String::from_utf8_lossy(&stdout)),
            stderr: self.scrub(&String::from_utf8_lossy(&stderr)),
        })
    }

    /// Turns a failed transport run into `Auth` or `Transport`.
    pub(crate) fn failure(&self, what: &str, ran: &Ran) -> StoreError {
        let said = ran.stderr.trim();
        let detail = if said.is_empty() {
            format!(
                "{what} {} failed: git {} and printed nothing (out of disk space, or stopped by a signal?)",
                self.scrub(&self.url),
                ran.ended
            )
        } else {
            format!(
                "{what} {} failed ({}): {said}",
                self.scrub(&self.url),
                ran.ended
            )
        };
        if is_auth_failure(&ran.stderr) {
            StoreError::Auth { detail }
        } else {
            StoreError::Transport { detail }
        }
    }
}

/// How a process ended, in words.
fn ended(status: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(status) {
        return format!("was killed by signal {sig}");
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended abnormally".to_string(),
    }
}

/// Git's reason when a push failed in a way a retry cannot fix: the remote rejected the
/// ref update (a hook, branch protection) or the upload is over a size limit. A lost lease
/// (`[rejected] (stale info)`), a network failure or a refused login is not one.
pub(crate) fn permanent_refusal(ran: &Ran) -> Option<String> {
    if ran.ok {
        return None;
    }
    let remote: Vec<&str> = ran
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let said = if remote.is_empty() {
        String::new()
    } else {
        format!("; the remote said: {}", remote.join(" / "))
    };
    let rejected = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with('!'))
        .filter_map(|l| l.split('\t').nth(2))
        .find(|summary| {
            summary.contains("[remote rejected]")
                // The remote could not take the ref's lock, or found the ref moved under
                // the lease: another push won; that is a lost compare-and-swap, not a
                // refusal.
                && !summary.contains("failed to lock")
                && !summary.contains("cannot lock")
                && !summary.contains("failed to update ref")
        });
    if let Some(summary) = rejected {
        return Some(format!("{}{said}", summary.trim()));
    }
    let lower = ran.stderr.to_ascii_lowercase();
    let size = [
        "http 413",
        "request entity too large",
        "exceeds maximum allowed size",
        "pack exceeds",
        "large files detected",
        "exceeds the size limit",
        "protected branch",
    ]
    .iter()
    .find(|p| lower.contains(*p));
    size.map(|p| {
        let line = ran
            .stderr
            .lines()
            .find(|l| l.to_ascii_lowercase().contains(p))
            .unwrap_or(p)
            .trim()
            .to_string();
        if said.is_empty() {
            line
        } else {
            format!("{line}{said}")
        }
    })
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

/// `text` with every occurrence of `secret` that is not part of a longer word replaced by
/// `***`. A word character next to the secret's own first or last word character means the
/// match is inside a longer word.
pub(crate) fn replace_tokens(text: &str, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        return text.to_string();
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let starts_word = secret.chars().next().is_some_and(word);
    let ends_word = secret.chars().next_back().is_some_and(word);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(secret) {
        let prev = rest[..i].chars().next_back().or(before);
        let after = rest[i + secret.len()..].chars().next();
        let inside =
            (starts_word && prev.is_some_and(word)) || (ends_word && after.is_some_and(word));
        out.push_str(&rest[..i]);
        out.push_str(if inside { secret } else { "***" });
        before = secret.chars().next_back();
        rest = &rest[i + secret.len()..];
    }
    out.push_str(rest);
    out
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

    /// A key is scrubbed where it stands alone, never out of the middle of a word.
    #[test]
    fn short_keys_leave_words_alone() {
        let c = cli("https://h/r", Some("xist"), AuthMode::Bearer);
        assert_eq!(
            c.scrub("the branch exists; key xist, 'xist', xist."),
            "the branch exists; key ***, '***', ***."
        );
    }

    /// A push the remote declines for good carries git's reason and the remote's words; a
    /// lost lease is not such a refusal.
    #[test]
    fn permanent_refusals_are_recognised() {
        let ran = |stdout: &str, stderr: &str| Ran {
            ok: false,
            ended: "exited with status 1".into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        let hook = ran(
            "To /r.git\n!\tabc:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n",
            "remote: policy: main is frozen        \nerror: failed to push some refs to '/r.git'\n",
        );
        assert_eq!(
            permanent_refusal(&hook).as_deref(),
            Some(
                "[remote rejected] (pre-receive hook declined); the remote said: policy: main is frozen"
            )
        );
        let size = ran(
            "",
            "error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413\n",
        );
        assert_eq!(
            permanent_refusal(&size).as_deref(),
            Some("error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413")
        );
        let stale = ran("!\tabc:refs/heads/main\t[rejected] (stale info)\n", "");
        assert_eq!(permanent_refusal(&stale), None);
        let lock = ran(
            "!\tabc:refs/heads/main\t[remote rejected] (failed to lock)\n",
            "",
        );
        assert_eq!(permanent_refusal(&lock), None);
    }

    /// A failed run that printed nothing says how git ended.
    #[test]
    fn silent_failures_say_how_git_ended() {
        let c = cli("/tmp/r.git", None, AuthMode::Bearer);
        let ran = Ran {
            ok: false,
            ended: "was killed by signal 15".into(),
            stdout: String::new(),
            stderr: String::new(),
        };
        assert_eq!(
            c.failure("push to", &ran).to_string(),
            "git transport failed: push to /tmp/r.git failed: git was killed by signal 15 and printed nothing (out of disk space, or stopped by a signal?)"
        );
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
