//! Steps for the write-back's live precondition and everything that can make a write lose
//! data: MoneyWorks edits and deletes the poll cannot see, edits in the window before an
//! import, case twins, large and malformed change sets. The status file is read as plain
//! TOML here, so these steps judge the report from outside the engine's types.

use std::collections::BTreeMap;

use cucumber::{given, then, when};
use mwsync::store::{FileChange, NewCommit, Store};

use super::SyncWorld;
use super::pull::name_path;
use crate::support::{Repo, edited_file};

/// `[last_write]` of the status on `main`, as TOML.
fn last_write(repo: &Repo) -> toml::Table {
    let bytes = repo
        .files("main")
        .remove(".mwsync/status.toml")
        .expect("a status on main");
    let text = String::from_utf8(bytes).expect("the status is UTF-8");
    let mut doc: toml::Table = text.parse().expect("the status is TOML");
    match doc.remove("last_write") {
        Some(toml::Value::Table(t)) => t,
        other => panic!("the status has no [last_write]: {other:?}"),
    }
}

/// The `[[last_write.files]]` entries.
fn files(last: &toml::Table) -> Vec<toml::Table> {
    last.get("files")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
        .unwrap_or_default()
}

fn text<'a>(t: &'a toml::Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(toml::Value::as_str)
}

/// The `fields` of one file entry.
fn fields(file: &toml::Table) -> Vec<toml::Table> {
    file.get("fields")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
        .unwrap_or_default()
}

/// Every name code in MoneyWorks.
fn name_codes(w: &SyncWorld) -> Vec<String> {
    w.harness
        .as_ref()
        .expect("the harness runs")
        .sim
        .records("Name")
        .iter()
        .filter_map(|r| r.text("code").map(str::to_string))
        .collect()
}

/// Moves the fake's clock back `hours`, runs `edit`, and moves it forward again past where it
/// was: an edit stamped behind mwsync's marker, as a MoneyWorks client with a slow clock
/// would make.
async fn with_slow_clock(w: &mut SyncWorld, hours: i64, edit: impl FnOnce(&mwsync_sim::fake::Sim)) {
    let h = w.h().await;
    h.sim.advance(-hours * 3600);
    edit(&h.sim);
    h.sim.advance(hours * 3600 + 1);
}

#[given(expr = "name {string} is deleted in MoneyWorks")]
async fn delete_name(w: &mut SyncWorld, code: String) {
    assert!(w.h().await.sim.delete("Name", &code), "the fake had {code}");
}

#[then(expr = "MoneyWorks has no name {string}")]
async fn no_name(w: &mut SyncWorld, code: String) {
    let h = w.h().await;
    let same: Vec<String> = h
        .sim
        .records("Name")
        .iter()
        .filter_map(|r| r.text("code"))
        .filter(|c| *c == code)
        .map(str::to_string)
        .collect();
    assert!(same.is_empty(), "MoneyWorks holds name {code}: {same:?}");
}

#[given(expr = "{int} more names exist in MoneyWorks")]
async fn more_names(w: &mut SyncWorld, n: usize) {
    let h = w.h().await;
    h.sim.advance(1);
    for i in 0..n {
        let code = format!("MORE{i:04}");
        h.sim
            .upsert("Name", &code, &[("name", &format!("More {i} Ltd"))]);
    }
}

#[given(
    expr = "the {word} of name {string} is changed to {string} in MoneyWorks with a clock {int} hour(s) slow"
)]
async fn slow_edit(w: &mut SyncWorld, field: String, code: String, value: String, hours: i64) {
    with_slow_clock(w, hours, |sim| {
        sim.upsert("Name", &code, &[(&field, &value)]);
    })
    .await;
}

#[given(expr = "name {string} is created in MoneyWorks with a clock {int} hour(s) slow")]
async fn slow_create(w: &mut SyncWorld, code: String, hours: i64) {
    with_slow_clock(w, hours, |sim| {
        sim.upsert("Name", &code, &[("name", "Made in MoneyWorks")]);
    })
    .await;
}

#[given(
    expr = "the {word} of name {string} is changed to {string} in MoneyWorks just before the import"
)]
async fn edit_before_import(w: &mut SyncWorld, field: String, code: String, value: String) {
    let h = w.h().await;
    let state = h.sim.state().clone();
    h.set_import_hook(move |before| {
        if before == 0 {
            state.clock.advance(1);
            state
                .try_upsert("Name", &code, &[(&field, &value)])
                .expect("the edit in the window");
        }
    });
}

#[given(expr = "a writer sets the {word} of every name to {string} on changes")]
async fn writer_sets_every(w: &mut SyncWorld, field: String, value: String) {
    let codes = name_codes(w);
    let h = w.h().await;
    let main = h.repo.files("main");
    let edits: Vec<(String, Vec<u8>)> = codes
        .iter()
        .map(|code| {
            let path = name_path(code);
            let bytes = main
                .get(&path)
                .unwrap_or_else(|| panic!("{path} is not on main"));
            (path, edited_file(bytes, &field, &value))
        })
        .collect();
    let refs: Vec<(&str, Option<&[u8]>)> = edits
        .iter()
        .map(|(p, b)| (p.as_str(), Some(b.as_slice())))
        .collect();
    w.writer_commit = Some(h.repo.write(
        "changes",
        "main",
        &refs,
        &format!("Set {field} of every name"),
    ));
    w.written_codes = codes;
    w.write_value = Some(value);
}

#[given(
    expr = "MoneyWorks changes the {word} of every name the write has not reached to {string} after the first import"
)]
async fn edit_unreached(w: &mut SyncWorld, field: String, value: String) {
    let edited = w.bookkeeper_codes.clone();
    let writer_value = w
        .write_value
        .clone()
        .expect("a writer set a value on every name");
    let h = w.h().await;
    let state = h.sim.state().clone();
    let mut done = false;
    h.set_hook(move |_, imports| {
        if imports >= 1 && !done {
            done = true;
            state.clock.advance(1);
            let db_codes: Vec<String> = state
                .db()
                .table("Name")
                .expect("served")
                .records()
                .iter()
                .filter(|r| r.text(&field) != Some(writer_value.as_str()))
                .filter_map(|r| r.text("code").map(str::to_string))
                .collect();
            for code in db_codes {
                state
                    .try_upsert("Name", &code, &[(&field, &value)])
                    .expect("the bookkeeper's edit");
                edited.lock().expect("codes lock").push(code);
            }
        }
    });
}

#[then(expr = "every name the bookkeeper changed still holds {string} as its {word}")]
async fn bookkeeper_kept(w: &mut SyncWorld, value: String, field: String) {
    let codes = w.bookkeeper_codes.lock().expect("codes lock").clone();
    assert!(
        !codes.is_empty(),
        "the bookkeeper changed no name: the whole write went to MoneyWorks in one import"
    );
    let h = w.h().await;
    for code in &codes {
        let rec = h.sim.record("Name", code).expect("the name exists");
        assert_eq!(rec.text(&field), Some(value.as_str()), "{field} of {code}");
    }
}

#[then(expr = "the status on main reports a {word} for every name the bookkeeper changed")]
async fn status_lists_bookkeeper(w: &mut SyncWorld, result: String) {
    let codes = w.bookkeeper_codes.lock().expect("codes lock").clone();
    let last = last_write(&w.h().await.repo);
    let files = files(&last);
    for code in &codes {
        let path = name_path(code);
        let entry = files
            .iter()
            .find(|f| text(f, "path") == Some(path.as_str()))
            .unwrap_or_else(|| panic!("no status entry for {path}: {files:?}"));
        assert_eq!(text(entry, "result"), Some(result.as_str()), "{entry:?}");
    }
}

#[then(expr = "MoneyWorks holds {string} as the {word} of every name the writer changed")]
async fn holds_every(w: &mut SyncWorld, value: String, field: String) {
    let codes = w.written_codes.clone();
    assert!(!codes.is_empty(), "the writer changed names");
    let h = w.h().await;
    for code in &codes {
        let rec = h.sim.record("Name", code).expect("the name exists");
        assert_eq!(rec.text(&field), Some(value.as_str()), "{field} of {code}");
    }
}

#[then(expr = "the status on main says {word} for field {string}")]
async fn status_outcome_field(w: &mut SyncWorld, outcome: String, field: String) {
    let last = last_write(&w.h().await.repo);
    assert_eq!(text(&last, "outcome"), Some(outcome.as_str()), "{last:?}");
    let named = files(&last)
        .iter()
        .flat_map(fields)
        .any(|f| text(&f, "field") == Some(field.as_str()));
    assert!(named, "no file names field {field}: {last:?}");
}

#[then(
    expr = "the status on main says conflict for field {string} base {string} live {string} asked {string}"
)]
async fn status_conflict_full(
    w: &mut SyncWorld,
    field: String,
    base: String,
    live: String,
    asked: String,
) {
    let last = last_write(&w.h().await.repo);
    assert_eq!(text(&last, "outcome"), Some("conflict"), "{last:?}");
    let f = files(&last)
        .iter()
        .flat_map(fields)
        .find(|f| text(f, "field") == Some(field.as_str()))
        .unwrap_or_else(|| panic!("no file names field {field}: {last:?}"));
    assert_eq!(
        (text(&f, "base"), text(&f, "server"), text(&f, "asked")),
        (
            Some(base.as_str()),
            Some(live.as_str()),
            Some(asked.as_str())
        ),
        "{f:?}"
    );
}

#[then(expr = "the status on main says {word} with the single reason {string}")]
async fn status_single_reason(w: &mut SyncWorld, outcome: String, reason: String) {
    let last = last_write(&w.h().await.repo);
    assert_eq!(text(&last, "outcome"), Some(outcome.as_str()), "{last:?}");
    assert!(
        text(&last, "reason").is_some_and(|r| r.contains(&reason)),
        "[last_write] reason should mention `{reason}`: {last:?}"
    );
    assert!(
        files(&last).is_empty(),
        "one reason for the whole write, not one per file: {last:?}"
    );
}

#[given(expr = "a writer creates {int} new names on changes")]
async fn writer_creates_many(w: &mut SyncWorld, n: usize) {
    let h = w.h().await;
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            let code = format!("NEW{i:05}");
            (
                name_path(&code),
                format!("<name>\n  <code>{code}</code>\n  <name>New {i}</name>\n</name>\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, Option<&[u8]>)> = files
        .iter()
        .map(|(p, x)| (p.as_str(), Some(x.as_bytes())))
        .collect();
    w.writer_commit = Some(h.repo.write("changes", "main", &refs, "Many new names"));
}

#[when("mwsync handles the write, counting its requests")]
async fn handle_counting(w: &mut SyncWorld) {
    w.mark().await;
    let h = w.h().await;
    h.engine.poll().await.expect("the poll before the write");
    let tip = h
        .engine
        .pending_write()
        .await
        .expect("the changes branch reads")
        .expect("a write is waiting");
    let before = h.sim.requests();
    h.engine
        .handle_write(&tip)
        .await
        .expect("the write is handled");
    let after = h.sim.requests();
    h.engine.poll().await.expect("the poll after the write");
    if let Some(t) = h.repo.tip("main") {
        h.tips.push(t);
    }
    w.write_requests = Some((
        after.import - before.import,
        after.export - before.export,
        after.evaluate - before.evaluate,
    ));
    w.last = Some(Ok(mwsync::pull::PollReport::default()));
}

#[then(expr = "the write made {int} imports, {int} exports and {int} clock read(s)")]
fn write_requests(w: &mut SyncWorld, imports: u64, exports: u64, clock: u64) {
    let got = w.write_requests.expect("the write was counted");
    println!(
        "requests of the write: {} imports, {} exports, {} clock reads",
        got.0, got.1, got.2
    );
    assert_eq!(
        got,
        (imports, exports, clock),
        "(imports, exports, clock reads)"
    );
}

/// `first` and `second` joined as the scenario names it: `LF` and `CRLF` are raw bytes in
/// the file (what a text editor writes), `references` is `&#13;&#10;`.
fn joined(first: &str, second: &str, how: &str) -> String {
    let sep = match how {
        "LF" => "\n",
        "CRLF" => "\r\n",
        "references" => "&#13;&#10;",
        other => panic!("unknown line break {other}: say LF, CRLF or references"),
    };
    format!("{first}{sep}{second}")
}

#[given(
    expr = "a writer sets the {word} of name {string} to the lines {string} and {string} joined by {word} on changes"
)]
async fn writer_multiline(
    w: &mut SyncWorld,
    field: String,
    code: String,
    first: String,
    second: String,
    how: String,
) {
    let h = w.h().await;
    let path = name_path(&code);
    let bytes = h.repo.files("main").remove(&path).expect("on main");
    const MARK: &str = "LINE-BREAK-HERE";
    let edited = edited_file(&bytes, &field, &format!("{first}{MARK}{second}"));
    let text = String::from_utf8(edited).expect("utf8").replace(
        &format!("{first}{MARK}{second}"),
        &joined(&first, &second, &how),
    );
    w.writer_commit = Some(h.repo.write(
        "changes",
        "main",
        &[(&path, Some(text.as_bytes()))],
        "Two-line address",
    ));
}

#[then(
    expr = "MoneyWorks holds the lines {string} and {string} joined by CR as the {word} of name {string}"
)]
async fn holds_cr(w: &mut SyncWorld, first: String, second: String, field: String, code: String) {
    let rec = w
        .h()
        .await
        .sim
        .record("Name", &code)
        .expect("the name exists");
    assert_eq!(
        rec.text(&field),
        Some(format!("{first}\r{second}").as_str())
    );
}

#[given(
    expr = "a writer pushes to changes a commit with no common history with main that sets the {word} of name {string} to {string}"
)]
async fn orphan(w: &mut SyncWorld, field: String, code: String, value: String) {
    let h = w.h().await;
    let mut files = h.repo.files("main");
    let path = name_path(&code);
    let edited = edited_file(files.get(&path).expect("on main"), &field, &value);
    files.insert(path, edited);
    let changes: BTreeMap<String, FileChange> = files
        .into_iter()
        .map(|(p, b)| (p, FileChange::Put(b)))
        .collect();
    let mut c = h.repo.client();
    c.fetch().expect("fetch");
    let old = c.remote_tip("changes").expect("tip");
    let id = c
        .commit(NewCommit {
            parents: vec![],
            changes,
            message: "Start over".into(),
        })
        .expect("commit");
    c.push("changes", old.as_ref(), &id).expect("push");
    w.writer_commit = Some(id);
}
