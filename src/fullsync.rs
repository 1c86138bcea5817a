//! What a modified-since poll cannot see: the fingerprint scan (deleted records, and records
//! whose stamp or key on `main` disagrees with MoneyWorks), the mass-delete guard, and the
//! full sync in `apply` or `check` mode. It owns those comparisons; it must not schedule
//! itself (the cycle in `writeback` and the CLI decide when they run).

use std::collections::{BTreeMap, HashMap};

use crate::commit_message::RecordNote;
use crate::config::FullSyncMode;
use crate::engine::{Engine, EngineError};
use crate::events::RecordAction;
use crate::moneyworks::{Direction, ExportFormat, ExportQuery, MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::pull::Staged;
use crate::record::{
    KeyField, LMT_FIELD, Record, RecordKey, TableInfo, diff_fields, parse_record_path,
};
use crate::retry::retry;
use crate::store::{FileChange, Store};

/// A page of `table` after sequence number `after`, in sequence order: key-set paging that
/// edits and deletes during the scan cannot shift.
pub fn seq_page(
    table: &'static TableInfo,
    after: u64,
    limit: u32,
    format: ExportFormat,
) -> ExportQuery {
    ExportQuery {
        table,
        search: Some(format!("SequenceNumber > {after}")),
        sort: Some("SequenceNumber".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: Some(limit),
        format,
    }
}

/// Lines per fingerprint page (fingerprints are short; they are not record pages).
pub const FINGERPRINT_PAGE: u32 = 2000;

/// One record as the fingerprint export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Sequence number.
    pub seq: u64,
    /// LastModifiedTime as written.
    pub modified: String,
    /// The code, for code-keyed tables.
    pub code: Option<String>,
}

/// The stamp in fingerprints, formatted explicitly: a bare `[lastmodifiedtime]` may come out
/// in the server's local date format, which would make every record look changed.
const STAMP: &str = "DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)";

/// The custom export format for fingerprints of `table`.
pub fn fingerprint_format(table: &TableInfo) -> String {
    match table.key {
        KeyField::Code(field) => format!("[sequencenumber]\\t[{STAMP}]\\t[{field}]\\n"),
        KeyField::Seq => format!("[sequencenumber]\\t[{STAMP}]\\n"),
    }
}

/// Parses a fingerprint page. Refuses any malformed line, naming it.
pub fn parse_fingerprints(table: &TableInfo, text: &str) -> Result<Vec<Fingerprint>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let seq = parts.next().and_then(|s| s.trim().parse::<u64>().ok());
        let modified = parts.next().map(|s| s.trim().to_string());
        let code = parts.next().map(str::to_string);
        match (seq, modified, table.key, code) {
            (Some(seq), Some(modified), KeyField::Seq, None) => out.push(Fingerprint {
                seq,
                modified,
                code: None,
            }),
            (Some(seq), Some(modified), KeyField::Code(_), Some(code)) => out.push(Fingerprint {
                seq,
                modified,
                code: Some(code),
            }),
            _ => return Err(format!("fingerprint line {} is malformed: {line:?}", i + 1)),
        }
    }
    Ok(out)
}

/// The sequence number and LastModifiedTime in a canonical record file, read without a full
/// parse (the scan touches every file of a table).
pub fn quick_fingerprint(bytes: &[u8]) -> Option<(u64, String)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value = |field: &str| -> Option<String> {
        let start = text.find(&format!("<{field}"))?;
        let open_end = start + text[start..].find('>')?;
        let close = open_end + text[open_end..].find('<')?;
        Some(text[open_end + 1..close].to_string())
    };
    Some((
        value("sequencenumber")?.trim().parse().ok()?,
        value(LMT_FIELD).unwrap_or_default(),
    ))
}

/// What differs between MoneyWorks' fingerprints and `main`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPlan {
    /// Paths on `main` whose record no longer exists.
    pub vanished: Vec<(String, u64)>,
    /// Files whose record still exists but under another key: the record's code changed
    /// (or a file was left behind). They go; the record is re-read to its own path. Not
    /// counted as deletions by the mass-delete guard.
    pub stale: Vec<(String, u64)>,
    /// Sequence numbers to re-read (missing on `main`, or stamp or key differs).
    pub reread: Vec<u64>,
}

/// Compares fingerprints with `main`'s files (path → (seq, modified)). Pure.
pub fn plan_scan(
    table: &TableInfo,
    server: &[Fingerprint],
    main: &BTreeMap<String, (u64, String)>,
) -> ScanPlan {
    let by_seq: HashMap<u64, &Fingerprint> = server.iter().map(|f| (f.seq, f)).collect();
    let mut on_main: HashMap<u64, (&String, &String)> = HashMap::new();
    let mut plan = ScanPlan::default();
    for (path, (seq, modified)) in main {
        on_main.insert(*seq, (path, modified));
        match by_seq.get(seq) {
            None => plan.vanished.push((path.clone(), *seq)),
            Some(f) => {
                let key = match (&f.code, table.key) {
                    (Some(code), KeyField::Code(_)) => RecordKey::Code(code.clone()),
                    _ => RecordKey::Seq(*seq),
                };
                if crate::record::record_path(table, &key) != *path {
                    plan.stale.push((path.clone(), *seq));
                    plan.reread.push(*seq);
                } else if f.modified != *modified {
                    plan.reread.push(*seq);
                }
            }
        }
    }
    for f in server {
        if !on_main.contains_key(&f.seq) {
            plan.reread.push(f.seq);
        }
    }
    plan.reread.sort_unstable();
    plan.reread.dedup();
    plan
}

/// True when deleting `vanished` of `total` records exceeds `max_percent`.
pub fn too_many_deletes(vanished: usize, total: usize, max_percent: u32) -> bool {
    total > 0 && vanished * 100 > total * max_percent as usize
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Every record file of `table` on `main`: path → (sequence number, stamp).
    pub(crate) fn main_fingerprints(
        &self,
        table: &'static TableInfo,
    ) -> Result<BTreeMap<String, (u64, String)>, EngineError> {
        let mut out = BTreeMap::new();
        let Some(main) = &self.main else {
            return Ok(out);
        };
        for path in self
            .store
            .list_files(main, table.element)
            .map_err(EngineError::Store)?
        {
            if parse_record_path(&path).is_err() {
                continue;
            }
            let bytes = self
                .store
                .read_file(main, &path)
                .map_err(EngineError::Store)?
                .unwrap_or_default();
            let fp = quick_fingerprint(&bytes).ok_or_else(|| EngineError::Corrupt {
                path: path.clone(),
                detail: "no sequence number".into(),
            })?;
            out.insert(path, fp);
        }
        Ok(out)
    }

    async fn server_fingerprints(
        &mut self,
        table: &'static TableInfo,
    ) -> Result<Vec<Fingerprint>, EngineError> {
        let mut out: Vec<Fingerprint> = Vec::new();
        let mut after = 0u64;
        loop {
            let query = seq_page(
                table,
                after,
                FINGERPRINT_PAGE,
                ExportFormat::Custom(fingerprint_format(table)),
            );
            let policy = self.settings.retry;
            let mw = &self.mw;
            let text = retry(&policy, &self.events, "fingerprint scan", || {
                mw.export_text(&query)
            })
            .await?;
            self.requests += 1;
            let page = parse_fingerprints(table, &text).map_err(|detail| {
                EngineError::MoneyWorks(MwError::InvalidReply {
                    command: "export".into(),
                    detail,
                })
            })?;
            if page.windows(2).any(|w| w[0].seq >= w[1].seq)
                || page.first().is_some_and(|f| f.seq <= after)
            {
                return Err(EngineError::MoneyWorks(MwError::InvalidReply {
                    command: "export".into(),
                    detail: "fingerprints are not in SequenceNumber order".into(),
                }));
            }
            // Custom formats carry no `found`, and a server may cap pages below what was
            // asked; only an empty page proves the end, or records would look deleted.
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = last.seq;
            out.extend(page);
        }
    }

    /// Re-reads records by sequence number.
    async fn reread_seqs(
        &mut self,
        table: &'static TableInfo,
        seqs: &[u64],
    ) -> Result<Vec<Record>, EngineError> {
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            out.extend(self.reread(table, &RecordKey::Seq(seq)).await?);
        }
        Ok(out)
    }

    fn stage_deletes(
        &mut self,
        table: &'static TableInfo,
        vanished: &[(String, u64)],
        staged: &mut Staged,
    ) {
        for (path, seq) in vanished {
            let key = parse_record_path(path)
                .map(|(_, k)| k.to_string())
                .unwrap_or_else(|_| path.clone());
            staged.files.insert(path.clone(), FileChange::Delete);
            self.note_seq_path(table, *seq, None);
            staged.notes.push(RecordNote {
                table: table.name,
                key,
                action: RecordAction::Deleted,
                fields: vec![],
                moved_from: None,
            });
        }
    }

    /// Runs the fingerprint scan on tables whose interval has passed. Commits deletions and
    /// corrections; stops with `MassDelete` when a table would lose too much at once.
    pub async fn fingerprint_scan_due(&mut self, now: MwTime) -> Result<(), EngineError> {
        let interval = self.repo.file.fingerprint_interval_secs;
        if interval == 0 {
            return Ok(());
        }
        for table in self.repo.tables.clone() {
            let st = self.state.table(table.name);
            let due = match st.fingerprint_time {
                None => st.marker.is_some(),
                Some(t) => {
                    now.unix_secs() - t.unix_secs() >= i64::try_from(interval).unwrap_or(i64::MAX)
                }
            };
            if due {
                self.fingerprint_scan(table, now).await?;
            }
        }
        Ok(())
    }

    /// Scans one table now.
    pub async fn fingerprint_scan(
        &mut self,
        table: &'static TableInfo,
        now: MwTime,
    ) -> Result<usize, EngineError> {
        let server = self.server_fingerprints(table).await?;
        let main = self.main_fingerprints(table)?;
        let plan = plan_scan(table, &server, &main);
        if too_many_deletes(
            plan.vanished.len(),
            main.len(),
            self.repo.file.max_delete_percent,
        ) {
            return Err(EngineError::MassDelete {
                table: table.name.to_string(),
                vanished: plan.vanished.len(),
                total: main.len(),
                max_percent: self.repo.file.max_delete_percent,
            });
        }
        let mut staged = Staged::default();
        self.stage_deletes(table, &plan.vanished, &mut staged);
        self.stage_deletes(table, &plan.stale, &mut staged);
        let records = self.reread_seqs(table, &plan.reread).await?;
        self.stage_records(records, &mut staged)?;
        let mut st = self.state.table(table.name);
        st.fingerprint_time = Some(now);
        self.state.tables.insert(table.name.to_string(), st);
        let changed = staged.len();
        if changed > 0 {
            tracing::info!(
                table = table.name,
                deleted = plan.vanished.len(),
                "fingerprint scan of {} found {} vanished and {} to re-read",
                table.name,
                plan.vanished.len(),
                plan.reread.len()
            );
            self.checkpoint(&mut staged, "Fingerprint scan").await?;
        }
        Ok(changed)
    }

    /// Polls, then re-reads every record of every tracked table and compares it with `main`.
    /// `Apply` commits the differences in checkpoints and records the run in the state;
    /// `Check` commits nothing and fails with the list of differences. `request` names what
    /// the run answers; `None` answers the repo config's current request. Returns the number
    /// of differing records.
    pub async fn full_sync(
        &mut self,
        mode: FullSyncMode,
        request: Option<&str>,
    ) -> Result<usize, EngineError> {
        // Poll first: edits made since the last poll are not drift.
        self.poll().await?;
        let request =
            request.map_or_else(|| self.repo.file.full_sync.request.clone(), str::to_string);
        let now = self.read_clock().await?;
        let mut report = String::new();
        let mut differences = 0usize;
        let mut staged = Staged::default();
        for table in self.repo.tables.clone() {
            let mut main = self.main_fingerprints(table)?;
            let page = self.repo.file.page_size;
            let mut after = 0u64;
            loop {
                let query = seq_page(table, after, page, ExportFormat::Verbose);
                let (records, full) = self.export(&query).await?;
                if records
                    .first()
                    .and_then(Record::seq)
                    .is_some_and(|s| s <= after)
                {
                    // A server that ignored the search would make this loop forever.
                    return Err(EngineError::MoneyWorks(MwError::InvalidReply {
                        command: "export".into(),
                        detail: format!(
                            "asked for {} records after #{after} but got an earlier one",
                            table.name
                        ),
                    }));
                }
                for record in records {
                    let seq = record.seq().unwrap_or(0);
                    after = after.max(seq);
                    let path = record.path().map_err(|e| {
                        EngineError::MoneyWorks(MwError::InvalidReply {
                            command: "export".into(),
                            detail: e.to_string(),
                        })
                    })?;
                    // Only this record's own path is accounted for; any other file holding its
                    // sequence number is stale and is reported or removed below.
                    main.remove(&path);
                    let bytes = record.canonical_file().map_err(|e| {
                        EngineError::MoneyWorks(MwError::InvalidReply {
                            command: "export".into(),
                            detail: format!("{e}; correct the value in MoneyWorks"),
                        })
                    })?;
                    let current = match &self.main {
                        Some(m) => self.store.read_file(m, &path).map_err(EngineError::Store)?,
                        None => None,
                    };
                    if current.as_deref() == Some(bytes.as_slice()) {
                        continue;
                    }
                    differences += 1;
                    match mode {
                        FullSyncMode::Check => {
                            let old = current
                                .as_ref()
                                .and_then(|b| std::str::from_utf8(b).ok())
                                .and_then(|t| Record::from_xml(table, t).ok());
                            report.push_str(&format!(
                                "{} {} ({path}):\n",
                                table.name,
                                record.key().map(|k| k.to_string()).unwrap_or_default()
                            ));
                            match old {
                                None => report.push_str("  missing on main\n"),
                                Some(old) => {
                                    for c in diff_fields(&old.fields, &record.fields) {
                                        report.push_str(&format!(
                                            "  {} (server {}, main {})\n",
                                            c.field,
                                            fmt_opt(&c.new),
                                            fmt_opt(&c.old)
                                        ));
                                    }
                                }
                            }
                        }
                        FullSyncMode::Apply => {
                            self.stage_record_full(record, &mut staged)?;
                            if staged.len() >= self.repo.file.checkpoint_records as usize {
                                self.checkpoint(&mut staged, "Full sync").await?;
                            }
                        }
                    }
                }
                if !full {
                    break;
                }
            }
            let vanished: Vec<(String, u64)> = main.into_iter().map(|(p, (s, _))| (p, s)).collect();
            differences += vanished.len();
            match mode {
                FullSyncMode::Check => {
                    for (p, _) in &vanished {
                        report.push_str(&format!(
                            "{} {p}: on main but not in MoneyWorks\n",
                            table.name
                        ));
                    }
                }
                FullSyncMode::Apply => {
                    let total = self.main_fingerprints(table)?.len();
                    if too_many_deletes(vanished.len(), total, self.repo.file.max_delete_percent) {
                        return Err(EngineError::MassDelete {
                            table: table.name.to_string(),
                            vanished: vanished.len(),
                            total,
                            max_percent: self.repo.file.max_delete_percent,
                        });
                    }
                    self.stage_deletes(table, &vanished, &mut staged);
                }
            }
        }
        self.state.full_sync = crate::state::FullSyncState {
            request,
            mode: Some(mode),
            finished: Some(now),
            differences: differences as u64,
        };
        match mode {
            // Check mode commits nothing; the result reaches main with the next commit.
            FullSyncMode::Check if differences > 0 => Err(EngineError::Drift {
                count: differences,
                report,
            }),
            FullSyncMode::Check => Ok(0),
            FullSyncMode::Apply => {
                self.checkpoint(&mut staged, "Full sync").await?;
                Ok(differences)
            }
        }
    }

    fn stage_record_full(
        &mut self,
        record: Record,
        staged: &mut Staged,
    ) -> Result<(), EngineError> {
        self.stage_records(vec![record], staged)
    }

    /// Runs a full sync when the repo config asks for one that the state has not answered.
    pub async fn full_sync_if_requested(&mut self) -> Result<(), EngineError> {
        let request = self.repo.file.full_sync.request.clone();
        if request.is_empty() || self.state.full_sync.request == request {
            return Ok(());
        }
        let mode = self.repo.file.full_sync.mode;
        tracing::info!(request, "the repo config requests a full sync ({mode:?})");
        self.full_sync(mode, Some(&request)).await.map(|_| ())
    }
}

fn fmt_opt(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "(none)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_path, table_info};

    /// Vanished records, changed stamps, moved codes and missing records are all found.
    #[test]
    fn scan_plan_finds_every_kind_of_difference() {
        let name = table_info("Name").expect("known");
        let p = |c: &str| record_path(name, &RecordKey::Code(c.into()));
        let mut main = BTreeMap::new();
        main.insert(p("A"), (1, "20240101000000".to_string()));
        main.insert(p("B"), (2, "20240101000000".to_string()));
        main.insert(p("C"), (3, "20240101000000".to_string()));
        main.insert(p("D"), (4, "20240101000000".to_string()));
        let fp = |seq, m: &str, c: &str| Fingerprint {
            seq,
            modified: m.into(),
            code: Some(c.into()),
        };
        let server = vec![
            fp(1, "20240101000000", "A"),
            fp(2, "20240102000000", "B"),
            fp(3, "20240101000000", "CC"),
            fp(5, "20240101000000", "E"),
        ];
        let plan = plan_scan(name, &server, &main);
        assert_eq!(plan.vanished, vec![(p("D"), 4)]);
        assert_eq!(plan.stale, vec![(p("C"), 3)]);
        assert_eq!(plan.reread, vec![2, 3, 5]);
    }

    /// The guard trips above the configured share, not at it.
    #[test]
    fn mass_delete_guard() {
        assert!(!too_many_deletes(2, 10, 20));
        assert!(too_many_deletes(3, 10, 20));
        assert!(!too_many_deletes(0, 0, 0));
    }

    /// Fingerprint pages parse, and malformed lines are refused naming the line.
    #[test]
    fn parses_fingerprints() {
        let name = table_info("Name").expect("known");
        let fps = parse_fingerprints(name, "1\t20240101000000\tA B\n2\t20240101000001\tC\n")
            .expect("valid");
        assert_eq!(
            fps[0],
            Fingerprint {
                seq: 1,
                modified: "20240101000000".into(),
                code: Some("A B".into())
            }
        );
        let err = parse_fingerprints(name, "1\t2024\n").expect_err("no code");
        assert!(err.contains("line 1"), "{err}");
        assert_eq!(
            fingerprint_format(name),
            "[sequencenumber]\\t[DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)]\\t[code]\\n"
        );
    }

    /// The quick reader finds seq and stamp in canonical files.
    #[test]
    fn quick_fingerprint_reads_canonical_files() {
        let xml = b"<name>\n  <sequencenumber system=\"true\">12</sequencenumber>\n  <lastmodifiedtime system=\"true\">20240101000000</lastmodifiedtime>\n</name>\n";
        assert_eq!(quick_fingerprint(xml), Some((12, "20240101000000".into())));
    }
}
