//! `docs/paths.md` against the code: every example row is what `mwsync path` prints and what
//! the simulator's independent layout computes.

use std::process::Command;

use mwsync_sim::layout::RecordKey;

use crate::support::path_of;

/// The example rows of `docs/paths.md`: table, key, path.
fn examples() -> Vec<(String, String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/paths.md"))
        .expect("docs/paths.md is readable");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            match cells.as_slice() {
                [table, key, path] if key.starts_with('`') && path.starts_with('`') => Some((
                    table.to_string(),
                    key.trim_matches('`').to_string(),
                    path.trim_matches('`').to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

/// Every example in the docs is what `mwsync path` prints and what the simulator's layout
/// computes.
#[test]
fn the_documented_examples_hold() {
    let rows = examples();
    assert!(rows.len() >= 10, "too few examples found: {rows:?}");
    for (table, key, path) in rows {
        let sim_key = match key.parse::<u64>() {
            Ok(n) if table == "Transaction" => RecordKey::Seq(n),
            _ => RecordKey::Code(key.clone()),
        };
        assert_eq!(
            path_of(&table, sim_key),
            path,
            "simulator layout of {table} {key}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_mwsync"))
            .args(["path", &table, &key])
            .output()
            .expect("mwsync runs");
        assert!(out.status.success(), "mwsync path {table} {key}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{path}\n"));
    }
}

/// A table mwsync cannot track, or a sequence number that is not one, exits 2 and says why.
#[test]
fn bad_tables_and_keys_are_refused() {
    for (args, says) in [
        (["path", "Asset", "X"], "not a table mwsync can track"),
        (["path", "Transaction", "ACME"], "filed by sequence number"),
        (["path", "Name", ""], "which is empty"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mwsync"))
            .args(args)
            .output()
            .expect("mwsync runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}"
        );
    }
}
