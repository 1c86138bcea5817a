//! The engine: one MoneyWorks, one git store, and what mwsync knows of `main`. This module
//! owns the `Engine` value, its error type and its settings; `known` holds its mutable state,
//! `guard` the rule that only mwsync moves `main` (loading config and state from it, and
//! committing by compare-and-swap), and `io` the requests it makes, with retries and
//! counting. Polling, write-back, scans and the cycle are in their own modules; the engine
//! must not sleep or schedule (that is `daemon`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

mod guard;
pub(crate) mod io;
mod known;
mod landing;

pub(crate) use known::{ClockReading, Known, SeqIndex, SeqPlace, shard_dir};

use crate::cache::Cache;
use crate::config::{ConfigError, RepoConfig};
use crate::error::{Classify, ErrorClass};
use crate::events::{Event, Events};
use crate::moneyworks::{MoneyWorks, MwError};
use crate::retry::RetryPolicy;
use crate::state::SyncState;
use crate::store::{CommitId, Store, StoreError};

/// Anything that stops a poll or the daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// `main` is not where mwsync left it.
    #[error(
        "the `{branch}` branch on the git remote is at {actual}, but mwsync last pushed {expected}. Only mwsync may write `{branch}`. \
         Find out who moved it; when `{branch}` is right again, run `mwsync rebaseline` to accept its current tip."
    )]
    MainMoved {
        /// The sync branch.
        branch: String,
        /// What mwsync last pushed.
        expected: String,
        /// What the remote holds (`none` when the branch is gone).
        actual: String,
    },
    /// The cache has never pushed, and the sync branch already exists: mwsync cannot tell
    /// whether that commit is its own, so it adopts nothing without a human.
    #[error(
        "the `{branch}` branch on the git remote is at {tip}, but this cache directory has never pushed it, \
         so mwsync cannot tell whether that commit is its own. If it is (the cache directory was lost, wiped or moved), \
         check `{branch}` and run `mwsync rebaseline` to accept it; otherwise point the git URL at an empty repository or another branch."
    )]
    FreshCache {
        /// The sync branch.
        branch: String,
        /// Its tip on the remote.
        tip: String,
    },
    /// The sync branch does not exist on a remote that has other branches: most likely a
    /// typo in the git URL's `#branch`.
    #[error(
        "the git remote has no branch `{branch}`; its branches are: {existing}. \
         Check the branch after `#` in the git URL (MWSYNC_GIT_URL), or pass --create-branch (MWSYNC_CREATE_BRANCH=true) to create `{branch}`."
    )]
    BranchMissing {
        /// The sync branch asked for.
        branch: String,
        /// The branches the remote has, comma-separated.
        existing: String,
    },
    /// `main` was found at a commit of mwsync's own push that was still running when an
    /// earlier process died; it was adopted, and the step that found it starts again.
    #[error(
        "`{branch}` is at {tip}, mwsync's own push from before a restart (recorded in the cache); adopted it, and the step starts again"
    )]
    Adopted {
        /// The sync branch.
        branch: String,
        /// The adopted tip.
        tip: String,
    },
    /// MoneyWorks failed.
    #[error(transparent)]
    MoneyWorks(#[from] MwError),
    /// Git failed.
    #[error(transparent)]
    Store(StoreError),
    /// Configuration (daemon or on `main`) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file mwsync wrote on `main` is unreadable.
    #[error("{path} on main is unreadable: {detail}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The local cache directory failed.
    #[error("the cache directory is unusable: {0}")]
    Local(String),
    /// A scan would delete more of a table than the repo config allows at once.
    #[error(
        "{vanished} of {total} {table} records are missing from MoneyWorks, more than max_delete_percent = {max_percent} allows at once. \
         Nothing was deleted; the other tables go on, and {table}'s scan is tried again each interval. If the deletions are real, \
         raise max_delete_percent in .mwsync/config.toml through the changes branch; if not, check the MoneyWorks server."
    )]
    MassDelete {
        /// Table.
        table: String,
        /// Records that would go.
        vanished: usize,
        /// Records on main.
        total: usize,
        /// The configured limit.
        max_percent: u32,
    },
    /// A check only reads, and `main` still holds record files in an older layout.
    #[error(
        "main holds its record files in layout {layout}, and a check only reads. Run `mwsync run --once` first: it moves them to layout {current} (docs/paths.md), unchanged"
    )]
    OldLayout {
        /// The layout `main`'s state names.
        layout: u32,
        /// The layout this version writes.
        current: u32,
    },
    /// A one-shot run (`run --once`) could not read some tables; the others were synced.
    #[error("{tables}")]
    TablesFailed {
        /// One line per table: `Name: what went wrong`.
        tables: String,
        /// True when one of them needs a human.
        needs_human: bool,
    },
    /// Shutdown was asked for; the step in progress was abandoned before it committed.
    #[error(
        "mwsync was asked to stop; what it had read but not committed is read again at the next start"
    )]
    Cancelled,
    /// A full sync in check mode found differences.
    #[error(
        "full sync check found {count} differences between MoneyWorks and main (nothing was committed; `mwsync sync --full` commits the fixes):\n{report}"
    )]
    Drift {
        /// How many records differ.
        count: usize,
        /// One block per record and field.
        report: String,
    },
}

impl Classify for EngineError {
    fn class(&self) -> ErrorClass {
        match self {
            EngineError::MainMoved { .. }
            | EngineError::FreshCache { .. }
            | EngineError::Corrupt { .. }
            | EngineError::Local(_)
            | EngineError::MassDelete { .. }
            | EngineError::Drift { .. } => ErrorClass::NeedsHuman,
            EngineError::OldLayout { .. } => ErrorClass::Invalid,
            EngineError::Adopted { .. } | EngineError::Cancelled => ErrorClass::Retryable,
            EngineError::TablesFailed { needs_human, .. } => {
                if *needs_human {
                    ErrorClass::NeedsHuman
                } else {
                    ErrorClass::Retryable
                }
            }
            EngineError::MoneyWorks(e) => e.class(),
            EngineError::Store(e) => e.class(),
            EngineError::Config(_) | EngineError::BranchMissing { .. } => ErrorClass::Invalid,
        }
    }
}

impl EngineError {
    /// True when the error is about `main` itself or the cache that guards it: the daemon
    /// cannot go on at all and exits (code 3). Other errors that need a human park the
    /// daemon, or one table, while it keeps running.
    pub fn stops_the_daemon(&self) -> bool {
        matches!(
            self,
            EngineError::MainMoved { .. }
                | EngineError::FreshCache { .. }
                | EngineError::Corrupt { .. }
                | EngineError::Local(_)
                | EngineError::Drift { .. }
        ) || self.class() == ErrorClass::Invalid
    }
}

/// Settings the engine needs beyond the repo config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The branch mwsync owns.
    pub branch: String,
    /// The branch writers push to.
    pub changes_branch: String,
    /// Repo config to write when `main` has none.
    pub initial_repo: RepoConfig,
    /// Retry policy for MoneyWorks and git transport.
    pub retry: RetryPolicy,
    /// Create the sync branch even when the remote has other branches (`--create-branch`).
    pub create_branch: bool,
}

/// The engine. Generic over its two seams so tests can use the simulator.
pub struct Engine<M, S> {
    /// Shared with an export running ahead (see [`Engine::start_export`]).
    mw: Arc<M>,
    /// The git store, shared with the blocking threads its calls run on (see
    /// [`Engine::store_call`]); shells read `main` through it.
    store: Arc<Mutex<S>>,
    /// Cancelled when the daemon is asked to stop; checked between pages and checkpoints.
    shutdown: CancellationToken,
    /// Where a full sync check writes its complete list of differences.
    report_dir: PathBuf,
    events: Events,
    settings: EngineSettings,
    /// The cache directory's memory (last push, intents, a check's answer).
    pub(crate) cache: Cache,
    /// Everything mwsync knows and may have advanced in memory.
    pub(crate) known: Known,
    /// Checkpoints committed whose push has not been confirmed yet.
    flight: Option<landing::Flight>,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// An engine over `mw` and `store`, remembering pushes in `cache`.
    pub fn new(
        mw: M,
        store: S,
        cache: Cache,
        settings: EngineSettings,
        events: Events,
    ) -> Engine<M, S> {
        let known = Known::new(settings.initial_repo.clone());
        Engine {
            mw: Arc::new(mw),
            store: Arc::new(Mutex::new(store)),
            shutdown: CancellationToken::new(),
            report_dir: std::env::temp_dir(),
            events,
            settings,
            cache,
            known,
            flight: None,
        }
    }

    /// Stops every later step when `token` is cancelled: pages and checkpoints in progress
    /// finish or are abandoned, and the run ends with [`EngineError::Cancelled`].
    pub fn set_shutdown(&mut self, token: CancellationToken) {
        self.shutdown = token;
    }

    /// Writes the complete list of a full sync check's differences into `dir` (the system's
    /// temporary directory unless set).
    pub fn set_report_dir(&mut self, dir: PathBuf) {
        self.report_dir = dir;
    }

    /// Where a full sync check writes its complete list.
    pub(crate) fn report_dir(&self) -> &std::path::Path {
        &self.report_dir
    }

    /// Fails with `Cancelled` once shutdown was asked for.
    pub(crate) fn check_cancelled(&self) -> Result<(), EngineError> {
        if self.shutdown.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        Ok(())
    }

    /// Runs `read` (a MoneyWorks read, safe to abandon) unless shutdown comes first.
    pub(crate) async fn unless_cancelled<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(EngineError::Cancelled),
            r = read => r,
        }
    }

    /// Runs `f` on the store on a blocking thread, so git and file work never holds an
    /// async worker (and a paused test clock does not advance meanwhile).
    pub(crate) async fn store_call<R, F>(&self, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| StoreError::Local {
                detail: "an earlier git operation panicked; restart mwsync".into(),
            })?;
            f(&mut guard)
        })
        .await
        .map_err(|e| {
            EngineError::Store(StoreError::Local {
                detail: format!("a git operation panicked: {e}"),
            })
        })?
        .map_err(EngineError::Store)
    }

    /// The event bus.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// `main` as last seen.
    pub fn main_tip(&self) -> Option<&CommitId> {
        self.known.main.as_ref()
    }

    /// The sync state in force.
    pub fn state(&self) -> &SyncState {
        &self.known.state
    }

    /// The repo config in force.
    pub fn repo_config(&self) -> &RepoConfig {
        &self.known.repo
    }

    /// The settings the engine was built with.
    pub(crate) fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Publishes an event.
    pub(crate) fn publish(&self, event: Event) {
        self.events.publish(event);
    }

    /// Records MoneyWorks holds that mwsync cannot file, held back.
    pub fn quarantined(&self) -> Vec<crate::quarantine::QuarantinedRecord> {
        self.known.quarantine.entries()
    }

    /// Warnings that stand (a missing changes branch), for `/status`.
    pub fn warnings(&self) -> Vec<String> {
        self.known.warnings.values().cloned().collect()
    }
}

/// Crash-test seam. When the environment variable `MWSYNC_TEST_PAUSE_AT` names `point`
/// (`after-import`, or `after-import-batch:N`, `after-checkpoint:N` and
/// `gateway-before-commit:N` for the N-th time; at `after-checkpoint` the checkpoint is
/// committed in the cache and its push may still be running),
/// the process announces it on stderr and stops there for good, so a test can kill it at an
/// exact step. Without the variable it does nothing.
pub(crate) fn pause_point(point: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    static CHECKED: AtomicBool = AtomicBool::new(false);
    static TARGET: Mutex<Option<(String, u64, u64)>> = Mutex::new(None);
    let Ok(mut target) = TARGET.lock() else {
        return;
    };
    if !CHECKED.swap(true, Ordering::SeqCst) {
        *target = std::env::var("MWSYNC_TEST_PAUSE_AT")
            .ok()
            .map(|v| match v.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1), 0),
                None => (v, 1, 0),
            });
    }
    let Some((name, nth, seen)) = target.as_mut() else {
        return;
    };
    if name != point {
        return;
    }
    *seen += 1;
    if *seen == *nth {
        eprintln!("mwsync: paused at {point} (MWSYNC_TEST_PAUSE_AT)");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
