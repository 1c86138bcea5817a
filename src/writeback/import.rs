//! Import and verify: the import bodies (pure, written through `xmlwrite`), posting them per
//! table (one record at a time to find which one MoneyWorks refused), and re-reading every
//! imported record. It must not judge outcomes (that is `status`) or retry an import blindly.

use std::collections::BTreeMap;

use super::plan::{ChangePlan, PlannedRecord};
use crate::engine::{Engine, EngineError};
use crate::moneyworks::{MoneyWorks, MwError};
use crate::record::{Field, KeyField, Record, RecordKey, TableInfo};
use crate::store::Store;
use crate::xmlwrite::{XmlWriteError, XmlWriter, import_fields};

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

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Imports every planned record, one body per table. When MoneyWorks refuses a batch, its
    /// records are imported one at a time to find which. Returns MoneyWorks' refusal per
    /// path; any other failure stops the write, and the next cycle finds what was applied.
    pub(crate) async fn import_planned(
        &mut self,
        plan: &ChangePlan,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let mut refused = BTreeMap::new();
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
                                refused.insert(r.path.clone(), message);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(EngineError::MoneyWorks(MwError::Rejected { message })) => {
                    refused.insert(records[0].path.clone(), message);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(refused)
    }

    /// Re-reads every planned record, in plan order (`None`: MoneyWorks has no such record).
    pub(crate) async fn reread_planned(
        &mut self,
        plan: &ChangePlan,
    ) -> Result<Vec<Option<Record>>, EngineError> {
        let mut out = Vec::with_capacity(plan.apply.len());
        for r in &plan.apply {
            out.push(self.reread(r.table, &r.key).await?);
        }
        Ok(out)
    }
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
            desired,
            fields: vec!["description".into(), "Detail".into()],
            create: false,
        };
        assert_eq!(
            import_body(&[&planned]),
            "<?xml version=\"1.0\"?>\n<import>\n<table name=\"Transaction\" update=\"true\" seqnum=\"5\">\n<transaction><description>A &amp; B</description><subfile name=\"Detail\"><detail><detail.net>10</detail.net></detail></subfile></transaction>\n</table>\n</import>\n"
        );
    }
}
