//! The full sync: every record of every tracked table re-read and compared with `main`. In
//! `apply` mode it polls first and the differences are committed in checkpoints (deletions
//! behind the mass-delete guard); in `check` mode it only reads `main`'s tip and MoneyWorks,
//! commits and pushes nothing, leaves out edits the next poll will bring (stamped at or after
//! the marker), fails with the list of differences built by the pure
//! [`describe_difference`], and records its answer in the cache so the same request never
//! runs twice; the answer reaches `.mwsync/state.toml` with the next ordinary commit. It must
//! not schedule itself (the cycle and the CLI decide when it runs).

use std::collections::BTreeSet;

use crate::config::FullSyncMode;
use crate::engine::{Engine, EngineError};
use crate::events::{ActivityKind, Event};
use crate::moneyworks::{ExportFormat, MoneyWorks};
use crate::progress::Tracker;
use crate::pull::stage::{Staged, invalid, stage_deletes};
use crate::query::seq_page;
use crate::record::{Record, TableInfo, diff_fields};
use crate::state::FullSyncState;
use crate::store::Store;

/// What a full sync found so far.
#[derive(Debug, Default)]
struct Findings {
    /// Records that differ.
    differences: usize,
    /// In check mode: one block per record and field.
    report: String,
    /// In apply mode: the fixes not yet committed.
    staged: Staged,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Re-reads every record of every tracked table and compares it with `main`. `Apply`
    /// polls first, commits the differences in checkpoints and records the run in the state;
    /// `Check` changes nothing on the remote and fails with the list of differences.
    /// `request` names what the run answers; `None` answers the repo config's current
    /// request. Returns the number of differing records.
    pub async fn full_sync(
        &mut self,
        mode: FullSyncMode,
        request: Option<&str>,
    ) -> Result<usize, EngineError> {
        match mode {
            // Edits made since the last poll are not drift: apply commits them first.
            FullSyncMode::Apply => {
                self.poll().await?;
            }
            // A check only reads; edits the next poll brings are left out below.
            FullSyncMode::Check => self.refresh_main().await?,
        }
        let request = request.map_or_else(
            || self.known.repo.file.full_sync.request.clone(),
            str::to_string,
        );
        let now = self.read_clock().await?;
        let mut found = Findings::default();
        for table in self.known.repo.tables.clone() {
            self.full_sync_table(table, mode, &mut found).await?;
        }
        let answer = FullSyncState {
            request,
            mode: Some(mode),
            finished: Some(now),
            differences: found.differences as u64,
        };
        let local = |e: std::io::Error| EngineError::Local(e.to_string());
        match mode {
            // Check mode commits nothing: the answer is kept in the cache (so neither a
            // rollback nor a restart loses it) and reaches main with the next commit.
            FullSyncMode::Check => {
                self.cache.set_check_answer(Some(&answer)).map_err(local)?;
                self.known.state.full_sync = answer;
                if found.differences > 0 {
                    return Err(EngineError::Drift {
                        count: found.differences,
                        report: found.report,
                    });
                }
                Ok(0)
            }
            FullSyncMode::Apply => {
                self.cache.set_check_answer(None).map_err(local)?;
                self.known.state.full_sync = answer;
                self.checkpoint(&mut found.staged, "Full sync").await?;
                Ok(found.differences)
            }
        }
    }

    /// The full sync request last answered, on `main` or (a check) in the cache.
    fn answered_request(&self) -> (String, Option<String>) {
        (
            self.known.state.full_sync.request.clone(),
            self.cache.check_answer().map(|a| a.request),
        )
    }

    /// Compares one table, page by page, then deals with files whose record is gone.
    async fn full_sync_table(
        &mut self,
        table: &'static TableInfo,
        mode: FullSyncMode,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        self.publish(Event::Activity {
            kind: ActivityKind::FullSync,
            table: Some(table.name.to_string()),
        });
        let mut main = self.main_fingerprints(table)?;
        let page = self.known.repo.file.page_size;
        let mut after = 0u64;
        let mut progress: Option<Tracker> = None;
        loop {
            let query = seq_page(table, after, page, ExportFormat::Verbose);
            let reply = self.export(&query).await?;
            let (records, full, matching) = (reply.records, reply.more, reply.found);
            let tracker = progress.get_or_insert_with(|| {
                Tracker::new(
                    ActivityKind::FullSync,
                    table.name,
                    matching,
                    tokio::time::Instant::now(),
                )
            });
            self.progress(tracker, records.len() as u64);
            if records
                .first()
                .and_then(Record::seq)
                .is_some_and(|s| s <= after)
            {
                // A server that ignored the search would make this loop forever.
                return Err(invalid(format!(
                    "asked for {} records after #{after} but got an earlier one",
                    table.name
                )));
            }
            for record in records {
                after = after.max(record.seq().unwrap_or(0));
                let Ok(path) = record.path() else {
                    // Staging holds such a record back (apply); a check leaves it out.
                    if mode == FullSyncMode::Apply {
                        self.stage_page(vec![record], &mut found.staged)?;
                    }
                    continue;
                };
                // Only this record's own path is accounted for; any other file holding its
                // sequence number is stale and is reported or removed below.
                main.remove(&path);
                self.compare_record(record, path, mode, found).await?;
            }
            if !full {
                break;
            }
        }
        if let Some(p) = progress.as_mut() {
            let end = p.finish(tokio::time::Instant::now());
            self.publish(end);
        }
        let vanished: Vec<(String, u64)> = main.into_iter().map(|(p, (s, _))| (p, s)).collect();
        found.differences += vanished.len();
        match mode {
            FullSyncMode::Check => {
                for (p, _) in &vanished {
                    found.report.push_str(&format!(
                        "{} {p}: on main but not in MoneyWorks\n",
                        table.name
                    ));
                }
            }
            FullSyncMode::Apply => {
                let total = self.main_fingerprints(table)?.len();
                self.guard_deletes(table, vanished.len(), total)?;
                self.apply_staged(stage_deletes(table, &vanished), &mut found.staged);
            }
        }
        Ok(())
    }

    /// Compares one re-read record with its file on `main`: reports it (check) or stages it,
    /// committing a checkpoint when enough are staged (apply).
    async fn compare_record(
        &mut self,
        record: Record,
        path: String,
        mode: FullSyncMode,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        let bytes = match record.canonical_file() {
            Ok(b) => b,
            Err(e) => {
                // Held back like any unusable record; it is not drift mwsync could fix.
                self.hold(crate::quarantine::QuarantinedRecord {
                    table: record.table.name.to_string(),
                    seq: record.seq(),
                    key: record.key().ok().map(|k| k.to_string()),
                    reason: format!("{e}; correct the record in MoneyWorks"),
                });
                return Ok(());
            }
        };
        let current = self
            .read_main_files(&BTreeSet::from([path.clone()]))?
            .remove(&path)
            .flatten();
        if current.as_deref() == Some(bytes.as_slice()) {
            return Ok(());
        }
        let marker = self.known.state.table(record.table.name).marker;
        if mode == FullSyncMode::Check
            && marker.is_some_and(|m| record.last_modified().is_some_and(|t| t >= m))
        {
            // Modified at or after the marker: the next poll brings it; that is not drift.
            return Ok(());
        }
        found.differences += 1;
        match mode {
            FullSyncMode::Check => {
                let old = current
                    .as_ref()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|t| Record::from_xml(record.table, t).ok());
                found
                    .report
                    .push_str(&describe_difference(&path, &record, old.as_ref()));
            }
            FullSyncMode::Apply => {
                self.stage_page(vec![record], &mut found.staged)?;
                if found.staged.len() >= self.known.repo.file.checkpoint_records as usize {
                    self.checkpoint(&mut found.staged, "Full sync").await?;
                }
            }
        }
        Ok(())
    }

    /// Runs a full sync when the repo config asks for one that the state has not answered.
    pub async fn full_sync_if_requested(&mut self) -> Result<(), EngineError> {
        let request = self.known.repo.file.full_sync.request.clone();
        let (on_main, checked) = self.answered_request();
        if request.is_empty() || on_main == request || checked.as_ref() == Some(&request) {
            return Ok(());
        }
        let mode = self.known.repo.file.full_sync.mode;
        tracing::info!(
            request,
            "the repo config requests a full sync `{request}` in {} mode",
            mode.word()
        );
        self.full_sync(mode, Some(&request)).await.map(|_| ())
    }
}

/// One block of the check report: the record, then each field with the server's and
/// `main`'s values (or that `main` lacks the record).
pub fn describe_difference(path: &str, server: &Record, main: Option<&Record>) -> String {
    let mut out = format!(
        "{} {} ({path}):\n",
        server.table.name,
        server.key().map(|k| k.to_string()).unwrap_or_default()
    );
    match main {
        None => out.push_str("  missing on main\n"),
        Some(old) => {
            for c in diff_fields(&old.fields, &server.fields) {
                out.push_str(&format!(
                    "  {} (server {}, main {})\n",
                    c.field,
                    fmt_opt(&c.new),
                    fmt_opt(&c.old)
                ));
            }
        }
    }
    out
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
    use crate::record::table_info;

    /// The check report names the record, each differing field with both values, and a
    /// record `main` lacks.
    #[test]
    fn differences_name_record_field_and_values() {
        let name = table_info("Name").expect("known");
        let rec = |phone: &str| {
            Record::from_xml(
                name,
                &format!("<name><sequencenumber>3</sequencenumber><code>ACME</code><phone>{phone}</phone></name>"),
            )
            .expect("valid")
        };
        assert_eq!(
            describe_difference("name/1/2/ACME.xml", &rec("2"), Some(&rec("1"))),
            "Name ACME (name/1/2/ACME.xml):\n  phone (server \"2\", main \"1\")\n"
        );
        assert_eq!(
            describe_difference("p", &rec("2"), None),
            "Name ACME (p):\n  missing on main\n"
        );
    }
}
