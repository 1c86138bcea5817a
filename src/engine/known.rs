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

/// Sequence number → path for the records of one batch: the previous file of each record
/// whose code may have changed, resolved from [`SeqLeaves`] before staging. Staging reads it
/// and never changes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqIndex {
    tables: HashMap<&'static str, HashMap<u64, String>>,
}

impl SeqIndex {
    /// Installs `table`'s entries.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, table: &'static TableInfo, index: HashMap<u64, String>) {
        self.tables.insert(table.name, index);
    }

    /// Notes that `seq` of `table` lives at `path`.
    pub(crate) fn set(&mut self, table: &'static TableInfo, seq: u64, path: String) {
        self.tables.entry(table.name).or_default().insert(seq, path);
    }

    /// The path of the record with `seq` in `table`, if known.
    pub(crate) fn path(&self, table: &TableInfo, seq: u64) -> Option<&str> {
        self.tables.get(table.name)?.get(&seq).map(String::as_str)
    }
}

/// Per code-keyed table, where each sequence number lives on `main`, compactly: the shard
/// number (`d1 * 10⁴ + d2 * 100 + d3`) of its file, 12 bytes a record in a B-tree, plus an overlay
/// of full paths for what is staged but not yet committed. A record's file name is found by
/// listing its shard (a handful of files). The committed part changes only when a commit
/// lands (`commit`), so a rollback drops the overlay and never rebuilds the index; only a
/// `main` moved by someone else drops it whole, and it is then built again from `main` when
/// next needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqLeaves {
    /// Committed: table → seq → shard.
    base: HashMap<&'static str, BTreeMap<u64, u32>>,
    /// Staged: (table, seq) → path, or `None` for a staged deletion.
    pending: BTreeMap<(&'static str, u64), Option<String>>,
}

/// Where a sequence number lives, as [`SeqLeaves`] knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeqPlace {
    /// In this shard directory on `main` (file name to be listed).
    Shard(u32),
    /// At this path, staged.
    Staged(String),
}

/// The shard number of a record path `{table}/{d1}/{d2}/{d3}/{file}`.
pub(crate) fn shard_of(path: &str) -> Option<u32> {
    let mut parts = path.split('/');
    let (_, d1, d2, d3) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    shard_number(d1, d2, d3)
}

/// The shard number of the three shard directory names `d1`, `d2` and `d3` (`None` for
/// names no record path has).
pub(crate) fn shard_number(d1: &str, d2: &str, d3: &str) -> Option<u32> {
    let (d1, d2, d3): (u32, u32, u32) = (d1.parse().ok()?, d2.parse().ok()?, d3.parse().ok()?);
    if d2 >= 100 || d3 >= 100 {
        return None;
    }
    d1.checked_mul(10_000)?.checked_add(d2 * 100 + d3)
}

/// The directory of shard `n` of `table` (`name/01/23/45`).
pub(crate) fn shard_dir(table: &TableInfo, n: u32) -> String {
    format!(
        "{}/{}",
        table.element,
        crate::record::shard_dirs(u64::from(n))
    )
}

impl SeqLeaves {
    /// True when `table`'s index has been built.
    pub(crate) fn has(&self, table: &TableInfo) -> bool {
        self.base.contains_key(table.name)
    }

    /// Installs `table`'s committed index, built from `main`.
    pub(crate) fn insert(&mut self, table: &'static TableInfo, index: BTreeMap<u64, u32>) {
        self.base.insert(table.name, index);
    }

    /// Where `seq` of `table` lives, staged changes first.
    pub(crate) fn place(&self, table: &TableInfo, seq: u64) -> Option<SeqPlace> {
        if let Some(staged) = self.pending.get(&(table.name, seq)) {
            return staged.clone().map(SeqPlace::Staged);
        }
        self.base
            .get(table.name)?
            .get(&seq)
            .map(|s| SeqPlace::Shard(*s))
    }

    /// Records where `seq` now lives in what is staged (`None`: nowhere). Only built
    /// indexes take notes; the others are built from `main` when next needed.
    pub(crate) fn note(&mut self, table: &'static str, seq: u64, path: Option<String>) {
        if self.base.contains_key(table) {
            self.pending.insert((table, seq), path);
        }
    }

    /// The staged notes became part of `main`.
    pub(crate) fn commit(&mut self) {
        for ((table, seq), path) in std::mem::take(&mut self.pending) {
            let Some(index) = self.base.get_mut(table) else {
                continue;
            };
            match path.as_deref().and_then(shard_of) {
                Some(shard) => index.insert(seq, shard),
                None => index.remove(&seq),
            };
        }
    }

    /// Forgets what was staged.
    pub(crate) fn rollback(&mut self) {
        self.pending.clear();
    }

    /// Forgets everything (main moved to a commit mwsync did not make).
    pub(crate) fn clear(&mut self) {
        self.base.clear();
        self.pending.clear();
    }

    /// Committed records of `table` with a sequence number after `after`, up to `limit`, in
    /// sequence order (staged notes are not included: scans run with nothing staged).
    pub(crate) fn after(&self, table: &TableInfo, after: u64, limit: usize) -> Vec<(u64, u32)> {
        self.base.get(table.name).map_or_else(Vec::new, |index| {
            index
                .range(after.saturating_add(1)..)
                .take(limit)
                .map(|(s, l)| (*s, *l))
                .collect()
        })
    }

    /// Committed records of `table`.
    pub(crate) fn len(&self, table: &TableInfo) -> usize {
        self.base.get(table.name).map_or(0, BTreeMap::len)
    }

    /// Forgets what was staged for `table` alone (a failed pass of it).
    pub(crate) fn rollback_table(&mut self, table: &str) {
        self.pending.retain(|(t, _), _| *t != table);
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
    /// The sync state of the newest commit known to be on the remote: the same as
    /// `committed` unless a checkpoint's push is still running (`engine::landing`). A
    /// restart starts from it, so rescan floors are kept against it.
    landed: SyncState,
    /// Where each sequence number of a code-keyed table lives on `main`.
    pub(crate) seq_index: SeqLeaves,
    /// The last clock reading of a successful poll.
    pub(crate) last_clock: Option<ClockReading>,
    /// Per table, a marker known to be safe whatever was staged since: where the last
    /// successful poll left it, lowered by any clock regression seen after. A rollback never
    /// returns above it. After the clock steps back, the committed marker may lie ahead of
    /// records stamped since; once the clock passes it again, no check would notice.
    rescan_floor: BTreeMap<String, MwTime>,
    /// True once MoneyWorks refused the one-request idle poll (`query::changes_expression`):
    /// polls read the clock and export every table instead, for the life of the process.
    pub(crate) probe_refused: bool,
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
            landed: SyncState::default(),
            seq_index: SeqLeaves::default(),
            last_clock: None,
            rescan_floor: BTreeMap::new(),
            probe_refused: false,
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
        self.landed = state.clone();
        self.state = state;
        self.rescan_floor = floor;
        self.apply_floor();
        self.committed_quarantine = quarantine.clone();
        self.quarantine = quarantine;
        self.seq_index.clear();
        self.main = tip;
    }

    /// `new` is the tip of `main` mwsync builds on, with the state as it stands (pushed, or
    /// with its push running).
    pub(crate) fn pushed(&mut self, new: CommitId) {
        self.main = Some(new);
        self.commits += 1;
    }

    /// A commit with `state` is now known to be on the remote.
    pub(crate) fn landed(&mut self, state: SyncState) {
        self.landed = state;
    }

    /// The commit just pushed carried the config, the current state and what was staged.
    pub(crate) fn committed(&mut self) {
        self.config_unwritten = false;
        self.committed = self.state.clone();
        self.committed_quarantine = self.quarantine.clone();
        self.seq_index.commit();
    }

    /// True when the quarantine differs from what `main` holds.
    pub(crate) fn quarantine_changed(&self) -> bool {
        self.quarantine != self.committed_quarantine
    }

    /// The quarantine as `main` holds it.
    pub(crate) fn committed_quarantine(&self) -> &Quarantine {
        &self.committed_quarantine
    }

    /// The sync state as last committed to `main`.
    pub(crate) fn committed_state(&self) -> &SyncState {
        &self.committed
    }

    /// Starts counting a poll's requests and commits.
    pub(crate) fn reset_counters(&mut self) {
        self.requests = 0;
        self.commits = 0;
    }

    /// Forgets what a failed pass of `table` staged: its state returns to `before` (its
    /// state when the pass began) or, when a checkpoint inside the pass committed part of
    /// it, to what that checkpoint committed, but never above its rescan floor; the index
    /// drops what the pass staged.
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
        self.seq_index.rollback_table(table);
    }

    /// Forgets what a failed step staged: the state returns to what `main` holds, and the
    /// code-move index drops its staged notes (its committed part stays valid); the state
    /// never returns above a rescan floor. `main`, the config, the counters and the clock
    /// reading are only ever changed by steps that completed, so they stand.
    pub(crate) fn rollback(&mut self) {
        self.state = self.committed.clone();
        self.apply_floor();
        self.quarantine = self.committed_quarantine.clone();
        self.seq_index.rollback();
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

    /// The floors a restart would lose: those below the marker the remote's `main` holds.
    /// They belong in the cache until a pushed commit carries them or a poll passes
    /// `main`'s marker.
    pub(crate) fn durable_floor(&self) -> BTreeMap<String, MwTime> {
        self.rescan_floor
            .iter()
            .filter(|(t, f)| self.landed.table(t).marker.is_some_and(|m| m > **f))
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

    /// A rollback returns the state to the last commit and drops only what was staged in the
    /// index; nothing a commit recorded is lost.
    #[test]
    fn rollback_returns_to_the_last_commit() {
        let name = table_info("Name").expect("known");
        let mut k = Known::new(repo());
        k.state.tables.entry("Name".into()).or_default().marker =
            Some(MwTime::parse("20240101000000").expect("valid"));
        k.seq_index.insert(name, BTreeMap::from([(1, 12_345)]));
        k.committed();
        let committed = k.state.clone();
        k.state.tables.entry("Name".into()).or_default().marker =
            Some(MwTime::parse("20240102000000").expect("valid"));
        k.seq_index
            .note("Name", 2, Some("name/00/10/02/B.xml".into()));
        k.pushed(CommitId("a".repeat(40)));
        k.rollback();
        assert_eq!(k.state, committed);
        assert!(k.seq_index.has(name), "the committed index survives");
        assert_eq!(k.seq_index.place(name, 1), Some(SeqPlace::Shard(12_345)));
        assert_eq!(k.seq_index.place(name, 2), None);
        assert_eq!(k.main, Some(CommitId("a".repeat(40))));
        assert!(!k.config_unwritten);
    }

    /// Only built indexes take notes; staged notes win until committed, then live on as the
    /// record's shard; a removed record is gone.
    #[test]
    fn index_notes_touch_only_built_tables() {
        let name = table_info("Name").expect("known");
        let mut index = SeqLeaves::default();
        index.note("Name", 1, Some("name/00/00/01/A.xml".into()));
        assert!(!index.has(name));
        index.insert(name, BTreeMap::new());
        index.note("Name", 1, Some("name/00/00/01/A.xml".into()));
        assert_eq!(
            index.place(name, 1),
            Some(SeqPlace::Staged("name/00/00/01/A.xml".into()))
        );
        index.commit();
        assert_eq!(index.place(name, 1), Some(SeqPlace::Shard(1)));
        assert_eq!(index.after(name, 0, 10), vec![(1, 1)]);
        index.note("Name", 1, None);
        assert_eq!(index.place(name, 1), None);
        index.commit();
        assert_eq!(index.len(name), 0);
        assert_eq!(shard_of("name/01/23/45/X.xml"), Some(12_345));
        assert_eq!(shard_dir(name, 12_345), "name/01/23/45");
        assert_eq!(shard_of("name/01/230/45/X.xml"), None);
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

    /// A floor below `main`'s marker must outlive the process until a pushed commit carries
    /// it or a poll passes `main`'s marker, and a restart that loads it reads from it.
    #[test]
    fn a_floor_below_main_is_durable_and_a_restart_reads_from_it() {
        let t = |s: &str| MwTime::parse(s).expect("valid");
        let set = |k: &mut Known, m: &str| {
            k.state.tables.entry("Name".into()).or_default().marker = Some(t(m));
        };
        let mut k = Known::new(repo());
        set(&mut k, "20240101120000");
        k.committed();
        k.landed(k.committed.clone());
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
        // A commit of the lowered state whose push still runs does not carry it yet…
        k.committed();
        assert_eq!(k.durable_floor().get("Name"), Some(&t("20240101115800")));
        // …once it is on the remote, nothing is left to keep.
        k.landed(k.committed.clone());
        assert!(k.durable_floor().is_empty());
    }
}
