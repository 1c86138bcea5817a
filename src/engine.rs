//! The engine: one MoneyWorks, one git store, and what mwsync knows of `main`. It owns the
//! guard on `main` (only mwsync moves it, by compare-and-swap), loading the repo config and
//! sync state from `main`, and committing checkpoints. Polling lives in `pull`; it must not
//! sleep or schedule (that is `daemon`).

use std::collections::{BTreeMap, HashMap};

use crate::cache::Cache;
use crate::commit_message::has_trailers;
use crate::config::{ConfigError, REPO_CONFIG_PATH, RepoConfig, RepoConfigFile};
use crate::error::{Classify, ErrorClass};
use crate::events::{Event, Events};
use crate::moneyworks::{MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::record::{KeyField, TableInfo};
use crate::retry::{RetryPolicy, retry};
use crate::state::{STATE_PATH, SyncState};
use crate::store::{CommitId, FileChange, NewCommit, Store, StoreError};

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
    #[error("cannot write the local cache: {0}")]
    Local(String),
    /// A scan would delete more of a table than the repo config allows at once.
    #[error(
        "{vanished} of {total} {table} records are missing from MoneyWorks, more than max_delete_percent = {max_percent} allows at once. \
         Nothing was deleted. If the deletions are real, raise max_delete_percent in .mwsync/config.toml (through the changes branch) and restart; \
         if not, check the MoneyWorks server."
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
    /// A full sync in check mode found differences.
    #[error("full sync check found {count} differences between MoneyWorks and main:\n{report}")]
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
            | EngineError::Corrupt { .. }
            | EngineError::Local(_)
            | EngineError::MassDelete { .. } => ErrorClass::Fatal,
            EngineError::MoneyWorks(e) => e.class(),
            EngineError::Store(e) => e.class(),
            EngineError::Config(_) | EngineError::Drift { .. } => ErrorClass::Invalid,
        }
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
}

/// The engine. Generic over its two seams so tests can use the simulator.
pub struct Engine<M, S> {
    pub(crate) mw: M,
    pub(crate) store: S,
    pub(crate) events: Events,
    pub(crate) settings: EngineSettings,
    pub(crate) cache: Cache,
    /// `main` as mwsync last saw it.
    pub(crate) main: Option<CommitId>,
    /// The repo config in force (from `main`, or the initial one before the first commit).
    pub(crate) repo: RepoConfig,
    /// True when `main` lacks the config file and the next commit must write it.
    pub(crate) config_unwritten: bool,
    /// The sync state (from `main`, advanced in memory by idle polls).
    pub(crate) state: SyncState,
    /// The sync state as last committed to `main`; a failed poll returns to it, because
    /// markers advanced in memory may cover records that were staged but never committed.
    pub(crate) committed_state: SyncState,
    /// Per code-keyed table: sequence number → path on `main`, built on first need.
    pub(crate) seq_index: HashMap<&'static str, HashMap<u64, String>>,
    /// The last server clock reading and when it was taken (monotonic).
    pub(crate) last_clock: Option<(MwTime, tokio::time::Instant)>,
    /// MoneyWorks requests made since the counter was last taken.
    pub(crate) requests: u64,
    /// Pushes made since the counter was last taken.
    pub(crate) commits: u64,
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
        let repo = settings.initial_repo.clone();
        Engine {
            mw,
            store,
            events,
            settings,
            cache,
            main: None,
            repo,
            config_unwritten: true,
            state: SyncState::default(),
            committed_state: SyncState::default(),
            seq_index: HashMap::new(),
            last_clock: None,
            requests: 0,
            commits: 0,
        }
    }

    /// The event bus.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// `main` as last seen.
    pub fn main_tip(&self) -> Option<&CommitId> {
        self.main.as_ref()
    }

    /// The sync state in force.
    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// The repo config in force.
    pub fn repo_config(&self) -> &RepoConfig {
        &self.repo
    }

    /// Mutable access to the store (tests and tools).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Fetches, checks that `main` is where mwsync left it, and loads config and state from
    /// it when it changed.
    pub async fn refresh_main(&mut self) -> Result<(), EngineError> {
        let policy = self.settings.retry;
        let events = self.events.clone();
        let store = &mut self.store;
        retry(&policy, &events, "git fetch", || {
            std::future::ready(store.fetch())
        })
        .await
        .map_err(EngineError::Store)?;
        let tip = self
            .store
            .remote_tip(&self.settings.branch)
            .map_err(EngineError::Store)?;
        let expected = self.cache.last_pushed().cloned();
        match (&expected, &tip) {
            (None, None) => {}
            (None, Some(t)) => {
                tracing::warn!(commit = %t, "adopting the existing `{}` at {} (this cache has never pushed)", self.settings.branch, t.short());
                self.cache
                    .set_last_pushed(t.clone())
                    .map_err(|e| EngineError::Local(e.to_string()))?;
            }
            (Some(e), Some(t)) if e == t => {}
            (Some(e), Some(t)) if self.is_own_successor(e, t)? => {
                tracing::warn!(
                    "`{}` is one mwsync commit ahead of the cache ({}); a push finished just before a crash; adopting it",
                    self.settings.branch,
                    t.short()
                );
                self.cache
                    .set_last_pushed(t.clone())
                    .map_err(|e| EngineError::Local(e.to_string()))?;
            }
            (Some(e), actual) => {
                return Err(EngineError::MainMoved {
                    branch: self.settings.branch.clone(),
                    expected: e.to_string(),
                    actual: actual
                        .as_ref()
                        .map_or("none".to_string(), ToString::to_string),
                });
            }
        }
        if tip != self.main {
            self.load_main(tip)?;
        }
        Ok(())
    }

    fn is_own_successor(&self, expected: &CommitId, tip: &CommitId) -> Result<bool, EngineError> {
        let info = match self.store.commit_info(tip) {
            Ok(info) => info,
            Err(_) => return Ok(false),
        };
        Ok(info.parents.first() == Some(expected) && has_trailers(&info.message))
    }

    /// Reads config and state from `tip`.
    fn load_main(&mut self, tip: Option<CommitId>) -> Result<(), EngineError> {
        self.seq_index.clear();
        let Some(tip_id) = &tip else {
            self.main = None;
            self.repo = self.settings.initial_repo.clone();
            self.config_unwritten = true;
            self.state = SyncState::default();
            self.committed_state = SyncState::default();
            return Ok(());
        };
        match self.read_text(tip_id, REPO_CONFIG_PATH)? {
            Some(text) => {
                let file = RepoConfigFile::parse(&text, REPO_CONFIG_PATH)?;
                self.repo = file.validate()?;
                self.config_unwritten = false;
            }
            None => {
                self.repo = self.settings.initial_repo.clone();
                self.config_unwritten = true;
            }
        }
        self.state = match self.read_text(tip_id, STATE_PATH)? {
            Some(text) => {
                SyncState::parse(&text, STATE_PATH).map_err(|detail| EngineError::Corrupt {
                    path: STATE_PATH.into(),
                    detail,
                })?
            }
            None => SyncState::default(),
        };
        self.committed_state = self.state.clone();
        self.main = tip;
        Ok(())
    }

    pub(crate) fn read_text(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<String>, EngineError> {
        match self
            .store
            .read_file(commit, path)
            .map_err(EngineError::Store)?
        {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| EngineError::Corrupt {
                    path: path.to_string(),
                    detail: "not UTF-8".into(),
                }),
        }
    }

    /// Reads the server clock (one `evaluate`).
    pub(crate) async fn read_clock(&mut self) -> Result<MwTime, EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let now = retry(
            &policy,
            &self.events,
            "reading the MoneyWorks clock",
            || async {
                let text = mw
                    .evaluate("DateToText(Time(), DateFormYYYYMMDDHHMMSS)")
                    .await?;
                MwTime::parse(text.trim()).map_err(|e| MwError::InvalidReply {
                    command: "evaluate".into(),
                    detail: format!("the clock reading is unusable: {e}"),
                })
            },
        )
        .await?;
        self.requests += 1;
        Ok(now)
    }

    /// The path of the record with sequence number `seq` in code-keyed `table` on `main`
    /// (as staged), building the index on first use.
    pub(crate) fn seq_path(
        &mut self,
        table: &'static TableInfo,
        seq: u64,
    ) -> Result<Option<String>, EngineError> {
        if !matches!(table.key, KeyField::Code(_)) {
            return Ok(None);
        }
        if !self.seq_index.contains_key(table.name) {
            let index = self
                .main_fingerprints(table)?
                .into_iter()
                .map(|(path, (s, _))| (s, path))
                .collect();
            self.seq_index.insert(table.name, index);
        }
        Ok(self
            .seq_index
            .get(table.name)
            .and_then(|m| m.get(&seq))
            .cloned())
    }

    pub(crate) fn note_seq_path(
        &mut self,
        table: &'static TableInfo,
        seq: u64,
        path: Option<String>,
    ) {
        if let Some(index) = self.seq_index.get_mut(table.name) {
            match path {
                Some(p) => index.insert(seq, p),
                None => index.remove(&seq),
            };
        }
    }

    /// Commits `changes` (plus the current state, and the config when `main` lacks it) on
    /// top of `main` and pushes by compare-and-swap. Returns the new tip.
    pub(crate) async fn commit_main(
        &mut self,
        mut changes: BTreeMap<String, FileChange>,
        message: String,
        extra_parent: Option<CommitId>,
    ) -> Result<CommitId, EngineError> {
        changes.insert(
            STATE_PATH.to_string(),
            FileChange::Put(self.state.to_toml().into_bytes()),
        );
        if self.config_unwritten {
            // A writer's config change in the same commit wins over the initial one.
            changes
                .entry(REPO_CONFIG_PATH.to_string())
                .or_insert_with(|| FileChange::Put(self.repo.file.to_toml().into_bytes()));
        }
        let mut parents: Vec<CommitId> = self.main.iter().cloned().collect();
        parents.extend(extra_parent);
        let new = self
            .store
            .commit(NewCommit {
                parents,
                changes,
                message,
            })
            .map_err(EngineError::Store)?;
        self.push_main(&new).await?;
        self.config_unwritten = false;
        self.committed_state = self.state.clone();
        Ok(new)
    }

    /// Pushes `new` to the sync branch by compare-and-swap from the known tip.
    pub(crate) async fn push_main(&mut self, new: &CommitId) -> Result<(), EngineError> {
        let policy = self.settings.retry;
        let branch = self.settings.branch.clone();
        let expected = self.main.clone();
        let store = &mut self.store;
        let pushed = retry(&policy, &self.events, "git push", || {
            std::future::ready(store.push(&branch, expected.as_ref(), new))
        })
        .await;
        match pushed {
            Ok(()) => {}
            // A retry after an unknown outcome can find its own earlier push already there.
            Err(StoreError::BranchMoved { actual, .. }) if actual == new.0 => {}
            Err(StoreError::BranchMoved {
                expected, actual, ..
            }) => {
                return Err(EngineError::MainMoved {
                    branch,
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(EngineError::Store(e)),
        }
        self.cache
            .set_last_pushed(new.clone())
            .map_err(|e| EngineError::Local(e.to_string()))?;
        self.main = Some(new.clone());
        self.commits += 1;
        Ok(())
    }

    /// Accepts the remote's current tip of the sync branch as mwsync's own (after a human
    /// has checked it). Returns the adopted tip.
    pub async fn rebaseline(&mut self) -> Result<Option<CommitId>, EngineError> {
        self.store.fetch().map_err(EngineError::Store)?;
        let tip = self
            .store
            .remote_tip(&self.settings.branch)
            .map_err(EngineError::Store)?;
        if let Some(t) = &tip {
            self.cache
                .set_last_pushed(t.clone())
                .map_err(|e| EngineError::Local(e.to_string()))?;
        }
        self.load_main(tip.clone())?;
        Ok(tip)
    }

    /// Forgets what a failed step staged: the state returns to what `main` holds, and the
    /// code-move index (which may point at files never committed) is rebuilt on next use.
    pub(crate) fn rollback(&mut self) {
        self.state = self.committed_state.clone();
        self.seq_index.clear();
    }

    /// Publishes an event.
    pub(crate) fn publish(&self, event: Event) {
        self.events.publish(event);
    }
}

/// Crash-test seam. When the environment variable `MWSYNC_TEST_PAUSE_AT` names `point`
/// (`after-import`, or `after-checkpoint:N` for the N-th time), the process announces it on
/// stderr and stops there for good, so a test can kill it at an exact step. Without the
/// variable it does nothing.
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
