//! Commit messages on `main`: a subject, one line per record with the fields that changed
//! (old → new for short values), and trailers carrying the marker and the config hash. Pure
//! text building; it must not decide what changed.

use std::collections::BTreeMap;

use crate::events::RecordAction;
use crate::mwtime::MwTime;
use crate::record::FieldChange;
use crate::state::SyncState;

/// Values longer than this are summarised as "changed" rather than quoted.
pub const SHORT_VALUE: usize = 40;
/// Record lines listed before the rest is counted.
pub const MAX_RECORD_LINES: usize = 200;

/// One record's change, as a commit states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNote {
    /// Table name.
    pub table: &'static str,
    /// Key as shown (`ACME`, `#123`).
    pub key: String,
    /// What happened.
    pub action: RecordAction,
    /// Changed fields (system bookkeeping fields left out); empty for a created record,
    /// whose file holds them all.
    pub fields: Vec<FieldChange>,
    /// For a created record: how many fields it has.
    pub created_fields: usize,
    /// For moves: the old key.
    pub moved_from: Option<String>,
}

fn quote(value: &Option<String>) -> String {
    match value {
        None => "(none)".to_string(),
        Some(v) => format!("{v:?}"),
    }
}

/// One line per field change: `phone "555" → "556"` or `notes changed`.
pub fn describe_field(change: &FieldChange) -> String {
    let short = |v: &Option<String>| {
        v.as_ref()
            .is_none_or(|s| s.chars().count() <= SHORT_VALUE && !s.contains(['\r', '\n']))
    };
    if short(&change.old) && short(&change.new) {
        format!(
            "{} {} → {}",
            change.field,
            quote(&change.old),
            quote(&change.new)
        )
    } else {
        format!("{} changed", change.field)
    }
}

/// What a commit says of tables whose state on `main` was ahead of the clock (`behind`:
/// each table with what its state said) and that were re-read: a line each.
pub fn clock_note(now: MwTime, behind: &[(String, MwTime)]) -> String {
    behind
        .iter()
        .map(|(table, said)| {
            format!(
                "The MoneyWorks clock reads {now}, behind {said} in the {table} state; {table} was re-read from before the step\n"
            )
        })
        .collect()
}

/// The full commit message. `subject_verb` is e.g. `Pull` or `Full sync`.
pub fn commit_message(
    subject_verb: &str,
    notes: &[RecordNote],
    state: &SyncState,
    config_hash: &str,
    extra: &str,
) -> String {
    let mut per_table: BTreeMap<&str, usize> = BTreeMap::new();
    for n in notes {
        *per_table.entry(n.table).or_default() += 1;
    }
    let counts: Vec<String> = per_table.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let mut msg = if notes.is_empty() {
        format!("{subject_verb}: no record changes\n")
    } else {
        format!(
            "{subject_verb} {} record{}: {}\n",
            notes.len(),
            if notes.len() == 1 { "" } else { "s" },
            counts.join(", ")
        )
    };
    if !notes.is_empty() || !extra.is_empty() {
        msg.push('\n');
    }
    if !extra.is_empty() {
        msg.push_str(extra.trim_end());
        msg.push('\n');
        if !notes.is_empty() {
            msg.push('\n');
        }
    }
    for n in notes.iter().take(MAX_RECORD_LINES) {
        let line = match n.action {
            RecordAction::Created => format!("{} {} created", n.table, n.key),
            RecordAction::Deleted => format!("{} {} deleted", n.table, n.key),
            RecordAction::Moved => format!(
                "{} {} moved from {}",
                n.table,
                n.key,
                n.moved_from.as_deref().unwrap_or("?")
            ),
            RecordAction::Updated => format!("{} {} updated", n.table, n.key),
        };
        msg.push_str(&line);
        if !n.fields.is_empty() && n.action != RecordAction::Created {
            let fields: Vec<String> = n.fields.iter().map(describe_field).collect();
            msg.push_str(": ");
            msg.push_str(&fields.join("; "));
        } else if n.action == RecordAction::Created {
            msg.push_str(&format!(" ({} fields)", n.created_fields));
        }
        msg.push('\n');
    }
    if notes.len() > MAX_RECORD_LINES {
        msg.push_str(&format!(
            "… and {} more records\n",
            notes.len() - MAX_RECORD_LINES
        ));
    }
    msg.push('\n');
    let markers: Vec<String> = state
        .tables
        .iter()
        .filter_map(|(t, s)| s.marker.map(|m| format!("{t} {m}")))
        .collect();
    msg.push_str(&format!(
        "Mwsync-Marker: {}\n",
        if markers.is_empty() {
            "-".to_string()
        } else {
            markers.join(", ")
        }
    ));
    msg.push_str(&format!("Mwsync-Config: {config_hash}\n"));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mwtime::MwTime;
    use crate::state::TableState;

    /// The message names each record and field with old and new values, and ends in trailers.
    #[test]
    fn message_states_records_fields_and_trailers() {
        let mut state = SyncState::default();
        state.tables.insert(
            "Name".into(),
            TableState {
                marker: Some(MwTime::parse("20240101120000").expect("valid")),
                ..Default::default()
            },
        );
        let notes = vec![
            RecordNote {
                table: "Name",
                key: "ACME".into(),
                action: RecordAction::Updated,
                fields: vec![
                    FieldChange {
                        field: "phone".into(),
                        old: Some("555".into()),
                        new: Some("556".into()),
                    },
                    FieldChange {
                        field: "notes".into(),
                        old: None,
                        new: Some("x".repeat(100)),
                    },
                ],
                created_fields: 0,
                moved_from: None,
            },
            RecordNote {
                table: "Name",
                key: "NEW".into(),
                action: RecordAction::Created,
                fields: vec![],
                created_fields: 0,
                moved_from: None,
            },
        ];
        let msg = commit_message("Pull", &notes, &state, "abc123", "");
        assert_eq!(
            msg,
            "Pull 2 records: Name 2\n\nName ACME updated: phone \"555\" → \"556\"; notes changed\nName NEW created (0 fields)\n\nMwsync-Marker: Name 20240101120000\nMwsync-Config: abc123\n"
        );
    }
}
