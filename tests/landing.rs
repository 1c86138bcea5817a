//! Checkpoints whose push runs while the next pages are read (`engine::landing`): pushes
//! that take longer than a checkpoint are carried by later ones, in order, and a push that
//! fails loses and duplicates nothing; the next page is asked for while the one before it is
//! staged. The store here is the in-memory remote behind a gate the test holds: its
//! background push "runs" until the engine waits for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mwsync::config::RepoConfigFile;
use mwsync::store::{CommitId, CommitInfo, NewCommit, Store, StoreError};

use crate::support::{DynStore, Harness, StoreKind, sim_builder};

/// What the test controls and sees of the gated store.
#[derive(Debug, Default)]
struct Gate {
    /// Pushes the remote takes before it starts failing (`usize::MAX`: never fails).
    allowed: AtomicUsize,
    /// True while a background push is to look unfinished, so only a crowded queue or a
    /// step that must land waits for it.
    slow: AtomicBool,
    /// Every push the remote took, in order.
    landed: Mutex<Vec<CommitId>>,
    /// Commits made in the cache so far.
    commits: AtomicUsize,
    /// Exports asked for so far (counted by the test's export hook).
    exports: AtomicUsize,
    /// When not 0, the first commit waits until this many exports were asked (for at most
    /// ten seconds, then it goes on and sets `waited_in_vain`).
    first_commit_awaits: AtomicUsize,
    /// The first commit gave up waiting for its exports.
    waited_in_vain: AtomicBool,
}

/// The real store, with pushes decided by the [`Gate`].
struct Gated {
    inner: DynStore,
    gate: Arc<Gate>,
    begun: Option<(String, Option<CommitId>, CommitId)>,
}

impl Gated {
    fn push_now(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        let mut landed = self.gate.landed.lock().expect("the gate's lock");
        if landed.len() >= self.gate.allowed.load(Ordering::SeqCst) {
            return Err(StoreError::Transport {
                detail: "the remote hung up".into(),
            });
        }
        self.inner.push(branch, expected, new)?;
        landed.push(new.clone());
        Ok(())
    }
}

impl Store for Gated {
    fn fetch(&mut self) -> Result<(), StoreError> {
        self.inner.fetch()
    }
    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError> {
        self.inner.remote_tip(branch)
    }
    fn remote_branches(&self) -> Result<Vec<String>, StoreError> {
        self.inner.remote_branches()
    }
    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_file(commit, path)
    }
    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_files(commit, dir)
    }
    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.changed_paths(from, to)
    }
    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError> {
        let awaits = self.gate.first_commit_awaits.load(Ordering::SeqCst);
        if awaits > 0 && self.gate.commits.load(Ordering::SeqCst) == 0 {
            // Runs on a blocking thread: waiting here holds the engine's store call only.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while self.gate.exports.load(Ordering::SeqCst) < awaits {
                if std::time::Instant::now() > deadline {
                    self.gate.waited_in_vain.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let id = self.inner.commit(commit)?;
        self.gate.commits.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }
    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.push_now(branch, expected, new)
    }
    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        assert!(self.begun.is_none(), "one push at a time");
        self.begun = Some((branch.to_string(), expected.cloned(), new.clone()));
        Ok(())
    }
    fn push_running(&self) -> bool {
        self.begun.is_some() && self.gate.slow.load(Ordering::SeqCst)
    }
    fn finish_push(&mut self) -> Result<(), StoreError> {
        let (branch, expected, new) = self.begun.take().expect("a push was begun");
        self.push_now(&branch, expected.as_ref(), &new)
    }
    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError> {
        self.inner.merge_base(a, b)
    }
    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError> {
        self.inner.is_ancestor(ancestor, descendant)
    }
    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError> {
        self.inner.commit_info(commit)
    }
    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError> {
        self.inner.commits_between(base, tip)
    }
}

/// 45 names in checkpoints of 3: fifteen checkpoints, the last one closing the pass.
async fn harness(gate: &Arc<Gate>) -> Harness {
    harness_with(gate, 3).await
}

/// 45 names in pages of 10 and checkpoints of `checkpoint_records`.
async fn harness_with(gate: &Arc<Gate>, checkpoint_records: u32) -> Harness {
    let cfg = RepoConfigFile {
        page_size: 10,
        checkpoint_records,
        tables: vec!["Name".into()],
        fingerprint_interval_secs: 0,
        ..RepoConfigFile::default()
    };
    let mut h = Harness::start(sim_builder().names(45), StoreKind::Memory, cfg).await;
    let g = gate.clone();
    h.wrap_store(Arc::new(move |inner| {
        Box::new(Gated {
            inner,
            gate: g.clone(),
            begun: None,
        })
    }));
    h
}

/// How many times each record was created in `main`'s history, by the commit messages.
fn creations(h: &Harness) -> BTreeMap<String, usize> {
    h.repo.message_line_counts("main", |line| {
        line.split_once(" created (").map(|(name, _)| name)
    })
}

/// Pushes slower than the checkpoints are carried by later pushes: fewer pushes than
/// commits, every checkpoint still its own commit on `main` in order, and `main` equal to
/// MoneyWorks.
#[tokio::test]
async fn slow_pushes_are_carried_by_later_ones_in_order() {
    let gate = Arc::new(Gate {
        allowed: AtomicUsize::new(usize::MAX),
        slow: AtomicBool::new(true),
        ..Gate::default()
    });
    let mut h = harness(&gate).await;
    h.cycle().await.expect("the first sync succeeds");
    assert_eq!(h.main_records(), h.expected_files());
    let mut log = h.repo.log("main");
    log.reverse(); // oldest first
    let landed = gate.landed.lock().expect("lock").clone();
    assert_eq!(log.len(), 15, "one commit per checkpoint of 3 names");
    assert!(
        landed.len() < log.len() / 2,
        "{} pushes carried {} commits",
        landed.len(),
        log.len()
    );
    assert_eq!(
        landed.last(),
        log.last().map(|c| &c.id),
        "the last push is the tip"
    );
    for pair in log.windows(2) {
        assert_eq!(
            pair[1].parents,
            vec![pair[0].id.clone()],
            "a linear history"
        );
    }
    let created = creations(&h);
    assert_eq!(created.len(), 45);
    assert!(created.values().all(|n| *n == 1), "{created:?}");
}

/// A push that keeps failing drops the commits it carried: the poll fails, `main` stays at
/// the last push that landed, and the next poll reads the rest again, so every record is on
/// `main` and was created exactly once.
#[tokio::test]
async fn a_failed_push_is_read_again_and_nothing_is_created_twice() {
    let gate = Arc::new(Gate {
        allowed: AtomicUsize::new(1),
        slow: AtomicBool::new(true),
        ..Gate::default()
    });
    let mut h = harness(&gate).await;
    let err = h.cycle().await.expect_err("the second push fails");
    assert!(err.to_string().contains("the remote hung up"), "{err}");
    let landed = gate.landed.lock().expect("lock").clone();
    assert_eq!(landed.len(), 1);
    assert_eq!(
        h.repo.tip("main").as_ref(),
        landed.first(),
        "main stays at the push that landed"
    );
    let first = h.main_records().len();
    assert!(
        first > 0 && first < 45,
        "{first} records landed before the failure"
    );

    gate.allowed.store(usize::MAX, Ordering::SeqCst);
    h.cycle().await.expect("the next poll succeeds");
    assert_eq!(h.main_records(), h.expected_files());
    let created = creations(&h);
    assert_eq!(created.len(), 45);
    assert!(created.values().all(|n| *n == 1), "{created:?}");
}

/// The next page is asked for while the page before it is staged: with a checkpoint per
/// page, the first checkpoint is committed while page 2 is staged, and page 3 is asked for
/// before that commit. Reading one page after the other, the commit would wait for an export
/// that comes only after it. Every record still lands once.
#[tokio::test]
async fn the_next_page_is_read_while_the_page_before_is_staged() {
    let gate = Arc::new(Gate {
        allowed: AtomicUsize::new(usize::MAX),
        first_commit_awaits: AtomicUsize::new(3),
        ..Gate::default()
    });
    let mut h = harness_with(&gate, 10).await;
    let g = gate.clone();
    h.set_hook(move |_, _| {
        g.exports.fetch_add(1, Ordering::SeqCst);
    });
    h.cycle().await.expect("the first sync succeeds");
    assert!(
        !gate.waited_in_vain.load(Ordering::SeqCst),
        "the first checkpoint was committed before page 3 was asked for"
    );
    assert!(
        gate.exports.load(Ordering::SeqCst) >= 5,
        "45 names in pages of 10"
    );
    assert_eq!(h.main_records(), h.expected_files());
    let created = creations(&h);
    assert_eq!(created.len(), 45);
    assert!(created.values().all(|n| *n == 1), "{created:?}");
}
