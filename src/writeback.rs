//! Write-back: applies a writer's commits on the `changes` branch to MoneyWorks, verifies
//! them, and merges them into `main`. It owns change-set planning (validation and conflict
//! detection, pure), import bodies, verification after normalising the server's rewriting,
//! and the status report on `main`. It must not poll on its own schedule; the daemon polls
//! once before each write so `main` is current, and never between its steps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::commit_message::{RecordNote, commit_message};
use crate::config::{REPO_CONFIG_PATH, RepoConfigFile};
use crate::engine::{Engine, EngineError};
use crate::events::Event;
use crate::moneyworks::{Direction, ExportFormat, ExportQuery, MoneyWorks, MwError};
use crate::record::{Field, KeyField, Record, RecordKey, TableInfo, Value, parse_record_path};
use crate::state::STATE_PATH;
use crate::store::{CommitId, FileChange, Store};
use crate::xmlwrite::{XmlWriteError, XmlWriter, import_fields};

/// The status report on `main`.
pub const STATUS_PATH: &str = ".mwsync/status.toml";
/// Largest record file accepted from `changes`.
pub const MAX_RECORD_FILE_BYTES: usize = 1024 * 1024;

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

/// One touched file: at the writer's base, as asked, and on `main` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersions {
    /// Path.
    pub path: String,
    /// Bytes at merge-base(main, changes).
    pub base: Option<Vec<u8>>,
    /// Bytes at the changes tip.
    pub desired: Option<Vec<u8>>,
    /// Bytes on `main` now.
    pub current: Option<Vec<u8>>,
}

/// A record to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRecord {
    /// Path.
    pub path: String,
    /// Table.
    pub table: &'static TableInfo,
    /// Key.
    pub key: RecordKey,
    /// The writer's record.
    pub desired: Record,
    /// Top-level importable fields to send (subfiles by name), in the writer's order.
    pub fields: Vec<String>,
    /// True for a new record.
    pub create: bool,
}

/// What to do with a change set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangePlan {
    /// Records to import.
    pub apply: Vec<PlannedRecord>,
    /// Files already as asked in MoneyWorks (or unchanged).
    pub already: Vec<String>,
    /// Conflicts and rejections, reported as they will appear in the status.
    pub problems: Vec<FileReport>,
    /// A valid new repo config (the writer's bytes).
    pub config: Option<Vec<u8>>,
}

fn reject(path: &str, reason: impl Into<String>) -> FileReport {
    FileReport {
        path: path.to_string(),
        result: FileResult::Rejected,
        reason: reason.into(),
        fields: vec![],
    }
}

/// Importable (non-system) fields, recursively, for comparison.
fn importable(fields: &[Field]) -> Vec<Field> {
    fields
        .iter()
        .filter(|f| !f.system)
        .map(|f| Field {
            name: f.name.clone(),
            system: false,
            value: match &f.value {
                Value::Text(t) => Value::Text(t.clone()),
                Value::Subfile(rows) => Value::Subfile(
                    rows.iter()
                        .filter(|r| !r.system)
                        .map(|r| crate::record::Row {
                            system: false,
                            fields: importable(&r.fields),
                        })
                        .collect(),
                ),
            },
        })
        .collect()
}

fn system_values(fields: &[Field]) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter(|f| f.system)
        .filter_map(|f| match &f.value {
            Value::Text(t) => Some((f.name.clone(), t.clone())),
            Value::Subfile(_) => None,
        })
        .collect()
}

/// Normalises a value the way MoneyWorks rewrites it: numbers compare by value
/// (`1.5` = `1.500000`), everything else exactly.
pub fn normalise(value: &str) -> String {
    let t = value.trim();
    let numeric = !t.is_empty()
        && t.trim_start_matches('-').split('.').count() <= 2
        && t.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && t.trim_start_matches('-')
            .chars()
            .any(|c| c.is_ascii_digit());
    if numeric && t.contains('.') {
        let trimmed = t.trim_end_matches('0').trim_end_matches('.');
        let s = if trimmed == "-0" || trimmed.is_empty() {
            "0"
        } else {
            trimmed
        };
        return s.to_string();
    }
    if numeric {
        return t.to_string();
    }
    value.to_string()
}

fn normalised(fields: &[Field]) -> Vec<Field> {
    importable(fields)
        .into_iter()
        .map(|mut f| {
            match &mut f.value {
                Value::Text(t) => *t = normalise(t),
                Value::Subfile(rows) => {
                    for r in rows.iter_mut() {
                        r.fields = normalised(&r.fields);
                    }
                }
            }
            f
        })
        .collect()
}

fn find<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name == name)
}

fn field_text(fields: &[Field], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| match &f.value {
            Value::Text(t) => t.clone(),
            Value::Subfile(rows) => format!("({} rows)", rows.len()),
        })
}

/// Plans a change set. Pure: validation, conflict detection and what to import.
pub fn plan(tracked: &[&'static TableInfo], files: Vec<FileVersions>) -> ChangePlan {
    let mut out = ChangePlan::default();
    for fv in files {
        let path = fv.path.as_str();
        if path == STATE_PATH || path == STATUS_PATH {
            out.problems
                .push(reject(path, format!("{path} is written only by mwsync")));
            continue;
        }
        if path == REPO_CONFIG_PATH {
            let Some(bytes) = &fv.desired else {
                out.problems
                    .push(reject(path, "the repo config cannot be deleted"));
                continue;
            };
            let checked = std::str::from_utf8(bytes)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|t| RepoConfigFile::parse(t, REPO_CONFIG_PATH).map_err(|e| e.to_string()))
                .and_then(|f| f.validate().map_err(|e| e.to_string()));
            match checked {
                Ok(_) => out.config = Some(bytes.clone()),
                Err(e) => out
                    .problems
                    .push(reject(path, format!("invalid repo config: {e}"))),
            }
            continue;
        }
        if path.starts_with(".mwsync/") {
            out.problems.push(reject(
                path,
                "only .mwsync/config.toml may be changed by writers",
            ));
            continue;
        }
        let (table, key) = match parse_record_path(path) {
            Ok(tk) => tk,
            Err(e) => {
                out.problems.push(reject(path, format!("{e}")));
                continue;
            }
        };
        if !tracked.iter().any(|t| t.name == table.name) {
            let names: Vec<&str> = tracked.iter().map(|t| t.name).collect();
            out.problems.push(reject(
                path,
                format!(
                    "table {} is not tracked (tables = {})",
                    table.name,
                    names.join(", ")
                ),
            ));
            continue;
        }
        let Some(desired_bytes) = &fv.desired else {
            out.problems.push(reject(
                path,
                "deleting a record through changes is not supported; delete it in MoneyWorks",
            ));
            continue;
        };
        if desired_bytes.len() > MAX_RECORD_FILE_BYTES {
            out.problems.push(reject(
                path,
                format!(
                    "the file is {} bytes, over the {MAX_RECORD_FILE_BYTES}-byte limit",
                    desired_bytes.len()
                ),
            ));
            continue;
        }
        let desired = match std::str::from_utf8(desired_bytes)
            .map_err(|_| "the file is not UTF-8".to_string())
            .and_then(|t| Record::from_xml(table, t).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(reject(path, e));
                continue;
            }
        };
        if let Err(e) = desired.canonical_file() {
            out.problems.push(reject(path, e.to_string()));
            continue;
        }
        let parse_side = |b: &Option<Vec<u8>>| {
            b.as_ref()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| Record::from_xml(table, t).ok())
        };
        let base = parse_side(&fv.base);
        let current = parse_side(&fv.current);
        match (&base, table.key) {
            (None, KeyField::Seq) => {
                out.problems.push(reject(path, format!("new {} records cannot be created through changes: MoneyWorks assigns their sequence numbers", table.name)));
                continue;
            }
            (None, KeyField::Code(field)) if desired.text(field).is_none_or(str::is_empty) => {
                out.problems
                    .push(reject(path, format!("the record has no <{field}>")));
                continue;
            }
            _ => {}
        }
        match desired.key() {
            Ok(k) if k == key => {}
            Ok(k) => {
                out.problems.push(reject(path, format!("the file holds key {k} but its path is for {key}; codes cannot be changed through changes")));
                continue;
            }
            Err(e) => {
                out.problems.push(reject(path, e.to_string()));
                continue;
            }
        }
        let base_sys = base
            .as_ref()
            .map(|b| system_values(&b.fields))
            .unwrap_or_default();
        let desired_sys = system_values(&desired.fields);
        let changed_sys: Vec<String> = desired_sys
            .iter()
            .filter(|(k, v)| base_sys.get(*k) != Some(*v) && !(base.is_none() && v.is_empty()))
            .map(|(k, _)| k.clone())
            .chain(
                base_sys
                    .keys()
                    .filter(|k| base.is_some() && !desired_sys.contains_key(*k))
                    .cloned(),
            )
            .collect();
        if !changed_sys.is_empty() {
            out.problems.push(reject(
                path,
                format!(
                    "system fields cannot be changed: {}",
                    changed_sys.join(", ")
                ),
            ));
            continue;
        }
        let base_fields = base
            .as_ref()
            .map(|b| normalised(&b.fields))
            .unwrap_or_default();
        let desired_fields = normalised(&desired.fields);
        let removed: Vec<&str> = base_fields
            .iter()
            .filter(|b| !desired_fields.iter().any(|d| d.name == b.name))
            .map(|b| b.name.as_str())
            .collect();
        if !removed.is_empty() {
            out.problems.push(reject(
                path,
                format!(
                    "fields cannot be removed (write them empty to clear them): {}",
                    removed.join(", ")
                ),
            ));
            continue;
        }
        // What the writer asks for: the fields whose text it changed, or every non-empty
        // field of a new record. Only these are imported and verified. Text is compared
        // exactly here: "1.1" in place of "1.10" is a change the writer asked for.
        let base_exact = base
            .as_ref()
            .map(|b| importable(&b.fields))
            .unwrap_or_default();
        let desired_exact = importable(&desired.fields);
        let asked: Vec<String> = desired_exact
            .iter()
            .filter(|f| base.is_none() || find(&base_exact, &f.name) != Some(*f))
            .filter(|f| base.is_some() || !matches!(&f.value, Value::Text(t) if t.is_empty()))
            .map(|f| f.name.clone())
            .collect();
        if asked.is_empty() {
            out.already.push(path.to_string());
            continue;
        }
        // Already applied when MoneyWorks holds every asked value: after a crash between the
        // import and the merge, the server may also have rewritten fields nobody asked for
        // (a recomputed gross, a new record's defaults), and that is not a conflict. A value
        // counts as held when its text matches, or when the server changed it since the base
        // and it matches by number (the server's own rewriting of `1.5` as `1.500000`).
        if let Some(cur) = &current {
            let cur_exact = importable(&cur.fields);
            let cur_norm = normalised(&cur.fields);
            let held = |n: &String| {
                let c = find(&cur_exact, n);
                c == find(&desired_exact, n)
                    || (c != find(&base_exact, n) && find(&cur_norm, n) == find(&desired_fields, n))
            };
            if asked.iter().all(held) {
                out.already.push(path.to_string());
                continue;
            }
        }
        let unchanged_since_base = match (&fv.base, &fv.current) {
            (Some(b), Some(c)) => {
                b == c
                    || base
                        .as_ref()
                        .zip(current.as_ref())
                        .is_some_and(|(b, c)| normalised(&b.fields) == normalised(&c.fields))
            }
            (None, None) => true,
            _ => false,
        };
        if !unchanged_since_base {
            let cur_fields = current
                .as_ref()
                .map(|c| normalised(&c.fields))
                .unwrap_or_default();
            let mut fields = Vec::new();
            for f in &desired_fields {
                let asked = field_text(&desired_fields, &f.name);
                let server = field_text(&cur_fields, &f.name);
                if asked != server {
                    fields.push(FieldReport {
                        field: f.name.clone(),
                        asked,
                        server,
                        base: field_text(&base_fields, &f.name),
                    });
                }
            }
            let reason = if current.is_none() {
                "the record was deleted in MoneyWorks since the writer's base".to_string()
            } else if base.is_none() {
                "a record with this key was created in MoneyWorks meanwhile".to_string()
            } else {
                "the record changed in MoneyWorks since the writer's base".to_string()
            };
            out.problems.push(FileReport {
                path: path.to_string(),
                result: FileResult::Conflict,
                reason,
                fields,
            });
            continue;
        }
        out.apply.push(PlannedRecord {
            path: path.to_string(),
            table,
            key,
            desired,
            fields: asked,
            create: base.is_none(),
        });
    }
    out
}

/// The import body for records of one table: the key plus the changed fields; Names,
/// Products, Jobs and Accounts match on their code, other tables update by `seqnum`.
pub fn import_body(records: &[&PlannedRecord]) -> String {
    let Some(first) = records.first() else {
        return String::new();
    };
    let table = first.table;
    let mut w = XmlWriter::compact();
    w.declaration(false);
    w.newline();
    let written = write_import(&mut w, table, records);
    written.expect("planned records are writable because plan() refuses records that are not");
    String::from_utf8(w.finish()).expect("the writer emits UTF-8 because it writes only str data")
}

fn write_import(
    w: &mut XmlWriter,
    table: &TableInfo,
    records: &[&PlannedRecord],
) -> Result<(), XmlWriteError> {
    w.start("import", &[])?;
    w.newline();
    match table.key {
        KeyField::Code(code_field) => {
            w.start("table", &[("name", table.name), ("update", "true")])?;
            w.newline();
            for r in records {
                w.start(table.element, &[])?;
                // The key first, then the changed fields in the writer's order.
                let key: Vec<Field> = r
                    .desired
                    .fields
                    .iter()
                    .filter(|f| f.name == code_field)
                    .cloned()
                    .collect();
                import_fields(w, &key, None)?;
                let rest: Vec<String> = r
                    .fields
                    .iter()
                    .filter(|f| *f != code_field)
                    .cloned()
                    .collect();
                import_fields(w, &r.desired.fields, Some(&rest))?;
                w.end(table.element);
                w.newline();
            }
            w.end("table");
            w.newline();
        }
        KeyField::Seq => {
            for r in records {
                let RecordKey::Seq(seq) = r.key else { continue };
                let seq = seq.to_string();
                w.start(
                    "table",
                    &[("name", table.name), ("update", "true"), ("seqnum", &seq)],
                )?;
                w.newline();
                w.start(table.element, &[])?;
                import_fields(w, &r.desired.fields, Some(&r.fields))?;
                w.end(table.element);
                w.newline();
                w.end("table");
                w.newline();
            }
        }
    }
    w.end("import");
    Ok(())
}

/// A MoneyWorks search that finds exactly one record by key (case-insensitive text
/// comparison is filtered afterwards).
pub fn key_search(table: &TableInfo, key: &RecordKey) -> String {
    match (table.key, key) {
        (KeyField::Code(field), RecordKey::Code(code)) if !code.contains('`') => {
            format!("{field} = `{code}`")
        }
        (KeyField::Code(field), RecordKey::Code(code)) => {
            format!(
                "{field} = \"{}\"",
                code.replace('\\', "\\\\").replace('"', "\\\"")
            )
        }
        (_, RecordKey::Seq(n)) => format!("SequenceNumber = {n}"),
        (KeyField::Seq, RecordKey::Code(c)) => format!("SequenceNumber = {c}"),
    }
}

/// Fields of `asked` (only those named) that `got` does not hold after normalisation.
pub fn verify(asked: &PlannedRecord, got: &Record) -> Vec<FieldReport> {
    let want = normalised(&asked.desired.fields);
    let have = normalised(&got.fields);
    asked
        .fields
        .iter()
        .filter_map(|name| {
            let a = want.iter().find(|f| &f.name == name);
            let h = have.iter().find(|f| &f.name == name);
            (a != h).then(|| FieldReport {
                field: name.clone(),
                asked: field_text(&want, name),
                server: field_text(&have, name),
                base: None,
            })
        })
        .collect()
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// The `changes` commit waiting to be handled, if any: not yet in `main` and not already
    /// answered by the status on `main`.
    pub fn pending_write(&self) -> Result<Option<CommitId>, EngineError> {
        let Some(tip) = self
            .store
            .remote_tip(&self.settings.changes_branch)
            .map_err(EngineError::Store)?
        else {
            return Ok(None);
        };
        if self.main.is_none() {
            // Writes wait for the first poll to create main.
            return Ok(None);
        }
        if let Some(main) = &self.main {
            if self
                .store
                .is_ancestor(&tip, main)
                .map_err(EngineError::Store)?
            {
                return Ok(None);
            }
            if let Some(text) = self.read_text(main, STATUS_PATH)?
                && let Ok(status) = StatusFile::parse(&text)
                && let Some(last) = status.last_write
                && last.commit == tip.0
                && last.outcome != Outcome::Applied
            {
                return Ok(None);
            }
        }
        Ok(Some(tip))
    }

    /// One daemon cycle: if a write is waiting, poll once so `main` is current, then handle
    /// the write, and repeat for writes queued meanwhile; otherwise just poll.
    pub async fn cycle(&mut self) -> Result<crate::pull::PollReport, EngineError> {
        let result = self.cycle_inner().await;
        if result.is_err() {
            self.rollback();
        }
        result
    }

    async fn cycle_inner(&mut self) -> Result<crate::pull::PollReport, EngineError> {
        let mut report = self.poll().await?;
        // Writes come before scans: a writer's config change (say, a higher
        // max_delete_percent after a mass-delete stop) must be able to take effect.
        let mut handled = 0;
        while let Some(tip) = self.pending_write()? {
            self.handle_write(&tip).await?;
            handled += 1;
            let again = self.poll().await?;
            report.records += again.records;
            report.requests += again.requests;
            report.commits += again.commits;
            if handled >= 16 {
                break;
            }
        }
        if let Some((now, _)) = self.last_clock {
            self.fingerprint_scan_due(now).await?;
        }
        self.full_sync_if_requested().await?;
        Ok(report)
    }

    /// Handles the write ending at `tip`. `main` must be current (poll first).
    pub async fn handle_write(&mut self, tip: &CommitId) -> Result<Outcome, EngineError> {
        let main = self.main.clone().ok_or_else(|| EngineError::Corrupt {
            path: self.settings.branch.clone(),
            detail: "writes need an existing main; wait for the first poll".into(),
        })?;
        let info = self.store.commit_info(tip).map_err(EngineError::Store)?;
        let base = self
            .store
            .merge_base(&main, tip)
            .map_err(EngineError::Store)?;
        let paths = self
            .store
            .changed_paths(base.as_ref(), tip)
            .map_err(EngineError::Store)?;
        let record_count = paths.iter().filter(|p| !p.starts_with(".mwsync/")).count();
        self.publish(Event::WriteDetected {
            commit: tip.to_string(),
            author: info.author.clone(),
            records: record_count,
        });
        let mut files = Vec::with_capacity(paths.len());
        for path in &paths {
            let read = |c: Option<&CommitId>| -> Result<Option<Vec<u8>>, EngineError> {
                match c {
                    Some(c) => self.store.read_file(c, path).map_err(EngineError::Store),
                    None => Ok(None),
                }
            };
            files.push(FileVersions {
                path: path.clone(),
                base: read(base.as_ref())?,
                desired: read(Some(tip))?,
                current: read(Some(&main))?,
            });
        }
        let plan = plan(&self.repo.tables, files);
        let now = self.read_clock().await?;
        let mut report = WriteReport {
            commit: tip.to_string(),
            author: info.author.clone(),
            subject: info.message.lines().next().unwrap_or("").to_string(),
            outcome: Outcome::Applied,
            server_time: now.to_string(),
            files: vec![],
        };
        tracing::info!(commit = %tip, "checked write changes@{}: {} to import, {} already applied, {} refused or conflicting", tip.short(), plan.apply.len(), plan.already.len(), plan.problems.len());
        if !plan.problems.is_empty() {
            let conflict = plan
                .problems
                .iter()
                .any(|p| p.result == FileResult::Conflict);
            let rejected = plan
                .problems
                .iter()
                .any(|p| p.result == FileResult::Rejected);
            report.outcome = if rejected {
                Outcome::Rejected
            } else {
                Outcome::Conflict
            };
            report.files = plan.problems.clone();
            for r in &plan.apply {
                report.files.push(FileReport {
                    path: r.path.clone(),
                    result: FileResult::NotAttempted,
                    reason: "another file stopped the write".into(),
                    fields: vec![],
                });
            }
            if rejected {
                let reasons = plan
                    .problems
                    .iter()
                    .filter(|p| p.result == FileResult::Rejected)
                    .map(|p| format!("{}: {}", p.path, p.reason))
                    .collect();
                self.publish(Event::WriteRejected {
                    commit: tip.to_string(),
                    reasons,
                });
            }
            if conflict {
                let records = plan
                    .problems
                    .iter()
                    .filter(|p| p.result == FileResult::Conflict)
                    .map(|p| p.path.clone())
                    .collect();
                self.publish(Event::WriteConflict {
                    commit: tip.to_string(),
                    records,
                });
            }
            let hash = self.repo.hash();
            self.commit_status(report, BTreeMap::new(), &[], None, &hash)
                .await?;
            return Ok(if rejected {
                Outcome::Rejected
            } else {
                Outcome::Conflict
            });
        }
        // Import, grouped per table.
        let mut import_errors: BTreeMap<String, String> = BTreeMap::new();
        let mut by_table: BTreeMap<&str, Vec<&PlannedRecord>> = BTreeMap::new();
        for r in &plan.apply {
            by_table.entry(r.table.name).or_default().push(r);
        }
        for (table, records) in &by_table {
            for r in records {
                tracing::info!(table, key = %r.key, "applying {table} {}: {}", r.key, r.fields.join(", "));
            }
            match self.import(&import_body(records)).await {
                Ok(reply) => {
                    tracing::info!(table, "MoneyWorks accepted the import: {}", reply.trim())
                }
                Err(EngineError::MoneyWorks(MwError::Rejected { message }))
                    if records.len() > 1 =>
                {
                    tracing::warn!(
                        table,
                        "MoneyWorks refused the batch ({message}); importing one record at a time to find which"
                    );
                    for r in records {
                        match self.import(&import_body(&[r])).await {
                            Ok(_) => {}
                            Err(EngineError::MoneyWorks(MwError::Rejected { message })) => {
                                import_errors.insert(r.path.clone(), message);
                            }
                            // Anything else is not MoneyWorks' answer about this record: stop,
                            // and let the next cycle find what was applied.
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(EngineError::MoneyWorks(MwError::Rejected { message })) => {
                    import_errors.insert(records[0].path.clone(), message);
                }
                Err(e) => return Err(e),
            }
        }
        crate::engine::pause_point("after-import");
        // Verify: re-read exactly the affected records.
        let mut changes = BTreeMap::new();
        let mut notes = Vec::new();
        let mut failures = Vec::new();
        for r in &plan.apply {
            let got = self.reread(r.table, &r.key).await?;
            let file = match (&got, import_errors.get(&r.path)) {
                (_, Some(message)) => FileReport {
                    path: r.path.clone(),
                    result: FileResult::Failed,
                    reason: format!("MoneyWorks refused it: {message}"),
                    fields: vec![],
                },
                (None, None) => FileReport {
                    path: r.path.clone(),
                    result: FileResult::Failed,
                    reason: "MoneyWorks has no such record after the import".into(),
                    fields: vec![],
                },
                (Some(got), None) => {
                    let missing = verify(r, got);
                    if missing.is_empty() {
                        tracing::info!(key = %r.key, "verified {} {}", r.table.name, r.key);
                        FileReport {
                            path: r.path.clone(),
                            result: FileResult::Applied,
                            reason: String::new(),
                            fields: vec![],
                        }
                    } else {
                        FileReport {
                            path: r.path.clone(),
                            result: FileResult::Failed,
                            reason: "MoneyWorks did not keep every field as asked".into(),
                            fields: missing,
                        }
                    }
                }
            };
            if file.result == FileResult::Failed {
                failures.push(format!("{}: {}", file.path, file.reason));
            }
            if let Some(got) = got {
                let bytes = got.canonical_file().map_err(|e| {
                    EngineError::MoneyWorks(MwError::InvalidReply {
                        command: "export".into(),
                        detail: e.to_string(),
                    })
                })?;
                let current = self
                    .store
                    .read_file(&main, &r.path)
                    .map_err(EngineError::Store)?;
                if current.as_deref() != Some(bytes.as_slice()) {
                    let old = current
                        .as_ref()
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|t| Record::from_xml(r.table, t).ok());
                    let fields = crate::record::diff_fields(
                        old.as_ref().map_or(&[][..], |o| &o.fields),
                        &got.fields,
                    )
                    .into_iter()
                    .filter(|c| c.field != crate::record::LMT_FIELD)
                    .collect();
                    notes.push(RecordNote {
                        table: r.table.name,
                        key: r.key.to_string(),
                        action: if old.is_some() {
                            crate::events::RecordAction::Updated
                        } else {
                            crate::events::RecordAction::Created
                        },
                        fields,
                        moved_from: None,
                    });
                    if let Some(seq) = got.seq() {
                        self.note_seq_path(r.table, seq, Some(r.path.clone()));
                    }
                    changes.insert(r.path.clone(), FileChange::Put(bytes));
                }
            }
            report.files.push(file);
        }
        for p in &plan.already {
            report.files.push(FileReport {
                path: p.clone(),
                result: FileResult::AlreadyApplied,
                reason: String::new(),
                fields: vec![],
            });
        }
        if failures.is_empty() {
            if let Some(config) = &plan.config {
                changes.insert(
                    REPO_CONFIG_PATH.to_string(),
                    FileChange::Put(config.clone()),
                );
                report.files.push(FileReport {
                    path: REPO_CONFIG_PATH.into(),
                    result: FileResult::Applied,
                    reason: String::new(),
                    fields: vec![],
                });
            }
            let imported = plan.apply.len();
            // The merge carries the new config, so its trailer names the new config's hash;
            // mwsync switches to it only once the push succeeded.
            let new_repo = match &plan.config {
                Some(config) => {
                    let text = String::from_utf8_lossy(config).to_string();
                    Some(RepoConfigFile::parse(&text, REPO_CONFIG_PATH)?.validate()?)
                }
                None => None,
            };
            let hash = new_repo
                .as_ref()
                .map_or_else(|| self.repo.hash(), |r| r.hash());
            let merged = self
                .commit_status(report, changes, &notes, Some(tip.clone()), &hash)
                .await?;
            if let Some(repo) = new_repo {
                self.repo = repo;
            }
            self.publish(Event::WriteApplied {
                commit: tip.to_string(),
                merged_as: merged.to_string(),
                imported,
            });
            Ok(Outcome::Applied)
        } else {
            report.outcome = Outcome::Failed;
            let hash = self.repo.hash();
            self.commit_status(report, changes, &notes, None, &hash)
                .await?;
            self.publish(Event::WriteFailed {
                commit: tip.to_string(),
                reasons: failures,
            });
            Ok(Outcome::Failed)
        }
    }

    async fn import(&mut self, body: &str) -> Result<String, EngineError> {
        self.requests += 1;
        // Imports are not retried blindly: a lost reply may hide an applied import, and the
        // verification step and the already-applied check make a later repeat safe.
        Ok(self.mw.import(body).await?)
    }

    /// Re-reads one record by its key, or by sequence number in any table.
    pub(crate) async fn reread(
        &mut self,
        table: &'static TableInfo,
        key: &RecordKey,
    ) -> Result<Option<Record>, EngineError> {
        let query = ExportQuery {
            table,
            search: Some(key_search(table, key)),
            sort: None,
            direction: Direction::Ascending,
            start: 0,
            limit: Some(10),
            format: ExportFormat::Verbose,
        };
        let (records, _) = self.export(&query).await?;
        Ok(records.into_iter().find(|r| match key {
            // A sequence number names a record in any table, code-keyed or not.
            RecordKey::Seq(n) => r.seq() == Some(*n),
            RecordKey::Code(_) => r.key().as_ref() == Ok(key),
        }))
    }

    /// Commits the status report (and any record changes) on `main`; a merge when `merge`
    /// names the changes tip.
    async fn commit_status(
        &mut self,
        report: WriteReport,
        mut changes: BTreeMap<String, FileChange>,
        notes: &[RecordNote],
        merge: Option<CommitId>,
        config_hash: &str,
    ) -> Result<CommitId, EngineError> {
        let outcome = report.outcome;
        let commit = report.commit.clone();
        let status = StatusFile {
            last_write: Some(report),
        };
        changes.insert(
            STATUS_PATH.to_string(),
            FileChange::Put(status.to_toml().into_bytes()),
        );
        let verb = match outcome {
            Outcome::Applied => "Write-back applied",
            Outcome::Conflict => "Write-back conflict",
            Outcome::Rejected => "Write-back rejected",
            Outcome::Failed => "Write-back failed",
        };
        let extra = format!("changes@{commit}: {outcome:?}; see {STATUS_PATH}");
        let message = commit_message(verb, notes, &self.state, config_hash, &extra);
        let new = self.commit_main(changes, message, merge).await?;
        for note in notes {
            self.publish(Event::RecordChanged {
                table: note.table.to_string(),
                key: note.key.clone(),
                action: note.action,
                fields: note
                    .fields
                    .iter()
                    .map(crate::events::ChangedField::from)
                    .collect(),
                commit: new.to_string(),
            });
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_path, table_info};

    fn name() -> &'static TableInfo {
        table_info("Name").expect("known")
    }

    fn rec(phone: &str, lmt: &str) -> Vec<u8> {
        format!(
            "<name><sequencenumber system=\"true\">7</sequencenumber><lastmodifiedtime system=\"true\">{lmt}</lastmodifiedtime><code>ACME</code><phone>{phone}</phone><creditlimit>100.00</creditlimit></name>"
        )
        .into_bytes()
    }

    fn path() -> String {
        record_path(name(), &RecordKey::Code("ACME".into()))
    }

    fn fv(
        base: Option<Vec<u8>>,
        desired: Option<Vec<u8>>,
        current: Option<Vec<u8>>,
    ) -> FileVersions {
        FileVersions {
            path: path(),
            base,
            desired,
            current,
        }
    }

    /// An edit on an unchanged record is planned with only the changed field.
    #[test]
    fn plans_changed_fields_only() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1", "20240101000000")),
                Some(rec("2", "20240101000000")),
                Some(rec("1", "20240101000000")),
            )],
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.apply[0].fields, vec!["phone".to_string()]);
        let body = import_body(&[&p.apply[0]]);
        assert_eq!(
            body,
            "<?xml version=\"1.0\"?>\n<import>\n<table name=\"Name\" update=\"true\">\n<name><code>ACME</code><phone>2</phone></name>\n</table>\n</import>\n"
        );
    }

    /// Records keyed by sequence number are imported one `<table seqnum>` each, with only
    /// the asked fields and no system rows.
    #[test]
    fn seq_keyed_import_bodies_name_the_record() {
        let tx = table_info("Transaction").expect("known");
        let desired = Record::from_xml(
            tx,
            "<transaction><sequencenumber system=\"true\">5</sequencenumber><description>A &amp; B</description><gross>10</gross><subfile name=\"Detail\"><detail><detail.net>10</detail.net></detail><detail system=\"true\"><detail.net>1</detail.net></detail></subfile></transaction>",
        )
        .expect("valid");
        let planned = PlannedRecord {
            path: record_path(tx, &RecordKey::Seq(5)),
            table: tx,
            key: RecordKey::Seq(5),
            desired,
            fields: vec!["description".into(), "Detail".into()],
            create: false,
        };
        assert_eq!(
            import_body(&[&planned]),
            "<?xml version=\"1.0\"?>\n<import>\n<table name=\"Transaction\" update=\"true\" seqnum=\"5\">\n<transaction><description>A &amp; B</description><subfile name=\"Detail\"><detail><detail.net>10</detail.net></detail></subfile></transaction>\n</table>\n</import>\n"
        );
    }

    /// A record changed in MoneyWorks since the base conflicts, naming asked and server values.
    #[test]
    fn detects_conflicts_with_values() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1", "20240101000000")),
                Some(rec("2", "20240101000000")),
                Some(rec("3", "20240102000000")),
            )],
        );
        assert_eq!(p.problems.len(), 1);
        let c = &p.problems[0];
        assert_eq!(c.result, FileResult::Conflict);
        assert_eq!(
            c.fields,
            vec![FieldReport {
                field: "phone".into(),
                asked: Some("2".into()),
                server: Some("3".into()),
                base: Some("1".into())
            }]
        );
    }

    /// When MoneyWorks already holds the asked values, nothing is imported.
    #[test]
    fn already_applied_is_recognised() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1", "20240101000000")),
                Some(rec("2", "20240101000000")),
                Some(rec("2", "20240102000000")),
            )],
        );
        assert!(p.apply.is_empty() && p.problems.is_empty());
        assert_eq!(p.already, vec![path()]);
    }

    /// A text change that only looks like a number change ("1.10" to "1.1") is imported,
    /// not taken as already applied.
    #[test]
    fn number_like_text_changes_are_imported() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1.10", "20240101000000")),
                Some(rec("1.1", "20240101000000")),
                Some(rec("1.10", "20240101000000")),
            )],
        );
        assert!(p.already.is_empty(), "{:?}", p.already);
        assert_eq!(p.apply[0].fields, vec!["phone".to_string()]);
    }

    /// After a crash between import and merge, the server's own rewriting of fields nobody
    /// asked for (here the credit limit) does not turn the write into a conflict.
    #[test]
    fn already_applied_ignores_fields_the_writer_did_not_change() {
        let after_import = String::from_utf8(rec("2", "20240102000000"))
            .expect("utf8")
            .replace("100.00", "150.00")
            .into_bytes();
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1", "20240101000000")),
                Some(rec("2", "20240101000000")),
                Some(after_import),
            )],
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.already, vec![path()]);
    }

    /// A created record found already in MoneyWorks with the asked values (plus the server's
    /// defaults) is already applied, not a conflict.
    #[test]
    fn created_record_found_after_a_crash_is_already_applied() {
        let desired = b"<name><code>ACME</code><phone>2</phone></name>".to_vec();
        let p = plan(
            &[name()],
            vec![fv(None, Some(desired), Some(rec("2", "20240102000000")))],
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.already, vec![path()]);
    }

    /// Each class of bad file is rejected with a reason naming it.
    #[test]
    fn rejects_bad_files() {
        let good = Some(rec("1", "20240101000000"));
        let cases: Vec<(FileVersions, &str)> = vec![
            (FileVersions { path: STATE_PATH.into(), base: None, desired: Some(b"x".to_vec()), current: None }, "written only by mwsync"),
            (fv(good.clone(), Some(b"<name><code>ACME</code>".to_vec()), good.clone()), "not well-formed"),
            (fv(good.clone(), Some(b"<product><code>ACME</code></product>".to_vec()), good.clone()), "expected <name>"),
            (FileVersions { path: "../etc/passwd".into(), base: None, desired: Some(b"x".to_vec()), current: None }, "not a record path"),
            (FileVersions { path: record_path(table_info("Job").expect("known"), &RecordKey::Code("X".into())), base: None, desired: Some(b"x".to_vec()), current: None }, "not tracked"),
            (fv(good.clone(), Some(rec("1", "20990101000000")), good.clone()), "system fields"),
            (fv(good.clone(), None, good.clone()), "deleting"),
            (fv(good.clone(), Some(String::from_utf8(rec("1", "20240101000000")).expect("utf8").replace("ACME", "OTHER").into_bytes()), good.clone()), "holds key OTHER"),
            (fv(good.clone(), Some(vec![b' '; MAX_RECORD_FILE_BYTES + 1]), good.clone()), "limit"),
            (fv(good.clone(), Some(rec("1&#7;", "20240101000000")), good.clone()), "field <phone> holds U+0007"),
            (
                fv(good.clone(), Some(String::from_utf8(rec("1", "20240101000000")).expect("utf8").replace("<phone>1</phone>", "").into_bytes()), good.clone()),
                "fields cannot be removed",
            ),
            (FileVersions { path: REPO_CONFIG_PATH.into(), base: None, desired: Some(b"page_size = 5\n".to_vec()), current: None }, "out of range 10..=100"),
            (FileVersions { path: "transaction/000/000/5.xml".into(), base: None, desired: Some(b"<transaction><sequencenumber system=\"true\">5</sequencenumber></transaction>".to_vec()), current: None }, "not tracked"),
        ];
        for (file, needle) in cases {
            let p = plan(&[name()], vec![file.clone()]);
            assert!(p.apply.is_empty(), "{} must not be applied", file.path);
            let reason = &p
                .problems
                .first()
                .unwrap_or_else(|| panic!("{} must be refused", file.path))
                .reason;
            assert!(reason.contains(needle), "{reason} should mention {needle}");
        }
    }

    /// Verification ignores the server's number rewriting but catches real differences.
    #[test]
    fn verify_normalises_numbers() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1", "20240101000000")),
                Some(
                    String::from_utf8(rec("1", "20240101000000"))
                        .expect("utf8")
                        .replace("100.00", "1.5")
                        .into_bytes(),
                ),
                Some(rec("1", "20240101000000")),
            )],
        );
        let planned = &p.apply[0];
        let got = Record::from_xml(
            name(),
            &String::from_utf8(rec("1", "20240103000000"))
                .expect("utf8")
                .replace("100.00", "1.500000"),
        )
        .expect("valid");
        assert!(verify(planned, &got).is_empty());
        let wrong = Record::from_xml(
            name(),
            &String::from_utf8(rec("1", "20240103000000"))
                .expect("utf8")
                .replace("100.00", "1.6"),
        )
        .expect("valid");
        assert_eq!(verify(planned, &wrong)[0].field, "creditlimit");
        assert_eq!(normalise("1.500000"), "1.5");
        assert_eq!(normalise("-0.00"), "0");
        assert_eq!(normalise("ACME 1.0"), "ACME 1.0");
    }

    /// Key searches quote codes safely.
    #[test]
    fn key_searches() {
        assert_eq!(
            key_search(name(), &RecordKey::Code("AC ME".into())),
            "code = `AC ME`"
        );
        assert_eq!(
            key_search(name(), &RecordKey::Code("A`\"B".into())),
            "code = \"A`\\\"B\""
        );
        let tx = table_info("Transaction").expect("known");
        assert_eq!(key_search(tx, &RecordKey::Seq(9)), "SequenceNumber = 9");
    }
}
