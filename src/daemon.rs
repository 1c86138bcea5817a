//! The daemon loop: run a cycle (see `cycle`), wait the configured interval on monotonic
//! time, repeat, and stop cleanly between cycles when told. What a failure does follows its
//! class: a transient one is reported and retried at the next interval; one that needs a
//! human parks the daemon (it keeps running, shows `parked` on `/status` and tries again each
//! interval) unless it concerns `main` itself, which stops it; invalid input stops it. It
//! also wires the production seams from a validated `DaemonConfig`. It owns scheduling and
//! the status snapshot; it must not contain sync logic.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::{DaemonConfig, GitAuthKind};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::error::{Classify, ErrorClass};
use crate::events::{Event, Events};
use crate::http::{SharedStatus, StatusSnapshot};
use crate::moneyworks::MoneyWorks;
use crate::moneyworks::client::HttpMoneyWorks;
use crate::retry::RetryPolicy;
use crate::store::Store;
use crate::store::git::{AuthMode, GitRemote, GitStore};

/// How the loop runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Do one cycle and return.
    pub once: bool,
    /// Stop after this many polls (the demo and tests); `None` runs until shutdown.
    pub max_polls: Option<u64>,
}

/// Builds the production engine: reqwest for MoneyWorks, git2 + git CLI for the store.
pub fn connect(
    cfg: &DaemonConfig,
    events: Events,
) -> Result<Engine<HttpMoneyWorks, GitStore>, EngineError> {
    let mw = HttpMoneyWorks::new(
        &cfg.moneyworks,
        Duration::from_secs(cfg.request_timeout_secs),
        cfg.max_reply_bytes,
    )?;
    let remote = GitRemote {
        url: cfg.git.url.clone(),
        api_key: cfg.api_key.as_ref().map(|k| k.expose().to_string()),
        auth: match cfg.git_auth {
            GitAuthKind::Basic => AuthMode::Basic {
                user: cfg.git_user.clone(),
            },
            GitAuthKind::Bearer => AuthMode::Bearer,
        },
    };
    let store =
        GitStore::open(&cfg.cache_dir.join("repo.git"), remote).map_err(EngineError::Store)?;
    let cache = Cache::load(&cfg.cache_dir)
        .map_err(|e| EngineError::Local(format!("{}: {e}", cfg.cache_dir.display())))?;
    let settings = EngineSettings {
        branch: cfg.git.branch.clone(),
        changes_branch: cfg.changes_branch.clone(),
        initial_repo: cfg.initial_repo.clone(),
        retry: RetryPolicy::default(),
        create_branch: cfg.create_branch,
    };
    Ok(Engine::new(mw, store, cache, settings, events))
}

/// Runs the poll loop until `shutdown` is cancelled, `options` says stop, or an error that
/// stops the daemon. Transient failures are reported and retried at the next interval;
/// failures that need a human but do not concern `main` itself park the daemon. With
/// `options.once`, any failure ends the run (a failed table included).
pub async fn run<M: MoneyWorks, S: Store>(
    engine: &mut Engine<M, S>,
    options: &RunOptions,
    status: &SharedStatus,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    set_status(status, |s| s.state = "running".into());
    let mut polls = 0u64;
    let mut parked = false;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let outcome = engine.cycle().await;
        polls += 1;
        let (quarantined, warnings) = (engine.quarantined(), engine.warnings());
        set_status(status, |s| {
            s.quarantined = quarantined;
            s.warnings = warnings;
        });
        match outcome {
            Ok(report) => {
                if parked {
                    parked = false;
                    engine.events().publish(Event::Resumed);
                }
                set_status(status, |s| {
                    s.state = "running".into();
                    s.parked = None;
                    s.polls += 1;
                    s.last_poll = engine
                        .state()
                        .tables
                        .values()
                        .filter_map(|t| t.server_time)
                        .max()
                        .map(|t| t.to_string());
                    s.last_poll_records = report.records;
                    s.markers = engine
                        .state()
                        .tables
                        .iter()
                        .filter_map(|(k, v)| v.marker.map(|m| (k.clone(), m.to_string())))
                        .collect();
                    s.main = engine.main_tip().map(ToString::to_string);
                    s.table_errors = report
                        .table_errors
                        .iter()
                        .map(|e| (e.table.clone(), e.error.clone()))
                        .collect();
                    s.last_error = None;
                });
                if options.once && !report.table_errors.is_empty() {
                    let e = EngineError::TablesFailed {
                        tables: report
                            .table_errors
                            .iter()
                            .map(|e| format!("{}: {}", e.table, e.error))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        needs_human: report.table_errors.iter().any(|e| e.needs_human),
                    };
                    engine.events().publish(Event::Fatal {
                        error: e.to_string(),
                    });
                    set_status(status, |s| s.state = "stopped".into());
                    return Err(e);
                }
            }
            Err(e) if e.class() == ErrorClass::Retryable && !options.once => {
                engine.events().publish(Event::PollFailed {
                    error: e.to_string(),
                });
                set_status(status, |s| s.last_error = Some(e.to_string()));
            }
            Err(e)
                if e.class() == ErrorClass::NeedsHuman
                    && !e.stops_the_daemon()
                    && !options.once =>
            {
                if !parked {
                    parked = true;
                    engine.events().publish(Event::Parked {
                        error: e.to_string(),
                    });
                }
                set_status(status, |s| {
                    s.state = "parked".into();
                    s.parked = Some(e.to_string());
                    s.last_error = Some(e.to_string());
                });
            }
            Err(e) => {
                engine.events().publish(Event::Fatal {
                    error: e.to_string(),
                });
                set_status(status, |s| {
                    s.state = "fatal".into();
                    s.last_error = Some(e.to_string());
                });
                return Err(e);
            }
        }
        if options.once || options.max_polls.is_some_and(|m| polls >= m) {
            break;
        }
        let interval = Duration::from_secs(engine.repo_config().file.poll_interval_secs);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    set_status(status, |s| s.state = "stopped".into());
    Ok(())
}

fn set_status(status: &SharedStatus, f: impl FnOnce(&mut StatusSnapshot)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}
