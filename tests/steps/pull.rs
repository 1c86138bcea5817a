//! Steps for polling, paging, faults and the status stream.

use std::time::Duration;

use cucumber::{given, then, when};
use mwsync_sim::fake::FaultKind;
use mwsync_sim::layout::RecordKey;
use mwsync_sim::record::Record;

use super::SyncWorld;
use crate::support::{StoreKind, path_of};

#[given(
    expr = "a MoneyWorks document with {int} names, {int} accounts, {int} products, {int} jobs and {int} transactions"
)]
fn document(w: &mut SyncWorld, n: usize, a: usize, p: usize, j: usize, t: usize) {
    w.sizes = [n, a, p, j, t];
}

#[given(expr = "a MoneyWorks document with {int} names")]
fn names_only(w: &mut SyncWorld, n: usize) {
    w.sizes = [n, 0, 0, 0, 0];
}

#[given(expr = "the repository is {word} {word}")]
fn repository_short(w: &mut SyncWorld, a: String, b: String) {
    w.kind = Some(match (a.as_str(), b.as_str()) {
        ("in", "memory") => StoreKind::Memory,
        other => panic!("unknown repository kind {other:?}"),
    });
}

#[given(expr = "the repository is served over HTTP with an API key")]
fn repository_http(w: &mut SyncWorld) {
    w.kind = Some(StoreKind::Http);
}

#[given(expr = "the repository is a real bare repository")]
fn repository_bare(w: &mut SyncWorld) {
    w.kind = Some(StoreKind::Bare);
}

#[given(expr = "the page size is {int}")]
fn page_size(w: &mut SyncWorld, n: u32) {
    w.repo_config.page_size = n;
    // A harness started by the background takes it as its initial repo config, which
    // applies until the first poll writes one to main.
    if let Some(h) = w.harness.as_mut() {
        assert!(
            h.repo.tip("main").is_none(),
            "set the page size before the first poll"
        );
        h.repo_config.page_size = n;
        h.restart();
    }
}

#[given(expr = "checkpoints of {int} records")]
fn checkpoints(w: &mut SyncWorld, n: u32) {
    w.repo_config.checkpoint_records = n;
}

#[given(expr = "the name {string} with phone {string} exists in MoneyWorks")]
async fn name_exists(w: &mut SyncWorld, code: String, phone: String) {
    let h = w.h().await;
    h.sim.advance(1);
    h.sim.upsert(
        "Name",
        &code,
        &[("name", &format!("{code} Ltd")), ("phone", &phone)],
    );
}

#[given(expr = "{int} names in MoneyWorks share one modification time")]
async fn tie_names(w: &mut SyncWorld, n: usize) {
    w.sizes = [0, 0, 0, 0, 0];
    let h = w.h().await;
    for i in 0..n {
        h.sim.upsert(
            "Name",
            &format!("TIE{i:04}"),
            &[("name", &format!("Tie {i}"))],
        );
    }
    let stamps: std::collections::BTreeSet<_> = h
        .sim
        .records("Name")
        .iter()
        .filter_map(Record::modified)
        .collect();
    assert_eq!(stamps.len(), 1, "all {n} names must share one stamp");
}

#[given("mwsync has polled")]
async fn has_polled(w: &mut SyncWorld) {
    w.cycle().await;
    if let Some(Err(e)) = &w.last {
        panic!("the set-up poll failed: {e}");
    }
}

#[when("mwsync polls")]
async fn polls(w: &mut SyncWorld) {
    w.cycle().await;
}

#[given(expr = "MoneyWorks does not know the function {word}")]
async fn refuses_function(w: &mut SyncWorld, name: String) {
    w.h().await.sim.refuse_function(&name);
}

#[when("mwsync restarts")]
async fn restarts(w: &mut SyncWorld) {
    w.h().await.restart();
}

#[when(expr = "the {word} of name {string} is changed to {string} in MoneyWorks")]
#[given(expr = "the {word} of name {string} is changed to {string} in MoneyWorks")]
async fn change_field(w: &mut SyncWorld, field: String, code: String, value: String) {
    let h = w.h().await;
    h.sim.advance(60);
    h.sim.upsert("Name", &code, &[(&field, &value)]);
}

#[when(
    expr = "the {word} of name {string} is changed to hold control character {int} in MoneyWorks"
)]
async fn change_field_to_control(w: &mut SyncWorld, field: String, code: String, codepoint: u32) {
    let h = w.h().await;
    h.sim.advance(60);
    let ch = char::from_u32(codepoint).expect("the scenario names a valid code point");
    h.sim
        .upsert("Name", &code, &[(&field, &format!("555{ch}0100"))]);
}

#[when(expr = "name {string} is renamed to {string} in MoneyWorks")]
async fn rename(w: &mut SyncWorld, from: String, to: String) {
    let h = w.h().await;
    h.sim.advance(60);
    h.sim.upsert("Name", &from, &[("code", &to)]);
    assert!(
        h.sim.record("Name", &to).is_some(),
        "the fake renamed the code"
    );
}

#[given(
    expr = "MoneyWorks edits name {int} and creates name {string} while mwsync reads page {int}"
)]
async fn edit_while_paging(w: &mut SyncWorld, nth: usize, code: String, page: u64) {
    let h = w.h().await;
    let names = h.sim.records("Name");
    let victim = names[nth - 1]
        .text("code")
        .expect("generated names have codes")
        .to_string();
    let state = h.sim.state().clone();
    h.set_hook(move |n, _| {
        if n == page {
            state.clock.advance(5);
            state
                .try_upsert("Name", &victim, &[("phone", "edited while paging")])
                .expect("edit");
            state
                .try_upsert("Name", &code, &[("name", "Created while paging")])
                .expect("create");
        }
    });
}

fn fault(name: &str) -> FaultKind {
    match name {
        "licence_limit" => FaultKind::LicenceLimit,
        "http_500" => FaultKind::Http500,
        "truncate" => FaultKind::Truncate,
        "malformed_xml" => FaultKind::MalformedXml,
        other => panic!("unknown fault {other}"),
    }
}

#[given(expr = "MoneyWorks answers the next {int} requests with {word}")]
async fn faults(w: &mut SyncWorld, n: u32, kind: String) {
    let k = fault(&kind);
    w.h().await.sim.fail_next(k, n);
}

#[then("the poll succeeds")]
fn poll_ok(w: &mut SyncWorld) {
    match &w.last {
        Some(Ok(_)) => {}
        other => panic!("expected a successful poll, got {other:?}"),
    }
}

/// The errors of the last cycle: its own, or those of the tables that failed while the
/// others went on.
fn cycle_errors(w: &SyncWorld) -> Vec<String> {
    match &w.last {
        Some(Err(e)) => vec![e.clone()],
        Some(Ok(report)) => report
            .table_errors
            .iter()
            .map(|e| format!("{}: {}", e.table, e.error))
            .collect(),
        None => panic!("no cycle ran"),
    }
}

#[then("the poll fails")]
fn poll_fails(w: &mut SyncWorld) {
    assert!(
        !cycle_errors(w).is_empty(),
        "expected a failed poll (or table), got {:?}",
        w.last
    );
}

#[then(expr = "the poll fails with {string}")]
fn poll_fails_with(w: &mut SyncWorld, text: String) {
    let errors = cycle_errors(w);
    assert!(
        errors.iter().any(|e| e.contains(&text)),
        "an error should contain `{text}`: {errors:?}"
    );
    w.skip_invariants = true;
}

#[then(expr = "the poll reports that {word} failed with {string}")]
fn table_failed(w: &mut SyncWorld, table: String, text: String) {
    let Some(Ok(report)) = &w.last else {
        panic!(
            "expected a cycle that went on past the failed table, got {:?}",
            w.last
        );
    };
    assert!(
        report
            .table_errors
            .iter()
            .any(|e| e.table == table && e.error.contains(&text) && !e.needs_human),
        "{table} should have failed with `{text}`: {:?}",
        report.table_errors
    );
}

#[then(expr = "a retry of {string} was published")]
async fn retry_published(w: &mut SyncWorld, what: String) {
    let events = w.h().await.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, mwsync::events::Event::Retrying { what: w, .. } if *w == what)),
        "no retry of `{what}` among the events"
    );
}

#[when(expr = "MoneyWorks answers the next {int} exports with an [ERROR] reply")]
async fn error_replies(w: &mut SyncWorld, n: u32) {
    let h = w.h().await;
    let state = h.sim.state().clone();
    let mut injected = false;
    h.set_hook(move |_, _| {
        if !injected {
            injected = true;
            state.fail_next(FaultKind::ErrorReply, n);
        }
    });
}

#[when(expr = "the description of account {int} is changed to {string} in MoneyWorks")]
async fn edit_account(w: &mut SyncWorld, nth: usize, value: String) {
    let h = w.h().await;
    let code = h.sim.records("Account")[nth - 1]
        .text("code")
        .expect("accounts have codes")
        .to_string();
    h.sim.advance(30);
    h.sim.upsert("Account", &code, &[("description", &value)]);
}

#[when(expr = "name {string} is fixed in MoneyWorks with a stamp from the day before")]
async fn fix_behind_marker(w: &mut SyncWorld, code: String) {
    let h = w.h().await;
    h.sim.advance(-86_400);
    h.sim.upsert("Name", &code, &[("phone", "555 0101")]);
    h.sim.advance(86_400);
}

/// The `[[quarantined]]` entries of `.mwsync/status.toml` on main, read as plain TOML (not
/// through the engine's types).
fn quarantined_on_main(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<toml::Value> {
    let Some(bytes) = files.get(".mwsync/status.toml") else {
        return vec![];
    };
    let value: toml::Value =
        toml::from_str(std::str::from_utf8(bytes).expect("utf8")).expect("status.toml is TOML");
    value
        .get("quarantined")
        .and_then(|q| q.as_array())
        .cloned()
        .unwrap_or_default()
}

#[then(expr = "{word} {string} is quarantined on main because {string}")]
async fn quarantined(w: &mut SyncWorld, table: String, key: String, reason: String) {
    let h = w.h().await;
    let seq = h
        .sim
        .record(&table, &key)
        .and_then(|r| r.seq())
        .expect("the record exists in MoneyWorks");
    let entries = quarantined_on_main(&h.main_files());
    assert!(
        entries.iter().any(|e| {
            e.get("table").and_then(|t| t.as_str()) == Some(table.as_str())
                && e.get("key").and_then(|k| k.as_str()) == Some(key.as_str())
                && e.get("seq").and_then(|s| s.as_integer()) == Some(seq as i64)
                && e.get("reason")
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| r.contains(&reason))
        }),
        "{table} {key} (#{seq}) should be quarantined because `{reason}`: {entries:?}"
    );
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            mwsync::events::Event::RecordQuarantined { table: t, .. } if *t == table
        )),
        "no quarantine event"
    );
}

#[then("nothing is quarantined on main")]
async fn nothing_quarantined(w: &mut SyncWorld) {
    let files = w.h().await.main_files();
    let entries = quarantined_on_main(&files);
    assert!(entries.is_empty(), "still quarantined: {entries:?}");
}

#[then("main holds all other records as MoneyWorks holds them")]
async fn main_equals_moneyworks_but_quarantined(w: &mut SyncWorld) {
    compare_writable(w, None).await;
}

#[then(expr = "main holds every {word} record as MoneyWorks holds it")]
async fn main_equals_moneyworks_table(w: &mut SyncWorld, table: String) {
    compare_writable(w, Some(table)).await;
}

/// Every record MoneyWorks holds (of `only`, or of every tracked table) that has a file form
/// is on main byte for byte; the ones that have none are not compared.
async fn compare_writable(w: &mut SyncWorld, only: Option<String>) {
    let h = w.h().await;
    let got = h.main_records();
    let mut compared = 0;
    for t in &h.engine.repo_config().tables.clone() {
        if only.as_deref().is_some_and(|o| o != t.name) {
            continue;
        }
        for r in h.sim.records(t.name) {
            let Ok(bytes) = mwsync_sim::layout::canonical_xml(&r) else {
                continue;
            };
            let path = mwsync_sim::layout::record_path(&r).expect("sim records have keys");
            assert_eq!(
                got.get(&path)
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                Some(bytes),
                "{path} differs from MoneyWorks"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "the scenario should have records");
}

#[then("main holds exactly the records MoneyWorks holds")]
async fn main_equals_moneyworks(w: &mut SyncWorld) {
    let h = w.h().await;
    let want = h.expected_files();
    let got = h.main_records();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing on main: {missing:?}; extra on main: {extra:?}"
    );
    for (path, bytes) in &want {
        assert_eq!(
            String::from_utf8_lossy(&got[path]),
            String::from_utf8_lossy(bytes),
            "{path} differs from MoneyWorks"
        );
    }
    assert!(!want.is_empty(), "the scenario should have records");
}

#[then("every commit that changes records also changes the sync state")]
async fn state_with_records(w: &mut SyncWorld) {
    let h = w.h().await;
    let mut c = h.repo.client();
    mwsync::store::Store::fetch(&mut c).expect("fetch");
    for info in h.repo.log("main") {
        let parent = info.parents.first();
        let paths = mwsync::store::Store::changed_paths(&c, parent, &info.id).expect("diff");
        if paths.iter().any(|p| !p.starts_with(".mwsync/")) {
            assert!(
                paths.iter().any(|p| p == ".mwsync/state.toml"),
                "commit {} changes records without the state",
                info.id
            );
            assert!(
                info.message.contains("Mwsync-Marker: "),
                "commit {} lacks the marker trailer",
                info.id
            );
        }
    }
}

#[then("main holds the repo config")]
async fn has_config(w: &mut SyncWorld) {
    let files = w.h().await.main_files();
    let text = String::from_utf8(
        files
            .get(".mwsync/config.toml")
            .cloned()
            .expect("config on main"),
    )
    .expect("utf8");
    let cfg = mwsync::config::RepoConfigFile::parse(&text, "config")
        .expect("parses")
        .validate()
        .expect("valid");
    assert_eq!(cfg.file.page_size, w.repo_config.page_size);
}

#[then(expr = "the last commit on main says {string}")]
async fn last_commit_says(w: &mut SyncWorld, text: String) {
    let log = w.h().await.repo.log("main");
    let msg = &log.first().expect("main has commits").message;
    assert!(
        msg.contains(&text),
        "the last commit message\n{msg}\nshould contain `{text}`"
    );
}

#[then("main did not move")]
async fn main_still(w: &mut SyncWorld) {
    let before = w.main_before.clone();
    assert_eq!(w.h().await.repo.tip("main"), before, "main moved");
}

#[then(expr = "main still holds {int} {word} records")]
async fn main_still_holds(w: &mut SyncWorld, n: usize, table: String) {
    let dir = format!("{}/", table.to_ascii_lowercase());
    let files = w.h().await.main_records();
    let held = files.keys().filter(|p| p.starts_with(&dir)).count();
    assert_eq!(held, n, "{table} record files on main: {:?}", files.keys());
}

#[then(expr = "the poll made {int} requests")]
async fn requests_made(w: &mut SyncWorld, n: u64) {
    let before = w.requests_before;
    let r = w.h().await.sim.requests();
    assert_eq!(
        r.export + r.evaluate - before,
        n,
        "MoneyWorks requests in the poll"
    );
}

#[then(expr = "main has exactly {int} commit(s)")]
async fn commit_count(w: &mut SyncWorld, n: usize) {
    assert_eq!(w.h().await.repo.log("main").len(), n);
}

#[when("someone else commits to main")]
#[given("someone else commits to main")]
async fn foreign_commit(w: &mut SyncWorld) {
    let h = w.h().await;
    h.repo.write(
        "main",
        "main",
        &[("README.md", Some(b"hello".as_slice()))],
        "a commit mwsync did not make",
    );
}

#[given("the status server is listening")]
async fn status_server(w: &mut SyncWorld) {
    let h = w.h().await;
    let board = mwsync::status::Board::new(h.events.instance(), "main", "changes");
    let token = tokio_util::sync::CancellationToken::new();
    let addr = mwsync::http::serve(
        "127.0.0.1:0".parse().expect("addr"),
        board,
        h.events.clone(),
        mwsync::http::ServeOptions::default(),
        token.clone(),
    )
    .await
    .expect("the status server binds");
    let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = buf.clone();
    let mut resp = reqwest::get(format!("http://{addr}/events"))
        .await
        .expect("GET /events");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    tokio::spawn(async move {
        let _keep = token;
        while let Ok(Some(chunk)) = resp.chunk().await {
            sink.lock()
                .expect("sse buffer")
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    w.sse = Some(buf);
}

#[then(expr = "an event on \\/events reports that {word} {string} changed field {string}")]
async fn sse_event(w: &mut SyncWorld, table_name: String, key: String, field: String) {
    let buf = w.sse.clone().expect("the status server was started");
    for _ in 0..200 {
        let text = buf.lock().expect("sse buffer").clone();
        let hit = text
            .split("\n\n")
            .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
            .any(|data| {
                let v: serde_json::Value = serde_json::from_str(data).expect("SSE data is JSON");
                v["event"] == "record_changed"
                    && v["table"] == table_name.as_str()
                    && v["key"] == key.as_str()
                    && v["fields"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x["field"] == field.as_str()))
            });
        if hit {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no record_changed event for {table_name} {key} {field} on /events: {}",
        buf.lock().expect("sse").clone()
    );
}

/// The path of a name record, for steps that edit files (by the simulator's layout).
pub fn name_path(code: &str) -> String {
    path_of("Name", RecordKey::Code(code.to_string()))
}

#[when(
    expr = "name {string} is renamed to {string} and name {string} to {string} in the same second"
)]
async fn swap_codes(w: &mut SyncWorld, a: String, b: String, c: String, d: String) {
    let h = w.h().await;
    h.sim.advance(60);
    h.sim.upsert("Name", &a, &[("code", &b)]);
    h.sim.upsert("Name", &c, &[("code", &d)]);
}
