//! The engine's in-memory `MemoryStore` and `MemoryRemote`: the shared contract, the remote's
//! completeness check and compare-and-swap, and injected faults.

use mwsync::error::{Classify, ErrorClass};
use mwsync::store::memory::{MemOp, MemoryRemote};
use mwsync::store::{Store, StoreError};

use super::{contract, new_commit};

/// The contract holds for two clients of one in-memory remote.
#[test]
fn contract_memory() {
    let remote = MemoryRemote::new();
    let (mut a, mut b) = (remote.store(), remote.store());
    contract::round_trip(&mut a, &mut b);
    assert_eq!(remote.branches().len(), 2);
}

/// Bad paths, ids and file/directory clashes are refused by `MemoryStore`.
#[test]
fn bad_input_is_refused() {
    contract::bad_input(&mut MemoryRemote::new().store());
}

/// The remote moves a branch only to a commit whose every object it holds.
#[test]
fn incomplete_tip_is_refused() {
    let remote = MemoryRemote::new();
    let mut s = remote.store();
    let c = s
        .commit(new_commit(&[], &[("a/b.xml", Some("x"))], "m\n"))
        .expect("commit");
    let err = remote
        .compare_and_swap("main", None, &c)
        .expect_err("objects never sent");
    assert!(matches!(err, StoreError::Transport { .. }), "{err:?}");
    assert_eq!(remote.branch("main"), None);
    s.push("main", None, &c).expect("push sends the objects");
    assert_eq!(remote.branch("main"), Some(c.clone()));
    assert_eq!(remote.read_file(&c, "a/b.xml"), Some(b"x".to_vec()));
    assert_eq!(remote.list_files(&c, ""), ["a/b.xml"]);
}

/// A push that drops mid-upload leaves the branch alone; the retry completes the objects.
#[test]
fn push_fault_leaves_branch_and_retry_completes() {
    let remote = MemoryRemote::new();
    let mut s = remote.store();
    let items: Vec<(String, String)> = (0..50)
        .map(|i| (format!("d/{i}.xml"), i.to_string()))
        .collect();
    let refs: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|(p, c)| (p.as_str(), Some(c.as_str())))
        .collect();
    let c = s.commit(new_commit(&[], &refs, "m\n")).expect("commit");
    remote.fail_next(MemOp::Push, 1);
    let err = s.push("main", None, &c).expect_err("dropped");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(remote.branch("main"), None);
    assert!(remote.object_count() > 0, "part of the objects arrived");
    assert!(remote.object_count() < s.object_count());
    assert_eq!(remote.push_count(), 0);
    s.push("main", None, &c).expect("retry");
    assert_eq!(remote.push_count(), 1);
    assert_eq!(remote.list_files(&c, "d").len(), 50);
}

/// A push whose reply is lost is re-checked: success when the fetch shows the new tip, and
/// `Transport` (with the branch really moved) when even the re-check fails.
#[test]
fn push_outcome_unknown_is_rechecked() {
    let remote = MemoryRemote::new();
    let mut s = remote.store();
    let c1 = s
        .commit(new_commit(&[], &[("x", Some("1"))], "1\n"))
        .expect("c1");
    remote.fail_next(MemOp::PushOutcomeUnknown, 1);
    s.push("main", None, &c1).expect("re-check finds it landed");
    assert_eq!(s.remote_tip("main").expect("tip"), Some(c1.clone()));

    let c2 = s
        .commit(new_commit(&[&c1], &[("x", Some("2"))], "2\n"))
        .expect("c2");
    remote.fail_next(MemOp::PushOutcomeUnknown, 1);
    remote.fail_next(MemOp::Fetch, 1);
    let err = s.push("main", Some(&c1), &c2).expect_err("cannot tell");
    assert!(matches!(err, StoreError::Transport { .. }), "{err:?}");
    assert_eq!(remote.branch("main"), Some(c2.clone()));
    // Retrying the same compare-and-swap is safe: the remote already holds the new tip.
    s.push("main", Some(&c1), &c2).expect("retry succeeds");
    assert_eq!(remote.push_count(), 2);
}

/// A fetch fault is a retryable `Transport` error that leaves the known tips alone.
#[test]
fn fetch_fault_is_transport() {
    let remote = MemoryRemote::new();
    let c = remote.commit_files("main", &[("a", Some(b"1".as_slice()))], "w\n", "w <w@x>");
    let mut s = remote.store();
    remote.fail_next(MemOp::Fetch, 2);
    for _ in 0..2 {
        let err = s.fetch().expect_err("fault");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(s.remote_tip("main").expect("tip"), None);
    }
    s.fetch().expect("third works");
    assert_eq!(s.remote_tip("main").expect("tip"), Some(c));
}

/// A writer's commit on `changes` and a branch moved behind the client's back are seen as
/// such: the first by fetch, the second as `BranchMoved` with the actual tip.
#[test]
fn writers_and_moved_branches() {
    let remote = MemoryRemote::new();
    let mut s = remote.store();
    let c1 = s
        .commit(new_commit(&[], &[("a", Some("1"))], "1\n"))
        .expect("c1");
    s.push("main", None, &c1).expect("push");
    remote.set_branch("changes", Some(c1.clone()));
    let w = remote.commit_files(
        "changes",
        &[("a", Some(b"2".as_slice())), ("b/c", Some(b"3".as_slice()))],
        "edit\n",
        "writer <w@example.com>",
    );
    s.fetch().expect("fetch");
    assert_eq!(s.remote_tip("changes").expect("tip"), Some(w.clone()));
    let info = s.commit_info(&w).expect("info");
    assert_eq!(info.author, "writer <w@example.com>");
    assert_eq!(info.parents, std::slice::from_ref(&c1));
    assert_eq!(s.changed_paths(Some(&c1), &w).expect("diff"), ["a", "b/c"]);

    remote.set_branch("main", Some(w.clone()));
    let c2 = s
        .commit(new_commit(&[&c1], &[("a", Some("9"))], "2\n"))
        .expect("c2");
    let err = s.push("main", Some(&c1), &c2).expect_err("moved");
    assert_eq!(
        err,
        StoreError::BranchMoved {
            branch: "main".into(),
            expected: c1.0.clone(),
            actual: w.0.clone()
        }
    );
    remote.set_branch("changes", None);
    s.fetch().expect("fetch");
    assert_eq!(s.remote_tip("changes").expect("tip"), None, "fetch prunes");
}

/// Commit ids depend only on content: the same two commits get git's own ids, whenever
/// they are made.
#[test]
fn ids_are_deterministic() {
    let mut s = MemoryRemote::new().store();
    let c = s
        .commit(new_commit(&[], &[("a/b", Some("1"))], "m\n"))
        .expect("c");
    let d = s
        .commit(new_commit(&[&c], &[("a/c", Some("2"))], "n\n"))
        .expect("d");
    // The ids `git commit-tree` gives the same trees and messages, author and committer
    // `mwsync <mwsync@localhost>` at 1700000000 +0000.
    assert_eq!(c.0, "c3b04d1ef7737b62d61682333bcfbaf0f0b7848e");
    assert_eq!(d.0, "5767e45e86993cfd45490a2026b36b14ccf5e04a");
}
