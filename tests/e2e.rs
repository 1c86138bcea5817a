//! End to end with nothing in-process: the real `mwsync` binary against `mwsim serve` (the
//! fake MoneyWorks) and `mwsim git-serve` (smart HTTP with an API key), checked with a plain
//! `git clone`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;

/// Kills a child process when the test ends, however it ends.
pub(crate) struct Reaper(pub(crate) Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Clones `url` into `dest` as plain git does, sending `user:key` as HTTP Basic; true when
/// git succeeded.
pub(crate) fn clone_with_key(url: &str, user: &str, key: &str, dest: &std::path::Path) -> bool {
    let header = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"))
    );
    Command::new("git")
        .arg("-c")
        .arg(format!("http.extraHeader={header}"))
        .args(["clone", "--quiet", url])
        .arg(dest)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git clone runs")
        .success()
}

/// The `mwsim` binary, built on demand when this package's tests run alone.
pub(crate) fn mwsim() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/..");
    let path = dir.join(format!("mwsim{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "mwsync-sim", "--bin", "mwsim"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building mwsim failed");
    }
    path
}

/// Starts a server process and returns it with the address from its one stdout line.
pub(crate) fn start(mut cmd: Command) -> (Reaper, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Reaper(child), addr)
}

fn mwsync(mw_url: &str, git_url: &str, key: &str, cache: &std::path::Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mwsync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MWSYNC_") {
            c.env_remove(k);
        }
    }
    c.args(["run", "--once"])
        .env("MWSYNC_MONEYWORKS_URL", mw_url)
        .env("MWSYNC_GIT_URL", git_url)
        .env("MWSYNC_GIT_API_KEY", key)
        .env("MWSYNC_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .output()
        .expect("mwsync runs")
}

/// The binary syncs the fake over HTTP into a git server that wants a key; a plain clone sees
/// every record, and a wrong key is refused with a clear message.
#[test]
fn binary_against_mwsim_serve_and_git_serve() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("git");
    std::fs::create_dir_all(&root).expect("root");
    let init = Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(root.join("books.git"))
        .status()
        .expect("git");
    assert!(init.success());
    let mut serve = Command::new(mwsim());
    serve.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--names",
        "7",
        "--accounts",
        "4",
        "--products",
        "3",
        "--jobs",
        "2",
        "--transactions",
        "6",
    ]);
    serve.args([
        "--document",
        "Acme.moneyworks",
        "--user",
        "Admin",
        "--password",
        "e2e-secret-pw",
    ]);
    let (_mw, mw_addr) = start(serve);
    let key = "e2e-api-key-77";
    let mut git = Command::new(mwsim());
    git.args(["git-serve", "--addr", "127.0.0.1:0", "--api-key", key])
        .arg("--root")
        .arg(&root);
    let (_git, git_addr) = start(git);
    let mw_url =
        mw_addr.replacen("http://", "http://Admin:e2e-secret-pw@", 1) + "/REST/Acme.moneyworks";
    let git_url = format!("{git_addr}/books.git");

    let out = mwsync(&mw_url, &git_url, key, &tmp.path().join("cache"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mwsync failed: {stderr}");
    assert!(
        !stderr.contains("e2e-secret-pw") && !stderr.contains(key),
        "a secret leaked into the log"
    );

    let clone = tmp.path().join("clone");
    assert!(
        clone_with_key(&git_url, "me", key, &clone),
        "git clone with the key works"
    );
    let count = |dir: &str| -> usize {
        fn walk(p: &std::path::Path) -> usize {
            std::fs::read_dir(p).map_or(0, |rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        walk(&clone.join(dir))
    };
    assert_eq!(
        (
            count("name"),
            count("product"),
            count("job"),
            count("transaction")
        ),
        (7, 3, 2, 6)
    );
    // The generator widens a chart of accounts that is too small for its transactions.
    assert!(count("account") >= 4, "accounts: {}", count("account"));
    assert!(
        clone.join(".mwsync/state.toml").exists() && clone.join(".mwsync/config.toml").exists()
    );

    let wrong = mwsync(&mw_url, &git_url, "wrong-key", &tmp.path().join("cache2"));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "a refused key is a configuration problem: {stderr}"
    );
    assert!(
        stderr.contains("the git remote refused the credentials"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-key"),
        "the key must not be echoed: {stderr}"
    );
}
