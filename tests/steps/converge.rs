//! Steps for clock changes, deletes, fingerprint scans and full syncs.

use cucumber::{given, then, when};
use mwsync::config::FullSyncMode;
use mwsync::events::Event;

use super::SyncWorld;

#[when(expr = "the MoneyWorks clock steps back {int} seconds")]
async fn clock_back(w: &mut SyncWorld, secs: i64) {
    w.h().await.sim.advance(-secs);
}

#[when(expr = "the MoneyWorks clock steps forward {int} seconds")]
#[when(expr = "the MoneyWorks clock moves on {int} seconds")]
async fn clock_forward(w: &mut SyncWorld, secs: i64) {
    w.h().await.sim.advance(secs);
}

fn code(w: &SyncWorld, nth: usize) -> String {
    let h = w.harness.as_ref().expect("started");
    h.sim.records("Name")[nth - 1]
        .text("code")
        .expect("names have codes")
        .to_string()
}

#[when(expr = "{int} names are edited in MoneyWorks")]
async fn edit_names(w: &mut SyncWorld, n: usize) {
    w.h().await;
    for i in 0..n {
        let c = code(w, i + 1);
        let h = w.h().await;
        h.sim.advance(1);
        h.sim.upsert(
            "Name",
            &c,
            &[("phone", &format!("0{} 555 {i:04}", h.sim.now().secs() % 10))],
        );
    }
}

#[when(expr = "{int} names are deleted in MoneyWorks")]
async fn delete_names(w: &mut SyncWorld, n: usize) {
    w.h().await;
    let codes: Vec<String> = (0..n).map(|i| code(w, i + 1)).collect();
    let h = w.h().await;
    for c in codes {
        assert!(h.sim.delete("Name", &c), "deleted {c}");
    }
}

#[when(expr = "name {int} is changed in MoneyWorks with a stamp from the day before")]
async fn stale_edit(w: &mut SyncWorld, nth: usize) {
    w.h().await;
    let c = code(w, nth);
    let h = w.h().await;
    h.sim.advance(-86_400);
    h.sim.upsert("Name", &c, &[("phone", "stamped yesterday")]);
    h.sim.advance(86_400);
}

#[given(expr = "the fingerprint scan runs every {int} seconds")]
fn fingerprint_every(w: &mut SyncWorld, secs: u64) {
    w.repo_config.fingerprint_interval_secs = secs;
}

#[then("a clock regression event was published")]
async fn regression_event(w: &mut SyncWorld) {
    let events = w.h().await.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ClockRegression { .. })),
        "no clock regression event"
    );
}

#[then("no marker on main is ahead of the MoneyWorks clock")]
async fn markers_behind(w: &mut SyncWorld) {
    let h = w.h().await;
    let now = crate::support::engine_time(h.sim.now());
    for (t, st) in h.main_state().tables {
        assert!(
            st.marker.is_none_or(|m| m <= now),
            "{t} marker {:?} is ahead of {now}",
            st.marker
        );
    }
}

#[when(expr = "a full sync runs in {word} mode")]
async fn full_sync(w: &mut SyncWorld, mode: String) {
    let mode = match mode.as_str() {
        "apply" => FullSyncMode::Apply,
        "check" => FullSyncMode::Check,
        other => panic!("unknown mode {other}"),
    };
    w.mark().await;
    let r = w.h().await.engine.full_sync(mode, None).await;
    w.full_sync = Some(r.map_err(|e| e.to_string()));
}

#[then(expr = "the full sync found {int} differences")]
fn found(w: &mut SyncWorld, n: usize) {
    assert_eq!(w.full_sync.clone().expect("a full sync ran"), Ok(n));
}

#[then(expr = "the full sync fails listing name {int} with its server and main values")]
async fn check_fails(w: &mut SyncWorld, nth: usize) {
    let c = code(w, nth);
    let err = w
        .full_sync
        .clone()
        .expect("a full sync ran")
        .expect_err("check mode must fail on drift");
    assert!(err.contains(&format!("Name {c}")), "{err}");
    assert!(
        err.contains("phone (server \"stamped yesterday\", main "),
        "{err}"
    );
    w.skip_invariants = true;
}

#[then("the sync state on main records the full sync")]
async fn state_records(w: &mut SyncWorld) {
    let st = w.h().await.main_state();
    assert!(st.full_sync.finished.is_some(), "{st:?}");
}

#[then(expr = "the sync state on main records the full sync {string}")]
async fn state_records_request(w: &mut SyncWorld, request: String) {
    let st = w.h().await.main_state();
    assert_eq!(st.full_sync.request, request);
}

#[when(expr = "a writer requests a full sync {string} on changes")]
async fn request_full_sync(w: &mut SyncWorld, request: String) {
    let h = w.h().await;
    let files = h.main_files();
    let text = String::from_utf8(files[".mwsync/config.toml"].clone()).expect("utf8");
    let mut cfg = mwsync::config::RepoConfigFile::parse(&text, "c").expect("parses");
    cfg.full_sync.request = request;
    let id = h.repo.write(
        "changes",
        "main",
        &[(".mwsync/config.toml", Some(cfg.to_toml().as_bytes()))],
        "Please audit",
    );
    w.writer_commit = Some(id);
}

#[when(expr = "MoneyWorks refuses export {int} of the next poll until retries run out")]
async fn refuse_nth_export(w: &mut SyncWorld, nth: u32) {
    let h = w.h().await;
    let state = h.sim.state().clone();
    let attempts = crate::support::quick_retry().attempts;
    let mut calls = 0;
    h.set_hook(move |_, _| {
        calls += 1;
        if calls == nth {
            state.fail_next(mwsync_sim::fake::FaultKind::LicenceLimit, attempts);
        }
    });
}

#[given(expr = "the look-back is {int} seconds")]
fn lookback(w: &mut SyncWorld, secs: u64) {
    w.repo_config.lookback_secs = secs;
}

#[when(expr = "a name stamped {int} seconds before the last poll appears in MoneyWorks")]
async fn late_record(w: &mut SyncWorld, secs: i64) {
    let h = w.h().await;
    h.sim.advance(-secs);
    h.sim
        .upsert("Name", "LATECO", &[("name", "Late Arrival Ltd")]);
    h.sim.advance(secs + 10);
}
