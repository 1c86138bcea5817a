//! Steps for writers on the changes branch and what mwsync does with their commits.

use cucumber::{given, then, when};
use mwsync::store::{CommitId, Store};
use mwsync::writeback::{Outcome, StatusFile};
use mwsync_sim::layout::{RecordFile, RecordKey};
use mwsync_sim::record::Record;

use super::SyncWorld;
use super::pull::name_path;
use crate::support::{Repo, edited_file, path_of};

fn main_file(repo: &Repo, path: &str) -> Vec<u8> {
    repo.files("main")
        .remove(path)
        .unwrap_or_else(|| panic!("{path} is not on main"))
}

#[given(expr = "a writer sets the {word} of name {string} to {string} on changes")]
async fn writer_sets(w: &mut SyncWorld, field: String, code: String, value: String) {
    let h = w.h().await;
    let path = name_path(&code);
    let bytes = edited_file(&main_file(&h.repo, &path), &field, &value);
    let id = h.repo.write(
        "changes",
        "main",
        &[(&path, Some(&bytes))],
        &format!("Set {field} of {code}"),
    );
    w.writer_commit = Some(id);
}

#[when(
    expr = "the writer rebases changes on main and sets the {word} of name {string} to {string}"
)]
async fn writer_rebases(w: &mut SyncWorld, field: String, code: String, value: String) {
    let h = w.h().await;
    let path = name_path(&code);
    let bytes = edited_file(&main_file(&h.repo, &path), &field, &value);
    let mut c = h.repo.client();
    c.fetch().expect("fetch");
    let main = c.remote_tip("main").expect("tip").expect("main exists");
    let old = c.remote_tip("changes").expect("tip");
    let mut changes = std::collections::BTreeMap::new();
    changes.insert(path.clone(), mwsync::store::FileChange::Put(bytes));
    let id = c
        .commit(mwsync::store::NewCommit {
            parents: vec![main],
            changes,
            message: "Retry after conflict".into(),
        })
        .expect("commit");
    c.push("changes", old.as_ref(), &id)
        .expect("the writer may replace its own branch");
    w.writer_commit = Some(id);
}

#[given(expr = "a writer creates name {string} with name {string} on changes")]
async fn writer_creates(w: &mut SyncWorld, code: String, name: String) {
    let h = w.h().await;
    let path = name_path(&code);
    let xml = format!("<name>\n  <code>{code}</code>\n  <name>{name}</name>\n</name>\n");
    let id = h.repo.write(
        "changes",
        "main",
        &[(&path, Some(xml.as_bytes()))],
        "New customer",
    );
    w.writer_commit = Some(id);
}

#[given(expr = "a writer sets page_size to {int} in the repo config on changes")]
async fn writer_config(w: &mut SyncWorld, n: u32) {
    let h = w.h().await;
    let text = String::from_utf8(main_file(&h.repo, ".mwsync/config.toml")).expect("utf8");
    let mut cfg = mwsync::config::RepoConfigFile::parse(&text, "config").expect("parses");
    cfg.page_size = n;
    let id = h.repo.write(
        "changes",
        "main",
        &[(".mwsync/config.toml", Some(cfg.to_toml().as_bytes()))],
        "Bigger pages",
    );
    w.writer_commit = Some(id);
}

#[given(expr = "a writer commits {}")]
async fn writer_commits_bad(w: &mut SyncWorld, what: String) {
    let what = what
        .strip_suffix(" on changes")
        .expect("the step ends with `on changes`")
        .to_string();
    let h = w.h().await;
    let acme = name_path("ACME");
    let good = main_file(&h.repo, &acme);
    let text = String::from_utf8(good.clone()).expect("utf8");
    let (path, content): (String, Option<Vec<u8>>) = match what.as_str() {
        "a name file that is not XML" => (acme, Some(b"<name><code>ACME</code>".to_vec())),
        "a name file with a product record" => {
            (acme, Some(b"<product><code>ACME</code></product>".to_vec()))
        }
        "a file outside the tracked tables" => (
            path_of("Department", RecordKey::Code("D1".into())),
            Some(b"<department><code>D1</code></department>".to_vec()),
        ),
        "a name file whose code differs from its path" => (
            acme,
            Some(
                text.replace("<code>ACME</code>", "<code>OTHER</code>")
                    .into_bytes(),
            ),
        ),
        "a change to a system field" => {
            let file = RecordFile::parse(&text).expect("a record file");
            let seq: u64 = file
                .text("sequencenumber")
                .and_then(|s| s.parse().ok())
                .expect("seq");
            (
                acme,
                Some(
                    text.replace(
                        &format!(">{seq}</sequencenumber>"),
                        &format!(">{}</sequencenumber>", seq + 1000),
                    )
                    .into_bytes(),
                ),
            )
        }
        "a change to the sync state" => (
            ".mwsync/state.toml".into(),
            Some(b"# edited by hand\n".to_vec()),
        ),
        "a name file over the size limit" => (
            acme,
            Some(
                text.replace("</phone>", &format!("{}</phone>", "9".repeat(1_100_000)))
                    .into_bytes(),
            ),
        ),
        "a file in a directory that is not a table" => {
            ("notes/todo.xml".into(), Some(b"<name/>".to_vec()))
        }
        "the deletion of a name file" => (acme, None),
        "a name file with the phone element written twice" => (
            acme,
            Some(
                text.replace(
                    "<phone>555 0100</phone>",
                    "<phone>111</phone>\n  <phone>222</phone>",
                )
                .into_bytes(),
            ),
        ),
        "an invalid repo config" => (
            ".mwsync/config.toml".into(),
            Some(b"page_size = 5\n".to_vec()),
        ),
        other => panic!("unknown bad file {other}"),
    };
    let id = h.repo.write(
        "changes",
        "main",
        &[(&path, content.as_deref())],
        &format!("Bad: {what}"),
    );
    w.writer_commit = Some(id);
}

#[given(expr = "transaction {string} exists and is posted in MoneyWorks")]
async fn posted_transaction(w: &mut SyncWorld, ourref: String) {
    let h = w.h().await;
    h.sim.advance(1);
    let (seq, _) = h.sim.upsert(
        "Transaction",
        "",
        &[
            ("ourref", &ourref),
            ("description", "Posted sale"),
            ("type", "JN"),
        ],
    );
    assert!(
        h.sim.post("Transaction", &seq.to_string()),
        "the fake posts the transaction"
    );
    w.posted_seq = Some(seq);
}

#[given(expr = "a writer sets the description of the posted transaction to {string} on changes")]
async fn writer_edits_posted(w: &mut SyncWorld, value: String) {
    let seq = w.posted_seq.expect("a posted transaction exists");
    let h = w.h().await;
    let path = path_of("Transaction", RecordKey::Seq(seq));
    let bytes = edited_file(&main_file(&h.repo, &path), "description", &value);
    w.writer_commit = Some(h.repo.write(
        "changes",
        "main",
        &[(&path, Some(&bytes))],
        "Edit a posted transaction",
    ));
}

#[given("MoneyWorks changes another name while mwsync re-reads the write")]
async fn change_during_write(w: &mut SyncWorld) {
    let h = w.h().await;
    let other = h
        .sim
        .records("Name")
        .iter()
        .filter_map(|r| r.text("code").map(str::to_string))
        .find(|c| c != "ACME")
        .expect("another name");
    let state = h.sim.state().clone();
    let mut done = false;
    h.set_hook(move |_, imports| {
        if imports >= 1 && !done {
            done = true;
            state.clock.advance(3);
            state
                .try_upsert("Name", &other, &[("phone", "changed mid-write")])
                .expect("edit");
        }
    });
}

#[given(
    expr = "a second writer commit sets the name of name {string} to {string} while mwsync re-reads the write"
)]
async fn second_write(w: &mut SyncWorld, code: String, value: String) {
    let h = w.h().await;
    let crate::support::Repo::Memory(remote) = &h.repo else {
        panic!("this scenario uses the in-memory repository")
    };
    let remote = remote.clone();
    let path = name_path(&code);
    let mut done = false;
    h.set_hook(move |_, imports| {
        if imports >= 1 && !done {
            done = true;
            let changes = remote.branch("changes").expect("changes exists");
            let bytes = remote
                .read_file(&changes, &path)
                .expect("the file is on changes");
            let bytes = edited_file(&bytes, "name", &value);
            remote.commit_files(
                "changes",
                &[(&path, Some(&bytes))],
                "Second write",
                "writer <w@example.com>",
            );
        }
    });
}

#[then(expr = "MoneyWorks holds {string} as the {word} of name {string}")]
async fn mw_holds(w: &mut SyncWorld, value: String, field: String, code: String) {
    let rec: Record = w
        .h()
        .await
        .sim
        .record("Name", &code)
        .unwrap_or_else(|| panic!("MoneyWorks has no name {code}"));
    assert_eq!(
        rec.text(&field),
        Some(value.as_str()),
        "{field} of {code} in MoneyWorks"
    );
}

fn is_in_main(repo: &Repo, id: &CommitId) -> bool {
    let mut c = repo.client();
    c.fetch().expect("fetch");
    let main = c.remote_tip("main").expect("tip").expect("main exists");
    c.is_ancestor(id, &main).expect("ancestry")
}

#[then("the writer's commit is in main")]
async fn writer_in_main(w: &mut SyncWorld) {
    let id = w.writer_commit.clone().expect("a writer committed");
    assert!(
        is_in_main(&w.h().await.repo, &id),
        "the writer's commit {id} should be an ancestor of main"
    );
}

#[then("the writer's commit is not in main")]
async fn writer_not_in_main(w: &mut SyncWorld) {
    let id = w.writer_commit.clone().expect("a writer committed");
    assert!(
        !is_in_main(&w.h().await.repo, &id),
        "the writer's commit {id} must not be merged"
    );
}

fn status(repo: &Repo) -> mwsync::writeback::WriteReport {
    let text = String::from_utf8(
        repo.files("main")
            .remove(".mwsync/status.toml")
            .expect("status on main"),
    )
    .expect("utf8");
    StatusFile::parse(&text)
        .expect("status parses")
        .last_write
        .expect("a write was reported")
}

/// The outcome as the status file spells it (`applied`, `lost_race`, ...).
fn outcome_word(outcome: Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("an outcome serialises as its snake_case name")
}

#[then(expr = "the status on main says {word}")]
async fn status_says(w: &mut SyncWorld, word: String) {
    let report = status(&w.h().await.repo);
    assert_eq!(outcome_word(report.outcome), word, "status: {report:?}");
    assert_eq!(
        Some(report.commit),
        w.writer_commit.as_ref().map(ToString::to_string)
    );
}

#[then(expr = "the status on main says {word} because {string}")]
async fn status_because(w: &mut SyncWorld, word: String, reason: String) {
    let report = status(&w.h().await.repo);
    assert_eq!(outcome_word(report.outcome), word, "status: {report:?}");
    assert!(
        report.files.iter().any(|f| f.reason.contains(&reason)),
        "no file reason mentions `{reason}`: {report:?}"
    );
}

#[then(expr = "the status on main says conflict for field {string} asked {string} server {string}")]
async fn status_conflict(w: &mut SyncWorld, field: String, asked: String, server: String) {
    let report = status(&w.h().await.repo);
    assert_eq!(report.outcome, Outcome::Conflict);
    let f = report
        .files
        .iter()
        .flat_map(|f| f.fields.iter())
        .find(|f| f.field == field)
        .expect("the field is reported");
    assert_eq!(
        (f.asked.as_deref(), f.server.as_deref()),
        (Some(asked.as_str()), Some(server.as_str()))
    );
}

#[then("no import reached MoneyWorks")]
async fn no_import(w: &mut SyncWorld) {
    let before = w.imports_before;
    assert_eq!(
        w.h().await.sim.requests().import,
        before,
        "imports were sent"
    );
}

#[then("the merge commit's parents are main before the write and the writer's commit")]
async fn merge_parents(w: &mut SyncWorld) {
    let before = w.main_before.clone().expect("main existed");
    let writer = w.writer_commit.clone().expect("a writer committed");
    let log = w.h().await.repo.log("main");
    let merge = log
        .iter()
        .find(|c| c.parents.len() == 2)
        .expect("a merge commit on main");
    assert_eq!(
        merge.parents,
        vec![before, writer],
        "no other commit may come between"
    );
}

#[then("main has two write-back merges, the first before the second")]
async fn two_merges(w: &mut SyncWorld) {
    let log = w.h().await.repo.log("main");
    let merges: Vec<_> = log.iter().filter(|c| c.parents.len() == 2).collect();
    assert_eq!(merges.len(), 2, "two merges expected");
    let (newer, older) = (merges[0], merges[1]);
    let mut c = w.h().await.repo.client();
    c.fetch().expect("fetch");
    assert!(
        c.is_ancestor(&older.parents[1], &newer.parents[1])
            .expect("ancestry"),
        "the first write is merged first"
    );
}

#[then(expr = "the repo config on main has page_size {int}")]
async fn config_page(w: &mut SyncWorld, n: u32) {
    let text =
        String::from_utf8(main_file(&w.h().await.repo, ".mwsync/config.toml")).expect("utf8");
    assert_eq!(
        mwsync::config::RepoConfigFile::parse(&text, "c")
            .expect("parses")
            .page_size,
        n
    );
}

#[then("the merge commit's config trailer names the config on main")]
async fn merge_trailer(w: &mut SyncWorld) {
    let h = w.h().await;
    let text = String::from_utf8(main_file(&h.repo, ".mwsync/config.toml")).expect("utf8");
    let hash = mwsync::config::RepoConfigFile::parse(&text, "c")
        .expect("parses")
        .validate()
        .expect("valid")
        .hash();
    let log = h.repo.log("main");
    let merge = log
        .iter()
        .find(|c| c.parents.len() == 2)
        .expect("a merge commit");
    assert!(
        merge.message.contains(&format!("Mwsync-Config: {hash}")),
        "{}",
        merge.message
    );
}
