//! The move of a layout-1 `main` (`{table}/{ddd}/{ddd}/{key}.xml`) to layout 2: every record
//! file lands at its layout-2 path with its bytes unchanged, in checkpoints that name each
//! move, the state records `layout = 2`, a `main` left half moved is finished, and a check
//! refuses to run before the move. Layout-1 paths are computed here from the documented
//! rule of layout 1, never by the engine.

use std::collections::BTreeMap;

use mwsync::config::{FullSyncMode, RepoConfigFile};
use mwsync::engine::EngineError;

use crate::support::{Harness, StoreKind, sim_builder};

/// The layout-1 path of a layout-2 record path: the shard number `d1 * 10⁴ + d2 * 100 + d3`
/// of a code is its hash modulo 10⁶, split as `{h / 1000:03}/{h mod 1000:03}`; a sequence
/// number `n` was at `{n / 10⁶:03}/{(n / 1000) mod 1000:03}`.
fn layout1_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let [table, d1, d2, d3, file] = parts[..] else {
        panic!("{path} is not a layout-2 record path");
    };
    let stem = file.strip_suffix(".xml").expect("an xml file");
    let bucket = match stem.parse::<u64>() {
        Ok(n) if table == "transaction" => n / 1000,
        _ => {
            let n = |d: &str| d.parse::<u64>().expect("a number");
            n(d1) * 10_000 + n(d2) * 100 + n(d3)
        }
    };
    format!("{table}/{:03}/{:03}/{file}", bucket / 1000, bucket % 1000)
}

/// 45 names and 120 transactions in checkpoints of 10, after a first sync.
async fn synced() -> Harness {
    let cfg = RepoConfigFile {
        page_size: 10,
        checkpoint_records: 10,
        tables: vec!["Name".into(), "Transaction".into()],
        fingerprint_interval_secs: 0,
        ..RepoConfigFile::default()
    };
    let mut h = Harness::start(
        sim_builder().names(45).transactions(120),
        StoreKind::Memory,
        cfg,
    )
    .await;
    h.cycle().await.expect("the first sync");
    assert_eq!(h.main_state().layout, 2, "a new main starts in layout 2");
    h
}

/// Rewrites `main` as an older mwsync left it: the records in `moved` (a predicate on the
/// layout-2 path) at their layout-1 paths, and a state without `layout`; then adopts it.
async fn make_layout1(h: &mut Harness, moved: impl Fn(&str) -> bool) {
    let files = h.main_files();
    let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for (path, bytes) in &files {
        if path == ".mwsync/state.toml" {
            let text = String::from_utf8(bytes.clone()).expect("utf8");
            assert!(text.contains("layout = 2\n"), "{text}");
            writes.push((
                path.clone(),
                Some(text.replace("layout = 2\n", "").into_bytes()),
            ));
        } else if !path.starts_with(".mwsync/") && moved(path) {
            writes.push((path.clone(), None));
            writes.push((layout1_path(path), Some(bytes.clone())));
        }
    }
    let refs: Vec<(&str, Option<&[u8]>)> = writes
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_deref()))
        .collect();
    h.repo
        .write("main", "main", &refs, "Records as mwsync 0.1 filed them");
    h.engine
        .rebaseline()
        .await
        .expect("adopt the rewritten main");
    assert_eq!(
        h.main_state().layout,
        1,
        "a state without layout is layout 1"
    );
}

/// Every record line of the form `… moved from <path>` in `main`'s history, by old path.
fn moves_in_history(h: &Harness) -> BTreeMap<String, usize> {
    h.repo.message_line_counts("main", |line| {
        line.split_once(" moved from ").map(|(_, from)| from)
    })
}

#[tokio::test]
async fn a_layout1_main_is_moved_unchanged_in_checkpoints() {
    let mut h = synced().await;
    let before = h.main_records();
    assert_eq!(before.len(), 165);
    make_layout1(&mut h, |_| true).await;
    let old: Vec<String> = before.keys().map(|p| layout1_path(p)).collect();
    assert!(
        old.iter().all(|p| h.main_files().contains_key(p)),
        "the test's main is in layout 1"
    );
    let commits_before = h.repo.log("main").len();

    h.cycle().await.expect("the move and a poll");

    assert_eq!(
        h.main_records(),
        before,
        "every file at its layout-2 path, bytes unchanged"
    );
    assert_eq!(h.main_state().layout, 2);
    let moves = moves_in_history(&h);
    for p in &old {
        assert_eq!(moves.get(p), Some(&1), "{p} is named as moved exactly once");
    }
    // 165 moves in checkpoints of at least 10 files (an old shard directory is never split).
    let move_commits = h
        .repo
        .log("main")
        .iter()
        .take(h.repo.log("main").len() - commits_before)
        .filter(|c| c.message.starts_with("Move "))
        .count();
    assert!(
        (2..=17).contains(&move_commits),
        "{move_commits} move commits for 165 files in checkpoints of 10"
    );
    // The next run has nothing to move and polls as always.
    let tip = h.repo.tip("main");
    h.cycle().await.expect("an idle poll");
    assert_eq!(
        h.repo.tip("main"),
        tip,
        "nothing to move, nothing to commit"
    );
}

#[tokio::test]
async fn a_main_left_half_moved_is_finished() {
    let mut h = synced().await;
    let before = h.main_records();
    // As a crash part way through a move leaves it: names moved, transactions not.
    make_layout1(&mut h, |p| p.starts_with("transaction/")).await;
    h.cycle().await.expect("the rest of the move");
    assert_eq!(h.main_records(), before);
    assert_eq!(h.main_state().layout, 2);
    let moves = moves_in_history(&h);
    assert_eq!(
        moves.len(),
        120,
        "only the transactions still in layout 1 moved"
    );
    assert!(moves.keys().all(|p| p.starts_with("transaction/")));
}

#[tokio::test]
async fn a_check_refuses_a_layout1_main_and_moves_nothing() {
    let mut h = synced().await;
    make_layout1(&mut h, |_| true).await;
    let tip = h.repo.tip("main");
    let err = h
        .engine
        .full_sync(FullSyncMode::Check, None)
        .await
        .expect_err("a check must not run on layout 1");
    assert!(
        matches!(err, EngineError::OldLayout { layout: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("Run `mwsync run --once` first"),
        "{err}"
    );
    assert_eq!(h.repo.tip("main"), tip, "a check writes nothing");
}
