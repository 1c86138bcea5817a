//! What the engine knows and may have advanced in memory since `main` last moved: the tip of
//! `main`, the repo config in force, the sync state (and the copy last committed), the
//! sequence-number index for code moves, the last server clock reading, and the per-poll
//! request and commit counters. It owns the one rollback that forgets what a failed step
//! staged; it must not do I/O.

use std::collections::{BTreeMap, HashMap};

use crate::config::RepoConfig;
use crate::mwtime::MwTime;
use crate::record::TableInfo;
use crate::state::SyncState;
use crate::store::CommitId;

/// A server clock reading and when it was taken (monotonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockReading {
    /// What the server said.
    pub(crate) time: MwTime,
    /// When, on tokio's clock.
    pub(crate) at: tokio::time::Instant,
}

/// Per code-keyed table: sequence number → path on `main` (as staged). A table's index is
/// built by the engine before staging its records, and updated as records are staged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqIndex {
    tables: HashMap<&'static str, HashMap<u64, String>>,
}

impl SeqIndex {
    /// True when `table`'s index has been built.
    pub(crate) fn has(&self, table: &TableInfo) -> bool {
        self.tables.contains_key(table.name)
    }

    /// Installs `table`'s index.
    pub(crate) fn insert(&mut self, table: &'static TableInfo, index: HashMap<u64, String>) {
        self.tables.insert(table.name, index);
    }

    /// The path of the record with `seq` in `table`, if the index is built and holds it.
    pub(crate) fn path(&self, table: &TableInfo, seq: u64) -> Option<&str> {
        self.tables.get(table.name)?.get(&seq).map(String::as_str)
    }

    /// Records where `seq` now lives (`None`: nowhere). Only built indexes change; the
    /// others are built from `main` when next needed.
    pub(crate) fn note(&mut self, table: &str, seq: u64, path: Option<String>) {
        if let Some(index) = self.tables.get_mut(table) {
            match path {
                Some(p) => index.insert(seq, p),
                None => index.remove(&seq),
            };
        }
    }

    fn clear(&mut self) {
        self.tables.clear();
    }
}

/// The engine's mutable state, in one place.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    /// `main` as mwsync last saw it.
    pub(crate) main: Option<CommitId>,
    /// The repo config in force (from `main`, or the initial one before the first commit).
    pub(crate) repo: RepoConfig,
    /// True when `main` lacks the config file and the next commit must write it.
    pub(crate) config_unwritten: bool,
    /// The sync state (from `main`, advanced in memory by polls).
    pub(crate) state: SyncState,
    /// The sync state as last committed to `main`: what a rollback returns to, because
    /// markers advanced in memory may cover records that were staged but never committed.
    committed: SyncState,
    /// Sequence number → path for code-keyed tables.
    pub(crate) seq_index: SeqIndex,
    /// The last clock reading of a successful poll.
    pub(crate) last_clock: Option<ClockReading>,
    /// Per table, a marker known to be safe whatever was staged since: where the last
    /// successful poll left it, lowered by any clock regression seen after. A rollback never
    /// returns above it. After the clock steps back, the committed marker may lie ahead of
    /// records stamped since; once the clock passes it again, no check would notice.
    rescan_floor: BTreeMap<String, MwTime>,
    /// MoneyWorks requests made since the counters were reset.
    pub(crate) requests: u64,
    /// Pushes made since the counters were reset.
    pub(crate) commits: u64,
}

impl Known {
    /// Nothing known yet: no `main`, the initial repo config, an empty state.
    pub(crate) fn new(initial_repo: RepoConfig) -> Known {
        Known {
            main: None,
            repo: initial_repo,
            config_unwritten: true,
            state: SyncState::default(),
            committed: SyncState::default(),
            seq_index: SeqIndex::default(),
            last_clock: None,
            rescan_floor: BTreeMap::new(),
            requests: 0,
            commits: 0,
        }
    }

    /// Takes what `main` at `tip` holds as the truth: its config (or `initial_repo` when it
    /// has none) and its state. The index is rebuilt from it when next needed.
    pub(crate) fn load(
        &mut self,
        tip: Option<CommitId>,
        repo: Option<RepoConfig>,
        initial_repo: &RepoConfig,
        state: SyncState,
    ) {
        self.config_unwritten = repo.is_none();
        self.repo = repo.unwrap_or_else(|| initial_repo.clone());
        self.committed = state.clone();
        self.state = state;
        self.seq_index.clear();
        self.main = tip;
    }

    /// `new` is pushed as the tip of `main`, with the state as it stands.
    pub(crate) fn pushed(&mut self, new: CommitId) {
        self.main = Some(new);
        self.commits += 1;
    }

    /// The commit just pushed carried the config and the current state.
    pub(crate) fn committed(&mut self) {
        self.config_unwritten = false;
        self.committed = self.state.clone();
    }

    /// Starts counting a poll's requests and commits.
    pub(crate) fn reset_counters(&mut self) {
        self.requests = 0;
        self.commits = 0;
    }

    /// Forgets what a failed step staged: the state returns to what `main` holds, and the
    /// code-move index (which may point at files never committed) is rebuilt on next use.
    /// `main`, the config, the counters and the clock reading are only ever changed by
    /// steps that completed, so they stand.
    /// Forgets what a failed step staged: the state returns to the last commit (but never
    /// above a rescan floor) and the code-move index is dropped.
    pub(crate) fn rollback(&mut self) {
        self.state = self.committed.clone();
        for (table, floor) in &self.rescan_floor {
            let mut t = self.state.table(table);
            if t.marker.is_some_and(|m| m > *floor) {
                t.marker = Some(*floor);
                self.state.tables.insert(table.to_string(), t);
            }
        }
        self.seq_index.clear();
    }

    /// A clock regression moved `table`'s marker back to `marker`: no rollback may return
    /// above it.
    pub(crate) fn note_regression(&mut self, table: &str, marker: MwTime) {
        let floor = self.rescan_floor.entry(table.to_string()).or_insert(marker);
        *floor = (*floor).min(marker);
    }

    /// A poll read every table from its marker to the clock: where it left each marker is
    /// safe, even below the committed one.
    pub(crate) fn poll_succeeded(&mut self) {
        self.rescan_floor = self
            .state
            .tables
            .iter()
            .filter_map(|(t, st)| st.marker.map(|m| (t.clone(), m)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RepoConfigFile;
    use crate::record::table_info;

    fn repo() -> RepoConfig {
        RepoConfigFile::default()
            .validate()
            .expect("defaults are valid")
    }

    /// A rollback returns the state to the last commit and drops the index, and nothing a
    /// commit recorded is lost.
    #[test]
    fn rollback_returns_to_the_last_commit() {
        let name = table_info("Name").expect("known");
        let mut k = Known::new(repo());
        k.state.tables.entry("Name".into()).or_default().marker =
            Some(MwTime::parse("20240101000000").expect("valid"));
        k.committed();
        let committed = k.state.clone();
        k.state.tables.entry("Name".into()).or_default().marker =
            Some(MwTime::parse("20240102000000").expect("valid"));
        k.seq_index
            .insert(name, HashMap::from([(1, "name/a.xml".to_string())]));
        k.pushed(CommitId("a".repeat(40)));
        k.rollback();
        assert_eq!(k.state, committed);
        assert!(!k.seq_index.has(name));
        assert_eq!(k.main, Some(CommitId("a".repeat(40))));
        assert!(!k.config_unwritten);
    }

    /// Only built indexes take notes; a removed record is gone from its table's index.
    #[test]
    fn index_notes_touch_only_built_tables() {
        let name = table_info("Name").expect("known");
        let mut index = SeqIndex::default();
        index.note("Name", 1, Some("p".into()));
        assert!(!index.has(name));
        index.insert(name, HashMap::new());
        index.note("Name", 1, Some("p".into()));
        assert_eq!(index.path(name, 1), Some("p"));
        index.note("Name", 1, None);
        assert_eq!(index.path(name, 1), None);
    }

    /// After the clock steps back, a rollback never returns a marker above the regression's
    /// rescan point, nor above where the last successful poll left it.
    #[test]
    fn rollback_never_returns_above_a_safe_marker() {
        let t = |s: &str| MwTime::parse(s).expect("valid");
        let set = |k: &mut Known, m: &str| {
            k.state.tables.entry("Name".into()).or_default().marker = Some(t(m));
        };
        let mut k = Known::new(repo());
        set(&mut k, "20240101120000");
        k.committed();
        // A failed poll saw the clock step back.
        k.note_regression("Name", t("20240101115500"));
        set(&mut k, "20240101115500");
        k.rollback();
        assert_eq!(k.state.table("Name").marker, Some(t("20240101115500")));
        // A successful poll read up to 11:58, still behind the committed 12:00.
        set(&mut k, "20240101115800");
        k.poll_succeeded();
        set(&mut k, "20240101115900");
        k.rollback();
        assert_eq!(k.state.table("Name").marker, Some(t("20240101115800")));
        // Once a poll ends past the committed marker, a rollback returns to the commit.
        set(&mut k, "20240101120500");
        k.poll_succeeded();
        k.rollback();
        assert_eq!(k.state.table("Name").marker, Some(t("20240101120000")));
    }
}
