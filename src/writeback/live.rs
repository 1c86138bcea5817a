//! The live precondition, pure: which copy of a planned record MoneyWorks holds (matched from
//! a batched re-read by the identity the plan knows), and the conflict rule judged against
//! that copy, never against `main`: gone, changed since the writer's base, a new code that
//! exists (or exists in another letter case), or already as asked. Also the lost-race check
//! after the import. It must not do I/O; the handler reads the live copies.

use super::compare::{case_twins, differing, fold_case, importable, normalised};
use super::compare::{field_text, find};
use super::import::Batch;
use super::plan::PlannedRecord;
use super::status::{FieldReport, FileReport, FileResult};
use crate::record::{KeyField, Record, RecordKey};

/// How a record is read from MoneyWorks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// By sequence number: the record itself, whatever its code became.
    Seq(u64),
    /// By code, matched without regard to letter case as MoneyWorks matches codes.
    Code(String),
}

/// What the live read found for one planned record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LiveCopy {
    /// The record MoneyWorks holds under the identity (`None`: no such record).
    pub(crate) record: Option<Record>,
    /// For a read by code: other codes MoneyWorks holds that differ only in letter case.
    pub(crate) twins: Vec<String>,
}

/// The identity the precondition reads: an update by the sequence number of its base (the
/// record the writer started from), a new record by its code.
pub(crate) fn before_identity(r: &PlannedRecord) -> Identity {
    match (r.base.as_ref().and_then(Record::seq), &r.key) {
        (Some(seq), _) => Identity::Seq(seq),
        (None, RecordKey::Seq(n)) => Identity::Seq(*n),
        (None, RecordKey::Code(c)) => Identity::Code(c.clone()),
    }
}

/// The identity verification reads: the key the import used (the code for a code-keyed
/// table, so that a record MoneyWorks' import created in place of a deleted one is found).
pub(crate) fn after_identity(r: &PlannedRecord) -> Identity {
    match &r.key {
        RecordKey::Seq(n) => Identity::Seq(*n),
        RecordKey::Code(c) => Identity::Code(c.clone()),
    }
}

/// The code of `record`, for a code-keyed table.
fn code_of(record: &Record) -> Option<&str> {
    match record.table.key {
        KeyField::Code(field) => record.text(field),
        KeyField::Seq => None,
    }
}

/// Matches the records one batched export `found` to each identity in `ids`.
pub(crate) fn match_live(ids: &[Identity], found: &[Record]) -> Vec<LiveCopy> {
    ids.iter()
        .map(|id| match id {
            Identity::Seq(n) => LiveCopy {
                record: found.iter().find(|r| r.seq() == Some(*n)).cloned(),
                twins: vec![],
            },
            Identity::Code(code) => {
                let folded = fold_case(code);
                let same: Vec<&Record> = found
                    .iter()
                    .filter(|r| code_of(r).is_some_and(|c| fold_case(c) == folded))
                    .collect();
                LiveCopy {
                    record: same
                        .iter()
                        .find(|r| code_of(r) == Some(code.as_str()))
                        .map(|r| (*r).clone()),
                    twins: same
                        .iter()
                        .filter_map(|r| code_of(r))
                        .filter(|c| case_twins(c, code))
                        .map(str::to_string)
                        .collect(),
                }
            }
        })
        .collect()
}

/// What the precondition decided for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Import it.
    Import,
    /// MoneyWorks already holds what was asked.
    Already,
    /// A conflict or a rejection, as reported.
    Refused(FileReport),
}

/// Judges `r` against the copy MoneyWorks holds now.
pub(crate) fn judge(r: &PlannedRecord, live: &LiveCopy) -> Verdict {
    if let Some(twin) = live.twins.first() {
        return Verdict::Refused(FileReport::rejected(
            &r.path,
            format!(
                "code {} differs only in letter case from {twin}, which exists in MoneyWorks; MoneyWorks matches codes without regard to case, so the import would change {twin}. Edit its file instead",
                r.key
            ),
        ));
    }
    let Some(current) = &live.record else {
        return match &r.base {
            None => Verdict::Import,
            Some(_) => Verdict::Refused(conflict(
                r,
                "the record was deleted in MoneyWorks since your base".into(),
                vec![],
            )),
        };
    };
    let Some(base) = &r.base else {
        if already_held(r, current) {
            return Verdict::Already;
        }
        return Verdict::Refused(conflict(
            r,
            format!(
                "{} {} already exists in MoneyWorks: it was created there since your base",
                r.table.name, r.key
            ),
            report_fields(r, current, &r.fields),
        ));
    };
    // Already applied only when what changed since the base is what was asked, as asked
    // (a crash after the import): any other change is someone else's, made before or after
    // an import mwsync can no longer tell apart, so it is a conflict, never silence.
    let changed = differing(&base.fields, &current.fields);
    if changed.iter().all(|f| r.fields.contains(f)) && already_held(r, current) {
        return Verdict::Already;
    }
    if changed.is_empty() {
        return Verdict::Import;
    }
    Verdict::Refused(conflict(
        r,
        "the record changed in MoneyWorks since your base".into(),
        report_fields(r, current, &changed),
    ))
}

/// What judging a batch against fresh live copies set aside.
#[derive(Debug, Default)]
pub(crate) struct Sifted {
    /// Paths MoneyWorks already holds as asked.
    pub(crate) already: Vec<String>,
    /// Conflicts and refusals.
    pub(crate) refused: Vec<FileReport>,
    /// The live copies of the records set aside, for `main`.
    pub(crate) truth: Vec<Record>,
}

/// Judges every record of `batch` against `copies` (read for it, in order): the records to
/// import stay in the batch with their copy, the others are set aside.
pub(crate) fn sift(batch: &mut Batch, copies: Vec<LiveCopy>) -> Sifted {
    let mut out = Sifted::default();
    let mut keep = Vec::new();
    let mut kept_copies = Vec::new();
    for (r, copy) in batch.records.drain(..).zip(copies) {
        match judge(&r, &copy) {
            Verdict::Import => {
                keep.push(r);
                kept_copies.push(copy);
                continue;
            }
            Verdict::Already => out.already.push(r.path),
            Verdict::Refused(report) => out.refused.push(report),
        }
        out.truth.extend(copy.record);
    }
    batch.records = keep;
    batch.live = kept_copies;
    out
}

fn conflict(r: &PlannedRecord, reason: String, fields: Vec<FieldReport>) -> FileReport {
    FileReport::with(&r.path, FileResult::Conflict, reason, fields)
}

/// The report of `names`: the writer's value, MoneyWorks' live value and the base value.
fn report_fields(r: &PlannedRecord, live: &Record, names: &[String]) -> Vec<FieldReport> {
    let asked = normalised(&r.desired.fields);
    let server = normalised(&live.fields);
    let base = r
        .base
        .as_ref()
        .map(|b| normalised(&b.fields))
        .unwrap_or_default();
    names
        .iter()
        .map(|name| FieldReport {
            field: name.clone(),
            asked: field_text(&asked, name),
            server: field_text(&server, name),
            base: field_text(&base, name),
            before: None,
        })
        .collect()
}

/// True when MoneyWorks holds every asked value (for a new record, whatever defaults the
/// server gave its other fields). A value counts as held when its text matches, or when the
/// server changed it since the base and it matches once normalised (the server's own
/// rewriting of `1.5` as `1.500000`, or of a writer's LF as CR).
fn already_held(r: &PlannedRecord, live: &Record) -> bool {
    let base_exact = r
        .base
        .as_ref()
        .map(|b| importable(&b.fields))
        .unwrap_or_default();
    let desired_exact = importable(&r.desired.fields);
    let desired_norm = normalised(&r.desired.fields);
    let live_exact = importable(&live.fields);
    let live_norm = normalised(&live.fields);
    r.fields.iter().all(|n| {
        let c = find(&live_exact, n);
        c == find(&desired_exact, n)
            || (c != find(&base_exact, n) && find(&live_norm, n) == find(&desired_norm, n))
    })
}

/// The fields nobody asked for that changed between the copy read just before the import
/// (`before`) and the one read after it (`after`): someone else changed the record while it
/// was being imported.
pub(crate) fn lost_race(r: &PlannedRecord, before: &Record, after: &Record) -> Vec<FieldReport> {
    let (b, a) = (normalised(&before.fields), normalised(&after.fields));
    differing(&before.fields, &after.fields)
        .into_iter()
        .filter(|name| !r.fields.contains(name))
        .map(|name| FieldReport {
            before: field_text(&b, &name),
            server: field_text(&a, &name),
            field: name,
            ..FieldReport::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{TableInfo, record_path, table_info};

    fn name() -> &'static TableInfo {
        table_info("Name").expect("known")
    }

    fn rec(seq: u64, code: &str, phone: &str, city: &str) -> Record {
        Record::from_xml(
            name(),
            &format!(
                "<name><sequencenumber system=\"true\">{seq}</sequencenumber><lastmodifiedtime system=\"true\">20240101000000</lastmodifiedtime><code>{code}</code><phone>{phone}</phone><city>{city}</city></name>"
            ),
        )
        .expect("valid")
    }

    fn update(phone: &str) -> PlannedRecord {
        PlannedRecord {
            path: record_path(name(), &RecordKey::Code("ACME".into())),
            table: name(),
            key: RecordKey::Code("ACME".into()),
            base: Some(rec(7, "ACME", "1", "Town")),
            desired: rec(7, "ACME", phone, "Town"),
            fields: vec!["phone".into()],
        }
    }

    fn create(code: &str) -> PlannedRecord {
        PlannedRecord {
            path: record_path(name(), &RecordKey::Code(code.into())),
            table: name(),
            key: RecordKey::Code(code.into()),
            base: None,
            desired: Record::from_xml(
                name(),
                &format!("<name><code>{code}</code><phone>2</phone></name>"),
            )
            .expect("valid"),
            fields: vec!["code".into(), "phone".into()],
        }
    }

    fn live(r: Record) -> LiveCopy {
        LiveCopy {
            record: Some(r),
            twins: vec![],
        }
    }

    fn refused(v: Verdict) -> FileReport {
        match v {
            Verdict::Refused(report) => report,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// An update reads the record it started from by sequence number, a create its code;
    /// verification reads by the key the import used.
    #[test]
    fn identities() {
        assert_eq!(before_identity(&update("2")), Identity::Seq(7));
        assert_eq!(
            before_identity(&create("NEW")),
            Identity::Code("NEW".into())
        );
        assert_eq!(after_identity(&update("2")), Identity::Code("ACME".into()));
    }

    /// A batched read is matched by sequence number, by exact code, and codes that differ
    /// only in letter case are set apart as twins.
    #[test]
    fn matches_a_batched_read() {
        let found = vec![rec(7, "ACME", "1", "Town"), rec(9, "Fresh", "", "")];
        let ids = [
            Identity::Seq(7),
            Identity::Seq(8),
            Identity::Code("FRESH".into()),
            Identity::Code("Fresh".into()),
        ];
        let got = match_live(&ids, &found);
        assert_eq!(got[0].record.as_ref().and_then(Record::seq), Some(7));
        assert_eq!(got[1], LiveCopy::default());
        assert_eq!(
            (got[2].record.is_none(), got[2].twins.clone()),
            (true, vec!["Fresh".to_string()])
        );
        assert_eq!(
            (
                got[3].record.as_ref().and_then(Record::seq),
                got[3].twins.len()
            ),
            (Some(9), 0)
        );
    }

    /// An update on a record as it was at the base is imported.
    #[test]
    fn unchanged_record_is_imported() {
        assert_eq!(
            judge(&update("2"), &live(rec(7, "ACME", "1", "Town"))),
            Verdict::Import
        );
    }

    /// A record gone from MoneyWorks is a conflict, never an import that would create it.
    #[test]
    fn deleted_record_is_a_conflict() {
        let report = refused(judge(&update("2"), &LiveCopy::default()));
        assert_eq!(report.result, FileResult::Conflict);
        assert!(
            report
                .reason
                .contains("deleted in MoneyWorks since your base"),
            "{}",
            report.reason
        );
    }

    /// A change to any field since the base is a conflict, reported with base, live and
    /// asked values, even when the writer asked for another field.
    #[test]
    fn any_field_changed_since_the_base_is_a_conflict() {
        let report = refused(judge(&update("2"), &live(rec(7, "ACME", "1", "City"))));
        assert_eq!(report.result, FileResult::Conflict);
        assert_eq!(
            report.fields,
            vec![FieldReport {
                field: "city".into(),
                asked: Some("Town".into()),
                server: Some("City".into()),
                base: Some("Town".into()),
                before: None,
            }]
        );
    }

    /// When MoneyWorks already holds the asked values (after a crash), nothing is
    /// imported; a new record may carry the server's defaults besides.
    #[test]
    fn already_held_values_are_already_applied() {
        assert_eq!(
            judge(&update("2"), &live(rec(7, "ACME", "2", "Town"))),
            Verdict::Already
        );
        assert_eq!(
            judge(&create("NEW"), &live(rec(12, "NEW", "2", "Dflt"))),
            Verdict::Already
        );
    }

    /// Held as asked but changed in another field too is a conflict: that change is
    /// someone else's, and mwsync cannot tell whether it came before its import.
    #[test]
    fn already_held_with_other_changes_is_a_conflict() {
        let report = refused(judge(&update("2"), &live(rec(7, "ACME", "2", "City"))));
        assert_eq!(report.result, FileResult::Conflict);
        let fields: Vec<&str> = report.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, vec!["phone", "city"]);
    }

    /// A new code that exists is a conflict naming it; one that exists in another letter
    /// case is refused.
    #[test]
    fn new_codes_that_exist_are_refused() {
        let report = refused(judge(&create("NEW"), &live(rec(12, "NEW", "9", ""))));
        assert_eq!(report.result, FileResult::Conflict);
        assert!(
            report.reason.contains("NEW already exists"),
            "{}",
            report.reason
        );
        let twin = LiveCopy {
            record: None,
            twins: vec!["New".into()],
        };
        let report = refused(judge(&create("NEW"), &twin));
        assert_eq!(report.result, FileResult::Rejected);
        assert!(
            report
                .reason
                .contains("differs only in letter case from New"),
            "{}",
            report.reason
        );
    }

    /// A field nobody asked for that changed during the import is a lost race; the asked
    /// field changing is not.
    #[test]
    fn lost_races_name_unasked_fields() {
        let r = update("2");
        let before = rec(7, "ACME", "1", "Town");
        assert!(lost_race(&r, &before, &rec(7, "ACME", "2", "Town")).is_empty());
        let raced = lost_race(&r, &before, &rec(7, "ACME", "2", "City"));
        assert_eq!(
            raced,
            vec![FieldReport {
                field: "city".into(),
                before: Some("Town".into()),
                server: Some("City".into()),
                ..FieldReport::default()
            }]
        );
    }
}
