//! Staging, pure: given records read from MoneyWorks and the current bytes of every path they
//! touch, decides for each record whether it is skipped (same bytes), created, updated or
//! moved (its code changed, so the file found by its sequence number goes), with the change
//! notes, modification times and index updates that go with it; a record that cannot be
//! keyed or written as XML is quarantined, never the whole batch. It also stages deletions
//! found by scans. It must not read the store or MoneyWorks: the shell reads every path
//! [`paths_to_read`] names first, in one go.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::commit_message::RecordNote;
use crate::engine::{EngineError, SeqIndex};
use crate::events::RecordAction;
use crate::moneyworks::MwError;
use crate::mwtime::MwTime;
use crate::quarantine::QuarantinedRecord;
use crate::record::{LMT_FIELD, Record, TableInfo, diff_fields, parse_record_path};
use crate::store::FileChange;

/// The bytes of paths before staging: staged changes over `main`; `None` for no file.
pub(crate) type Current = BTreeMap<String, Option<Vec<u8>>>;

/// Changes staged for the next commit.
#[derive(Debug, Default, Clone)]
pub(crate) struct Staged {
    /// Path → what happens to it.
    pub(crate) files: BTreeMap<String, FileChange>,
    /// One note per record, in staging order.
    pub(crate) notes: Vec<RecordNote>,
    /// (table, LastModifiedTime, seq) of staged records, for the newest-modified marker.
    pub(crate) times: Vec<(&'static str, MwTime, u64)>,
    /// Where sequence numbers now live (table, seq, path or `None` for deleted).
    pub(crate) index: Vec<(&'static str, u64, Option<String>)>,
    /// Records that could not be staged, held back with the reason.
    pub(crate) quarantined: Vec<QuarantinedRecord>,
}

impl Staged {
    /// Records staged.
    pub(crate) fn len(&self) -> usize {
        self.notes.len()
    }

    /// Adds `later`, staged after everything here.
    pub(crate) fn extend(&mut self, later: Staged) {
        self.files.extend(later.files);
        self.notes.extend(later.notes);
        self.times.extend(later.times);
        self.index.extend(later.index);
        self.quarantined.extend(later.quarantined);
    }

    /// The bytes `path` has with these changes applied, when they touch it.
    pub(crate) fn staged(&self, path: &str) -> Option<Option<&[u8]>> {
        self.files.get(path).map(|change| match change {
            FileChange::Put(b) => Some(b.as_slice()),
            FileChange::Delete => None,
        })
    }
}

/// A record MoneyWorks sent that mwsync cannot file.
pub(crate) fn invalid(detail: String) -> EngineError {
    EngineError::MoneyWorks(MwError::InvalidReply {
        command: "export".into(),
        detail,
    })
}

/// Every path staging `records` may read: each record's own path, and the path its
/// sequence number had, for code moves.
pub(crate) fn paths_to_read(records: &[Record], index: &SeqIndex) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for record in records {
        if let Ok(path) = record.path() {
            paths.insert(path);
        }
        if let Some(old) = record.seq().and_then(|s| index.path(record.table, s)) {
            paths.insert(old.to_string());
        }
    }
    paths
}

/// Stages `records` in order against `current` (which holds every path
/// [`paths_to_read`] named) and `index`. A record whose canonical bytes equal its file is
/// skipped, unless an older file of the same sequence number must go. A record that cannot
/// be keyed or written is quarantined and the others go on.
#[cfg(test)]
pub(crate) fn stage(records: Vec<Record>, current: &Current, index: &SeqIndex) -> Staged {
    stage_up_to(records, current, index, usize::MAX).0
}

/// Like [`stage`], but stops once `limit` records are staged and returns the records after
/// the last one staged, unstaged, so a checkpoint can be filled exactly.
pub(crate) fn stage_up_to(
    records: Vec<Record>,
    current: &Current,
    index: &SeqIndex,
    limit: usize,
) -> (Staged, Vec<Record>) {
    let mut out = Staged::default();
    // Index updates made by earlier records of this batch.
    let mut moved: HashMap<(&'static str, u64), Option<String>> = HashMap::new();
    let mut records = records.into_iter();
    while out.len() < limit {
        let Some(record) = records.next() else {
            break;
        };
        let table = record.table;
        let Some(seq) = record.seq() else {
            out.quarantined.push(QuarantinedRecord {
                table: table.name.to_string(),
                seq: None,
                key: record.key().ok().map(|k| k.to_string()),
                reason: "it has no numeric <sequencenumber>; correct the record in MoneyWorks"
                    .into(),
            });
            continue;
        };
        let old_path = match moved.get(&(table.name, seq)) {
            Some(p) => p.clone(),
            None => index.path(table, seq).map(str::to_string),
        };
        match stage_one(record, seq, old_path, current, &mut out) {
            Ok(Some(path)) => {
                moved.insert((table.name, seq), Some(path));
            }
            Ok(None) => {}
            Err(held) => out.quarantined.push(held),
        }
    }
    (out, records.collect())
}

/// Stages one record; returns its path when it was staged, or the record held back.
fn stage_one(
    record: Record,
    seq: u64,
    old_path: Option<String>,
    current: &Current,
    out: &mut Staged,
) -> Result<Option<String>, QuarantinedRecord> {
    let table = record.table;
    let held = |key: Option<String>, reason: String| QuarantinedRecord {
        table: table.name.to_string(),
        seq: Some(seq),
        key,
        reason: format!("{reason}; correct the record in MoneyWorks"),
    };
    let key = record.key().map_err(|e| held(None, e.to_string()))?;
    let path = record
        .path()
        .map_err(|e| held(Some(key.to_string()), e.to_string()))?;
    let bytes = record
        .canonical_file()
        .map_err(|e| held(Some(key.to_string()), e.to_string()))?;
    let read = |p: &str| -> Option<Vec<u8>> {
        match out.staged(p) {
            Some(b) => b.map(<[u8]>::to_vec),
            None => current.get(p).cloned().flatten(),
        }
    };
    let existing = read(&path);
    // The record's previous file when its code changed, found by sequence number. Looked up
    // even when the new path already has a file: that file may be another record's old one,
    // and the previous file must go either way.
    let previous = old_path
        .filter(|p| *p != path)
        .and_then(|p| read(&p).map(|b| (p, b)))
        .and_then(|(p, b)| {
            parse(table, &b)
                .filter(|o| o.seq() == Some(seq))
                .map(|o| (p, o))
        });
    if existing.as_deref() == Some(bytes.as_slice()) && previous.is_none() {
        return Ok(None);
    }
    let mut action = if existing.is_some() {
        RecordAction::Updated
    } else {
        RecordAction::Created
    };
    let mut old_fields = existing
        .as_deref()
        .and_then(|b| parse(table, b))
        .map(|r| r.fields)
        .unwrap_or_default();
    let mut moved_from = None;
    if let Some((old_path, old)) = previous {
        action = RecordAction::Moved;
        moved_from = old.key().ok().map(|k| k.to_string());
        old_fields = old.fields;
        out.files.insert(old_path, FileChange::Delete);
    }
    let mut fields: Vec<_> = diff_fields(&old_fields, &record.fields)
        .into_iter()
        .filter(|c| c.field != LMT_FIELD)
        .collect();
    // A new record's fields are its file; keeping them all (a transaction's lines too) in
    // every note and event of a first sync would cost more memory than the files.
    let created_fields = if action == RecordAction::Created {
        std::mem::take(&mut fields).len()
    } else {
        0
    };
    if let Some(t) = record.last_modified() {
        out.times.push((table.name, t, seq));
    }
    out.index.push((table.name, seq, Some(path.clone())));
    out.files.insert(path.clone(), FileChange::Put(bytes));
    out.notes.push(RecordNote {
        table: table.name,
        key: key.to_string(),
        action,
        fields,
        created_fields,
        moved_from,
    });
    Ok(Some(path))
}

fn parse(table: &'static TableInfo, bytes: &[u8]) -> Option<Record> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| Record::from_xml(table, t).ok())
}

/// Stages the deletion of `files` (path, sequence number) of `table`.
pub(crate) fn stage_deletes(table: &'static TableInfo, files: &[(String, u64)]) -> Staged {
    let mut out = Staged::default();
    for (path, seq) in files {
        let key = parse_record_path(path)
            .map(|(_, k)| k.to_string())
            .unwrap_or_else(|_| path.clone());
        out.files.insert(path.clone(), FileChange::Delete);
        out.index.push((table.name, *seq, None));
        out.notes.push(RecordNote {
            table: table.name,
            key,
            action: RecordAction::Deleted,
            fields: vec![],
            created_fields: 0,
            moved_from: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordKey, record_path, table_info};

    fn name_table() -> &'static TableInfo {
        table_info("Name").expect("known")
    }

    fn name(seq: u64, code: &str, phone: &str) -> Record {
        Record::from_xml(
            name_table(),
            &format!(
                "<name><sequencenumber system=\"true\">{seq}</sequencenumber><lastmodifiedtime system=\"true\">20240101000000</lastmodifiedtime><code>{code}</code><phone>{phone}</phone></name>"
            ),
        )
        .expect("valid")
    }

    fn path(code: &str) -> String {
        record_path(name_table(), &RecordKey::Code(code.into()))
    }

    fn file(r: &Record) -> Option<Vec<u8>> {
        Some(r.canonical_file().expect("writable"))
    }

    fn index_with(seq: u64, code: &str) -> SeqIndex {
        let mut index = SeqIndex::default();
        index.insert(name_table(), HashMap::from([(seq, path(code))]));
        index
    }

    /// Same bytes are skipped; a new file is a create, a changed one an update naming the
    /// changed fields without the stamp.
    #[test]
    fn skips_creates_and_updates() {
        let a = name(1, "A", "1");
        let b = name(2, "B", "2");
        let current = Current::from([
            (path("A"), file(&a)),
            (path("B"), file(&name(2, "B", "0"))),
            (path("C"), None),
        ]);
        let staged = stage(
            vec![a, b, name(3, "C", "3")],
            &current,
            &SeqIndex::default(),
        );
        let actions: Vec<_> = staged
            .notes
            .iter()
            .map(|n| (n.key.as_str(), n.action))
            .collect();
        assert_eq!(
            actions,
            vec![("B", RecordAction::Updated), ("C", RecordAction::Created)]
        );
        assert_eq!(staged.notes[0].fields.len(), 1);
        assert_eq!(staged.notes[0].fields[0].field, "phone");
        assert_eq!(staged.times.len(), 2);
    }

    /// A code change moves the file: the old one goes, found by sequence number, even when
    /// the new content is already there.
    #[test]
    fn code_changes_move_the_file() {
        let renamed = name(7, "NEW", "1");
        let current = Current::from([
            (path("OLD"), file(&name(7, "OLD", "1"))),
            (path("NEW"), file(&renamed)),
        ]);
        let index = index_with(7, "OLD");
        let paths = paths_to_read(std::slice::from_ref(&renamed), &index);
        assert_eq!(paths, BTreeSet::from([path("NEW"), path("OLD")]));
        let staged = stage(vec![renamed], &current, &index);
        assert_eq!(staged.files.get(&path("OLD")), Some(&FileChange::Delete));
        assert_eq!(staged.notes[0].action, RecordAction::Moved);
        assert_eq!(staged.notes[0].moved_from.as_deref(), Some("OLD"));
        assert_eq!(staged.index, vec![("Name", 7, Some(path("NEW")))]);
    }

    /// A file at the old path that belongs to another record is left alone.
    #[test]
    fn another_records_file_is_not_a_move() {
        let current = Current::from([
            (path("OLD"), file(&name(8, "OLD", "1"))),
            (path("NEW"), None),
        ]);
        let staged = stage(vec![name(7, "NEW", "1")], &current, &index_with(7, "OLD"));
        assert_eq!(staged.notes[0].action, RecordAction::Created);
        assert!(!staged.files.contains_key(&path("OLD")));
    }

    /// A later record of the same batch sees what an earlier one staged.
    #[test]
    fn later_records_see_earlier_staging() {
        let current = Current::from([(path("A"), None), (path("B"), None)]);
        let staged = stage(
            vec![name(1, "A", "1"), name(1, "B", "1")],
            &current,
            &SeqIndex::default(),
        );
        assert_eq!(staged.notes[1].action, RecordAction::Moved);
        assert_eq!(staged.files.get(&path("A")), Some(&FileChange::Delete));
    }

    /// Staging stops after the limit and hands back the rest unstaged; skipped records do not
    /// count against it.
    #[test]
    fn staging_up_to_a_limit_returns_the_rest() {
        let same = name(1, "A", "1");
        let current = Current::from([
            (path("A"), file(&same)),
            (path("B"), None),
            (path("C"), None),
        ]);
        let (staged, rest) = stage_up_to(
            vec![same, name(2, "B", "2"), name(3, "C", "3")],
            &current,
            &SeqIndex::default(),
            1,
        );
        assert_eq!(staged.len(), 1);
        assert_eq!(staged.notes[0].key, "B");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].seq(), Some(3));
    }

    /// A value XML cannot carry, or an empty code, holds that record back, naming table,
    /// key and field, and the rest of the batch is staged.
    #[test]
    fn unusable_records_are_held_back_alone() {
        let staged = stage(
            vec![name(1, "A", "1&#1;"), name(2, "", "2"), name(3, "C", "3")],
            &Current::from([(path("A"), None), (path("C"), None)]),
            &SeqIndex::default(),
        );
        assert_eq!(staged.notes.len(), 1);
        assert_eq!(staged.notes[0].key, "C");
        let held: Vec<_> = staged
            .quarantined
            .iter()
            .map(|q| (q.seq, q.key.as_deref(), q.reason.as_str()))
            .collect();
        assert_eq!(
            held,
            vec![
                (
                    Some(1),
                    Some("A"),
                    "Name A cannot be written as XML: field <phone> holds U+0001, a control character that XML 1.0 cannot carry; correct the record in MoneyWorks"
                ),
                (
                    Some(2),
                    None,
                    "Name record has no usable key: field <code> is empty; correct the record in MoneyWorks"
                ),
            ]
        );
    }

    /// Deletions note each record and drop it from the index.
    #[test]
    fn deletes_are_noted() {
        let staged = stage_deletes(name_table(), &[(path("A"), 1)]);
        assert_eq!(staged.notes[0].action, RecordAction::Deleted);
        assert_eq!(staged.notes[0].key, "A");
        assert_eq!(staged.index, vec![("Name", 1, None)]);
    }
}
