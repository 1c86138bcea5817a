//! Change-set planning, pure: which files of a write are refused (and why), which records
//! it asks to change and which fields. It must not do I/O, and must not judge conflicts:
//! those are judged against the live copy MoneyWorks holds just before the import (`live`),
//! never against `main`. The handler reads both versions of every file first.

use std::collections::BTreeMap;

use super::compare::{case_twins, find, importable, normalised, system_values};
use super::status::{FileReport, STATUS_PATH};
use crate::config::{REPO_CONFIG_PATH, RepoConfigFile};
use crate::record::{Field, KeyField, Record, RecordKey, TableInfo, Value, parse_record_path};
use crate::state::STATE_PATH;

/// Largest record file accepted from `changes`.
pub const MAX_RECORD_FILE_BYTES: usize = 1024 * 1024;

/// One touched file: at the writer's base and as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersions {
    /// Path.
    pub path: String,
    /// Bytes at merge-base(main, changes).
    pub base: Option<Vec<u8>>,
    /// Bytes at the changes tip.
    pub desired: Option<Vec<u8>>,
}

/// A record the writer asks to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRecord {
    /// Path.
    pub path: String,
    /// Table.
    pub table: &'static TableInfo,
    /// Key.
    pub key: RecordKey,
    /// The record at the writer's base (`None`: a new record).
    pub base: Option<Record>,
    /// The writer's record.
    pub desired: Record,
    /// Top-level importable fields to send (subfiles by name), in the writer's order.
    pub fields: Vec<String>,
}

impl PlannedRecord {
    /// True for a new record.
    pub fn is_create(&self) -> bool {
        self.base.is_none()
    }
}

/// What to do with a change set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangePlan {
    /// Records to import (until the live precondition judges them).
    pub apply: Vec<PlannedRecord>,
    /// Files already as asked in MoneyWorks (or whose values did not change).
    pub already: Vec<String>,
    /// Conflicts and rejections, reported as they will appear in the status.
    pub problems: Vec<FileReport>,
    /// A valid new repo config (the writer's bytes).
    pub config: Option<Vec<u8>>,
}

/// What planning decided for one file.
enum FilePlan {
    Apply(PlannedRecord),
    Already(String),
    Config(Vec<u8>),
}

/// Plans a change set: validation and what to import.
pub fn plan(tracked: &[&'static TableInfo], files: Vec<FileVersions>) -> ChangePlan {
    let mut out = ChangePlan::default();
    for fv in files {
        match plan_file(tracked, fv) {
            Ok(FilePlan::Apply(r)) => out.apply.push(r),
            Ok(FilePlan::Already(path)) => out.already.push(path),
            Ok(FilePlan::Config(bytes)) => out.config = Some(bytes),
            Err(problem) => out.problems.push(problem),
        }
    }
    out
}

fn plan_file(tracked: &[&'static TableInfo], fv: FileVersions) -> Result<FilePlan, FileReport> {
    let path = fv.path.as_str();
    if path == STATE_PATH || path == STATUS_PATH {
        return Err(FileReport::rejected(
            path,
            format!("{path} is written only by mwsync"),
        ));
    }
    if path == REPO_CONFIG_PATH {
        return plan_config(&fv).map(FilePlan::Config);
    }
    if path.starts_with(".mwsync/") {
        return Err(FileReport::rejected(
            path,
            "only .mwsync/config.toml may be changed by writers",
        ));
    }
    let (table, key) = tracked_record(tracked, path)?;
    let desired = desired_record(table, &fv)?;
    let parse_side = |b: &Option<Vec<u8>>| {
        b.as_ref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| Record::from_xml(table, t).ok())
    };
    let versions = Versions {
        fv: &fv,
        base: parse_side(&fv.base),
        desired,
    };
    versions.check_key(table, &key)?;
    versions.check_system_fields()?;
    versions.check_nothing_removed()?;
    versions.judge(table, key)
}

/// A writer's new repo config, if it is valid.
fn plan_config(fv: &FileVersions) -> Result<Vec<u8>, FileReport> {
    let path = fv.path.as_str();
    let Some(bytes) = &fv.desired else {
        return Err(FileReport::rejected(
            path,
            "the repo config cannot be deleted",
        ));
    };
    std::str::from_utf8(bytes)
        .map_err(|_| "not UTF-8".to_string())
        .and_then(|t| RepoConfigFile::parse(t, REPO_CONFIG_PATH).map_err(|e| e.to_string()))
        .and_then(|f| f.validate().map_err(|e| e.to_string()))
        .map(|_| bytes.clone())
        .map_err(|e| FileReport::rejected(path, format!("invalid repo config: {e}")))
}

/// The table and key of a record path, refusing paths that are not records of a tracked
/// table.
fn tracked_record(
    tracked: &[&'static TableInfo],
    path: &str,
) -> Result<(&'static TableInfo, RecordKey), FileReport> {
    let (table, key) =
        parse_record_path(path).map_err(|e| FileReport::rejected(path, format!("{e}")))?;
    if !tracked.iter().any(|t| t.name == table.name) {
        let names: Vec<&str> = tracked.iter().map(|t| t.name).collect();
        return Err(FileReport::rejected(
            path,
            format!(
                "table {} is not tracked (tables = {})",
                table.name,
                names.join(", ")
            ),
        ));
    }
    Ok((table, key))
}

/// The writer's record: present (no deletes), within the size limit, parseable and
/// writable.
fn desired_record(table: &'static TableInfo, fv: &FileVersions) -> Result<Record, FileReport> {
    let path = fv.path.as_str();
    let Some(bytes) = &fv.desired else {
        return Err(FileReport::rejected(
            path,
            "deleting a record through changes is not supported; delete it in MoneyWorks",
        ));
    };
    if bytes.len() > MAX_RECORD_FILE_BYTES {
        return Err(FileReport::rejected(
            path,
            format!(
                "the file is {} bytes, over the {MAX_RECORD_FILE_BYTES}-byte limit",
                bytes.len()
            ),
        ));
    }
    let desired = std::str::from_utf8(bytes)
        .map_err(|_| "the file is not UTF-8".to_string())
        .and_then(|t| Record::from_xml(table, t).map_err(|e| e.to_string()))
        .map_err(|e| FileReport::rejected(path, e))?;
    desired
        .canonical_file()
        .map_err(|e| FileReport::rejected(path, e.to_string()))?;
    if let Some((field, n)) = written_twice(&desired.fields, "") {
        return Err(FileReport::rejected(
            path,
            format!(
                "field <{field}> is written {n} times; write each field once (MoneyWorks would keep only one of the values)"
            ),
        ));
    }
    Ok(desired)
}

/// The first field written more than once among `fields` (or in one row of a subfile), with
/// how many times; `at` names the row.
fn written_twice(fields: &[Field], at: &str) -> Option<(String, usize)> {
    for (i, f) in fields.iter().enumerate() {
        let n = fields.iter().filter(|g| g.name == f.name).count();
        if n > 1 && !fields[..i].iter().any(|g| g.name == f.name) {
            return Some((format!("{at}{}", f.name), n));
        }
    }
    fields.iter().find_map(|f| match &f.value {
        Value::Subfile(rows) => rows.iter().enumerate().find_map(|(i, r)| {
            let row = format!("{at}{}[{}].", f.name.to_ascii_lowercase(), i + 1);
            written_twice(&r.fields, &row)
        }),
        Value::Text(_) => None,
    })
}

/// Refuses every new record whose code MoneyWorks would take for another: one on `main`
/// (`main_codes`: table name → the codes of its files) or another new file of the same write
/// that differs from it only in letter case. MoneyWorks matches codes without regard to
/// case, so its import would change that other record instead.
pub fn refuse_case_twins(plan: &mut ChangePlan, main_codes: &BTreeMap<&str, Vec<String>>) {
    let creates: Vec<(&'static str, String)> = plan
        .apply
        .iter()
        .filter(|r| r.is_create())
        .filter_map(|r| match &r.key {
            RecordKey::Code(c) => Some((r.table.name, c.clone())),
            RecordKey::Seq(_) => None,
        })
        .collect();
    let mut kept = Vec::with_capacity(plan.apply.len());
    for r in std::mem::take(&mut plan.apply) {
        let twin = match (&r.key, r.is_create()) {
            (RecordKey::Code(code), true) => {
                let on_main = main_codes
                    .get(r.table.name)
                    .and_then(|codes| codes.iter().find(|c| case_twins(c, code)))
                    .map(|c| format!("{c}, which is on main"));
                on_main.or_else(|| {
                    creates
                        .iter()
                        .find(|(t, c)| *t == r.table.name && case_twins(c, code))
                        .map(|(_, c)| format!("{c}, another new file of this write"))
                })
            }
            _ => None,
        };
        match twin {
            Some(other) => plan.problems.push(FileReport::rejected(
                &r.path,
                format!(
                    "code {} differs only in letter case from {other}; MoneyWorks matches codes without regard to case, so the import would change that record. Edit its file instead",
                    r.key
                ),
            )),
            None => kept.push(r),
        }
    }
    plan.apply = kept;
}

/// One record file's two versions, parsed.
struct Versions<'a> {
    fv: &'a FileVersions,
    /// At the writer's base (`None`: a new record).
    base: Option<Record>,
    desired: Record,
}

impl Versions<'_> {
    fn reject(&self, reason: impl Into<String>) -> FileReport {
        FileReport::rejected(&self.fv.path, reason)
    }

    /// A new record needs a key it may have; no file may change its key.
    fn check_key(&self, table: &TableInfo, key: &RecordKey) -> Result<(), FileReport> {
        match (&self.base, table.key) {
            (None, KeyField::Seq) => {
                return Err(self.reject(format!("new {} records cannot be created through changes: MoneyWorks assigns their sequence numbers", table.name)));
            }
            (None, KeyField::Code(field)) if self.desired.text(field).is_none_or(str::is_empty) => {
                return Err(self.reject(format!("the record has no <{field}>")));
            }
            _ => {}
        }
        match self.desired.key() {
            Ok(k) if k == *key => Ok(()),
            Ok(k) => Err(self.reject(format!("the file holds key {k} but its path is for {key}; codes cannot be changed through changes"))),
            Err(e) => Err(self.reject(e.to_string())),
        }
    }

    /// System fields stay as at the base (a new record may leave them empty).
    fn check_system_fields(&self) -> Result<(), FileReport> {
        let base_sys = self
            .base
            .as_ref()
            .map(|b| system_values(&b.fields))
            .unwrap_or_default();
        let desired_sys = system_values(&self.desired.fields);
        let is_new = self.base.is_none();
        let changed: Vec<String> = desired_sys
            .iter()
            .filter(|(k, v)| base_sys.get(*k) != Some(*v) && !(is_new && v.is_empty()))
            .map(|(k, _)| k.clone())
            .chain(
                base_sys
                    .keys()
                    .filter(|k| !is_new && !desired_sys.contains_key(*k))
                    .cloned(),
            )
            .collect();
        if changed.is_empty() {
            Ok(())
        } else {
            Err(self.reject(format!(
                "system fields cannot be changed: {}",
                changed.join(", ")
            )))
        }
    }

    /// Every field at the base is still there (clearing means writing it empty).
    fn check_nothing_removed(&self) -> Result<(), FileReport> {
        let base_fields = self
            .base
            .as_ref()
            .map(|b| normalised(&b.fields))
            .unwrap_or_default();
        let desired_fields = normalised(&self.desired.fields);
        let removed: Vec<&str> = base_fields
            .iter()
            .filter(|b| !desired_fields.iter().any(|d| d.name == b.name))
            .map(|b| b.name.as_str())
            .collect();
        if removed.is_empty() {
            Ok(())
        } else {
            Err(self.reject(format!(
                "fields cannot be removed (write them empty to clear them): {}",
                removed.join(", ")
            )))
        }
    }

    /// What the writer asks for: the fields whose text it changed, or every non-empty field
    /// of a new record. Only these are imported and verified. Text is compared exactly here:
    /// "1.1" in place of "1.10" is a change the writer asked for.
    fn asked(&self) -> Vec<String> {
        let base_exact = self
            .base
            .as_ref()
            .map(|b| importable(&b.fields))
            .unwrap_or_default();
        let is_new = self.base.is_none();
        importable(&self.desired.fields)
            .iter()
            .filter(|f| is_new || find(&base_exact, &f.name) != Some(*f))
            .filter(|f| !is_new || !matches!(&f.value, Value::Text(t) if t.is_empty()))
            .map(|f| f.name.clone())
            .collect()
    }

    /// Nothing to do when the writer changed no value, or the fields to import.
    fn judge(self, table: &'static TableInfo, key: RecordKey) -> Result<FilePlan, FileReport> {
        let asked = self.asked();
        if asked.is_empty() {
            return Ok(FilePlan::Already(self.fv.path.clone()));
        }
        Ok(FilePlan::Apply(PlannedRecord {
            path: self.fv.path.clone(),
            table,
            key,
            base: self.base,
            desired: self.desired,
            fields: asked,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::compare::{normalise, verify};
    use super::super::import::import_body;
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

    fn fv(base: Option<Vec<u8>>, desired: Option<Vec<u8>>) -> FileVersions {
        FileVersions {
            path: path(),
            base,
            desired,
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

    /// A text change that only looks like a number change ("1.10" to "1.1") is imported,
    /// not taken as already applied.
    #[test]
    fn number_like_text_changes_are_imported() {
        let p = plan(
            &[name()],
            vec![fv(
                Some(rec("1.10", "20240101000000")),
                Some(rec("1.1", "20240101000000")),
            )],
        );
        assert!(p.already.is_empty(), "{:?}", p.already);
        assert_eq!(p.apply[0].fields, vec!["phone".to_string()]);
    }

    /// Each class of bad file is rejected with a reason naming it.
    #[test]
    fn rejects_bad_files() {
        let good = Some(rec("1", "20240101000000"));
        let cases: Vec<(FileVersions, &str)> = vec![
            (FileVersions { path: STATE_PATH.into(), base: None, desired: Some(b"x".to_vec()), }, "written only by mwsync"),
            (fv(good.clone(), Some(b"<name><code>ACME</code>".to_vec())), "not well-formed"),
            (fv(good.clone(), Some(b"<product><code>ACME</code></product>".to_vec())), "expected <name>"),
            (FileVersions { path: "../etc/passwd".into(), base: None, desired: Some(b"x".to_vec()), }, "not a record path"),
            (FileVersions { path: record_path(table_info("Job").expect("known"), &RecordKey::Code("X".into())), base: None, desired: Some(b"x".to_vec()), }, "not tracked"),
            (fv(good.clone(), Some(rec("1", "20990101000000"))), "system fields"),
            (fv(good.clone(), None), "deleting"),
            (fv(good.clone(), Some(String::from_utf8(rec("1", "20240101000000")).expect("utf8").replace("ACME", "OTHER").into_bytes())), "holds key OTHER"),
            (fv(good.clone(), Some(vec![b' '; MAX_RECORD_FILE_BYTES + 1])), "limit"),
            (fv(good.clone(), Some(rec("1&#7;", "20240101000000"))), "field <phone> holds U+0007"),
            (
                fv(good.clone(), Some(String::from_utf8(rec("1", "20240101000000")).expect("utf8").replace("<phone>1</phone>", "").into_bytes())),
                "fields cannot be removed",
            ),
            (FileVersions { path: REPO_CONFIG_PATH.into(), base: None, desired: Some(b"page_size = 5\n".to_vec()), }, "out of range 10..=100"),
            (fv(good.clone(), Some(String::from_utf8(rec("1", "20240101000000")).expect("utf8").replace("<phone>1</phone>", "<phone>1</phone><phone>2</phone>").into_bytes())), "field <phone> is written 2 times"),
            (FileVersions { path: "transaction/00/00/00/5.xml".into(), base: None, desired: Some(b"<transaction><sequencenumber system=\"true\">5</sequencenumber></transaction>".to_vec()), }, "not tracked"),
            (FileVersions { path: "name/462/991/ACME.xml".into(), base: None, desired: Some(b"x".to_vec()), }, "layout 1 filed Name ACME; main uses layout 2 now, which files it at `name/46/29/91/ACME.xml`"),
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
        assert_eq!(normalise("1 Road\r\nTown"), normalise("1 Road\rTown"));
        assert_eq!(normalise("1 Road\nTown"), "1 Road\rTown");
    }

    /// A new code that differs only in letter case from one on main, or from another new
    /// file of the write, is refused; an exact match (a crash after the create) is not.
    #[test]
    fn case_twins_of_new_codes_are_refused() {
        let new = |code: &str| FileVersions {
            path: record_path(name(), &RecordKey::Code(code.into())),
            base: None,
            desired: Some(format!("<name><code>{code}</code><phone>1</phone></name>").into_bytes()),
        };
        let main = BTreeMap::from([("Name", vec!["ACME".to_string()])]);
        let mut p = plan(&[name()], vec![new("acme"), new("FRESH"), new("Fresh")]);
        refuse_case_twins(&mut p, &main);
        assert!(p.apply.is_empty(), "{:?}", p.apply);
        let reasons: Vec<&str> = p.problems.iter().map(|f| f.reason.as_str()).collect();
        assert!(
            reasons[0].contains("acme differs only in letter case from ACME, which is on main"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("FRESH differs only in letter case from Fresh, another new file"),
            "{reasons:?}"
        );
        assert_eq!(p.problems.len(), 3);
        let mut p = plan(&[name()], vec![new("ACME")]);
        refuse_case_twins(&mut p, &main);
        assert_eq!(p.apply.len(), 1, "{:?}", p.problems);
    }
}
