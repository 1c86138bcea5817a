//! The write-back status report on `main` (`.mwsync/status.toml`): its types, its canonical
//! text, and the pure functions that build it (a refused change set, one judged file, the
//! commit wording). It must not do I/O or decide what is imported.

use serde::{Deserialize, Serialize};

use super::compare::verify;
use super::live::lost_race;
use super::plan::{ChangePlan, PlannedRecord};
use crate::events::Event;
use crate::mwtime::MwTime;
use crate::record::Record;
use crate::store::{CommitId, CommitInfo};

/// The status report on `main`.
pub const STATUS_PATH: &str = ".mwsync/status.toml";

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied, verified and merged into `main`.
    Applied,
    /// Conflicts with MoneyWorks edits; nothing applied.
    Conflict,
    /// Refused before reaching MoneyWorks; nothing applied.
    Rejected,
    /// MoneyWorks refused or did not keep part of it; `main` shows what it holds.
    Failed,
    /// Imported while MoneyWorks changed the same records: a field nobody asked for changed
    /// between the precondition and the verification, or a later batch found its records
    /// changed; `main` shows what MoneyWorks holds.
    LostRace,
}

/// What happened to one file of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileResult {
    /// Imported and verified.
    Applied,
    /// MoneyWorks already held what was asked.
    AlreadyApplied,
    /// Changed in MoneyWorks since the writer's base.
    Conflict,
    /// Refused before import.
    Rejected,
    /// Imported but refused by MoneyWorks, or not kept as asked.
    Failed,
    /// Not attempted because another file stopped the write.
    NotAttempted,
    /// Imported and held as asked, but MoneyWorks changed the record during the import.
    LostRace,
}

/// One field in a report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldReport {
    /// Field name.
    pub field: String,
    /// The writer's value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asked: Option<String>,
    /// What MoneyWorks holds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server: Option<String>,
    /// The value at the writer's base.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base: Option<String>,
    /// For a lost race: what MoneyWorks held just before the import.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub before: Option<String>,
}

/// One file in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// Path on the branch.
    pub path: String,
    /// Outcome for this file.
    pub result: FileResult,
    /// Why, for anything but success.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub reason: String,
    /// Fields involved (conflicts and failures).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<FieldReport>,
}

/// The report of the last write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// The `changes` tip this report answers.
    pub commit: String,
    /// Its author.
    pub author: String,
    /// Its subject line.
    pub subject: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Why, when the write as a whole was refused (then `files` is empty).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub reason: String,
    /// Server time when it was handled.
    pub server_time: String,
    /// Per file (none when the write as a whole was refused).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub files: Vec<FileReport>,
}

/// `.mwsync/status.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusFile {
    /// The last write handled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_write: Option<WriteReport>,
}

impl StatusFile {
    /// The canonical text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self)
            .expect("the status always serialises because it holds only plain values");
        format!(
            "# mwsync write-back status. Written only by mwsync; see docs/writeback.md.\n{body}"
        )
    }
    /// Parses the file.
    pub fn parse(text: &str) -> Result<StatusFile, String> {
        toml::from_str(text).map_err(|e| format!("{STATUS_PATH} is unreadable: {e}"))
    }
}

impl FileReport {
    /// A file refused before import, with the reason.
    pub(crate) fn rejected(path: &str, reason: impl Into<String>) -> FileReport {
        FileReport {
            path: path.to_string(),
            result: FileResult::Rejected,
            reason: reason.into(),
            fields: vec![],
        }
    }

    /// A file with `result`, the reason and the fields concerned.
    pub(crate) fn with(
        path: &str,
        result: FileResult,
        reason: impl Into<String>,
        fields: Vec<FieldReport>,
    ) -> FileReport {
        FileReport {
            path: path.to_string(),
            result,
            reason: reason.into(),
            fields,
        }
    }

    /// A file with `result` and nothing more to say.
    pub(crate) fn plain(path: &str, result: FileResult) -> FileReport {
        FileReport {
            path: path.to_string(),
            result,
            reason: String::new(),
            fields: vec![],
        }
    }
}

impl WriteReport {
    /// The report on the write ending at `tip` (commit `info`), handled at server time
    /// `now`; applied until a file says otherwise.
    pub(crate) fn new(tip: &CommitId, info: &CommitInfo, now: MwTime) -> WriteReport {
        WriteReport {
            commit: tip.to_string(),
            author: info.author.clone(),
            subject: info.message.lines().next().unwrap_or("").to_string(),
            outcome: Outcome::Applied,
            reason: String::new(),
            server_time: now.to_string(),
            files: vec![],
        }
    }
}

/// A change set refused before anything reached MoneyWorks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// `Rejected` when any file was refused, else `Conflict`.
    pub(crate) outcome: Outcome,
    /// The problems, then every file that would have been imported, as not attempted.
    pub(crate) files: Vec<FileReport>,
    /// What to publish: the rejection reasons, then the conflicting records.
    pub(crate) events: Vec<Event>,
}

/// How the write ending at `tip` is refused, given a plan with problems.
pub(crate) fn refusal(tip: &CommitId, plan: &ChangePlan) -> Refusal {
    let of = |result| plan.problems.iter().filter(move |p| p.result == result);
    let reasons: Vec<String> = of(FileResult::Rejected)
        .map(|p| format!("{}: {}", p.path, p.reason))
        .collect();
    let conflicts: Vec<String> = of(FileResult::Conflict).map(|p| p.path.clone()).collect();
    let mut files = plan.problems.clone();
    files.extend(plan.apply.iter().map(|r| {
        FileReport::with(
            &r.path,
            FileResult::NotAttempted,
            "another file stopped the write",
            vec![],
        )
    }));
    files.extend(
        plan.already
            .iter()
            .map(|p| FileReport::plain(p, FileResult::AlreadyApplied)),
    );
    let mut events = Vec::new();
    let outcome = if reasons.is_empty() {
        Outcome::Conflict
    } else {
        events.push(Event::WriteRejected {
            commit: tip.to_string(),
            reasons,
        });
        Outcome::Rejected
    };
    if !conflicts.is_empty() {
        events.push(Event::WriteConflict {
            commit: tip.to_string(),
            records: conflicts,
        });
    }
    Refusal {
        outcome,
        files,
        events,
    }
}

/// What happened to one imported record, from MoneyWorks' refusal (if any), the live copy
/// read just before its import (`before`; `None` for a new record) and the verification read
/// after it (`after`):
/// - refused, not found after a create, or an asked field not held: failed;
/// - an update whose record is gone after the import, or holds another sequence number (it
///   was deleted or renamed in the window and MoneyWorks' update-or-create import made a new
///   one), or
///   whose fields nobody asked for changed between `before` and `after`: a lost race;
/// - otherwise applied.
pub(crate) fn judge(
    r: &PlannedRecord,
    before: Option<&Record>,
    after: Option<&Record>,
    refused: Option<&str>,
) -> FileReport {
    let report = |result, reason: String, fields| FileReport::with(&r.path, result, reason, fields);
    if let Some(message) = refused {
        return report(
            FileResult::Failed,
            format!("MoneyWorks refused it: {message}"),
            vec![],
        );
    }
    let Some(after) = after else {
        return match before {
            None => report(
                FileResult::Failed,
                "MoneyWorks has no such record after the import".into(),
                vec![],
            ),
            Some(_) => report(
                FileResult::LostRace,
                "the record was deleted in MoneyWorks during the import".into(),
                vec![],
            ),
        };
    };
    if let Some(before) = before
        && before.seq() != after.seq()
    {
        let seq = after
            .seq()
            .map_or_else(|| "?".to_string(), |s| s.to_string());
        return report(
            FileResult::LostRace,
            format!(
                "the record was deleted or renamed in MoneyWorks during the import, and MoneyWorks created a new record #{seq} from the fields sent"
            ),
            vec![],
        );
    }
    let missing = verify(r, after);
    if !missing.is_empty() {
        return report(
            FileResult::Failed,
            "MoneyWorks does not hold every field as asked (it rewrote the value, or it was changed again after the import)".into(),
            missing,
        );
    }
    let raced = before.map(|b| lost_race(r, b, after)).unwrap_or_default();
    if raced.is_empty() {
        return FileReport::plain(&r.path, FileResult::Applied);
    }
    let names: Vec<&str> = raced.iter().map(|f| f.field.as_str()).collect();
    report(
        FileResult::LostRace,
        format!(
            "MoneyWorks changed {} during the import; your fields are held as asked, but if the same edit also changed them it was overwritten: check them on main",
            names.join(", ")
        ),
        raced,
    )
}

/// The subject verb of the commit that records `outcome`.
pub(crate) fn commit_verb(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "Write-back applied",
        Outcome::Conflict => "Write-back conflict",
        Outcome::Rejected => "Write-back rejected",
        Outcome::Failed => "Write-back failed",
        Outcome::LostRace => "Write-back lost a race",
    }
}

/// The line of that commit's body that points at the status file.
pub(crate) fn commit_note(commit: &str, outcome: Outcome) -> String {
    format!("changes@{commit}: {outcome:?}; see {STATUS_PATH}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordKey, TableInfo, record_path, table_info};

    fn name() -> &'static TableInfo {
        table_info("Name").expect("known")
    }

    fn rec(seq: u64, phone: &str, city: &str) -> Record {
        Record::from_xml(
            name(),
            &format!(
                "<name><sequencenumber system=\"true\">{seq}</sequencenumber><code>ACME</code><phone>{phone}</phone><city>{city}</city></name>"
            ),
        )
        .expect("valid")
    }

    fn update() -> PlannedRecord {
        PlannedRecord {
            path: record_path(name(), &RecordKey::Code("ACME".into())),
            table: name(),
            key: RecordKey::Code("ACME".into()),
            base: Some(rec(7, "1", "Town")),
            desired: rec(7, "2", "Town"),
            fields: vec!["phone".into()],
        }
    }

    /// After the import: held as asked is applied; a refusal or an asked value not held is
    /// failed; a record gone, created afresh, or changed in a field nobody asked for is a
    /// lost race naming what changed.
    #[test]
    fn judges_each_imported_record() {
        let r = update();
        let before = rec(7, "1", "Town");
        let judged = |after: Option<Record>, refused: Option<&str>| {
            judge(&r, Some(&before), after.as_ref(), refused)
        };
        assert_eq!(
            judged(Some(rec(7, "2", "Town")), None).result,
            FileResult::Applied
        );
        assert_eq!(
            judged(Some(rec(7, "2", "Town")), Some("no")).result,
            FileResult::Failed
        );
        let failed = judged(Some(rec(7, "3", "Town")), None);
        assert_eq!(
            (failed.result, failed.fields[0].field.as_str()),
            (FileResult::Failed, "phone")
        );
        let gone = judged(None, None);
        assert_eq!(gone.result, FileResult::LostRace);
        assert!(
            gone.reason
                .contains("deleted in MoneyWorks during the import"),
            "{}",
            gone.reason
        );
        let anew = judged(Some(rec(32, "2", "")), None);
        assert!(
            anew.reason.contains("created a new record #32"),
            "{}",
            anew.reason
        );
        let raced = judged(Some(rec(7, "2", "City")), None);
        assert_eq!(raced.result, FileResult::LostRace);
        assert!(
            raced
                .reason
                .contains("MoneyWorks changed city during the import"),
            "{}",
            raced.reason
        );
        assert_eq!(raced.fields[0].before.as_deref(), Some("Town"));
        let created = judge(&r, None, None, None);
        assert_eq!(created.result, FileResult::Failed);
    }

    /// A write refused as a whole carries its reason in `[last_write]` and no files.
    #[test]
    fn whole_write_reason_round_trips() {
        let report = WriteReport {
            commit: "a".repeat(40),
            author: "w <w@x>".into(),
            subject: "s".into(),
            outcome: Outcome::Rejected,
            reason: "no common history".into(),
            server_time: "20260101000000".into(),
            files: vec![],
        };
        let text = StatusFile {
            last_write: Some(report.clone()),
        }
        .to_toml();
        assert!(text.contains("reason = \"no common history\""), "{text}");
        assert!(!text.contains("files"), "{text}");
        assert_eq!(
            StatusFile::parse(&text).expect("parses").last_write,
            Some(report)
        );
    }
}
