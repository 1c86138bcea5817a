//! The write-back status report on `main` (`.mwsync/status.toml`): its types, its canonical
//! text, and the pure functions that build it (a refused change set, one judged file, the
//! commit wording). It must not do I/O or decide what is imported.

use serde::{Deserialize, Serialize};

use super::compare::verify;
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
}

/// One field in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Server time when it was handled.
    pub server_time: String,
    /// Per file.
    #[serde(default)]
    pub files: Vec<FileReport>,
}

/// `.mwsync/status.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusFile {
    /// The last write handled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_write: Option<WriteReport>,
    /// Records MoneyWorks holds that mwsync cannot file (see `crate::quarantine`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub quarantined: Vec<crate::quarantine::QuarantinedRecord>,
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
    files.extend(plan.apply.iter().map(|r| FileReport {
        reason: "another file stopped the write".into(),
        ..FileReport::plain(&r.path, FileResult::NotAttempted)
    }));
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

/// What happened to one imported record: MoneyWorks `refused` it, has no such record after
/// the import, did not keep every asked field, or holds it as asked.
pub(crate) fn judge(r: &PlannedRecord, got: Option<&Record>, refused: Option<&str>) -> FileReport {
    let failed = |reason: String| FileReport {
        reason,
        ..FileReport::plain(&r.path, FileResult::Failed)
    };
    match (got, refused) {
        (_, Some(message)) => failed(format!("MoneyWorks refused it: {message}")),
        (None, None) => failed("MoneyWorks has no such record after the import".into()),
        (Some(got), None) => {
            let missing = verify(r, got);
            if missing.is_empty() {
                FileReport::plain(&r.path, FileResult::Applied)
            } else {
                FileReport {
                    fields: missing,
                    ..failed("MoneyWorks did not keep every field as asked".into())
                }
            }
        }
    }
}

/// The subject verb of the commit that records `outcome`.
pub(crate) fn commit_verb(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "Write-back applied",
        Outcome::Conflict => "Write-back conflict",
        Outcome::Rejected => "Write-back rejected",
        Outcome::Failed => "Write-back failed",
    }
}

/// The line of that commit's body that points at the status file.
pub(crate) fn commit_note(commit: &str, outcome: Outcome) -> String {
    format!("changes@{commit}: {outcome:?}; see {STATUS_PATH}")
}
