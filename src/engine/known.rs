//! What the engine knows and may have advanced in memory since `main` last moved: the tip of
//! `main`, the repo config in force, the sync state and the quarantine (and the copies last
//! committed), the sequence-number index for code moves, the last server clock reading, the
//! per-poll request and commit counters, and what stands in the way (failing and parked
//! tables, warnings). It owns the one rollback that forgets what a failed step staged; it
//! must not do I/O.

use std::collections::{BTreeMap, HashMap};

use super::EngineError;
use crate::config::RepoConfig;
use crate::mwtime::MwTime;
use crate::quarantine::Quarantine;
use crate::record::TableInfo;
use crate::state::{SyncState, TableState};
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

    /// Forgets `table`'s index (it may point at files that were never committed).
    pub(crate) fn forget(&mut self, table: &str) {
        self.tables.remove(table);
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
    /// Records held back (from `main`'s status file, changed by reads).
    pub(crate) quarantine: Quarantine,
    /// The quarantine as last committed: what a rollback returns to.
    committed_quarantine: Quarantine,
    /// Tables not read again until the repo config changes (their last reply was larger
    /// than the cap): table → (config hash then, the error).
    pub(crate) parked_tables: BTreeMap<String, (String, EngineError)>,
    /// Warnings that stand until what they warn of is gone (a missing changes branch), by
    /// topic.
    pub(crate) warnings: BTreeMap<&'static str, String>,
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
            quarantine: Quarantine::default(),
            committed_quarantine: Quarantine::default(),
            parked_tables: BTreeMap::new(),
            warnings: BTreeMap::new(),
        }
    }

    /// Takes what `main` at `tip` holds as the truth: its config (or `initial_repo` when it
    /// has none), its state and its quarantine. The index is rebuilt from it when next needed.
    pub(crate) fn load(
        &mut self,
        tip: Option<CommitId>,
        repo: Option<RepoConfig>,
        initial_repo: &RepoConfig,
        state: SyncState,
        quarantine: Quarantine,
        floor: BTreeMap<String, MwTime>,
    ) {
        self.config_unwritten = repo.is_none();
        self.repo = repo.unwrap_or_else(|| initial_repo.clone());
        self.committed = state.clone();
        self.state = state;
        self.rescan_floor = floor;
        self.apply_floor();
        self.committed_quarantine = quarantine.clone();
        self.quarantine = quarantine;
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
        self.committed_quarantine = self.quarantine.clone();
    }

    /// True when the quarantine differs from what `main` holds.
    pub(crate) fn quarantine_changed(&self) -> bool {
        self.quarantine != self.committed_quarantine
    }

    /// The quarantine as `main` holds it.
    pub(crate) fn committed_quarantine(&self) -> &Quarantine {
        &self.committed_quarantine
    }

    /// Starts counting a poll's requests and commits.
    pub(crate) fn reset_counters(&mut self) {
        self.requests = 0;
        self.commits = 0;
    }

    /// Forgets what a failed pass of `table` staged: its state returns to `before` (its
    /// state when the pass began) or, when a checkpoint inside the pass committed part of
    /// it, to what that checkpoint committed, but never above its rescan floor; its index is
    /// rebuilt on next use.
    pub(crate) fn rollback_table(&mut self, table: &str, before: TableState, checkpointed: bool) {
        let mut restored = if checkpointed {
            self.committed.table(table)
        } else {
            before
        };
        // A clock regression seen by the failed pass stands: its marker stays lowered.
        if let Some(floor) = self.rescan_floor.get(table) {
            restored.marker = restored.marker.map(|m| m.min(*floor));
        }
        self.state.tables.insert(table.to_string(), restored);
        self.seq_index.forget(table);
    }

    /// Forgets what a failed step staged: the state returns to the last commit (but never
    /// above a rescan floor) and the code-move index (which may point at files never
    /// committed) is dropped. `main`, the config, the counters and the clock reading are only
    /// ever changed by steps that completed, so they stand.
    pub(crate) fn rollback(&mut self) {
        self.state = self.committed.clone();
        self.apply_floor();
        self.quarantine = self.committed_quarantine.clone();
        self.seq_index.clear();
    }

    /// Lowers every marker above its rescan floor to the floor.
    fn apply_floor(&mut self) {
        for (table, floor) in &self.rescan_floor {
            let mut t = self.state.table(table);
            if t.marker.is_some_and(|m| m > *floor) {
                t.marker = Some(*floor);
                self.state.tables.insert(table.to_string(), t);
            }
        }
    }

    /// The floors a restart would lose: those below the marker `main` holds. They belong
    /// in the cache until a commit carries them or a poll passes `main`'s marker.
    pub(crate) fn durable_floor(&self) -> BTreeMap<String, MwTime> {
        self.rescan_floor
            .iter()
            .filter(|(t, f)| self.committed.table(t).marker.is_some_and(|m| m > **f))
            .map(|(t, f)| (t.clone(), *f))
            .collect()
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

    /// A floor below `main`'s marker must outlive the process until a commit carries it or
    /// a poll passes `main`'s marker, and a restart that loads it reads from it.
    #[test]
    fn a_floor_below_main_is_durable_and_a_restart_reads_from_it() {
        let t = |s: &str| MwTime::parse(s).expect("valid");
        let set = |k: &mut Known, m: &str| {
            k.state.tables.entry("Name".into()).or_default().marker = Some(t(m));
        };
        let mut k = Known::new(repo());
        set(&mut k, "20240101120000");
        k.committed();
        assert!(k.durable_floor().is_empty());
        k.note_regression("Name", t("20240101115500"));
        set(&mut k, "20240101115500");
        let floor = k.durable_floor();
        assert_eq!(floor.get("Name"), Some(&t("20240101115500")));
        // A restart: main still says 12:00, the cache's floor says 11:55.
        let mut restarted = Known::new(repo());
        let committed = k.committed.clone();
        restarted.load(
            None,
            None,
            &repo(),
            committed.clone(),
            Quarantine::default(),
            floor.clone(),
        );
        assert_eq!(
            restarted.state.table("Name").marker,
            Some(t("20240101115500"))
        );
        // A poll that ends still behind main's marker keeps a (higher) floor durable.
        set(&mut k, "20240101115800");
        k.poll_succeeded();
        assert_eq!(k.durable_floor().get("Name"), Some(&t("20240101115800")));
        // A commit of the lowered state carries it: nothing left to keep.
        k.committed();
        assert!(k.durable_floor().is_empty());
    }
}
