//! `mwsync doctor`: every check an operator needs before running, in order, each a pass or a
//! fail with its remedy. It reads the configuration, asks MoneyWorks (version, login,
//! one-record exports, the clock, terse and verbose exports twice each), asks the git remote
//! (`ls-remote`, a `push --dry-run` of a commit nothing is sent of) and looks at the cache
//! directory. It must never write to `main`, to any branch or to MoneyWorks: it sends no
//! import and no push, and it touches the daemon's cache only to read it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{ConfigError, DaemonConfig, REPO_CONFIG_PATH, RepoConfigFile};
use crate::daemon::git_remote;
use crate::moneyworks::client::{HttpMoneyWorks, ServerInfo};
use crate::moneyworks::{ExportFormat, MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::progress::duration;
use crate::query::{self, seq_page};
use crate::record::{TableInfo, table_info};
use crate::store::gateway::Gateway;
use crate::store::git::{GitStore, probe_branches, probe_push};
use crate::store::{Store, StoreError};
use crate::xmltree;
pub use report::{Check, Report, Verdict};

mod report;

/// Free space the cache check asks for unless told otherwise, in megabytes.
pub const DEFAULT_MIN_FREE_MB: u64 = 1024;
/// Clock skew beyond any time-zone offset that still passes, in seconds.
pub const MAX_SKEW_SECS: i64 = 120;
/// The branch name the dry-run push names (nothing is sent to it).
pub const PROBE_BRANCH: &str = "mwsync-doctor-dry-run";

/// How the checks run.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The cache check fails below this much free space, in megabytes.
    pub min_free_mb: u64,
}

/// Names of the checks, in order.
pub mod names {
    /// The settings.
    pub const CONFIG: &str = "configuration";
    /// A connection to MoneyWorks.
    pub const REACH: &str = "reaching MoneyWorks";
    /// `version` and `Server:`.
    pub const VERSION: &str = "server version";
    /// The document login.
    pub const DOCUMENT_LOGIN: &str = "document login";
    /// The Datacentre folder login.
    pub const FOLDER_LOGIN: &str = "folder login";
    /// The server clock against this machine's.
    pub const CLOCK: &str = "clock skew";
    /// Terse against verbose exports.
    pub const TERSE: &str = "terse exports";
    /// The git remote and its credentials.
    pub const GIT: &str = "git remote";
    /// The sync branch.
    pub const BRANCH: &str = "sync branch";
    /// Push rights.
    pub const PUSH: &str = "push rights";
    /// The changes branch.
    pub const CHANGES: &str = "changes branch";
    /// The cache directory.
    pub const CACHE: &str = "cache directory";
    /// The checks that ask MoneyWorks, in order (`exports` stands for one per table).
    pub const MONEYWORKS: [&str; 7] = [
        REACH,
        VERSION,
        DOCUMENT_LOGIN,
        FOLDER_LOGIN,
        "exports",
        CLOCK,
        TERSE,
    ];
    /// The checks that ask the git remote, in order.
    pub const GIT_REMOTE: [&str; 4] = [GIT, BRANCH, PUSH, CHANGES];
    /// The one-record export of `table`.
    pub fn export(table: &str) -> String {
        format!("export {table}")
    }
}

/// Runs every check against the configuration `loaded` gave (or the error it gave).
pub async fn run(loaded: Result<DaemonConfig, ConfigError>, options: &DoctorOptions) -> Report {
    let mut report = Report::default();
    let cfg = match loaded {
        Ok(cfg) => {
            report.pass(
                names::CONFIG,
                format!(
                    "MoneyWorks {}, git {}#{}, cache {}",
                    cfg.moneyworks.display_url(),
                    crate::config::mask_url(&cfg.git.url),
                    cfg.git.branch,
                    cfg.cache_dir.display()
                ),
            );
            cfg
        }
        Err(e) => {
            report.fail(
                names::CONFIG,
                e.to_string(),
                "correct the setting named (flag, MWSYNC_* variable or --config file); docs/configuration.md lists them all",
            );
            let all = names::MONEYWORKS.iter().chain(&names::GIT_REMOTE);
            for name in all.chain([&names::CACHE]) {
                report.skip(name, "needs a valid configuration");
            }
            return report;
        }
    };
    moneyworks_checks(&cfg, &mut report).await;
    git_checks(&cfg, &mut report);
    cache_check(&cfg, options, &mut report);
    report
}

/// The cause of a transport failure, in words, with the remedy.
fn network_cause(detail: &str) -> (&'static str, &'static str) {
    let d = detail.to_ascii_lowercase();
    if d.contains("dns error") || d.contains("failed to lookup") || d.contains("name or service") {
        (
            "DNS: the host name does not resolve",
            "check the host name in MWSYNC_MONEYWORKS_URL and this machine's DNS",
        )
    } else if d.contains("connection refused") {
        (
            "refused: nothing listens on that port",
            "check the port in MWSYNC_MONEYWORKS_URL (MoneyWorks' default is 6710) and that the Datacentre's REST server runs",
        )
    } else if d.contains("tls")
        || d.contains("certificate")
        || d.contains("invalidcontenttype")
        || d.contains("corrupt message")
        || d.contains("handshake")
    {
        (
            "TLS: the secure connection failed",
            "use http:// if the server does not offer TLS on that port, or install a certificate this machine trusts",
        )
    } else if d.contains("timed out") {
        (
            "timeout: the server did not answer in time",
            "check the network path (firewall, VPN) to the server, or raise request_timeout_secs",
        )
    } else {
        (
            "the connection failed",
            "check the URL and the network path to the server",
        )
    }
}

async fn moneyworks_checks(cfg: &DaemonConfig, report: &mut Report) {
    let timeout = Duration::from_secs(cfg.request_timeout_secs.min(30));
    let mw = match HttpMoneyWorks::new(&cfg.moneyworks, timeout, cfg.max_reply_bytes) {
        Ok(mw) => mw,
        Err(e) => {
            report.fail(names::REACH, e.to_string(), "check MWSYNC_MONEYWORKS_URL");
            return skip_moneyworks(report, 1);
        }
    };
    let info = match mw.server_info().await {
        Ok(info) => {
            report.pass(names::REACH, format!("{} answers", cfg.moneyworks.origin));
            info
        }
        Err(MwError::Transport { detail, .. }) => {
            let (cause, remedy) = network_cause(&detail);
            report.fail(
                names::REACH,
                format!("{cause} ({}: {detail})", cfg.moneyworks.origin),
                remedy,
            );
            return skip_moneyworks(report, 1);
        }
        Err(e) => {
            // It answered, but not as a Datacentre would.
            report.pass(names::REACH, format!("{} answers", cfg.moneyworks.origin));
            report.fail(
                names::VERSION,
                e.to_string(),
                "the URL may point at something other than a MoneyWorks Datacentre REST server; check host and port",
            );
            return skip_moneyworks(report, 2);
        }
    };
    report.pass(names::VERSION, version_detail(&info));
    let clock = match mw.evaluate(query::CLOCK_EXPRESSION).await {
        Ok(text) => {
            report.pass(
                names::DOCUMENT_LOGIN,
                format!(
                    "{} opens document {}",
                    cfg.moneyworks.user, cfg.moneyworks.document
                ),
            );
            MwTime::parse(text.trim()).ok()
        }
        Err(e) => {
            let remedy = match &e {
                MwError::Auth { detail } if detail.contains("-43") => {
                    "the server has no document at that path: check the document name after /REST/ in MWSYNC_MONEYWORKS_URL (sub-folders as %2F)"
                }
                MwError::Auth { .. }
                    if info.login_required() && cfg.moneyworks.folder.is_none() =>
                {
                    "the server asks for a Datacentre folder login: set MWSYNC_MONEYWORKS_FOLDER and MWSYNC_MONEYWORKS_FOLDER_PASSWORD"
                }
                MwError::Auth { .. } => {
                    "check the user and password in MWSYNC_MONEYWORKS_URL (percent-encode special characters)"
                }
                _ => "see the message; run the doctor again once MoneyWorks answers",
            };
            report.fail(names::DOCUMENT_LOGIN, e.to_string(), remedy);
            None
        }
    };
    folder_check(cfg, &mw, &info, report).await;
    if clock.is_none() {
        for name in ["exports", names::CLOCK, names::TERSE] {
            report.skip(name, "needs the document login");
        }
        return;
    }
    let tables = tracked_tables(cfg);
    for table in &tables.0 {
        export_check(&mw, table, &tables.1, report).await;
    }
    clock_check(clock, report);
    match tables.0.first() {
        Some(table) => terse_check(&mw, table, report).await,
        None => report.skip(names::TERSE, "no tables are tracked"),
    }
}

fn skip_moneyworks(report: &mut Report, from: usize) {
    for name in &names::MONEYWORKS[from..] {
        report.skip(name, "needs MoneyWorks to answer");
    }
}

fn version_detail(info: &ServerInfo) -> String {
    format!(
        "MoneyWorks {}; Server: {}{}",
        info.version,
        info.server.as_deref().unwrap_or("(no Server header)"),
        if info.login_required() {
            " (asks for a folder login)"
        } else {
            ""
        }
    )
}

async fn folder_check(
    cfg: &DaemonConfig,
    mw: &HttpMoneyWorks,
    info: &ServerInfo,
    report: &mut Report,
) {
    match (&cfg.moneyworks.folder, info.login_required()) {
        (None, false) => report.pass(
            names::FOLDER_LOGIN,
            "not needed: the server does not ask for one",
        ),
        (None, true) => report.fail(
            names::FOLDER_LOGIN,
            "the server's Server: header says Login_Required, and no folder login is set",
            "set MWSYNC_MONEYWORKS_FOLDER and MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
        ),
        (Some((folder, _)), _) => match mw.server_list().await {
            Ok(_) => report.pass(
                names::FOLDER_LOGIN,
                format!("folder login {folder} accepted"),
            ),
            Err(e) => report.fail(
                names::FOLDER_LOGIN,
                e.to_string(),
                "check MWSYNC_MONEYWORKS_FOLDER and MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
            ),
        },
    }
}

/// The tables to check and where the list came from: the repo config in the daemon's cache
/// when it has `main`, else the initial settings.
fn tracked_tables(cfg: &DaemonConfig) -> (Vec<&'static TableInfo>, String) {
    let initial = (
        cfg.initial_repo.tables.clone(),
        "tables from the initial settings".to_string(),
    );
    let cache = cfg.cache_dir.join("repo.git");
    if !cache.join("HEAD").exists() {
        return initial;
    }
    let Ok(store) = GitStore::open(&cache, git_remote(cfg)) else {
        return initial;
    };
    let text = store
        .remote_tip(&cfg.git.branch)
        .ok()
        .flatten()
        .and_then(|tip| store.read_file(&tip, REPO_CONFIG_PATH).ok().flatten());
    let tables = text
        .and_then(|b| RepoConfigFile::parse(&String::from_utf8_lossy(&b), REPO_CONFIG_PATH).ok())
        .map(|file| {
            file.tables
                .iter()
                .filter_map(|t| table_info(t))
                .collect::<Vec<_>>()
        });
    match tables {
        Some(t) if !t.is_empty() => (
            t,
            format!("tables from {REPO_CONFIG_PATH} on main as last fetched"),
        ),
        _ => initial,
    }
}

async fn export_check(
    mw: &HttpMoneyWorks,
    table: &'static TableInfo,
    source: &str,
    report: &mut Report,
) {
    let name = names::export(table.name);
    match mw
        .export(&seq_page(table, 0, 1, ExportFormat::Verbose))
        .await
    {
        Ok(page) => report.pass(
            name,
            format!(
                "{} records readable ({source})",
                crate::progress::thousands(page.found)
            ),
        ),
        Err(e) => {
            let remedy = match &e {
                MwError::Http { status: 500, .. } => format!(
                    "MoneyWorks refused the export without a reason, which is what it does when the user lacks a privilege: give {} the privilege to export {} in MoneyWorks, or remove the table from the repo config",
                    "the document user", table.name
                ),
                MwError::Auth { .. } => {
                    "the login was refused: see the document login check".to_string()
                }
                _ => "see the message; mwsync retries transient failures by itself".to_string(),
            };
            report.fail(name, e.to_string(), remedy);
        }
    }
}

/// Seconds from this machine's clock (UTC) to the server's, and the part of that beyond the
/// nearest whole quarter hour (a time zone: MoneyWorks times carry none).
pub fn skew(server: MwTime, local: SystemTime) -> (i64, i64) {
    let local_secs = local
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let raw = server.unix_secs() - local_secs;
    let quarter = 15 * 60;
    let zone = (raw as f64 / quarter as f64).round() as i64 * quarter;
    (raw, raw - zone)
}

fn clock_check(server: Option<MwTime>, report: &mut Report) {
    let Some(server) = server else {
        report.fail(
            names::CLOCK,
            "the server's clock reading is not a date-time",
            "check that the document login may evaluate expressions",
        );
        return;
    };
    let (raw, beyond) = skew(server, SystemTime::now());
    let zone = raw - beyond;
    let zone_text = if zone == 0 {
        "same time zone as UTC".to_string()
    } else {
        format!(
            "{} {} UTC, taken as its time zone",
            duration(zone.unsigned_abs()),
            if zone > 0 { "ahead of" } else { "behind" }
        )
    };
    if beyond.abs() <= MAX_SKEW_SECS && zone.abs() <= 14 * 3600 {
        report.pass(
            names::CLOCK,
            format!("MoneyWorks says {server}; {zone_text}; off by {beyond} s beyond that"),
        );
    } else {
        // Past the widest time zone the quarter-hour split means nothing: say the whole
        // difference.
        let (off, words) = if zone.abs() > 14 * 3600 {
            (raw, "more than any time zone explains")
        } else {
            (beyond, "beyond any time zone")
        };
        report.fail(
            names::CLOCK,
            format!(
                "MoneyWorks says {server}, {} {} this machine's clock (UTC), {words}",
                duration(off.unsigned_abs()),
                if off > 0 { "ahead of" } else { "behind" }
            ),
            "set the MoneyWorks server's clock (NTP); mwsync keeps its markers in server time, so a wrong clock stamps records wrongly and misleads the status page",
        );
    }
}

/// Field names of each record element in an export reply.
fn fields_per_record(xml: &str) -> Result<Vec<BTreeSet<String>>, String> {
    let root = xmltree::parse(xml).map_err(|e| e.to_string())?;
    Ok(root
        .children
        .iter()
        .map(|r| r.children.iter().map(|f| f.name.clone()).collect())
        .collect())
}

async fn terse_check(mw: &HttpMoneyWorks, table: &'static TableInfo, report: &mut Report) {
    let mut texts = Vec::new();
    for format in ["xml-terse", "xml-terse", "xml-verbose", "xml-verbose"] {
        let query = seq_page(table, 0, 50, ExportFormat::Custom(format.into()));
        match mw.export_text(&query).await {
            Ok(t) => texts.push(t),
            Err(e) => {
                report.fail(
                    names::TERSE,
                    format!("{format} export of {}: {e}", table.name),
                    "see the message; the export checks above say more",
                );
                return;
            }
        }
    }
    let terse_same = texts[0] == texts[1];
    let verbose_same = texts[2] == texts[3];
    let dropped = match (fields_per_record(&texts[0]), fields_per_record(&texts[2])) {
        (Ok(terse), Ok(verbose)) => {
            let mut dropped = BTreeSet::new();
            for (i, v) in verbose.iter().enumerate() {
                let t = terse.get(i).cloned().unwrap_or_default();
                dropped.extend(v.difference(&t).cloned());
            }
            let list: Vec<String> = dropped.into_iter().collect();
            format!(
                "terse drops {} field(s) that verbose has: {}",
                list.len(),
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                }
            )
        }
        (Err(e), _) | (_, Err(e)) => format!("a reply does not parse: {e}"),
    };
    let word = |same: bool| if same { "byte-identical" } else { "DIFFERENT" };
    let detail = format!(
        "first page of {}: xml-terse twice {}, xml-verbose twice {}; {dropped}",
        table.name,
        word(terse_same),
        word(verbose_same)
    );
    if terse_same && verbose_same {
        report.pass(names::TERSE, detail);
    } else {
        report.fail(
            names::TERSE,
            detail,
            "the server does not give repeatable exports: mwsync relies on xml-verbose being repeatable, so report this server version; no change on this machine fixes it",
        );
    }
}

/// A scratch directory for the git probes, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Scratch(
            std::env::temp_dir().join(format!("mwsync-doctor-{}-{nanos:x}", std::process::id())),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git_cause(e: &StoreError) -> &'static str {
    match e {
        StoreError::Auth { .. } => {
            "the git host refused the API key: check MWSYNC_GIT_API_KEY (or its file), MWSYNC_GIT_AUTH and MWSYNC_GIT_USER"
        }
        StoreError::Local { .. } => {
            "install the git command line (mwsync runs `git` to fetch and push)"
        }
        _ => "check the URL in MWSYNC_GIT_URL and the network path to the git host",
    }
}

fn git_checks(cfg: &DaemonConfig, report: &mut Report) {
    let remote = git_remote(cfg);
    let scratch = Scratch::new();
    let branches = match probe_branches(&remote, &scratch.0) {
        Ok(b) => {
            report.pass(
                names::GIT,
                format!(
                    "{} answers with {} branch(es); the credentials may read",
                    crate::config::mask_url(&cfg.git.url),
                    b.len()
                ),
            );
            b
        }
        Err(e) => {
            report.fail(names::GIT, e.to_string(), git_cause(&e));
            for name in &names::GIT_REMOTE[1..] {
                report.skip(name, "needs the git remote");
            }
            return;
        }
    };
    let others: Vec<&str> = branches.keys().map(String::as_str).collect();
    match branches.get(&cfg.git.branch) {
        Some(tip) => report.pass(
            names::BRANCH,
            format!("`{}` is at {}", cfg.git.branch, &tip[..tip.len().min(10)]),
        ),
        None if branches.is_empty() => report.pass(
            names::BRANCH,
            format!(
                "the remote has no branches yet; the first run creates `{}`",
                cfg.git.branch
            ),
        ),
        None => report.fail(
            names::BRANCH,
            format!(
                "`{}` does not exist; the remote has {}",
                cfg.git.branch,
                others.join(", ")
            ),
            "if the branch after # in MWSYNC_GIT_URL is a typo, correct it; mwsync would start a new branch there",
        ),
    }
    let may_write = match crate::daemon::gateway_config(cfg) {
        // Writes go through the gateway's uploads; its read side refuses `git push`.
        Some(gateway) => std::thread::scope(|s| {
            s.spawn(|| {
                // The probe sends no batch, so no retry is published.
                Gateway::new(gateway, crate::events::Events::new())
                    .and_then(|g| g.probe(&cfg.git.branch))
                    .map(|n| {
                        format!("the upload gateway accepts the token ({n} open upload(s) of this branch)")
                    })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(StoreError::Local {
                    detail: "the gateway probe panicked".into(),
                })
            })
        }),
        None => probe_push(&remote, &scratch.0, PROBE_BRANCH)
            .map(|_| "`git push --dry-run` is accepted (nothing was sent)".to_string()),
    };
    match may_write {
        Ok(said) => report.pass(names::PUSH, said),
        Err(e) => report.fail(
            names::PUSH,
            e.to_string(),
            "give the API key write access to the repository",
        ),
    }
    match branches.get(&cfg.changes_branch) {
        Some(tip) => report.pass(
            names::CHANGES,
            format!(
                "`{}` is at {}",
                cfg.changes_branch,
                &tip[..tip.len().min(10)]
            ),
        ),
        // mwsync runs without it (and warns once), so this is a warning, not a failure.
        None => report.warn(
            names::CHANGES,
            format!(
                "`{}` does not exist on the remote{}",
                cfg.changes_branch,
                if others.is_empty() {
                    String::new()
                } else {
                    format!("; it has {}", others.join(", "))
                }
            ),
            format!(
                "writers create it by pushing (`git push origin {}:{}`); if MWSYNC_CHANGES_BRANCH is a typo, correct it",
                cfg.git.branch, cfg.changes_branch
            ),
        ),
    }
}

/// The directory itself if it exists, else its nearest existing parent (where mwsync would
/// create it).
fn existing_ancestor(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|p| p.is_dir())
}

fn cache_check(cfg: &DaemonConfig, options: &DoctorOptions, report: &mut Report) {
    let dir = &cfg.cache_dir;
    let Some(base) = existing_ancestor(dir) else {
        report.fail(
            names::CACHE,
            format!("neither {} nor any parent exists", dir.display()),
            "set MWSYNC_CACHE_DIR to a directory on persistent storage",
        );
        return;
    };
    let probe = base.join(format!(".mwsync-doctor-{}", std::process::id()));
    let writable = std::fs::write(&probe, b"probe").is_ok();
    let _ = std::fs::remove_file(&probe);
    if !writable {
        report.fail(
            names::CACHE,
            format!("{} is not writable by this user", base.display()),
            format!(
                "let the account that runs mwsync write {} (the systemd unit's StateDirectory does this)",
                base.display()
            ),
        );
        return;
    }
    let free_mb = match rustix::fs::statvfs(base) {
        Ok(st) => st.f_bavail.saturating_mul(st.f_frsize) / (1024 * 1024),
        Err(e) => {
            report.fail(
                names::CACHE,
                format!("cannot read the free space of {}: {e}", base.display()),
                "check the file system",
            );
            return;
        }
    };
    let state = if base == dir.as_path() {
        "exists and is writable"
    } else {
        "does not exist yet; mwsync creates it in a writable parent"
    };
    let detail = format!(
        "{} {state}; {} MB free",
        dir.display(),
        crate::progress::thousands(free_mb)
    );
    if free_mb >= options.min_free_mb {
        report.pass(names::CACHE, detail);
    } else {
        report.fail(
            names::CACHE,
            format!("{detail}, below {} MB", crate::progress::thousands(options.min_free_mb)),
            "free space there or move MWSYNC_CACHE_DIR: the cache holds a full copy of main (about twice the size of the XML)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skew is split into a whole quarter-hour time zone and what is beyond it.
    #[test]
    fn skew_splits_time_zone_from_drift() {
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_782_820_800);
        let at = |s: &str| MwTime::parse(s).expect("valid");
        assert_eq!(skew(at("20260630120000"), local), (0, 0));
        assert_eq!(skew(at("20260630220005"), local), (36_005, 5));
        assert_eq!(skew(at("20260630115500"), local), (-300, -300));
        assert_eq!(skew(at("20260630123100"), local), (1860, 60));
    }

    /// A server clock months off is reported by its whole difference, not by what is left
    /// of it past a quarter hour.
    #[test]
    fn a_clock_months_off_says_how_far() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        let mut report = Report::default();
        clock_check(
            Some(MwTime::from_unix_secs(now - 154 * 86_400 - 215)),
            &mut report,
        );
        let check = report.check(names::CLOCK).expect("ran");
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check.detail.contains(
                "154 d 0 h behind this machine's clock (UTC), more than any time zone explains"
            ),
            "{}",
            check.detail
        );
    }

    /// Network failures are named by their cause.
    #[test]
    fn network_causes_are_named() {
        assert!(
            network_cause("error sending request: dns error: failed to lookup address")
                .0
                .starts_with("DNS")
        );
        assert!(
            network_cause(
                "client error (Connect): tcp connect error: Connection refused (os error 111)"
            )
            .0
            .starts_with("refused")
        );
        assert!(
            network_cause("received corrupt message of type InvalidContentType")
                .0
                .starts_with("TLS")
        );
        assert!(
            network_cause("the request timed out")
                .0
                .starts_with("timeout")
        );
    }
}
