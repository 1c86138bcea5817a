//! Steps for `features/daemon.feature`: the real binary meeting refused pushes, pushes that
//! outlive their process, forged commits, oversized replies, full sync checks, typos, every
//! shape of URL and `[ERROR]` replies.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cucumber::{given, then, when};
use mwsync_sim::fake::FaultKind;

use super::SyncWorld;
use super::process::{
    SIGTERM_DEADLINE, bare_url, bin, line_reader, mwsync_cmd, output, plain_http, run_cmd,
    set_process, wait_or_kill,
};
use crate::support::{PASSWORD, Repo, USER};

/// What a daemon run showed: its exit code, its log, the last `/status` body read, and its
/// peak resident memory in kB.
#[derive(Debug, Default, Clone)]
pub struct DaemonRun {
    pub code: i32,
    pub log: String,
    pub status: String,
    pub peak_kb: u64,
}

/// The peak resident memory of a live process, from `/proc`.
fn peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `cmd` (a daemon) until `done` says so for a log line (given the `/status` body when
/// a status server runs), then SIGTERMs it and collects what it showed.
fn watch_daemon(
    mut cmd: Command,
    mut done: impl FnMut(&str, Option<&str>) -> bool + Send + 'static,
) -> DaemonRun {
    cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().expect("mwsync starts");
    let pid = child.id();
    let (rx, reader) = line_reader(child.stderr.take().expect("piped stderr"));
    let mut run = DaemonRun::default();
    let mut addr: Option<String> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let line = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => String::new(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!(
                    "mwsync exited before the scenario saw what it waits for:\n{}",
                    run.log
                )
            }
        };
        if !line.is_empty() {
            run.log.push_str(&line);
            run.log.push('\n');
        }
        if let Some(i) = line.find("status page on http://") {
            let rest = &line[i + "status page on http://".len()..];
            addr = rest.split('/').next().map(str::to_string);
        }
        let status = addr
            .as_ref()
            .map(|a| plain_http::blocking_get(&format!("http://{a}/status")));
        if let Some(s) = &status {
            run.status = s.clone();
        }
        run.peak_kb = run.peak_kb.max(peak_kb(pid));
        if done(&line, status.as_deref()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mwsync never showed what the scenario waits for:\n{}",
            run.log
        );
    }
    run.peak_kb = run.peak_kb.max(peak_kb(pid));
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    run.code = wait_or_kill(&mut child, SIGTERM_DEADLINE).unwrap_or_else(|hung| panic!("{hung}"));
    reader.join().expect("the reader ends with the process");
    while let Ok(line) = rx.try_recv() {
        run.log.push_str(&line);
        run.log.push('\n');
    }
    run
}

/// Records a daemon run like any process run, and keeps its details for later steps.
fn keep(w: &mut SyncWorld, run: DaemonRun) {
    set_process(w, (run.code, String::new(), run.log.clone()));
    w.daemon = Some(run);
}

#[then(expr = "it says {string}")]
fn it_says(w: &mut SyncWorld, text: String) {
    let (_, out, err) = w.process.as_ref().expect("a process ran");
    assert!(
        out.contains(&text) || err.contains(&text),
        "the output should say `{text}`:\n{err}"
    );
}

#[given(expr = "the repository's pre-receive hook refuses every push saying {string}")]
async fn refusing_hook(w: &mut SyncWorld, reason: String) {
    let Repo::Bare { path, .. } = &w.h().await.repo else {
        panic!("this scenario needs a real bare repository")
    };
    let hook = path.join("hooks/pre-receive");
    let count = path.join("hook-runs");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{reason}' >&2\nexit 1\n",
            count.display()
        ),
    )
    .expect("write the hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // main never comes to exist, so a repeated run would only be refused again.
    w.skip_invariants = true;
}

#[then(expr = "the pre-receive hook ran {int} times")]
async fn hook_ran(w: &mut SyncWorld, n: usize) {
    let Repo::Bare { path, .. } = &w.h().await.repo else {
        panic!("this scenario needs a real bare repository")
    };
    let runs = std::fs::read_to_string(path.join("hook-runs")).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        n,
        "a refused push must not be retried"
    );
}

/// `mwsync run` against the bare repository, polling every second, with a status server
/// on a free port, and `extra` flags.
async fn status_daemon(w: &mut SyncWorld, extra: &[&str]) -> Command {
    let url = bare_url(w).await;
    let mut run = vec![
        "run",
        "--poll-interval-secs",
        "1",
        "--status-addr",
        "127.0.0.1:0",
    ];
    run.extend_from_slice(extra);
    mwsync_cmd(w, &run, &url, None, None).await
}

#[when(expr = "the mwsync daemon runs with a status server until \\/status says {string}")]
async fn daemon_until_status(w: &mut SyncWorld, state: String) {
    let d = status_daemon(w, &[]).await;
    let want = format!("\"state\": \"{state}\"");
    let run = tokio::task::spawn_blocking(move || {
        watch_daemon(d, move |_, status| {
            status.is_some_and(|s| s.contains(&want))
        })
    })
    .await
    .expect("the watcher finishes");
    keep(w, run);
}

#[then(expr = "GET \\/status said {string} with {string}")]
fn status_said(w: &mut SyncWorld, state: String, text: String) {
    let run = w.daemon.as_ref().expect("a daemon ran");
    let v: serde_json::Value = serde_json::from_str(&run.status)
        .unwrap_or_else(|e| panic!("/status is not JSON ({e}): {}", run.status));
    assert_eq!(v["state"], state.as_str(), "{v}");
    if state == "parked" {
        assert!(
            v["parked"].as_str().is_some_and(|p| p.contains(&text)),
            "{v}"
        );
    }
}

#[then(expr = "the daemon stopped with exit code {int}")]
fn daemon_code(w: &mut SyncWorld, code: i32) {
    let run = w.daemon.as_ref().expect("a daemon ran");
    assert_eq!(run.code, code, "{}", run.log);
}

/// A directory with a `git` that sleeps before every push, then runs the real git.
fn slowed_git(dir: &std::path::Path, marker: &std::path::Path) -> std::path::PathBuf {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh runs")
            .stdout,
    )
    .expect("utf8")
    .trim()
    .to_string();
    let bin_dir = dir.join("slow-git");
    std::fs::create_dir_all(&bin_dir).expect("dir");
    let script = bin_dir.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = push ]; then touch '{}'; sleep 1.5; fi; done\nexec '{real}' \"$@\"\n",
            marker.display()
        ),
    )
    .expect("write the script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin_dir
}

#[when(
    expr = "{int} times a name is edited, mwsync is killed while a slowed git pushes, another name is edited and mwsync restarts at once"
)]
async fn orphan_push_race(w: &mut SyncWorld, rounds: usize) {
    let url = bare_url(w).await;
    let scratch = w
        .scratch
        .as_ref()
        .expect("a run made the scratch dir")
        .path()
        .to_path_buf();
    let marker = scratch.join("push-started");
    let slow = slowed_git(&scratch, &marker);
    let path = format!(
        "{}:{}",
        slow.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut restarts = Vec::new();
    for round in 0..rounds {
        let h = w.h().await;
        let names = h.sim.records("Name");
        let code = |i: usize| {
            names[i % names.len()]
                .text("code")
                .expect("names have codes")
                .to_string()
        };
        h.sim.advance(5);
        h.sim.upsert(
            "Name",
            &code(round),
            &[("phone", &format!("01 {round:04}"))],
        );
        let _ = std::fs::remove_file(&marker);
        let mut first = run_cmd(w, &url, None, None).await;
        first
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let marker_seen = marker.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = first.spawn().expect("mwsync starts");
            let start = std::time::Instant::now();
            while !marker_seen.exists() {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "mwsync never started a push"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            // SIGKILL while its `git push` sleeps: the push outlives the process.
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        })
        .await
        .expect("the killer finishes");
        let h = w.h().await;
        h.sim.advance(5);
        h.sim.upsert(
            "Name",
            &code(round + 1),
            &[("phone", &format!("02 {round:04}"))],
        );
        let mut again = run_cmd(w, &url, None, None).await;
        again.env("PATH", &path);
        let out = output(again).await;
        restarts.push(out.clone());
        set_process(w, out);
    }
    w.restarts = restarts;
}

#[then(expr = "every restart exited with code {int}")]
fn every_restart(w: &mut SyncWorld, code: i32) {
    assert!(!w.restarts.is_empty());
    for (i, (got, _, err)) in w.restarts.iter().enumerate() {
        assert_eq!(*got, code, "restart {} exited {got}:\n{err}", i + 1);
    }
}

#[then("some restart adopted the push of the process it replaced")]
fn some_adopted(w: &mut SyncWorld) {
    let adopted = w
        .restarts
        .iter()
        .filter(|(_, _, err)| err.contains("mwsync's own push from before a restart"))
        .count();
    assert!(
        adopted > 0,
        "no restart met the push of the killed process; the race was not exercised"
    );
    eprintln!(
        "orphan-push race: {adopted} of {} restarts adopted the killed process's push",
        w.restarts.len()
    );
}

#[then("main in the bare repository holds exactly the records MoneyWorks holds")]
async fn bare_main_equals(w: &mut SyncWorld) {
    let h = w.h().await;
    let want = h.expected_files();
    let got = h.main_records();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &want {
        assert_eq!(&got[path], bytes, "{path} differs");
    }
}

#[when("someone else commits to main with mwsync's trailers")]
async fn forged_commit(w: &mut SyncWorld) {
    let h = w.h().await;
    h.repo.write(
        "main",
        "main",
        &[("README.md", Some(b"not mwsync".as_slice()))],
        "Pull 1 record: Name 1\n\nName X updated\n\nMwsync-Marker: Name 20260105090000\nMwsync-Config: 0123456789ab\n",
    );
}

#[when("the cache directory is wiped")]
fn wipe_cache(w: &mut SyncWorld) {
    let scratch = w
        .scratch
        .as_ref()
        .expect("a run made the scratch dir")
        .path();
    std::fs::remove_dir_all(scratch.join("cache")).expect("remove the cache");
}

/// A MoneyWorks stand-in that answers the clock, and every export with `size` bytes of a
/// well-formed beginning that never ends before the size is reached; it counts exports.
pub struct HugeServer {
    url: String,
    exports: Arc<AtomicU64>,
}

fn huge_server(size: u64) -> HugeServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let exports = Arc::new(AtomicU64::new(0));
    let counter = exports.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).to_string();
                if head.contains("/evaluate") {
                    let body = "20260105090000";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                );
                let record = "<name><sequencenumber system=\"true\">1</sequencenumber><lastmodifiedtime system=\"true\">20260105080000</lastmodifiedtime><code>HUGE</code><notes>".to_string()
                    + &"x".repeat(64 * 1024)
                    + "</notes></name>";
                let mut sent = 0u64;
                let start = "<?xml version=\"1.0\"?><table name=\"Name\" count=\"1\" start=\"0\" found=\"1\">";
                let _ = write!(stream, "{:x}\r\n{start}\r\n", start.len());
                while sent < size {
                    if write!(stream, "{:x}\r\n{record}\r\n", record.len()).is_err() {
                        return;
                    }
                    sent += record.len() as u64;
                }
                let _ = write!(stream, "0\r\n\r\n");
            });
        }
    });
    HugeServer {
        url: format!("http://{USER}:{PASSWORD}@{addr}/REST/Acme.moneyworks"),
        exports,
    }
}

#[given(expr = "a MoneyWorks server whose exports answer {int} MB")]
fn huge(w: &mut SyncWorld, mb: u64) {
    w.huge = Some(huge_server(mb * 1024 * 1024));
}

#[when(expr = "the mwsync daemon runs against it until the log says {string}")]
async fn daemon_against_huge(w: &mut SyncWorld, text: String) {
    let url = bare_url(w).await;
    let run = ["run", "--poll-interval-secs", "1", "--tables", "Name"];
    let mut d = mwsync_cmd(w, &run, &url, None, None).await;
    let mw = w.huge.as_ref().expect("the server runs").url.clone();
    d.env("MWSYNC_MONEYWORKS_URL", mw);
    let run = tokio::task::spawn_blocking(move || {
        let mut seen_at: Option<std::time::Instant> = None;
        watch_daemon(d, move |line, _| {
            if seen_at.is_none() && line.contains(&text) {
                seen_at = Some(std::time::Instant::now());
            }
            // Two more cycles, to see that the reply is not asked for again.
            seen_at.is_some_and(|t| t.elapsed() > Duration::from_millis(2500))
        })
    })
    .await
    .expect("the watcher finishes");
    w.skip_invariants = true;
    keep(w, run);
}

#[then("the oversized export was asked for once")]
fn asked_once(w: &mut SyncWorld) {
    let n = w
        .huge
        .as_ref()
        .expect("the server runs")
        .exports
        .load(Ordering::SeqCst);
    assert_eq!(n, 1, "the oversized reply was downloaded {n} times");
}

#[then(expr = "the daemon's peak memory stayed under {int} MB")]
fn peak_memory(w: &mut SyncWorld, mb: u64) {
    let run = w.daemon.as_ref().expect("a daemon ran");
    assert!(run.peak_kb > 0, "the peak memory could not be read");
    eprintln!("oversized reply: peak RSS {} MB", run.peak_kb / 1024);
    assert!(
        run.peak_kb < mb * 1024,
        "peak RSS was {} MB",
        run.peak_kb / 1024
    );
}

#[when("mwsync sync --full --check runs")]
async fn check_runs(w: &mut SyncWorld) {
    let url = bare_url(w).await;
    let c = mwsync_cmd(w, &["sync", "--full", "--check"], &url, None, None).await;
    set_process(w, output(c).await);
}

#[then("main is where the previous run left it")]
fn main_unmoved(w: &mut SyncWorld) {
    let tips = &w.binary.as_ref().expect("processes ran").tips;
    assert!(tips.len() >= 2);
    assert_eq!(
        tips[tips.len() - 1],
        tips[tips.len() - 2],
        "the check moved main"
    );
}

#[when(expr = "a writer requests a full sync check {string} on changes")]
async fn request_check(w: &mut SyncWorld, request: String) {
    let h = w.h().await;
    let files = h.main_files();
    let text = String::from_utf8(files[".mwsync/config.toml"].clone()).expect("utf8");
    let mut cfg: toml::Table = toml::from_str(&text).expect("the repo config is TOML");
    let mut full = toml::Table::new();
    full.insert("mode".into(), "check".into());
    full.insert("request".into(), request.into());
    cfg.insert("full_sync".into(), full.into());
    let id = h.repo.write(
        "changes",
        "main",
        &[(
            ".mwsync/config.toml",
            Some(toml::to_string(&cfg).expect("TOML").as_bytes()),
        )],
        "Please check",
    );
    w.writer_commit = Some(id);
}

#[then(expr = "the sync state on main records a check {string} with {int} differences")]
async fn state_records_check(w: &mut SyncWorld, request: String, n: i64) {
    let files = w.h().await.main_files();
    let state: toml::Table =
        toml::from_str(std::str::from_utf8(&files[".mwsync/state.toml"]).expect("utf8"))
            .expect("the state is TOML");
    let full = state["full_sync"].as_table().expect("a [full_sync] table");
    assert_eq!(full["request"].as_str(), Some(request.as_str()), "{full:?}");
    assert_eq!(full["mode"].as_str(), Some("check"), "{full:?}");
    assert_eq!(full["differences"].as_integer(), Some(n), "{full:?}");
}

#[when(expr = "the mwsync binary runs once with the sync branch {string} and a fresh cache")]
async fn typo_branch(w: &mut SyncWorld, branch: String) {
    let url = bare_url(w).await;
    let mut c = run_cmd(w, &format!("{url}#{branch}"), None, None).await;
    let fresh = w
        .scratch
        .as_ref()
        .expect("scratch")
        .path()
        .join("fresh-cache");
    c.env("MWSYNC_CACHE_DIR", fresh);
    set_process(w, output(c).await);
}

#[then(expr = "the bare repository has no branch {string}")]
async fn no_branch(w: &mut SyncWorld, branch: String) {
    assert_eq!(
        w.h().await.repo.tip(&branch),
        None,
        "`{branch}` was created"
    );
}

#[when(
    expr = "the mwsync daemon runs with the changes branch {string} and a status server until it has polled {int} times"
)]
async fn daemon_changes_typo(w: &mut SyncWorld, branch: String, polls: usize) {
    let d = status_daemon(w, &["--changes-branch", &branch]).await;
    let run = tokio::task::spawn_blocking(move || watch_until_polls(d, polls))
        .await
        .expect("the watcher finishes");
    keep(w, run);
}

fn watch_until_polls(d: Command, polls: usize) -> DaemonRun {
    let mut seen = 0;
    watch_daemon(d, move |line, status| {
        if line.contains("poll finished") {
            seen += 1;
        }
        // The snapshot is updated after the cycle; one more poll line proves it was.
        seen > polls && status.is_some()
    })
}

#[when(expr = "the mwsync daemon runs with a status server until it has polled {int} times")]
async fn daemon_polls(w: &mut SyncWorld, polls: usize) {
    let d = status_daemon(w, &[]).await;
    let run = tokio::task::spawn_blocking(move || watch_until_polls(d, polls))
        .await
        .expect("the watcher finishes");
    keep(w, run);
}

#[then(expr = "GET \\/status warned {string}")]
fn status_warned(w: &mut SyncWorld, text: String) {
    let run = w.daemon.as_ref().expect("a daemon ran");
    let v: serde_json::Value = serde_json::from_str(&run.status).expect("/status is JSON");
    assert!(
        v["warnings"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains(&text)))),
        "{v}"
    );
}

#[when("mwsync runs once with MWSYNC_CACHE_DIR set but empty")]
async fn empty_cache_dir(w: &mut SyncWorld) {
    let mut c = bin();
    c.args(["run", "--once"])
        .env(
            "MWSYNC_MONEYWORKS_URL",
            "http://u:p@127.0.0.1:9/REST/Acme.moneyworks",
        )
        .env("MWSYNC_GIT_URL", "/nonexistent/books.git")
        .env("MWSYNC_CACHE_DIR", "");
    set_process(w, output(c).await);
}

#[when(expr = "mwsync runs once at log level trace with the {word} URL {string}")]
async fn url_shape(w: &mut SyncWorld, which: String, url: String) {
    let mut c = bin();
    c.args(["run", "--once"])
        .env("RUST_LOG", "trace")
        .env("MWSYNC_CACHE_DIR", "/nonexistent/cache")
        .env("MWSYNC_GIT_API_KEY", "some-key");
    match which.as_str() {
        "MoneyWorks" => c
            .env("MWSYNC_MONEYWORKS_URL", &url)
            .env("MWSYNC_GIT_URL", "/nonexistent/books.git"),
        "git" => c
            .env(
                "MWSYNC_MONEYWORKS_URL",
                "http://u:p@127.0.0.1:9/REST/Acme.moneyworks",
            )
            .env("MWSYNC_GIT_URL", &url),
        other => panic!("unknown URL kind {other}"),
    };
    set_process(w, output(c).await);
}

#[when("the mwsync binary runs once against it with the API key at log level trace")]
async fn trace_run(w: &mut SyncWorld) {
    let url = w
        .http_git
        .as_ref()
        .expect("the git server runs")
        .url
        .clone();
    let mut c = run_cmd(w, &url, Some(super::process::API_KEY), None).await;
    c.env("RUST_LOG", "trace");
    set_process(w, output(c).await);
}

#[given(expr = "MoneyWorks answers the next {int} export requests with an [ERROR] reply")]
async fn export_errors(w: &mut SyncWorld, n: u32) {
    w.h()
        .await
        .sim
        .state()
        .fail_next_command("export", FaultKind::ErrorReply, n);
}
