//! The daemon loop: run a cycle (see `cycle`), wait the configured interval on monotonic
//! time, repeat, and stop cleanly when told: the engine checks the same token between pages
//! and checkpoints, so a stop abandons at most the records not yet committed. It also wires the production seams from a validated
//! `DaemonConfig`. It owns scheduling and the status snapshot; it must not contain sync logic.

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
    };
    let mut engine = Engine::new(mw, store, cache, settings, events);
    engine.set_report_dir(cfg.cache_dir.clone());
    Ok(engine)
}

/// Runs the poll loop until `shutdown` is cancelled, `options` says stop, or an error that a
/// retry cannot fix. Transient failures are reported and retried at the next interval.
pub async fn run<M: MoneyWorks, S: Store>(
    engine: &mut Engine<M, S>,
    options: &RunOptions,
    status: &SharedStatus,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    set_status(status, |s| s.state = "running".into());
    engine.set_shutdown(shutdown.clone());
    let mut polls = 0u64;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let outcome = engine.cycle().await;
        polls += 1;
        match outcome {
            Ok(report) => set_status(status, |s| {
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
                s.last_error = None;
            }),
            // Asked to stop: the step in progress was finished or abandoned.
            Err(EngineError::Cancelled) => break,
            Err(e) if e.class() == ErrorClass::Retryable && !options.once => {
                engine.events().publish(Event::PollFailed {
                    error: e.to_string(),
                });
                set_status(status, |s| s.last_error = Some(e.to_string()));
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
