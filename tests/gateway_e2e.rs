//! End to end through the upload gateway, with nothing in-process: the real `mwsync` binary
//! syncs `mwsim serve --data` through the gateway (`deno serve gateway/main.ts`, the pinned
//! Deno) into `mwsim git-serve`, is SIGKILLed with a checkpoint staged but not committed,
//! and resumes. What landed is read with a plain `git clone` and checked against the
//! simulator's own layout of the generated data; what was sent is read from the gateway's
//! request log (`GATEWAY_LOG=requests`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::e2e::{Reaper, clone_with_key, mwsim, start};
use crate::store::git;

const TOKEN: &str = "gw-e2e-token-5f1a9c3e77";
const SERVICE_KEY: &str = "gw-e2e-service-key-41b";
const PASSWORD: &str = "gw-e2e-mw-pw-9";
/// Records per checkpoint: the data below makes about ten checkpoints.
const CHECKPOINT: usize = 25;
/// The push killed after its objects are staged. One push may carry several checkpoints
/// (the first carries the first alone), so only the second is sure to come.
const KILLED_PUSH: usize = 2;

/// The pinned Deno, or `None` (the test is skipped) when it is not installed and
/// `MWSYNC_REQUIRE_DENO` is unset. With the variable set (CI sets it), it is installed.
fn deno_or_skip() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pinned = root.join(".tools/deno/node_modules/deno/deno");
    if pinned.exists() || std::env::var_os("MWSYNC_REQUIRE_DENO").is_some() {
        return Some(crate::gateway::deno());
    }
    eprintln!(
        "SKIPPED gateway end-to-end test: the pinned Deno is not installed (run scripts/install-deno, or set MWSYNC_REQUIRE_DENO=1 to make its absence a failure)"
    );
    None
}

/// An empty `books.git` under `dir/git`, served by `mwsim git-serve` behind the gateway
/// (request log in `log`, KV in `dir`). Returns both servers, the git root and the
/// gateway's URL.
fn behind_gateway(deno: &str, dir: &Path, log: &Path) -> Served {
    let root = dir.join("git");
    std::fs::create_dir_all(&root).expect("git root");
    git(
        &root,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "books.git",
        ],
    );
    let mut gs = Command::new(mwsim());
    gs.args([
        "git-serve",
        "--addr",
        "127.0.0.1:0",
        "--api-key",
        SERVICE_KEY,
    ])
    .arg("--root")
    .arg(&root)
    .env("RUST_LOG", "warn");
    let (git_server, git_url) = start(gs);
    let (gateway, gateway_url) = start_gateway(deno, &git_url, log, &dir.join("kv.sqlite3"));
    Served {
        _servers: [git_server, gateway],
        root,
        git_url,
        gateway_url,
    }
}

/// The servers [`behind_gateway`] started (stopped when this drops) and where they are.
struct Served {
    _servers: [Reaper; 2],
    root: std::path::PathBuf,
    git_url: String,
    gateway_url: String,
}

/// Starts the gateway with `deno serve` on a free port, its request log into `log`.
fn start_gateway(deno: &str, git_url: &str, log: &Path, kv: &Path) -> (Reaper, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway");
    let errors = log.with_extension("stderr");
    let child = Command::new(deno)
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args([
            "--allow-net",
            "--allow-env",
            "--allow-read",
            "--allow-write",
        ])
        .arg("main.ts")
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .env("GIT_SERVICE_URL", git_url)
        .env("GIT_SERVICE_KEY", SERVICE_KEY)
        .env("GATEWAY_TOKEN", TOKEN)
        .env("GATEWAY_KV_PATH", kv)
        .env("GATEWAY_LOG", "requests")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).expect("log file"))
        .stderr(std::fs::File::create(&errors).expect("log file"))
        .spawn()
        .expect("deno serve starts");
    let child = Reaper(child);
    let started = Instant::now();
    loop {
        let text = format!(
            "{}{}",
            std::fs::read_to_string(log).unwrap_or_default(),
            std::fs::read_to_string(&errors).unwrap_or_default()
        );
        if let Some(url) = text.lines().find_map(|l| {
            let at = l.find("http://127.0.0.1:")?;
            Some(l[at..].trim().trim_end_matches('/').to_string())
        }) {
            return (child, url);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the gateway did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One line of the gateway's request log.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    status: u64,
    received: u64,
    stored: u64,
    already: u64,
}

fn requests(log: &Path) -> Vec<Request> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| Request {
            method: v["method"].as_str().unwrap_or_default().to_string(),
            path: v["path"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_u64().unwrap_or(0),
            received: v["received"].as_u64().unwrap_or(0),
            stored: v["stored"].as_u64().unwrap_or(0),
            already: v["already"].as_u64().unwrap_or(0),
        })
        .collect()
}

fn is_batch(r: &Request) -> bool {
    r.method == "POST" && r.path.ends_with("/objects")
}

fn is_commit(r: &Request) -> bool {
    r.method == "POST" && r.path.ends_with("/commit")
}

/// The `mwsync run --once` command through the gateway.
fn mwsync(mw_url: &str, gateway_url: &str, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mwsync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MWSYNC_") {
            c.env_remove(k);
        }
    }
    c.args(["run", "--once"])
        .env("MWSYNC_MONEYWORKS_URL", mw_url)
        .env(
            "MWSYNC_GIT_URL",
            format!("gateway+{gateway_url}/git/books.git#main"),
        )
        .env("MWSYNC_GIT_API_KEY", TOKEN)
        .env("MWSYNC_CACHE_DIR", cache)
        .env("MWSYNC_CHECKPOINT_RECORDS", CHECKPOINT.to_string())
        .env("MWSYNC_GATEWAY_BATCH_BYTES", "65536")
        .env("MWSYNC_GATEWAY_CONCURRENCY", "3")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    c
}

/// The record files the generated data gives, by the simulator's own layout: path → git
/// blob id. Independent of the engine.
fn expected_tree(data: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    mwsync_sim::data::stream_dir(data, &mut |table, record| {
        if ["Account", "Name", "Product", "Job", "Transaction"].contains(&table) {
            let path = mwsync_sim::layout::record_path(&record).map_err(|e| e.to_string())?;
            let bytes = mwsync_sim::layout::canonical_xml(&record).map_err(|e| e.to_string())?;
            let mut h = Sha1::new();
            h.update(format!("blob {}\0", bytes.len()).as_bytes());
            h.update(bytes.as_bytes());
            let id: [u8; 20] = h.finalize().into();
            out.insert(path, id.iter().map(|b| format!("{b:02x}")).collect());
        }
        Ok(())
    })
    .expect("the generated data streams");
    out
}

/// Waits until `child`'s stderr file says it paused, failing if it exits first.
fn wait_for_pause(child: &mut Child, stderr: &Path) {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        if text.contains("paused at gateway-before-commit") {
            return;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("mwsync ended ({status}) before the pause:\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no pause in 5 minutes:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A multi-checkpoint first sync through the gateway lands every record exactly once; a
/// SIGKILL with a checkpoint staged but uncommitted resumes the same upload by asking what
/// is missing and sends only that; the token shows nowhere.
#[test]
fn first_sync_through_the_gateway_survives_sigkill_and_resumes() {
    let Some(deno) = deno_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let generated = Command::new(mwsim())
        .args([
            "generate",
            "--seed",
            "15",
            "--names",
            "60",
            "--products",
            "20",
        ])
        .args(["--jobs", "6", "--accounts", "12", "--transactions", "120"])
        .arg("--out")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .status()
        .expect("mwsim generate runs");
    assert!(generated.success(), "mwsim generate failed");
    let want = expected_tree(&data);
    assert!(
        want.len() > 8 * CHECKPOINT,
        "the data makes many checkpoints ({} records)",
        want.len()
    );

    let mut sim = Command::new(mwsim());
    sim.args(["serve", "--addr", "127.0.0.1:0", "--user", "Admin"])
        .args(["--password", PASSWORD, "--document", "Acme.moneyworks"])
        .args(["--clock", "real", "--clock-start", "20260701000000"])
        .arg("--data")
        .arg(&data)
        .env("RUST_LOG", "warn");
    let (_sim, sim_url) = start(sim);
    let log = tmp.path().join("gateway.log");
    let served = behind_gateway(&deno, tmp.path(), &log);
    let (git_url, gateway_url) = (served.git_url.clone(), served.gateway_url.clone());
    let mw_url = sim_url.replacen("http://", &format!("http://Admin:{PASSWORD}@"), 1)
        + "/REST/Acme.moneyworks";
    let cache = tmp.path().join("cache");

    // Run 1: paused after the objects of push KILLED_PUSH are staged, then SIGKILLed.
    let err1 = tmp.path().join("run1.stderr");
    let mut cmd = mwsync(&mw_url, &gateway_url, &cache);
    cmd.env(
        "MWSYNC_TEST_PAUSE_AT",
        format!("gateway-before-commit:{KILLED_PUSH}"),
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&err1).expect("stderr file"));
    let mut child = cmd.spawn().expect("mwsync starts");
    wait_for_pause(&mut child, &err1);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = requests(&log);
    let commits_before = before
        .iter()
        .filter(|r| is_commit(r) && r.status == 200)
        .count();
    assert_eq!(
        commits_before,
        KILLED_PUSH - 1,
        "the kill came after exactly {} commits",
        KILLED_PUSH - 1
    );
    let last_commit = before
        .iter()
        .rposition(is_commit)
        .expect("a commit before the kill");
    let staged_unlanded: u64 = before[last_commit..]
        .iter()
        .filter(|r| is_batch(r))
        .map(|r| r.stored)
        .sum();
    assert!(
        staged_unlanded > 20,
        "the killed checkpoint had staged its objects: {staged_unlanded}"
    );
    let upload_path = before
        .iter()
        .find(|r| is_batch(r))
        .map(|r| r.path.trim_end_matches("/objects").to_string())
        .expect("a batch before the kill");
    let saved = std::fs::read_to_string(cache.join("mwsync-gateway-upload.json"))
        .expect("the open upload is saved in the cache directory");
    assert!(
        saved.contains(upload_path.trim_start_matches("/v1/uploads/")),
        "{saved}"
    );

    // Run 2: resumes the same upload, asks what is missing, sends only that.
    let out = mwsync(&mw_url, &gateway_url, &cache)
        .output()
        .expect("mwsync runs");
    let stderr2 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the resumed run failed:\n{stderr2}");
    let after: Vec<Request> = requests(&log)[before.len()..].to_vec();
    let api: Vec<&Request> = after
        .iter()
        .filter(|r| r.path.starts_with("/v1/"))
        .collect();
    assert!(
        api.iter().all(|r| r.path.starts_with(&upload_path)),
        "the resumed run used the saved upload only: {api:?}"
    );
    let first_batch = api.iter().position(|r| is_batch(r)).unwrap_or(api.len());
    assert!(
        api[..first_batch]
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("{upload_path}/missing")),
        "the resumed run asked what is missing before sending anything: {api:?}"
    );
    let first_commit = api
        .iter()
        .position(|r| is_commit(r))
        .expect("the resumed run commits");
    let resent: Vec<&&Request> = api[..first_commit].iter().filter(|r| is_batch(r)).collect();
    let received: u64 = resent.iter().map(|r| r.received).sum();
    eprintln!(
        "resume: {} missing request(s), {received} objects sent in {} batch(es); {staged_unlanded} were staged before the kill",
        api[..first_commit]
            .iter()
            .filter(|r| r.path.ends_with("/missing"))
            .count(),
        resent.len()
    );
    // The resumed push may carry checkpoints the killed run never reached, so what it
    // sends is not compared with what was staged (and may be nothing, when the rebuilt
    // commits are the killed run's own, made within the same second); none of it may have
    // been staged already.
    assert_eq!(
        resent.iter().map(|r| r.already).sum::<u64>(),
        0,
        "the resume sent nothing that was staged already"
    );
    assert!(
        after
            .iter()
            .filter(|r| is_commit(r) && r.status == 200)
            .count()
            >= 1,
        "the rest of the first sync landed (one push may carry several checkpoints; the history's commits are counted below)"
    );

    // A plain clone of the git service holds exactly the simulator's records, each
    // created once in the history.
    let clone = tmp.path().join("clone");
    assert!(
        clone_with_key(
            &format!("{git_url}/books.git"),
            "reader",
            SERVICE_KEY,
            &clone
        ),
        "git clone of the service works"
    );
    let listing = git(&clone, &["ls-tree", "-r", "--full-tree", "HEAD"]);
    let got: BTreeMap<String, String> = listing
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((path.to_string(), meta.split(' ').nth(2)?.to_string()))
        })
        .filter(|(p, _)| !p.starts_with(".mwsync/"))
        .collect();
    assert_eq!(got.len(), want.len(), "record count on main");
    assert!(got == want, "main differs from the simulator's records");
    let added = git(
        &clone,
        &["log", "--format=", "--name-only", "--diff-filter=A", "HEAD"],
    );
    let mut adds: Vec<&str> = added
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(".mwsync/"))
        .collect();
    let total = adds.len();
    adds.sort_unstable();
    adds.dedup();
    assert_eq!(
        total,
        adds.len(),
        "a record was created twice in the history"
    );
    assert_eq!(adds.len(), want.len(), "every record was created");
    let commits: usize = git(&clone, &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .expect("a count");
    assert!(commits > 8, "a multi-checkpoint sync: {commits} commits");

    // The token and the service key show nowhere.
    let run1 = std::fs::read_to_string(&err1).unwrap_or_default();
    let history = git(&clone, &["log", "--format=%B"]);
    let config = std::fs::read_to_string(clone.join(".mwsync/config.toml")).expect("config");
    for (what, text) in [
        ("the first run's log", run1.as_str()),
        ("the resumed run's log", stderr2.as_str()),
        ("the commit messages", history.as_str()),
        ("the repo config", config.as_str()),
        ("the saved upload", saved.as_str()),
    ] {
        assert!(
            !text.contains(TOKEN) && !text.contains(SERVICE_KEY),
            "a secret appears in {what}"
        );
    }
}

/// The blocking `reqwest` call of a test: DELETE with the gateway's token.
fn delete(url: &str) -> u16 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            reqwest::Client::new()
                .delete(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("the gateway answers")
                .status()
                .as_u16()
        })
}

/// Through the gateway, the store's push lands by compare-and-swap; a branch moved by someone
/// else is `BranchMoved` with the real tip, exactly as for `git push`; an upload the gateway
/// lost is replaced by a new one; no error carries the token.
#[test]
fn store_push_through_the_gateway_keeps_the_push_contract() {
    use mwsync::store::gateway::{Gateway, GatewayConfig, UPLOAD_FILE};
    use mwsync::store::git::{AuthMode, GitRemote, GitStore};
    use mwsync::store::{FileChange, NewCommit, Store, StoreError};

    let Some(deno) = deno_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("gateway.log");
    let served = behind_gateway(&deno, tmp.path(), &log);
    let (root, git_url, gateway_url) = (
        served.root.clone(),
        served.git_url.clone(),
        served.gateway_url.clone(),
    );
    let cache = tmp.path().join("cache");
    let mut store = GitStore::open(
        &cache.join("repo.git"),
        GitRemote {
            url: format!("{gateway_url}/git/books.git"),
            api_key: Some(TOKEN.into()),
            auth: AuthMode::Bearer,
        },
    )
    .expect("the cache opens");
    store.use_gateway(
        Gateway::new(
            GatewayConfig {
                api: gateway_url.clone(),
                repo: "books.git".into(),
                token: TOKEN.into(),
                concurrency: 2,
                batch_bytes: 65_536,
                batch_retry: mwsync::store::gateway::BATCH_RETRY,
                cache_dir: cache.clone(),
            },
            mwsync::events::Events::new(),
        )
        .expect("the client starts"),
    );
    let commit = |store: &mut GitStore, parent: Option<&mwsync::store::CommitId>, n: u32| {
        store
            .commit(NewCommit {
                parents: parent.into_iter().cloned().collect(),
                changes: (0..40)
                    .map(|i| {
                        (
                            format!("t/{:02}/r{i}.xml", i % 7),
                            FileChange::Put(format!("<r n='{n}' i='{i}'/>\n").into_bytes()),
                        )
                    })
                    .collect(),
                message: format!("commit {n}\n"),
            })
            .expect("a commit")
    };
    store.fetch().expect("fetch through the gateway");
    let a = commit(&mut store, None, 1);
    store.push("main", None, &a).expect("the first push lands");
    assert_eq!(store.remote_tip("main").expect("tip"), Some(a.clone()));
    assert_eq!(
        git(&root.join("books.git"), &["rev-parse", "main"]).trim(),
        a.0,
        "the service's branch is at the pushed commit"
    );

    // Someone else moves main on the service.
    let other = tmp.path().join("other");
    let header = format!(
        "http.extraHeader=Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("w:{SERVICE_KEY}"))
    );
    let writer = |args: &[&str]| {
        let mut all = vec!["-c", &header, "-c", "user.name=w", "-c", "user.email=w@x"];
        all.extend_from_slice(args);
        git(tmp.path(), &all);
    };
    writer(&["clone", "--quiet", &format!("{git_url}/books.git"), "other"]);
    std::fs::write(other.join("x.txt"), "moved\n").expect("write");
    writer(&["-C", "other", "add", "x.txt"]);
    writer(&["-C", "other", "commit", "--quiet", "-m", "someone else"]);
    writer(&["-C", "other", "push", "--quiet", "origin", "main"]);
    let moved = git(&other, &["rev-parse", "HEAD"]).trim().to_string();

    let b = commit(&mut store, Some(&a), 2);
    let err = store
        .push("main", Some(&a), &b)
        .expect_err("a moved branch refuses the push");
    match &err {
        StoreError::BranchMoved {
            expected, actual, ..
        } => assert_eq!((expected, actual), (&a.0, &moved)),
        other => panic!("expected BranchMoved, got {other:?}"),
    }
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert_eq!(
        store.remote_tip("main").expect("tip").map(|c| c.0),
        Some(moved.clone()),
        "the refusal fetched the real tip, as after a refused git push"
    );
    assert_eq!(
        git(&root.join("books.git"), &["rev-parse", "main"]).trim(),
        moved,
        "the refused commit left the branch as it was"
    );

    // The gateway loses the upload; the next push opens a new one and lands.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cache.join(UPLOAD_FILE)).expect("the upload is saved"),
    )
    .expect("JSON");
    let id = saved["id"].as_str().expect("an id").to_string();
    assert_eq!(
        delete(&format!("{gateway_url}/v1/uploads/{id}")),
        204,
        "the upload closes"
    );
    let moved_id = mwsync::store::CommitId(moved);
    let c = commit(&mut store, Some(&moved_id), 3);
    store
        .push("main", Some(&moved_id), &c)
        .expect("a push after the upload was lost lands");
    assert_eq!(
        git(&root.join("books.git"), &["rev-parse", "main"]).trim(),
        c.0
    );
    let resaved = std::fs::read_to_string(cache.join(UPLOAD_FILE)).expect("saved again");
    assert!(!resaved.contains(&id), "a new upload replaced the lost one");
    assert!(!resaved.contains(TOKEN), "the saved upload holds no token");
    let fsck = Command::new("git")
        .args(["fsck", "--strict", "--no-progress"])
        .current_dir(root.join("books.git"))
        .output()
        .expect("git fsck");
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// `mwsync doctor` with a gateway URL reads through the gateway and proves the write side
/// by listing uploads with the token (the read side refuses `git push --dry-run`); no check
/// shows the token.
#[tokio::test]
async fn doctor_checks_the_gateway_write_side_with_the_token() {
    use mwsync::config::{Secret, Settings};
    use mwsync::doctor::{DoctorOptions, Verdict, names, run};

    let Some(deno) = deno_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let served = behind_gateway(&deno, tmp.path(), &tmp.path().join("gateway.log"));
    let gateway_url = served.gateway_url.clone();
    let cfg = Settings {
        // Nothing listens there: the MoneyWorks checks fail, the git checks still run.
        moneyworks_url: Some(Secret::new(
            "http://Admin:pw@127.0.0.1:9/REST/Acme.moneyworks",
        )),
        git_url: Some(format!("gateway+{gateway_url}/git/books.git#main")),
        git_api_key: Some(Secret::new(TOKEN)),
        cache_dir: Some(tmp.path().join("cache")),
        ..Settings::default()
    }
    .validate(|_| Err(std::io::Error::other("no files here")))
    .expect("a valid config");
    let report = run(Ok(cfg), &DoctorOptions { min_free_mb: 1 }).await;
    let check = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {report:?}"))
    };
    assert_eq!(check(names::GIT).verdict, Verdict::Pass, "{report:?}");
    let push = check(names::PUSH);
    assert_eq!(push.verdict, Verdict::Pass, "{report:?}");
    assert!(
        push.detail.contains("upload gateway accepts the token"),
        "{}",
        push.detail
    );
    for c in &report.checks {
        assert!(
            !c.detail.contains(TOKEN) && !c.remedy.as_deref().unwrap_or("").contains(TOKEN),
            "the token shows in {c:?}"
        );
    }
}
