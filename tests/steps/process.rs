//! Steps that run the real `mwsync` binary as a separate process.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use cucumber::{given, then, when};
use mwsync_sim::fake::FaultKind;
use mwsync_sim::gitserve::GitServer;

use mwsync::store::git::{AuthMode, GitRemote, GitStore};
use mwsync::store::{CommitId, Store};
use mwsync_sim::layout::RecordFile;

use super::SyncWorld;
use super::pull::name_path;
use crate::support::{PASSWORD, Repo, USER};

/// The API key of the scenario's git server.
pub const API_KEY: &str = "key-5b7e-never-in-logs";

/// The git HTTP server and its repository, kept alive for the scenario.
pub struct HttpGit {
    pub _server: GitServer,
    pub _root: tempfile::TempDir,
    pub url: String,
}

/// The binary under test: this build's, or the one `MWSYNC_TEST_BINARY` names (to show a
/// scenario failing on an older build).
pub(crate) fn bin() -> Command {
    let binary = std::env::var_os("MWSYNC_TEST_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_mwsync").into());
    let mut c = Command::new(binary);
    for (k, _) in std::env::vars() {
        if k.starts_with("MWSYNC_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info").stdin(Stdio::null());
    c
}

pub(crate) async fn output(mut cmd: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("the mwsync binary runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    })
    .await
    .expect("the blocking task finishes")
}

/// `mwsync run --once` with the scenario's settings.
pub(crate) async fn run_cmd(
    w: &mut SyncWorld,
    git_url: &str,
    key: Option<&str>,
    pause: Option<&str>,
) -> Command {
    mwsync_cmd(w, &["run", "--once"], git_url, key, pause).await
}

/// `mwsync <subcommand...>` with the scenario's settings: its fake MoneyWorks, the given git
/// remote, its own cache directory, and its page and checkpoint sizes.
pub(crate) async fn mwsync_cmd(
    w: &mut SyncWorld,
    subcommand: &[&str],
    git_url: &str,
    key: Option<&str>,
    pause: Option<&str>,
) -> Command {
    let scratch = w
        .scratch
        .get_or_insert_with(|| tempfile::tempdir().expect("scratch dir"))
        .path()
        .to_path_buf();
    let page = w.repo_config.page_size;
    let checkpoint = w.repo_config.checkpoint_records;
    let h = w.h().await;
    let mut c = bin();
    c.args(subcommand)
        .arg("--page-size")
        .arg(page.to_string())
        .arg("--checkpoint-records")
        .arg(checkpoint.to_string())
        .env(
            "MWSYNC_MONEYWORKS_URL",
            h.sim
                .url()
                .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1),
        )
        .env("MWSYNC_GIT_URL", git_url)
        .env("MWSYNC_CACHE_DIR", scratch.join("cache"));
    if let Some(k) = key {
        c.env("MWSYNC_GIT_API_KEY", k);
    }
    if let Some(p) = pause {
        c.env("MWSYNC_TEST_PAUSE_AT", p);
    }
    let binary = w.binary.get_or_insert_with(BinaryRuns::default);
    binary.remote = Some((git_url.to_string(), key.map(str::to_string)));
    binary.last_subcommand = subcommand
        .first()
        .map_or_else(String::new, |s| s.to_string());
    c
}

#[when(expr = "mwsync runs once with page size {int}")]
async fn runs_with_page_size(w: &mut SyncWorld, n: u32) {
    let mut c = bin();
    c.args(["run", "--once", "--page-size", &n.to_string()])
        .env(
            "MWSYNC_MONEYWORKS_URL",
            "http://u:p@127.0.0.1:9/REST/Acme.moneyworks",
        )
        .env("MWSYNC_GIT_URL", "/nonexistent/books.git")
        .env("MWSYNC_CACHE_DIR", "/nonexistent/cache");
    set_process(w, output(c).await);
}

#[when(
    expr = "mwsync runs once with page size {word} as a flag, {word} in the environment and {word} in the config file"
)]
async fn runs_with_layered_page_size(w: &mut SyncWorld, flag: String, env: String, file: String) {
    let dir = tempfile::tempdir().expect("a temp dir can be made because /tmp is writable");
    let config = dir.path().join("mwsync.toml");
    let mut text =
        "git_url = \"/nonexistent/books.git\"\ncache_dir = \"/nonexistent/cache\"\n".to_string();
    if file != "-" {
        text.push_str(&format!("page_size = {file}\n"));
    }
    std::fs::write(&config, text).expect("write the config file");
    let mut c = bin();
    c.args(["run", "--once", "--config"]).arg(&config).env(
        "MWSYNC_MONEYWORKS_URL",
        "http://u:p@127.0.0.1:9/REST/Acme.moneyworks",
    );
    if flag != "-" {
        c.args(["--page-size", &flag]);
    }
    if env != "-" {
        c.env("MWSYNC_PAGE_SIZE", &env);
    }
    set_process(w, output(c).await);
}

#[when("the mwsync binary runs once")]
#[given("the mwsync binary has run once")]
async fn runs_once_bare(w: &mut SyncWorld) {
    let url = bare_url(w).await;
    let c = run_cmd(w, &url, None, None).await;
    set_process(w, output(c).await);
}

#[then(expr = "it exits with code {int}")]
fn exits_with(w: &mut SyncWorld, code: i32) {
    let (got, out, err) = w.process.as_ref().expect("a process ran");
    assert_eq!(*got, code, "exit code; stdout:\n{out}\nstderr:\n{err}");
}

#[then(expr = "it exits with code {int} and says {string}")]
fn exits_and_says(w: &mut SyncWorld, code: i32, text: String) {
    exits_with(w, code);
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    assert!(
        err.contains(&text) || out.contains(&text),
        "the output should say `{text}`:\n{err}"
    );
}

#[given("a git server over HTTP that requires an API key")]
async fn git_server(w: &mut SyncWorld) {
    let root = tempfile::tempdir().expect("server root");
    let server = GitServer::start(root.path(), API_KEY).expect("the git server starts");
    server
        .init_bare("books.git")
        .expect("a bare repository on the server");
    let url = server.url("books.git");
    w.http_git = Some(HttpGit {
        _server: server,
        _root: root,
        url,
    });
}

pub(crate) async fn bare_url(w: &mut SyncWorld) -> String {
    let Repo::Bare { path, .. } = &w.h().await.repo else {
        panic!("this scenario needs a real bare repository")
    };
    path.display().to_string()
}

fn http_url(w: &SyncWorld) -> String {
    w.http_git
        .as_ref()
        .expect("the git server runs")
        .url
        .clone()
}

#[when("the mwsync binary runs once against it with the API key")]
#[given("the mwsync binary has run once against it with the API key")]
async fn runs_http(w: &mut SyncWorld) {
    let url = http_url(w);
    let c = run_cmd(w, &url, Some(API_KEY), None).await;
    set_process(w, output(c).await);
    if w.process.as_ref().is_some_and(|p| p.0 != 0) {
        eprintln!(
            "mwsync stderr: {}",
            w.process.as_ref().map(|p| p.2.as_str()).unwrap_or("")
        );
    }
}

#[when("the mwsync binary runs once against it with a wrong API key")]
async fn runs_http_wrong(w: &mut SyncWorld) {
    let url = http_url(w);
    let c = run_cmd(w, &url, Some("not-the-key"), None).await;
    set_process(w, output(c).await);
}

fn clone(w: &SyncWorld) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("clone dir");
    let header = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("mwsync:{API_KEY}"))
    );
    let out = Command::new("git")
        .arg("-c")
        .arg(format!("http.extraHeader={header}"))
        .args(["clone", "--quiet", &http_url(w)])
        .arg(dir.path().join("books"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[then("neither the password nor the API key appears in its output or in the git history")]
async fn no_secrets(w: &mut SyncWorld) {
    let (_, out, err) = w.process.clone().expect("a process ran");
    for secret in [PASSWORD, API_KEY] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "a secret leaked into the output"
        );
    }
    let dir = clone(w);
    let log = Command::new("git")
        .args(["log", "--all", "-p", "--format=%H %an %ae%n%B"])
        .current_dir(dir.path().join("books"))
        .output()
        .expect("git log");
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.len() > 100, "the history is not empty");
    for secret in [PASSWORD, API_KEY] {
        assert!(
            !text.contains(secret),
            "a secret leaked into the git history"
        );
    }
    let config =
        std::fs::read_to_string(dir.path().join("books/.mwsync/config.toml")).expect("repo config");
    assert!(!config.contains(PASSWORD) && !config.contains(API_KEY));
}

#[then("a plain git clone with the key holds every record")]
async fn clone_holds(w: &mut SyncWorld) {
    let dir = clone(w);
    let want = w.h().await.expected_files();
    for (path, bytes) in &want {
        let got = std::fs::read(dir.path().join("books").join(path))
            .unwrap_or_else(|_| panic!("{path} missing in the clone"));
        assert_eq!(&got, bytes, "{path} differs");
    }
}

#[given(expr = "a writer sets the phone of name {string} to {string} on changes over HTTP")]
async fn writer_over_http(w: &mut SyncWorld, code: String, value: String) {
    push_phones_over_http(w, &[code], &value);
}

#[given(expr = "a writer sets the phone of every name to {string} on changes over HTTP")]
async fn writer_every_over_http(w: &mut SyncWorld, value: String) {
    let codes: Vec<String> = w
        .h()
        .await
        .sim
        .records("Name")
        .iter()
        .filter_map(|r| r.text("code").map(str::to_string))
        .collect();
    push_phones_over_http(w, &codes, &value);
}

/// A writer's clone sets the phone of each of `codes` to `value`, commits once and pushes
/// the commit to `changes` with the git command line.
fn push_phones_over_http(w: &mut SyncWorld, codes: &[String], value: &str) {
    let dir = clone(w);
    let repo = dir.path().join("books");
    for code in codes {
        let path = name_path(code);
        let bytes = std::fs::read(repo.join(&path)).expect("the record is on main");
        let edited = crate::support::edited_file(&bytes, "phone", value);
        std::fs::write(repo.join(&path), edited).expect("write the file");
    }
    let header = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("writer:{API_KEY}"))
    );
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-c")
            .arg(format!("http.extraHeader={header}"))
            .args([
                "-c",
                "user.name=A Writer",
                "-c",
                "user.email=writer@example.com",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["checkout", "--quiet", "-b", "changes"]);
    git(&["commit", "--quiet", "-am", "Update phone"]);
    git(&["push", "--quiet", "origin", "changes"]);
    w.writer_commit = Some(mwsync::store::CommitId(git(&["rev-parse", "HEAD"])));
}

async fn run_until_paused(w: &mut SyncWorld, point: &str) {
    let url = http_url(w);
    let mut c = run_cmd(w, &url, Some(API_KEY), Some(point)).await;
    c.stderr(Stdio::piped()).stdout(Stdio::null());
    let point = point.split(':').next().unwrap_or(point).to_string();
    let seen = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = c.spawn().expect("mwsync starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.expect("stderr line");
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&format!("paused at {point}")) {
                child.kill().expect("SIGKILL the process");
                child.wait().expect("reap the process");
                return seen;
            }
        }
        let status = child.wait().expect("reap");
        panic!("mwsync exited ({status}) without reaching {point}:\n{seen}");
    })
    .await
    .expect("the watcher finishes");
    // A killed run has no exit code of its own; the invariant check must not repeat it.
    set_process(w, (-9, String::new(), seen));
}

#[when("the mwsync binary is killed after the import")]
async fn killed_after_import(w: &mut SyncWorld) {
    run_until_paused(w, "after-import").await;
}

#[when(expr = "the mwsync binary is killed after import batch {int}")]
async fn killed_after_batch(w: &mut SyncWorld, n: u32) {
    run_until_paused(w, &format!("after-import-batch:{n}")).await;
}

#[then(expr = "the status on main over HTTP says {word} because {string}")]
async fn http_status_because(w: &mut SyncWorld, outcome: String, reason: String) {
    let dir = clone(w);
    let text = std::fs::read_to_string(dir.path().join("books/.mwsync/status.toml"))
        .expect("a status on main");
    let doc: toml::Table = text.parse().expect("the status is TOML");
    let last = doc
        .get("last_write")
        .and_then(toml::Value::as_table)
        .expect("[last_write]");
    assert_eq!(
        last.get("outcome").and_then(toml::Value::as_str),
        Some(outcome.as_str()),
        "{text}"
    );
    assert!(
        text.contains(&reason),
        "the status should say `{reason}`:\n{text}"
    );
}

#[then(expr = "MoneyWorks holds {string} as the phone of every name")]
async fn every_phone(w: &mut SyncWorld, value: String) {
    for rec in w.h().await.sim.records("Name") {
        assert_eq!(
            rec.text("phone"),
            Some(value.as_str()),
            "{:?}",
            rec.text("code")
        );
    }
}

#[when(expr = "the mwsync binary is killed after checkpoint {int}")]
async fn killed_after_checkpoint(w: &mut SyncWorld, n: u32) {
    run_until_paused(w, &format!("after-checkpoint:{n}")).await;
    let dir = clone(w);
    let files = walk(&dir.path().join("books"));
    let records = files
        .iter()
        .filter(|p| !p.starts_with(".mwsync") && !p.starts_with(".git"))
        .count();
    // Checkpoint n is committed and its push may still be running (`git push` outlives the
    // kill), so main holds whole checkpoints, n at most.
    let size = w.repo_config.checkpoint_records as usize;
    assert!(
        records % size == 0 && records <= n as usize * size,
        "the kill came after checkpoint {n}, with whole checkpoints on main: {records} records"
    );
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir") {
            let p = e.expect("entry").path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if rel.starts_with(".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out
}

#[then(expr = "MoneyWorks received {int} import(s)")]
async fn imports_received(w: &mut SyncWorld, n: u64) {
    assert_eq!(w.h().await.sim.requests().import, n);
}

#[then("the writer's commit is in main over HTTP")]
async fn writer_in_main_http(w: &mut SyncWorld) {
    let dir = clone(w);
    let id = w.writer_commit.clone().expect("a writer committed");
    let ok = Command::new("git")
        .args(["merge-base", "--is-ancestor", &id.0, "origin/main"])
        .current_dir(dir.path().join("books"))
        .status()
        .expect("git runs");
    assert!(ok.success(), "the writer's commit is not in main");
}

#[then("main over HTTP holds exactly the records MoneyWorks holds")]
async fn http_main_equals(w: &mut SyncWorld) {
    let dir = clone(w);
    let root = dir.path().join("books");
    let want = w.h().await.expected_files();
    let got: Vec<String> = walk(&root)
        .into_iter()
        .filter(|p| !p.starts_with(".mwsync"))
        .collect();
    assert_eq!(got.len(), want.len(), "record count on main");
    for (path, bytes) in &want {
        assert_eq!(
            &std::fs::read(root.join(path)).expect("present"),
            bytes,
            "{path}"
        );
    }
}

#[then("every record was created exactly once in the history over HTTP")]
async fn created_once(w: &mut SyncWorld) {
    let dir = clone(w);
    let out = Command::new("git")
        .args(["log", "--diff-filter=A", "--name-only", "--format="])
        .current_dir(dir.path().join("books"))
        .output()
        .expect("git log");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut added: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(".mwsync"))
        .collect();
    let total = added.len();
    added.sort_unstable();
    added.dedup();
    assert_eq!(total, added.len(), "a record file was added more than once");
    assert_eq!(added.len(), w.h().await.expected_files().len());
    tokio::time::sleep(Duration::from_millis(0)).await;
}

/// A thread that sends each line of `stream` (a child's stderr) until it closes.
pub(crate) fn line_reader(
    stream: impl std::io::Read + Send + 'static,
) -> (
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<()>,
) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

/// How long a daemon may take to stop after SIGTERM before the scenario calls it hung.
pub(crate) const SIGTERM_DEADLINE: Duration = Duration::from_secs(30);

/// Waits for `child` to exit, killing it (and failing) when it outlives `deadline`.
pub(crate) fn wait_or_kill(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Result<i32, String> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status.code().unwrap_or(-1));
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("mwsync ignored SIGTERM for {deadline:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[when(
    expr = "the mwsync daemon runs with a {int} second interval and receives SIGTERM {word} its second poll"
)]
async fn daemon_sigterm(w: &mut SyncWorld, secs: u64, moment: String) {
    let url = bare_url(w).await;
    let interval = secs.to_string();
    let mut d = mwsync_cmd(
        w,
        &["run", "--poll-interval-secs", &interval],
        &url,
        None,
        None,
    )
    .await;
    let state = w.h().await.sim.state().clone();
    d.stderr(Stdio::piped()).stdout(Stdio::null());
    set_process(
        w,
        tokio::task::spawn_blocking(move || {
            let mut child = d.spawn().expect("mwsync starts");
            let pid = child.id().to_string();
            let (rx, reader) = line_reader(child.stderr.take().expect("piped stderr"));
            let mut seen = String::new();
            let mut next_line = || {
                let line = rx
                    .recv_timeout(SIGTERM_DEADLINE)
                    .expect("mwsync keeps logging until it exits");
                seen.push_str(&line);
                seen.push('\n');
                line
            };
            while !next_line().contains("poll finished") {}
            match moment.as_str() {
                // The signal lands while the second poll waits on a slow MoneyWorks reply.
                "during" => {
                    let before = state.requests().total;
                    // Longer than the 5 s a stop may take, so waiting for it would show.
                    state.fail_next(FaultKind::Delay(Duration::from_secs(12)), 1);
                    let start = std::time::Instant::now();
                    while state.requests().total == before {
                        assert!(
                            start.elapsed() < SIGTERM_DEADLINE,
                            "the second poll never started"
                        );
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                // The signal lands in the sleep between polls.
                "before" => {}
                other => panic!("unknown moment {other}: say `during` or `before`"),
            }
            let status = Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill runs");
            assert!(status.success());
            let signalled = std::time::Instant::now();
            let code = match wait_or_kill(&mut child, SIGTERM_DEADLINE) {
                Ok(code) => code,
                Err(hung) => panic!("{hung}"),
            };
            let stopped = signalled.elapsed();
            reader
                .join()
                .expect("the stderr reader ends with the process");
            while let Ok(line) = rx.try_recv() {
                seen.push_str(&line);
                seen.push('\n');
            }
            // stdout is not read here; its slot carries how long the stop took.
            (
                code,
                format!("stopped {} ms after SIGTERM", stopped.as_millis()),
                seen,
            )
        })
        .await
        .expect("the watcher finishes"),
    );
}

#[then(expr = "it stopped within {int} seconds of the signal")]
fn stopped_within(w: &mut SyncWorld, secs: u64) {
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    let ms: u64 = out
        .strip_prefix("stopped ")
        .and_then(|r| r.strip_suffix(" ms after SIGTERM"))
        .and_then(|n| n.parse().ok())
        .expect("the SIGTERM step records how long the stop took");
    assert!(ms <= secs * 1000, "mwsync took {ms} ms to stop:\n{err}");
}

#[then(expr = "the log says {string} {int} times")]
fn log_says_times(w: &mut SyncWorld, text: String, n: usize) {
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    let got = err.matches(&text).count() + out.matches(&text).count();
    assert_eq!(got, n, "`{text}` should appear {n} times:\n{err}");
}

#[given(expr = "the mwsync binary has stopped with exit code {int}")]
async fn stopped_with(w: &mut SyncWorld, code: i32) {
    runs_once_bare(w).await;
    exits_with(w, code);
}

#[when("mwsync rebaseline runs")]
async fn rebaseline(w: &mut SyncWorld) {
    let url = bare_url(w).await;
    let r = mwsync_cmd(w, &["rebaseline"], &url, None, None).await;
    set_process(w, output(r).await);
}

/// The wrong password the scenario uses.
const WRONG_PASSWORD: &str = "Wrong-pw-8d2e";

#[when("the mwsync binary runs once with a wrong MoneyWorks password")]
async fn wrong_mw_password(w: &mut SyncWorld) {
    let url = bare_url(w).await;
    let mut c = run_cmd(w, &url, None, None).await;
    let mw =
        w.h()
            .await
            .sim
            .url()
            .replacen("http://", &format!("http://{USER}:{WRONG_PASSWORD}@"), 1);
    c.env("MWSYNC_MONEYWORKS_URL", mw);
    set_process(w, output(c).await);
}

#[then("its output does not contain the wrong password")]
fn no_wrong_password(w: &mut SyncWorld) {
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    assert!(
        !out.contains(WRONG_PASSWORD) && !err.contains(WRONG_PASSWORD),
        "the password was echoed:\n{err}"
    );
}

#[when(expr = "mwsync runs once with the git API key {string} as a flag")]
async fn api_key_flag(w: &mut SyncWorld, key: String) {
    let mut c = bin();
    c.args(["run", "--once", "--git-api-key", &key])
        .env(
            "MWSYNC_MONEYWORKS_URL",
            "http://u:p@127.0.0.1:9/REST/Acme.moneyworks",
        )
        .env("MWSYNC_GIT_URL", "/nonexistent/books.git")
        .env("MWSYNC_CACHE_DIR", "/nonexistent/cache");
    set_process(w, output(c).await);
}

#[then(expr = "its output does not contain {string}")]
fn output_lacks(w: &mut SyncWorld, text: String) {
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    assert!(
        !out.contains(&text) && !err.contains(&text),
        "`{text}` was echoed:\n{err}"
    );
}

#[when("the mwsync daemon runs with JSON logs and a status server")]
async fn daemon_json_status(w: &mut SyncWorld) {
    let url = bare_url(w).await;
    let run = [
        "run",
        "--poll-interval-secs",
        "1",
        "--status-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ];
    let mut d = mwsync_cmd(w, &run, &url, None, None).await;
    d.stderr(Stdio::piped()).stdout(Stdio::null());
    let (status_json, log) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = d.spawn().expect("mwsync starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut log = String::new();
        let mut addr = None;
        let mut status = None;
        let mut polls_seen = 0;
        let mut lines = std::io::BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line.expect("stderr line");
            log.push_str(&line);
            log.push('\n');
            if let Some(i) = line.find("status page on http://") {
                let rest = &line[i + "status page on http://".len()..];
                addr = rest.split('/').next().map(str::to_string);
            }
            // The snapshot is updated when a whole cycle ends, after its poll's log line;
            // by the second poll's line the first cycle's update has certainly happened.
            if line.contains("poll finished") {
                polls_seen += 1;
            }
            if polls_seen == 2 {
                let a = addr
                    .clone()
                    .expect("the status address was logged before the first poll");
                let body = plain_http::blocking_get(&format!("http://{a}/status"));
                status = Some(body);
                Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .expect("kill runs");
                break;
            }
        }
        for line in lines {
            log.push_str(&line.expect("stderr line"));
            log.push('\n');
        }
        child.wait().expect("reap");
        (status.expect("a poll finished"), log)
    })
    .await
    .expect("the watcher finishes");
    set_process(w, (0, status_json, log));
}

#[then("every log line is a JSON object")]
fn json_lines(w: &mut SyncWorld) {
    let (_, _, log) = w.process.as_ref().expect("a process ran");
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        n += 1;
    }
    assert!(n >= 2, "expected several log lines, got {n}");
}

#[then("GET /status reported the main tip, a marker per table and no error")]
async fn status_report(w: &mut SyncWorld) {
    let (_, body, _) = w.process.clone().expect("a process ran");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"));
    assert_eq!(v["state"], "running", "{v}");
    assert!(v["main"].as_str().is_some_and(|m| m.len() == 40), "{v}");
    let tables = v["tables"].as_object().expect("tables");
    assert_eq!(tables.len(), 5, "{v}");
    assert!(tables.values().all(|t| t["marker"].is_string()), "{v}");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["schema"], 1, "{v}");
    assert!(v["polls"].as_u64().is_some_and(|n| n >= 1), "{v}");
}

pub(crate) mod plain_http {
    //! A minimal blocking GET over a plain TCP socket, for use inside a blocking task.
    use std::io::{Read, Write};

    /// The body of `GET url` (HTTP/1.0, no keep-alive).
    pub fn blocking_get(url: &str) -> String {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .expect("a path");
        let mut s = std::net::TcpStream::connect(host).expect("connect");
        write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("send");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("read");
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// Every real process a scenario ran: where its `main` lives, what it printed, and the tips
/// of `main` after each run, for the invariants checked after the scenario.
#[derive(Default)]
pub struct BinaryRuns {
    /// The git URL and API key of the last run that reached a repository.
    pub remote: Option<(String, Option<String>)>,
    /// The git URL and key that last read the repository successfully (a run may have used a
    /// wrong key on purpose).
    pub reader: Option<(String, Option<String>)>,
    /// The subcommand of that run (`run`, `sync`, `rebaseline`).
    pub last_subcommand: String,
    /// Everything every run printed, stdout and stderr.
    pub outputs: Vec<String>,
    /// `main` after each run (None while absent).
    pub tips: Vec<Option<CommitId>>,
}

/// A client of the scenario's repository, with a fresh cache of its own.
fn binary_repo(url: &str, key: Option<&str>) -> (tempfile::TempDir, GitStore) {
    let dir = tempfile::tempdir().expect("a cache dir for the invariant check");
    let remote = GitRemote {
        url: url.to_string(),
        api_key: key.map(str::to_string),
        auth: AuthMode::default(),
    };
    let store = GitStore::open(&dir.path().join("repo.git"), remote).expect("the repository opens");
    (dir, store)
}

fn main_tip(url: &str, key: Option<&str>) -> Result<Option<CommitId>, String> {
    let (_dir, mut store) = binary_repo(url, key);
    store.fetch().map_err(|e| format!("fetching {url}: {e}"))?;
    store.remote_tip("main").map_err(|e| e.to_string())
}

/// Records a finished process: its output and, when it ran against a repository, `main`.
pub(crate) fn set_process(w: &mut SyncWorld, result: (i32, String, String)) {
    let binary = w.binary.get_or_insert_with(BinaryRuns::default);
    binary.outputs.push(format!("{}\n{}", result.1, result.2));
    if let Some((url, key)) = binary.remote.clone()
        && let Ok(tip) = main_tip(&url, key.as_deref())
    {
        binary.tips.push(tip);
        binary.reader = Some((url, key));
    }
    w.process = Some(result);
}

/// The secrets a scenario's processes know, in every shape they could leak in.
fn secret_shapes() -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        PASSWORD.to_string(),
        API_KEY.to_string(),
        b64(format!("{USER}:Document:{PASSWORD}")),
        b64(format!("mwsync:{API_KEY}")),
    ]
}

/// The invariants of STYLE rule 9 for a scenario that ran the real binary: no secret in any
/// output or in the history, every file on `main` canonical, `main` only forward, no marker
/// ahead of the server clock, and (when the last run ended well) a repeated run commits
/// nothing.
pub async fn check_process_invariants(w: &mut SyncWorld) -> Result<(), String> {
    let Some(runs) = w.binary.take() else {
        return Ok(());
    };
    let secrets = secret_shapes();
    for (i, out) in runs.outputs.iter().enumerate() {
        if secrets.iter().any(|s| out.contains(s.as_str())) {
            return Err(format!(
                "a secret appears in the output of process run {}",
                i + 1
            ));
        }
    }
    let Some((url, key)) = runs.reader.clone() else {
        return Ok(());
    };
    let (_dir, mut store) = binary_repo(&url, key.as_deref());
    store.fetch().map_err(|e| e.to_string())?;
    let Some(tip) = store.remote_tip("main").map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let mut seen: Vec<&CommitId> = runs.tips.iter().flatten().collect();
    seen.push(&tip);
    for pair in seen.windows(2) {
        if !store
            .is_ancestor(pair[0], pair[1])
            .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "main moved backwards or sideways from {} to {}",
                pair[0], pair[1]
            ));
        }
    }
    check_main_tree(&store, &tip, &secrets, w.h().await.sim.now())?;
    for id in store
        .commits_between(None, &tip)
        .map_err(|e| e.to_string())?
    {
        let info = store.commit_info(&id).map_err(|e| e.to_string())?;
        if secrets.iter().any(|s| info.message.contains(s.as_str())) {
            return Err(format!("a secret appears in the message of commit {id}"));
        }
    }
    let last_ok = w.process.as_ref().is_some_and(|p| p.0 == 0);
    if last_ok && runs.last_subcommand == "run" && runs.remote == runs.reader {
        let c = run_cmd(w, &url, key.as_deref(), None).await;
        let (code, out, err) = output(c).await;
        if code != 0 {
            return Err(format!(
                "a repeated `mwsync run --once` exited {code}:\n{err}"
            ));
        }
        if secrets
            .iter()
            .any(|s| out.contains(s.as_str()) || err.contains(s.as_str()))
        {
            return Err("a secret appears in the output of the repeated run".into());
        }
        if main_tip(&url, key.as_deref())? != Some(tip) {
            return Err("a repeated run against an unchanged server committed something".into());
        }
    }
    Ok(())
}

/// Every record file on `main` is canonical (by the simulator's layout), no file holds a
/// secret, and no marker is ahead of the server's clock.
fn check_main_tree(
    store: &GitStore,
    tip: &CommitId,
    secrets: &[String],
    now: mwsync_sim::time::DateTime,
) -> Result<(), String> {
    for path in store.list_files(tip, "").map_err(|e| e.to_string())? {
        let bytes = store
            .read_file(tip, &path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{path} is listed but absent"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8"))?;
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            return Err(format!("a secret appears in {path}"));
        }
        if path == ".mwsync/state.toml" {
            let state = mwsync::state::SyncState::parse(&text, &path)?;
            let now = crate::support::engine_time(now);
            if let Some((t, m)) = state
                .tables
                .iter()
                .find_map(|(t, st)| st.marker.filter(|m| *m > now).map(|m| (t, m)))
            {
                return Err(format!(
                    "the {t} marker {m} is ahead of the server clock {now}"
                ));
            }
        }
        // Only mwsync's record files have a canonical form; others may sit beside them.
        if path.starts_with(".mwsync/") || mwsync_sim::layout::parse_path(&path).is_err() {
            continue;
        }
        let file = RecordFile::parse(&text).map_err(|e| format!("{path}: {e}"))?;
        if file.canonical().map_err(|e| format!("{path}: {e}"))? != text {
            return Err(format!("{path} is not in canonical form"));
        }
    }
    Ok(())
}
