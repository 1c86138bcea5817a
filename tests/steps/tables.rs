//! Steps for the tables beyond the first five: a document holding every table, tracking
//! any of them, and writers editing a record of any table by its key.

use cucumber::{given, then};
use mwsync_sim::layout::RecordKey;
use mwsync_sim::schema::{Key, table_info};

use super::SyncWorld;
use crate::support::{edited_file, path_of};

/// The key of a record of `table` as a scenario writes it: a code, or a sequence number.
fn key(table: &str, key: &str) -> RecordKey {
    let info = table_info(table).unwrap_or_else(|| panic!("{table} is not a table"));
    match info.key {
        Key::Code(_) => RecordKey::Code(key.to_string()),
        Key::Seq => RecordKey::Seq(key.parse().expect("a sequence number")),
    }
}

#[given("a MoneyWorks document with every table")]
fn every_table(w: &mut SyncWorld) {
    w.sizes = [3, 10, 2, 1, 2];
}

#[given(expr = "mwsync tracks {word}")]
fn tracks(w: &mut SyncWorld, table: String) {
    w.repo_config.tables = vec![table];
}

#[given(expr = "a writer sets the {word} of {word} record {string} to {string} on changes")]
async fn writer_sets_any(
    w: &mut SyncWorld,
    field: String,
    table: String,
    k: String,
    value: String,
) {
    let h = w.h().await;
    let path = path_of(&table, key(&table, &k));
    let current = h
        .repo
        .files("main")
        .remove(&path)
        .unwrap_or_else(|| panic!("{path} is not on main"));
    let bytes = edited_file(&current, &field, &value);
    let id = h.repo.write(
        "changes",
        "main",
        &[(&path, Some(&bytes))],
        &format!("Set {field} of {table} {k}"),
    );
    w.writer_commit = Some(id);
}

#[then(expr = "MoneyWorks holds {string} as the {word} of {word} record {string}")]
async fn mw_holds_any(w: &mut SyncWorld, value: String, field: String, table: String, k: String) {
    let rec = w
        .h()
        .await
        .sim
        .record(&table, &k)
        .unwrap_or_else(|| panic!("MoneyWorks has no {table} {k}"));
    assert_eq!(
        rec.text(&field),
        Some(value.as_str()),
        "{field} of {table} {k} in MoneyWorks"
    );
}

#[then(expr = "main holds the {word} record {string} where the simulator's layout files it")]
async fn filed_by_layout(w: &mut SyncWorld, table: String, k: String) {
    let path = path_of(&table, key(&table, &k));
    let files = w.h().await.main_records();
    assert!(
        files.contains_key(&path),
        "{path} is on main: {:?}",
        files.keys()
    );
}
