//! `mwsync doctor` against the fake MoneyWorks and real git remotes: once healthy, then once
//! per failure it detects, each naming its cause and remedy.

use std::path::Path;
use std::time::{Duration, SystemTime};

use mwsync::config::{ConfigError, DaemonConfig, Secret, Settings};
use mwsync::doctor::{DoctorOptions, Report, Verdict, names, run};
use mwsync_sim::fake::{ClockMode, FaultKind, Sim};
use mwsync_sim::gitserve::GitServer;
use mwsync_sim::time::DateTime;

use crate::support::{PASSWORD, USER};

const KEY: &str = "doctor-key-4e1a";

/// This machine's clock now, as the fake's time (UTC).
fn now() -> DateTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    DateTime::from_secs(i64::try_from(secs).expect("fits"))
}

async fn sim(offset_secs: i64) -> Sim {
    Sim::builder()
        .names(3)
        .accounts(3)
        .products(2)
        .jobs(1)
        .transactions(3)
        .login(USER, PASSWORD)
        .clock(now().add_secs(offset_secs))
        .clock_mode(ClockMode::Real)
        .start()
        .await
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg(format!("--git-dir={}", dir.display()))
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository with `main` and, when asked, `changes`.
fn bare(dir: &Path, with_changes: bool) -> std::path::PathBuf {
    let path = dir.join("books.git");
    let out = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "--initial-branch=main"])
        .arg(&path)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git init failed");
    let tree = String::from_utf8(
        std::process::Command::new("git")
            .arg(format!("--git-dir={}", path.display()))
            .arg("mktree")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("mktree")
            .stdout,
    )
    .expect("utf8");
    let commit = String::from_utf8(
        std::process::Command::new("git")
            .arg(format!("--git-dir={}", path.display()))
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(["commit-tree", tree.trim(), "-m", "start"])
            .output()
            .expect("commit-tree")
            .stdout,
    )
    .expect("utf8");
    git(&path, &["update-ref", "refs/heads/main", commit.trim()]);
    if with_changes {
        git(&path, &["update-ref", "refs/heads/changes", commit.trim()]);
    }
    path
}

struct World {
    sim: Sim,
    dir: tempfile::TempDir,
    git_url: String,
}

impl World {
    async fn new() -> World {
        World::with_sim(sim(0).await).await
    }
    async fn with_sim(sim: Sim) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = bare(dir.path(), true);
        World {
            sim,
            git_url: repo.display().to_string(),
            dir,
        }
    }
    fn settings(&self) -> Settings {
        Settings {
            moneyworks_url: Some(Secret::new(self.sim.url().replacen(
                "http://",
                &format!("http://{USER}:{PASSWORD}@"),
                1,
            ))),
            git_url: Some(self.git_url.clone()),
            cache_dir: Some(self.dir.path().join("cache")),
            request_timeout_secs: Some(2),
            ..Settings::default()
        }
    }
    async fn doctor(&self, settings: Settings) -> Report {
        doctor_with(settings.validate(no_file), 1).await
    }
}

fn no_file(_: &Path) -> std::io::Result<String> {
    Err(std::io::Error::other("no files in these tests"))
}

async fn doctor_with(cfg: Result<DaemonConfig, ConfigError>, min_free_mb: u64) -> Report {
    run(cfg, &DoctorOptions { min_free_mb }).await
}

/// The check `name` failed, and its detail and remedy say `detail` and `remedy`.
fn failed(report: &Report, name: &str, detail: &str, remedy: &str) {
    let check = report
        .check(name)
        .unwrap_or_else(|| panic!("no check {name}:\n{}", report.text()));
    assert_eq!(check.verdict, Verdict::Fail, "{}", report.text());
    assert!(check.detail.contains(detail), "{}", report.text());
    assert!(
        check.remedy.as_deref().is_some_and(|r| r.contains(remedy)),
        "{}",
        report.text()
    );
    assert!(!report.passed());
    assert!(!report.text().contains(PASSWORD), "{}", report.text());
}

/// Against a healthy fake and remote every check passes, in the documented order, and
/// nothing on the remote or in MoneyWorks changed.
#[tokio::test]
async fn a_healthy_setup_passes_every_check() {
    let w = World::new().await;
    let before = w.sim.requests();
    let refs_before = std::fs::read_dir(Path::new(&w.git_url).join("refs/heads"))
        .expect("refs")
        .count();
    let report = w.doctor(w.settings()).await;
    assert!(report.passed(), "{}", report.text());
    let order: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "configuration",
            "reaching MoneyWorks",
            "server version",
            "document login",
            "folder login",
            "export Account",
            "export Name",
            "export Product",
            "export Job",
            "export Transaction",
            "clock skew",
            "terse exports",
            "git remote",
            "sync branch",
            "push rights",
            "changes branch",
            "cache directory",
        ]
    );
    let text = report.text();
    assert!(
        text.contains("MoneyWorks 9.2.1; Server: MoneyWorks_Datacentre/9.2.1"),
        "{text}"
    );
    assert!(
        text.contains(
            "xml-terse twice byte-identical, xml-verbose twice byte-identical; terse drops"
        ),
        "{text}"
    );
    assert!(
        text.contains("lastmodifiedtime") && text.contains("sequencenumber"),
        "{text}"
    );
    assert!(text.ends_with("all 17 checks passed\n"), "{text}");
    assert_eq!(w.sim.requests().import, before.import, "no import was sent");
    assert_eq!(
        std::fs::read_dir(Path::new(&w.git_url).join("refs/heads"))
            .expect("refs")
            .count(),
        refs_before,
        "no branch was created"
    );
    assert!(
        !w.dir.path().join("cache").exists(),
        "the cache was not created"
    );
}

/// A setting that does not validate fails the first check and skips the rest.
#[tokio::test]
async fn an_invalid_configuration_is_named_and_the_rest_skipped() {
    let w = World::new().await;
    let report = w
        .doctor(Settings {
            page_size: Some(5),
            ..w.settings()
        })
        .await;
    failed(
        &report,
        names::CONFIG,
        "page_size = 5 is out of range 10..=100",
        "docs/configuration.md",
    );
    assert!(
        report.checks[1..]
            .iter()
            .all(|c| c.verdict == Verdict::Skip)
    );
}

/// DNS failures, refused connections, TLS to a plain port and timeouts are told apart.
#[tokio::test]
async fn network_failures_name_their_cause() {
    let w = World::new().await;
    let url = |u: &str| Settings {
        moneyworks_url: Some(Secret::new(u.to_string())),
        ..w.settings()
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let report = w
        .doctor(url(&format!(
            "http://{USER}:{PASSWORD}@nohost.invalid:6710/REST/Acme.moneyworks"
        )))
        .await;
    failed(&report, names::REACH, "DNS", "host name");
    let report = w
        .doctor(url(&format!(
            "http://{USER}:{PASSWORD}@127.0.0.1:{port}/REST/Acme.moneyworks"
        )))
        .await;
    failed(&report, names::REACH, "refused", "port");
    let tls = w
        .sim
        .url()
        .replacen("http://", &format!("https://{USER}:{PASSWORD}@"), 1);
    let report = w.doctor(url(&tls)).await;
    failed(&report, names::REACH, "TLS", "http://");
    w.sim
        .fail_next(FaultKind::Delay(Duration::from_secs(10)), 1);
    let report = w.doctor(w.settings()).await;
    failed(&report, names::REACH, "timeout", "request_timeout_secs");
}

/// A wrong password and a wrong document fail the login with their own remedies.
#[tokio::test]
async fn login_failures_say_what_to_correct() {
    let w = World::new().await;
    let with = |u: String| Settings {
        moneyworks_url: Some(Secret::new(u)),
        ..w.settings()
    };
    let wrong = w
        .sim
        .url()
        .replacen("http://", &format!("http://{USER}:not-it@"), 1);
    let report = w.doctor(with(wrong)).await;
    failed(
        &report,
        names::DOCUMENT_LOGIN,
        "DoConnect failed -1",
        "user and password",
    );
    assert_eq!(
        report.check(names::CLOCK).map(|c| c.verdict),
        Some(Verdict::Skip)
    );
    let doc = w
        .sim
        .url()
        .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1)
        .replace("Acme.moneyworks", "Nope.moneyworks");
    let report = w.doctor(with(doc)).await;
    failed(&report, names::DOCUMENT_LOGIN, "-43", "document name");
}

/// A server that asks for a folder login fails without one and with a wrong one.
#[tokio::test]
async fn a_missing_or_wrong_folder_login_fails() {
    let sim = Sim::builder()
        .names(2)
        .login(USER, PASSWORD)
        .folder("Clients", "folder-pw-1")
        .clock(now())
        .clock_mode(ClockMode::Real)
        .start()
        .await;
    let w = World::with_sim(sim).await;
    let report = w.doctor(w.settings()).await;
    failed(
        &report,
        names::FOLDER_LOGIN,
        "Login_Required",
        "MWSYNC_MONEYWORKS_FOLDER",
    );
    let report = w
        .doctor(Settings {
            moneyworks_folder: Some("Clients".into()),
            moneyworks_folder_password: Some(Secret::new("wrong")),
            ..w.settings()
        })
        .await;
    failed(
        &report,
        names::FOLDER_LOGIN,
        "refused the login",
        "MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
    );
    let report = w
        .doctor(Settings {
            moneyworks_folder: Some("Clients".into()),
            moneyworks_folder_password: Some(Secret::new("folder-pw-1")),
            ..w.settings()
        })
        .await;
    assert!(report.passed(), "{}", report.text());
}

/// A bare HTTP 500 to one table's export is reported as a missing privilege for that table.
#[tokio::test]
async fn an_export_refused_without_a_reason_points_at_privileges() {
    let w = World::new().await;
    // version and the clock pass; the first export (Account) gets the bare 500.
    w.sim.fail_next(FaultKind::Delay(Duration::ZERO), 2);
    w.sim.fail_next(FaultKind::Http500, 1);
    let report = w.doctor(w.settings()).await;
    failed(
        &report,
        &names::export("Account"),
        "HTTP 500",
        "privilege to export Account",
    );
    assert_eq!(
        report.check(&names::export("Name")).map(|c| c.verdict),
        Some(Verdict::Pass)
    );
}

/// A server clock off by more than two minutes beyond a time zone fails; a whole time zone
/// passes.
#[tokio::test]
async fn clock_skew_beyond_a_time_zone_fails() {
    let w = World::with_sim(sim(200).await).await;
    let report = w.doctor(w.settings()).await;
    // About 3 min 20 s (a second may pass between the two readings).
    failed(
        &report,
        names::CLOCK,
        "ahead of this machine's clock",
        "NTP",
    );
    assert!(report.text().contains("3 min "), "{}", report.text());
    let w = World::with_sim(sim(-5 * 3600).await).await;
    let report = w.doctor(w.settings()).await;
    let clock = report.check(names::CLOCK).expect("run");
    assert_eq!(clock.verdict, Verdict::Pass, "{}", report.text());
    assert!(
        clock.detail.contains("5 h 0 min behind UTC"),
        "{}",
        clock.detail
    );
}

/// Two terse exports of the same page that differ are reported.
#[tokio::test]
async fn an_unrepeatable_terse_export_fails() {
    let w = World::new().await;
    // version, clock, five one-record exports and the first terse export pass; the second
    // terse export comes back cut short.
    w.sim.fail_next(FaultKind::Delay(Duration::ZERO), 8);
    w.sim.fail_next(FaultKind::Truncate, 1);
    let report = w.doctor(w.settings()).await;
    failed(
        &report,
        names::TERSE,
        "xml-terse twice DIFFERENT, xml-verbose twice byte-identical",
        "report this server version",
    );
}

/// An unreachable remote, refused credentials, a typo in the branch, a remote that refuses
/// pushes and a missing changes branch each fail with their remedy.
#[tokio::test]
async fn git_failures_are_named() {
    let w = World::new().await;
    let with_git = |url: &str| Settings {
        git_url: Some(url.to_string()),
        ..w.settings()
    };
    let report = w.doctor(with_git("/nonexistent/books.git")).await;
    failed(&report, names::GIT, "failed", "MWSYNC_GIT_URL");
    assert_eq!(
        report.check(names::PUSH).map(|c| c.verdict),
        Some(Verdict::Skip)
    );

    let report = w.doctor(with_git(&format!("{}#mian", w.git_url))).await;
    failed(
        &report,
        names::BRANCH,
        "`mian` does not exist; the remote has changes, main",
        "typo",
    );

    let report = w
        .doctor(Settings {
            changes_branch: Some("chnages".into()),
            ..w.settings()
        })
        .await;
    failed(
        &report,
        names::CHANGES,
        "`chnages` does not exist on the remote; it has changes, main",
        "typo",
    );

    let root = w.dir.path().join("served");
    std::fs::create_dir_all(&root).expect("root");
    let server = GitServer::start(&root, KEY).expect("git server");
    let served = server.init_bare("books.git").expect("repo");
    std::fs::remove_dir_all(&served).expect("replace");
    let src = bare(&w.dir.path().join("src"), true);
    git(
        &src,
        &[
            "clone",
            "-q",
            "--bare",
            &src.display().to_string(),
            &served.display().to_string(),
        ],
    );
    let http = |key: &str| Settings {
        git_url: Some(server.url("books.git")),
        git_api_key: Some(Secret::new(key)),
        ..w.settings()
    };
    let report = w.doctor(http(KEY)).await;
    assert!(report.passed(), "{}", report.text());
    let report = w.doctor(http("wrong-key")).await;
    failed(
        &report,
        names::GIT,
        "refused the credentials",
        "MWSYNC_GIT_API_KEY",
    );
    assert!(!report.text().contains("wrong-key"), "{}", report.text());
    git(&served, &["config", "http.receivepack", "false"]);
    let report = w.doctor(http(KEY)).await;
    failed(&report, names::PUSH, "dry-run push", "write access");
}

/// A cache directory that cannot be written, or with too little free space, fails.
#[tokio::test]
async fn an_unusable_cache_directory_fails() {
    let w = World::new().await;
    let report = w
        .doctor(Settings {
            cache_dir: Some("/proc/mwsync-cache".into()),
            ..w.settings()
        })
        .await;
    failed(
        &report,
        names::CACHE,
        "/proc is not writable",
        "StateDirectory",
    );
    let report = doctor_with(w.settings().validate(no_file), u64::MAX / (1 << 21)).await;
    failed(&report, names::CACHE, "MB free, below", "free space");
}

/// The binary prints the report and exits 0 when every check passes, 1 when one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_by_the_report() {
    let w = World::new().await;
    let url = w
        .sim
        .url()
        .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1);
    let run = |page_size: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mwsync"));
        for (k, _) in std::env::vars() {
            if k.starts_with("MWSYNC_") {
                c.env_remove(k);
            }
        }
        c.arg("doctor")
            .env("MWSYNC_MONEYWORKS_URL", &url)
            .env("MWSYNC_GIT_URL", &w.git_url)
            .env("MWSYNC_CACHE_DIR", w.dir.path().join("cache"))
            .env("MWSYNC_PAGE_SIZE", page_size)
            .stdin(std::process::Stdio::null());
        let out = tokio::task::block_in_place(|| c.output().expect("mwsync runs"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run("20");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.ends_with("all 17 checks passed\n"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");
    let (code, out) = run("5");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with(
            "FAIL  configuration: page_size = 5 is out of range 10..=100\n      remedy: "
        ),
        "{out}"
    );
    assert!(
        out.contains("SKIP  reaching MoneyWorks: needs a valid configuration"),
        "{out}"
    );
}
