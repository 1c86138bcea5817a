//! The daemon loop: run a cycle (see `cycle`), wait the configured interval on monotonic
//! time, repeat, and stop cleanly when told: the engine checks the same token between pages
//! and checkpoints, so a stop abandons at most the records not yet committed. What a failure
//! does follows its class: a transient one is reported and retried at the next interval; one
//! that needs a human parks the daemon (it keeps running, shows `parked` on `/status` and
//! tries again each interval) unless it concerns `main` itself, which stops it; invalid input
//! stops it. It also wires the production seams from a validated `DaemonConfig`. It owns
//! scheduling and what the status board learns between cycles; it must not contain sync
//! logic.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::{DaemonConfig, GitAuthKind};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::error::{Classify, ErrorClass};
use crate::events::{Event, Events};
use crate::metrics::{Counted, Metrics};
use crate::moneyworks::MoneyWorks;
use crate::moneyworks::client::HttpMoneyWorks;
use crate::retry::RetryPolicy;
use crate::status::{Board, CycleFacts, DaemonState};
use crate::store::Store;
use crate::store::gateway::{Gateway, GatewayConfig};
use crate::store::git::{AuthMode, GitRemote, GitStore};

/// How the loop runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Do one cycle and return.
    pub once: bool,
    /// Stop after this many polls (the demo and tests); `None` runs until shutdown.
    pub max_polls: Option<u64>,
    /// Count the records on `main` once for the status board (when it is served).
    pub count_records: bool,
}

/// The production engine's MoneyWorks: the HTTP client, its requests counted.
pub type ProductionMoneyWorks = Counted<HttpMoneyWorks>;

/// The git remote as `cfg` names it, with its credentials.
pub fn git_remote(cfg: &DaemonConfig) -> GitRemote {
    GitRemote {
        url: cfg.git.url.clone(),
        api_key: cfg.api_key.as_ref().map(|k| k.expose().to_string()),
        auth: match cfg.git_auth {
            GitAuthKind::Basic => AuthMode::Basic {
                user: cfg.git_user.clone(),
            },
            GitAuthKind::Bearer => AuthMode::Bearer,
        },
    }
}

/// The upload gateway as `cfg` names it (a `gateway+http(s)://` git URL), with its token.
pub fn gateway_config(cfg: &DaemonConfig) -> Option<GatewayConfig> {
    let gw = cfg.git.gateway.as_ref()?;
    Some(GatewayConfig {
        api: gw.api.clone(),
        repo: gw.repo.clone(),
        token: cfg
            .api_key
            .as_ref()
            .map(|k| k.expose().to_string())
            .unwrap_or_default(),
        concurrency: cfg.gateway_concurrency,
        batch_bytes: cfg.gateway_batch_bytes,
        batch_retry: crate::store::gateway::BATCH_RETRY,
        cache_dir: cfg.cache_dir.clone(),
    })
}

/// Builds the production engine: reqwest for MoneyWorks (its requests counted in
/// `metrics`), git2 + git CLI for the store, committing as `cfg.commit_author`.
pub fn connect(
    cfg: &DaemonConfig,
    events: Events,
    metrics: Arc<Metrics>,
) -> Result<Engine<ProductionMoneyWorks, GitStore>, EngineError> {
    let mw = HttpMoneyWorks::new(
        &cfg.moneyworks,
        Duration::from_secs(cfg.request_timeout_secs),
        cfg.max_reply_bytes,
    )?;
    let mw = Counted::new(mw, metrics);
    let mut store = GitStore::open(&cfg.cache_dir.join("repo.git"), git_remote(cfg))
        .map_err(EngineError::Store)?;
    store.set_author(&cfg.commit_author.name, &cfg.commit_author.email);
    if let Some(gateway) = gateway_config(cfg) {
        store.use_gateway(Gateway::new(gateway, events.clone()).map_err(EngineError::Store)?);
    }
    let cache = Cache::load(&cfg.cache_dir)
        .map_err(|e| EngineError::Local(format!("{}: {e}", cfg.cache_dir.display())))?;
    let settings = EngineSettings {
        branch: cfg.git.branch.clone(),
        changes_branch: cfg.changes_branch.clone(),
        initial_repo: cfg.initial_repo.clone(),
        retry: RetryPolicy::default(),
        create_branch: cfg.create_branch,
    };
    let mut engine = Engine::new(mw, store, cache, settings, events);
    engine.set_report_dir(cfg.cache_dir.clone());
    Ok(engine)
}

/// Runs the poll loop until `shutdown` is cancelled, `options` says stop, or an error that
/// stops the daemon. Transient failures are reported and retried at the next interval;
/// failures that need a human but do not concern `main` itself park the daemon. With
/// `options.once`, any failure ends the run (a failed table included). The status board
/// learns the daemon's state, each cycle's facts and, once, the record counts.
pub async fn run<M: MoneyWorks, S: Store>(
    engine: &mut Engine<M, S>,
    options: &RunOptions,
    board: &Board,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    board.track_tables(engine.repo_config().tables.iter().map(|t| t.name));
    engine.set_shutdown(shutdown.clone());
    engine.events().publish(Event::Started {
        version: env!("CARGO_PKG_VERSION").to_string(),
        instance: engine.events().instance().to_string(),
    });
    let mut polls = 0u64;
    let mut parked = false;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let outcome = engine.cycle().await;
        polls += 1;
        let last = options.once || options.max_polls.is_some_and(|m| polls >= m);
        let interval = Duration::from_secs(engine.repo_config().file.poll_interval_secs);
        let next_poll_in_secs = (!last).then_some(interval.as_secs());
        board.set_held(&engine.quarantined(), engine.warnings());
        match outcome {
            Ok(report) => {
                if parked {
                    parked = false;
                    engine.events().publish(Event::Resumed);
                }
                board.cycle_succeeded(cycle_facts(engine, &report));
                if options.count_records && board.needs_counts() {
                    match engine.count_records().await {
                        Ok(counts) => board.set_counts(counts),
                        Err(e) => tracing::warn!("cannot count the records on main: {e}"),
                    }
                }
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
                        class: e.class(),
                    });
                    board.set_state(DaemonState::Stopped);
                    return Err(e);
                }
                engine.events().publish(Event::CycleFinished {
                    ok: true,
                    next_poll_in_secs,
                });
            }
            // Asked to stop: the step in progress was finished or abandoned.
            Err(EngineError::Cancelled) => break,
            Err(e) if e.class() == ErrorClass::Retryable && !options.once => {
                engine.events().publish(Event::PollFailed {
                    error: e.to_string(),
                    class: e.class(),
                });
                engine.events().publish(Event::CycleFinished {
                    ok: false,
                    next_poll_in_secs,
                });
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
                board.parked(&e.to_string());
                engine.events().publish(Event::CycleFinished {
                    ok: false,
                    next_poll_in_secs,
                });
            }
            Err(e) => {
                engine.events().publish(Event::Fatal {
                    error: e.to_string(),
                    class: e.class(),
                });
                board.set_state(DaemonState::Fatal);
                return Err(e);
            }
        }
        if last {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    board.set_state(DaemonState::Stopped);
    Ok(())
}

/// What the board learns after a successful cycle.
fn cycle_facts<M: MoneyWorks, S: Store>(
    engine: &Engine<M, S>,
    report: &crate::pull::PollReport,
) -> CycleFacts {
    let state = engine.state();
    CycleFacts {
        main: engine.main_tip().map(ToString::to_string),
        markers: engine
            .repo_config()
            .tables
            .iter()
            .map(|t| {
                let marker = state.tables.get(t.name).and_then(|s| s.marker);
                (t.name.to_string(), marker.map(|m| m.to_string()))
            })
            .collect(),
        server_time: state
            .tables
            .values()
            .filter_map(|t| t.server_time)
            .max()
            .map(|t| t.to_string()),
        records: report.records,
        table_errors: report
            .table_errors
            .iter()
            .map(|e| (e.table.clone(), e.error.clone()))
            .collect(),
    }
}
