//! Import and re-read: the import bodies (pure, written through `xmlwrite`), posting one
//! batch (one record at a time to find which one MoneyWorks refused), batched re-reads of
//! planned records by identity, and the batch loop that ties them together with the live
//! precondition of each batch. It must not judge outcomes (that is `live` and `status`) or
//! retry an import blindly.

use std::collections::BTreeMap;

use super::compare::for_import;
use super::live::{self, Identity, LiveCopy};
use super::plan::{ChangePlan, PlannedRecord};
use super::status::{self, FileReport, FileResult};
use crate::engine::{Engine, EngineError};
use crate::moneyworks::{MoneyWorks, MwError};
use crate::query;
use crate::record::{Field, KeyField, Record, RecordKey, TableInfo};
use crate::store::Store;
use crate::xmlwrite::{XmlWriteError, XmlWriter, import_fields};

/// Records of one table imported in one request, with the live copy of each as last read.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// The table.
    pub(crate) table: &'static TableInfo,
    /// The records, in plan order.
    pub(crate) records: Vec<PlannedRecord>,
    /// What MoneyWorks held for each, as last read.
    pub(crate) live: Vec<LiveCopy>,
}

/// Splits the records to import into batches: per table (in table-name order), at most
/// `page` records each, in plan order.
pub(crate) fn batches(records: Vec<PlannedRecord>, page: usize) -> Vec<Batch> {
    let mut by_table: BTreeMap<&'static str, Vec<PlannedRecord>> = BTreeMap::new();
    for r in records {
        by_table.entry(r.table.name).or_default().push(r);
    }
    let mut out = Vec::new();
    for records in by_table.into_values() {
        let mut records = records.into_iter().peekable();
        while let Some(first) = records.peek() {
            let table = first.table;
            let records: Vec<PlannedRecord> = records.by_ref().take(page.max(1)).collect();
            out.push(Batch {
                table,
                live: vec![LiveCopy::default(); records.len()],
                records,
            });
        }
    }
    out
}

/// What importing the batches gave.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    /// One report per record.
    pub(crate) files: Vec<FileReport>,
    /// The records as MoneyWorks holds them now, for `main`.
    pub(crate) truth: Vec<Record>,
    /// Records imported.
    pub(crate) count: usize,
}

/// The import body for records of one table: the key plus the changed fields, line breaks
/// as the CR MoneyWorks stores. Records filed by code are matched on it: updates in a
/// `<table update="true">`, new records in a `<table>` without it, so MoneyWorks refuses a
/// create whose code exists instead of changing that record. Records filed by sequence
/// number are updated by `seqnum`, which never creates.
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
            let (creates, updates): (Vec<&PlannedRecord>, Vec<&PlannedRecord>) =
                records.iter().partition(|r| r.is_create());
            for (group, update) in [(updates, true), (creates, false)] {
                if group.is_empty() {
                    continue;
                }
                let mut attrs = vec![("name", table.name)];
                if update {
                    attrs.push(("update", "true"));
                }
                w.start("table", &attrs)?;
                w.newline();
                for r in group {
                    w.start(table.element, &[])?;
                    let fields = for_import(&r.desired.fields);
                    // The key first, then the changed fields in the writer's order.
                    let key: Vec<Field> = fields
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
                    import_fields(w, &fields, Some(&rest))?;
                    w.end(table.element);
                    w.newline();
                }
                w.end("table");
                w.newline();
            }
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
                import_fields(w, &for_import(&r.desired.fields), Some(&r.fields))?;
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

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// What MoneyWorks holds for each of `ids` (records of `table`), in one export.
    pub(crate) async fn read_identities(
        &mut self,
        table: &'static TableInfo,
        ids: &[Identity],
    ) -> Result<Vec<LiveCopy>, EngineError> {
        let mut seqs = Vec::new();
        let mut codes = Vec::new();
        for id in ids {
            match id {
                Identity::Seq(n) => seqs.push(*n),
                Identity::Code(c) => codes.push(c.clone()),
            }
        }
        let found = self
            .export_all(query::by_identities(table, &seqs, &codes))
            .await?;
        Ok(live::match_live(ids, &found))
    }

    /// The live precondition: reads every batch, one export each, the last batch first (so
    /// the first batch's read is the last request before its import), and judges every
    /// record against what MoneyWorks holds. Records to import stay in their batch with
    /// their live copy; those already as asked, and conflicts and refusals, go to `plan`.
    /// Returns the live copies of the records set aside, for `main`.
    pub(crate) async fn live_precondition(
        &mut self,
        batches: &mut [Batch],
        plan: &mut ChangePlan,
    ) -> Result<Vec<Record>, EngineError> {
        for b in batches.iter_mut().rev() {
            let ids: Vec<Identity> = b.records.iter().map(live::before_identity).collect();
            b.live = self.read_identities(b.table, &ids).await?;
        }
        let mut truth = Vec::new();
        for b in batches.iter_mut() {
            let copies = std::mem::take(&mut b.live);
            let sifted = live::sift(b, copies);
            plan.already.extend(sifted.already);
            plan.problems.extend(sifted.refused);
            truth.extend(sifted.truth);
        }
        Ok(truth)
    }

    /// Imports the batches in order, each verified by one export right after its import.
    /// Every batch after the first is read again just before its import (the first was
    /// read last by the precondition), so the window between the last read of a record and
    /// its import is one request wide. When that read finds a record changed, the write
    /// stops there: that record is a conflict, the rest are not attempted, and what earlier
    /// batches imported stands.
    pub(crate) async fn import_batches(
        &mut self,
        batches: Vec<Batch>,
    ) -> Result<Imported, EngineError> {
        let mut out = Imported::default();
        let mut stopped = false;
        for (i, mut b) in batches.into_iter().enumerate() {
            if stopped {
                out.files
                    .extend(b.records.iter().map(|r| not_attempted(&r.path)));
                continue;
            }
            if b.records.is_empty() {
                continue;
            }
            if i > 0 {
                stopped = self.recheck(&mut b, &mut out).await?;
                if stopped || b.records.is_empty() {
                    continue;
                }
            }
            let refs: Vec<&PlannedRecord> = b.records.iter().collect();
            let refused = self.import_batch(&refs).await?;
            out.count += refs.len();
            crate::engine::pause_point("after-import-batch");
            let ids: Vec<Identity> = refs.iter().map(|r| live::after_identity(r)).collect();
            let after = self.read_identities(b.table, &ids).await?;
            for ((r, before), after) in b.records.iter().zip(&b.live).zip(after) {
                let file = status::judge(
                    r,
                    before.record.as_ref(),
                    after.record.as_ref(),
                    refused.get(&r.path).map(String::as_str),
                );
                if file.result == FileResult::Applied {
                    tracing::info!(key = %r.key, "verified {} {}", r.table.name, r.key);
                }
                out.files.push(file);
                out.truth.extend(after.record);
            }
        }
        if out.count > 0 {
            crate::engine::pause_point("after-import");
        }
        Ok(out)
    }

    /// Reads batch `b` again just before its import and judges it: records already as
    /// asked leave the batch; a conflict or refusal stops the write (true), reporting it and
    /// every other record of the batch as not attempted.
    async fn recheck(&mut self, b: &mut Batch, out: &mut Imported) -> Result<bool, EngineError> {
        let ids: Vec<Identity> = b.records.iter().map(live::before_identity).collect();
        let fresh = self.read_identities(b.table, &ids).await?;
        let sifted = live::sift(b, fresh);
        out.truth.extend(sifted.truth);
        out.files.extend(
            sifted
                .already
                .iter()
                .map(|p| FileReport::plain(p, FileResult::AlreadyApplied)),
        );
        if sifted.refused.is_empty() {
            return Ok(false);
        }
        out.files.extend(sifted.refused.into_iter().map(|mut report| {
            report.reason = format!(
                "{}; found just before its import batch, after earlier batches of this write were imported",
                report.reason
            );
            report
        }));
        out.files
            .extend(b.records.drain(..).map(|r| not_attempted(&r.path)));
        b.live.clear();
        Ok(true)
    }

    /// Imports one batch of records of one table. When MoneyWorks refuses it, its records
    /// are imported one at a time to find which. Returns MoneyWorks' refusal per path; any
    /// other failure stops the write, and the next cycle finds what was applied.
    pub(crate) async fn import_batch(
        &mut self,
        records: &[&PlannedRecord],
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let mut refused = BTreeMap::new();
        let Some(first) = records.first() else {
            return Ok(refused);
        };
        let table = first.table.name;
        for r in records {
            tracing::info!(table, key = %r.key, "applying {table} {}: {}", r.key, r.fields.join(", "));
        }
        match self.import(&import_body(records)).await {
            Ok(reply) => {
                tracing::info!(table, "MoneyWorks accepted the import: {}", reply.trim())
            }
            Err(EngineError::MoneyWorks(MwError::Rejected { message })) if records.len() > 1 => {
                tracing::warn!(
                    table,
                    "MoneyWorks refused the batch ({message}); importing one record at a time to find which"
                );
                for r in records {
                    match self.import(&import_body(&[r])).await {
                        Ok(_) => {}
                        Err(EngineError::MoneyWorks(MwError::Rejected { message })) => {
                            refused.insert(r.path.clone(), message);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(EngineError::MoneyWorks(MwError::Rejected { message })) => {
                refused.insert(first.path.clone(), message);
            }
            Err(e) => return Err(e),
        }
        Ok(refused)
    }
}

/// A file left alone because the write stopped before it.
fn not_attempted(path: &str) -> FileReport {
    FileReport::with(
        path,
        FileResult::NotAttempted,
        "not imported: the write stopped when MoneyWorks changed a record of it during the import",
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_path, table_info};

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
            base: Some(desired.clone()),
            desired,
            fields: vec!["description".into(), "Detail".into()],
        };
        assert_eq!(
            import_body(&[&planned]),
            "<?xml version=\"1.0\"?>\n<import>\n<table name=\"Transaction\" update=\"true\" seqnum=\"5\">\n<transaction><description>A &amp; B</description><subfile name=\"Detail\"><detail><detail.net>10</detail.net></detail></subfile></transaction>\n</table>\n</import>\n"
        );
    }

    /// Records filed by code: updates in a `<table update="true">`, new records in a
    /// `<table>` without it, and line breaks sent as CR.
    #[test]
    fn code_keyed_bodies_keep_creates_apart_and_send_cr() {
        let name = table_info("Name").expect("known");
        let planned = |code: &str, base: bool| {
            let desired = Record::from_xml(
                name,
                &format!("<name><code>{code}</code><address1>1 Road\nTown</address1></name>"),
            )
            .expect("valid");
            PlannedRecord {
                path: record_path(name, &RecordKey::Code(code.into())),
                table: name,
                key: RecordKey::Code(code.into()),
                base: base.then(|| desired.clone()),
                desired,
                fields: vec!["address1".into()],
            }
        };
        let (update, create) = (planned("ACME", true), planned("NEW", false));
        assert_eq!(
            import_body(&[&create, &update]),
            "<?xml version=\"1.0\"?>\n<import>\n<table name=\"Name\" update=\"true\">\n<name><code>ACME</code><address1>1 Road&#13;Town</address1></name>\n</table>\n<table name=\"Name\">\n<name><code>NEW</code><address1>1 Road&#13;Town</address1></name>\n</table>\n</import>\n"
        );
    }

    /// Batches hold one table each, at most a page of records, in plan order.
    #[test]
    fn batches_are_per_table_and_page() {
        let name = table_info("Name").expect("known");
        let tx = table_info("Transaction").expect("known");
        let record = |table: &'static TableInfo, key: RecordKey| PlannedRecord {
            path: record_path(table, &key),
            table,
            key,
            base: None,
            desired: Record {
                table,
                fields: vec![],
            },
            fields: vec![],
        };
        let mut records: Vec<PlannedRecord> = (0..5)
            .map(|i| record(name, RecordKey::Code(format!("N{i}"))))
            .collect();
        records.insert(2, record(tx, RecordKey::Seq(9)));
        let got: Vec<(&str, Vec<String>)> = batches(records, 2)
            .iter()
            .map(|b| {
                (
                    b.table.name,
                    b.records.iter().map(|r| r.key.to_string()).collect(),
                )
            })
            .collect();
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                ("Name", keys(&["N0", "N1"])),
                ("Name", keys(&["N2", "N3"])),
                ("Name", keys(&["N4"])),
                ("Transaction", keys(&["#9"])),
            ]
        );
    }
}
