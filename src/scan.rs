//! The fingerprint scan: what a modified-since poll cannot see. It lists every record's
//! sequence number and stamp (and code), compares them with the files on `main` (pure:
//! [`plan_scan`]), and commits deletions and re-reads of records whose stamp or key differs,
//! behind the mass-delete guard. Quarantined records are read again at every scan, and let
//! go when they are filed or gone. A table whose scan fails is reported and the other
//! tables are scanned. It must not schedule itself (the cycle decides when it is due).

use std::collections::{BTreeMap, HashMap};

use crate::engine::{Engine, EngineError};
use crate::moneyworks::{ExportFormat, MoneyWorks};
use crate::mwtime::MwTime;
use crate::pull::TableError;
use crate::pull::is_table_error;
use crate::pull::stage::{Staged, invalid, stage_deletes};
use crate::query::{self, FINGERPRINT_PAGE, fingerprint_format, seq_page};
use crate::record::{KeyField, Record, RecordKey, TableInfo};
use crate::store::Store;

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
    /// Every fingerprint of `table` in MoneyWorks, in key-set pages by sequence number.
    async fn server_fingerprints(
        &mut self,
        table: &'static TableInfo,
    ) -> Result<Vec<Fingerprint>, EngineError> {
        let mut out: Vec<Fingerprint> = Vec::new();
        let mut after = 0u64;
        loop {
            let format = ExportFormat::Custom(fingerprint_format(table));
            let query = seq_page(table, after, FINGERPRINT_PAGE, format);
            let text = self.export_text(&query, "fingerprint scan").await?;
            let page = parse_fingerprints(table, &text).map_err(invalid)?;
            if page.windows(2).any(|w| w[0].seq >= w[1].seq)
                || page.first().is_some_and(|f| f.seq <= after)
            {
                return Err(invalid(
                    "fingerprints are not in SequenceNumber order".into(),
                ));
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

    /// Re-reads records by sequence number, one export per page of them.
    async fn reread_seqs(
        &mut self,
        table: &'static TableInfo,
        seqs: &[u64],
    ) -> Result<Vec<Record>, EngineError> {
        let page = self.known.repo.file.page_size as usize;
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(page.max(1)) {
            out.extend(
                self.export_all(query::by_identities(table, chunk, &[]))
                    .await?,
            );
        }
        Ok(out)
    }

    /// Runs the fingerprint scan on tables whose interval has passed. Commits deletions and
    /// corrections. A table whose scan fails (MoneyWorks keeps failing, or it would lose more
    /// than `max_delete_percent` at once) is left as it was and reported; the other tables
    /// are scanned. Returns those reports.
    pub async fn fingerprint_scan_due(
        &mut self,
        now: MwTime,
    ) -> Result<Vec<TableError>, EngineError> {
        let interval = self.known.repo.file.fingerprint_interval_secs;
        let mut failed = Vec::new();
        if interval == 0 {
            return Ok(failed);
        }
        let config_hash = self.known.repo.hash();
        for table in self.known.repo.tables.clone() {
            let st = self.known.state.table(table.name);
            let due = match st.fingerprint_time {
                None => st.marker.is_some(),
                Some(t) => {
                    now.unix_secs() - t.unix_secs() >= i64::try_from(interval).unwrap_or(i64::MAX)
                }
            };
            if !due {
                continue;
            }
            let commits = self.known.commits;
            match self.fingerprint_scan(table, now).await {
                Ok(_) => {}
                Err(e) if is_table_error(&e) => {
                    let checkpointed = self.known.commits != commits;
                    self.known.rollback_table(table.name, st, checkpointed);
                    failed.push(self.table_failed(table, &e, &config_hash));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(failed)
    }

    /// Scans one table now.
    pub async fn fingerprint_scan(
        &mut self,
        table: &'static TableInfo,
        now: MwTime,
    ) -> Result<usize, EngineError> {
        self.publish(crate::events::Event::Activity {
            kind: crate::events::ActivityKind::Scanning,
            table: Some(table.name.to_string()),
        });
        let server = self.server_fingerprints(table).await?;
        let main = self.main_fingerprints(table)?;
        let mut plan = plan_scan(table, &server, &main);
        // Held-back records are read again every scan; one that is gone is let go.
        for seq in self.known.quarantine.seqs(table.name) {
            if server.iter().any(|f| f.seq == seq) {
                plan.reread.push(seq);
            } else {
                self.release(table.name, seq, None);
            }
        }
        plan.reread.sort_unstable();
        plan.reread.dedup();
        self.guard_deletes(table, plan.vanished.len(), main.len())?;
        let mut staged = Staged::default();
        self.apply_staged(stage_deletes(table, &plan.vanished), &mut staged);
        self.apply_staged(stage_deletes(table, &plan.stale), &mut staged);
        let records = self.reread_seqs(table, &plan.reread).await?;
        self.stage_page(records, &mut staged)?;
        self.known.state.table_mut(table.name).fingerprint_time = Some(now);
        let changed = staged.len();
        if changed > 0 || self.known.quarantine_changed() {
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

    /// Stops with `MassDelete` when deleting `vanished` of `total` records of `table` is
    /// more than the repo config allows at once.
    pub(crate) fn guard_deletes(
        &self,
        table: &TableInfo,
        vanished: usize,
        total: usize,
    ) -> Result<(), EngineError> {
        let max_percent = self.known.repo.file.max_delete_percent;
        if too_many_deletes(vanished, total, max_percent) {
            return Err(EngineError::MassDelete {
                table: table.name.to_string(),
                vanished,
                total,
                max_percent,
            });
        }
        Ok(())
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
    }
}
