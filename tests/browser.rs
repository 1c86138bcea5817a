//! The status page in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with fantoccini), against the real `mwsync` binary, the fake MoneyWorks and
//! a real bare repository. Without reloading the page it must show a first sync's moving
//! progress bar, a MoneyWorks edit, a conflict's field-level report, and reconnect after
//! mwsync is killed and started again.
//!
//! `MWSYNC_SCREENSHOTS=docs/img cargo test -p mwsync --test main browser` also saves the
//! screenshots the README shows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use mwsync::store::{FileChange, NewCommit, Store};
use mwsync_sim::fake::{FaultKind, Sim};
use mwsync_sim::layout::RecordKey;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Repo, StoreKind, USER, edited_file, path_of, sim_builder};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Names in the fake: enough pages for a first sync that lasts a few seconds.
const NAMES: usize = 1200;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends the Chromium processes of one test's profile directory when dropped, so a failed
/// test leaves no browser behind (killing chromedriver does not end them). They are found
/// by the profile's unique path in their command lines and ended by id.
struct ChromiumOf(PathBuf);

impl Drop for ChromiumOf {
    fn drop(&mut self) {
        let needle = format!("--user-data-dir={}", self.0.display());
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

async fn browser(profile: &Path) -> (Proc, Client) {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)"
    );
    let port = free_port();
    let driver = Proc(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    wait_for_port(port, "chromedriver").await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=900,1300", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session through chromedriver");
    (driver, client)
}

struct Mwsync {
    sim_url: String,
    git: String,
    cache: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Mwsync {
    fn start(&self) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut c = Command::new(env!("CARGO_BIN_EXE_mwsync"));
        for (k, _) in std::env::vars() {
            if k.starts_with("MWSYNC_") {
                c.env_remove(k);
            }
        }
        c.arg("run")
            .env("RUST_LOG", "info")
            .env(
                "MWSYNC_MONEYWORKS_URL",
                self.sim_url
                    .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1),
            )
            .env("MWSYNC_GIT_URL", &self.git)
            .env("MWSYNC_CACHE_DIR", &self.cache)
            .env("MWSYNC_STATUS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("MWSYNC_TABLES", "Name")
            .env("MWSYNC_PAGE_SIZE", "10")
            .env("MWSYNC_POLL_INTERVAL_SECS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Proc(c.spawn().expect("mwsync starts"))
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}: {script}"))
}

/// Polls `script` every 50 ms until it returns a truthy value, for at most `secs` seconds.
async fn until(client: &Client, secs: u64, what: &str, script: &str, log: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = js(client, script).await;
        if !(v.is_null() || v == json!(false) || v == json!("")) {
            return v;
        }
        if Instant::now() > deadline {
            let page = js(client, "return document.body.innerText").await;
            panic!(
                "the page never showed {what}.\npage:\n{}\nmwsync log:\n{}",
                page.as_str().unwrap_or_default(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Ok(dir) = std::env::var("MWSYNC_SCREENSHOTS") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(name), png).expect("screenshot saved");
    }
}

/// Without a reload, the page shows a first sync's progress bar moving, a MoneyWorks edit,
/// a conflict's field-level report, and reconnects after mwsync is killed and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_mwsync_live() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim: Sim = sim_builder().names(NAMES).start().await;
    let repo = Repo::new(StoreKind::Bare);
    let Repo::Bare { path, .. } = &repo else {
        unreachable!("a bare repository was asked for")
    };
    let daemon = Mwsync {
        sim_url: sim.url(),
        git: path.display().to_string(),
        cache: dir.path().join("cache"),
        log: dir.path().join("mwsync.log"),
        port: free_port(),
    };
    let log = daemon.log.clone();
    let profile = dir.path().join("profile");
    let _chromium = ChromiumOf(profile.clone());
    let (_driver, client) = browser(&profile).await;

    // Hold the first request until the page is surely open, then slow each export a little,
    // so the first sync lasts a few seconds however loaded the machine is.
    sim.fail_next(FaultKind::Delay(Duration::from_secs(3)), 1);
    sim.fail_next(FaultKind::Delay(Duration::from_millis(25)), 130);
    let mut mwsync = daemon.start();
    wait_for_port(daemon.port, "mwsync's status server").await;
    client
        .goto(&format!("http://127.0.0.1:{}/", daemon.port))
        .await
        .expect("the page loads");
    js(&client, "window.__notReloaded = true; return true").await;
    until(
        &client,
        30,
        "the live connection",
        "return document.getElementById('conn').textContent === 'live';",
        &log,
    )
    .await;

    // 1. The first sync's progress bar moves.
    let mut seen: Vec<u64> = vec![];
    let mut shot = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = js(
            &client,
            "const b = document.getElementById('progress'); const box = document.getElementById('progress-box');
             return box.hidden ? null : [Number(b.dataset.done), Number(b.dataset.total)];",
        )
        .await;
        if let Some([done, total]) = v.as_array().map(|a| [a[0].as_u64(), a[1].as_u64()]) {
            let (done, total) = (done.unwrap_or(0), total.unwrap_or(0));
            if done > 0 && done < total && seen.last() != Some(&done) {
                seen.push(done);
                if !shot && done * 3 > total {
                    screenshot(&client, "status-first-sync.png").await;
                    shot = true;
                }
            }
            if done >= total && total > 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the first sync never finished: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(seen.len() >= 2, "the bar did not move: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the bar went back: {seen:?}"
    );
    until(
        &client,
        30,
        "the records on main",
        &format!(
            "const c = document.querySelector('tr[data-table=Name] td:nth-child(2)');
             return c && c.textContent.replace(/[^0-9]/g, '') === '{NAMES}';"
        ),
        &log,
    )
    .await;

    // 2. A MoneyWorks edit appears among the last commits.
    let code = sim.records("Name")[3]
        .text("code")
        .expect("a code")
        .to_string();
    sim.advance(60);
    sim.upsert("Name", &code, &[("phone", "555 0199")]);
    until(
        &client,
        30,
        "the edit in the last commits",
        &format!(
            "return document.getElementById('commits').innerText.includes({:?});",
            format!("Name {code} updated: phone")
        ),
        &log,
    )
    .await;
    until(
        &client,
        5,
        "the new value",
        "return document.getElementById('commits').innerText.includes('\"555 0199\"');",
        &log,
    )
    .await;

    // 3. A write on changes that conflicts with a MoneyWorks edit shows its fields.
    // The writer's base is main before the MoneyWorks edit, whenever mwsync polls it.
    let path = path_of("Name", RecordKey::Code(code.clone()));
    let base = repo.tip("main").expect("main exists");
    let file = repo.files("main")[&path].clone();
    sim.advance(60);
    sim.upsert("Name", &code, &[("phone", "555 0301")]);
    let mut writer = repo.client();
    writer.fetch().expect("fetch");
    let commit = writer
        .commit(NewCommit {
            parents: vec![base],
            changes: [(
                path.clone(),
                FileChange::Put(edited_file(&file, "phone", "555 0402")),
            )]
            .into(),
            message: "Phone from the CRM".into(),
        })
        .expect("the writer's commit");
    writer
        .push("changes", None, &commit)
        .expect("push to changes");
    until(
        &client,
        30,
        "the conflict",
        "const o = document.getElementById('write-outcome'); return o && o.textContent === 'conflict';",
        &log,
    )
    .await;
    let row = js(
        &client,
        "const r = [...document.querySelectorAll('tr.field')].map(tr => [...tr.children].map(td => td.textContent));
         return r;",
    )
    .await;
    assert_eq!(
        row,
        json!([["phone", "555 0199", "555 0301", "555 0402"]]),
        "field, base, MoneyWorks, asked"
    );
    let action = js(
        &client,
        "return document.getElementById('write-action').textContent",
    )
    .await;
    assert!(
        action
            .as_str()
            .is_some_and(|a| a.contains("redo your edit")),
        "{action}"
    );
    screenshot(&client, "status-conflict.png").await;
    // Readable on a phone: at 390 px nothing runs off the side of the page.
    client
        .set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    until(
        &client,
        5,
        "a page as narrow as the phone",
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        &log,
    )
    .await;
    screenshot(&client, "status-phone.png").await;

    // 4. Killed and restarted, mwsync is found again by the same page.
    let before = js(
        &client,
        "return document.getElementById('instance').dataset.instance",
    )
    .await;
    let _ = mwsync.0.kill();
    let _ = mwsync.0.wait();
    until(
        &client,
        30,
        "the lost connection",
        "return document.getElementById('conn').textContent === 'reconnecting';",
        &log,
    )
    .await;
    mwsync = daemon.start();
    until(
        &client,
        60,
        "the reconnection to the new mwsync",
        &format!(
            "return document.getElementById('conn').textContent === 'live'
                && document.getElementById('instance').dataset.instance !== {before};"
        ),
        &log,
    )
    .await;
    until(
        &client,
        30,
        "a cycle of the new mwsync",
        "return document.getElementById('state').textContent === 'running';",
        &log,
    )
    .await;
    assert_eq!(
        js(&client, "return window.__notReloaded === true").await,
        json!(true),
        "the page was reloaded"
    );
    drop(mwsync);
    client.close().await.expect("the session closes");
}
