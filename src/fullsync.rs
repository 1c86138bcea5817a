//! The full sync: every record of every tracked table re-read and compared with `main`,
//! merge-joined in sequence order a page and a shard at a time (memory holds one page, one
//! shard and the vanished sequence numbers). In `apply` mode it polls first and the
//! differences are committed in checkpoints (deletions last, behind the mass-delete guard);
//! in `check` mode it only reads `main`'s tip and MoneyWorks, commits and pushes nothing,
//! leaves out edits the next poll will bring (stamped at or after the marker), fails with the
//! differences built by the pure [`describe_difference`] (the first [`REPORT_SHOWN`] in memory
//! and on screen, all of them in a file), and records its answer in the cache so the same
//! request never runs twice; the answer reaches `.mwsync/state.toml` with the next ordinary
//! commit. Records that cannot be filed are held back (quarantined), not drift. It must not
//! schedule itself (the cycle and the CLI decide when it runs).

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::FullSyncMode;
use crate::engine::{Engine, EngineError};
use crate::events::{ActivityKind, Event};
use crate::moneyworks::{ExportFormat, MoneyWorks};
use crate::mwtime::MwTime;
use crate::progress::Tracker;
use crate::pull::stage::{Staged, invalid};
use crate::query::seq_page;
use crate::record::{Record, TableInfo, diff_fields};
use crate::scan::too_many_deletes;
use crate::state::FullSyncState;
use crate::store::Store;

/// Differences a check report keeps in memory and prints; the rest are only in its file.
pub const REPORT_SHOWN: usize = 50;

/// The check report: the first [`REPORT_SHOWN`] blocks in memory, every block in a file
/// (created at the first difference), so a million differences cost no memory.
#[derive(Debug)]
struct CheckReport {
    /// Where the full list goes.
    path: PathBuf,
    /// The open file, once a difference was found.
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// The blocks shown.
    shown: String,
    /// Blocks written.
    blocks: usize,
}

impl CheckReport {
    fn new(dir: &Path, now: MwTime) -> CheckReport {
        CheckReport {
            path: dir.join(format!("mwsync-full-sync-check-{now}.txt")),
            file: None,
            shown: String::new(),
            blocks: 0,
        }
    }

    /// Adds one block.
    fn push(&mut self, block: &str) -> Result<(), EngineError> {
        if self.blocks < REPORT_SHOWN {
            self.shown.push_str(block);
        }
        self.blocks += 1;
        let local = |e: std::io::Error| {
            EngineError::Local(format!(
                "cannot write the check report {}: {e}",
                self.path.display()
            ))
        };
        if self.file.is_none() {
            let file = std::fs::File::create(&self.path).map_err(local)?;
            self.file = Some(std::io::BufWriter::new(file));
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(block.as_bytes()).map_err(local)?;
        }
        Ok(())
    }

    /// The text for the screen: the blocks shown, and where the full list is.
    fn finish(mut self) -> Result<String, EngineError> {
        if let Some(mut f) = self.file.take() {
            f.flush().map_err(|e| {
                EngineError::Local(format!(
                    "cannot write the check report {}: {e}",
                    self.path.display()
                ))
            })?;
        }
        let mut out = self.shown;
        if self.blocks > REPORT_SHOWN {
            out.push_str(&format!(
                "… and {} more; the full list is in {}\n",
                self.blocks - REPORT_SHOWN,
                self.path.display()
            ));
        } else if self.blocks > 0 {
            out.push_str(&format!("(this list is also in {})\n", self.path.display()));
        }
        Ok(out)
    }
}

/// What a full sync found so far.
#[derive(Debug)]
struct Findings {
    /// Records that differ.
    differences: usize,
    /// In check mode: the report.
    report: CheckReport,
    /// In apply mode: the fixes not yet committed.
    staged: Staged,
}

/// Pages of MoneyWorks' records of a table in sequence order.
struct ServerRecords {
    after: u64,
    done: bool,
    buf: VecDeque<Record>,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Re-reads every record of every tracked table and compares it with `main`,
    /// merge-joined in sequence order a page and a shard at a time. `Apply` polls first,
    /// commits the differences in checkpoints and records the run in the state; `Check`
    /// changes nothing on the remote and fails with the differences (the first
    /// [`REPORT_SHOWN`] in the error, all of them in a file it names). `request` names what the run answers; `None` answers the repo
    /// config's current request. Returns the number of differing records.
    pub async fn full_sync(
        &mut self,
        mode: FullSyncMode,
        request: Option<&str>,
    ) -> Result<usize, EngineError> {
        let result = self.full_sync_run(mode, request).await;
        if result.is_err() {
            // Fixes checkpointed before the failure still go to the remote.
            self.land_after_failure().await;
        }
        result
    }

    async fn full_sync_run(
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
            FullSyncMode::Check => {
                self.refresh_main().await?;
                if self.known.state.layout < crate::state::CURRENT_LAYOUT {
                    return Err(EngineError::OldLayout {
                        layout: self.known.state.layout,
                        current: crate::state::CURRENT_LAYOUT,
                    });
                }
            }
        }
        let request = request.map_or_else(
            || self.known.repo.file.full_sync.request.clone(),
            str::to_string,
        );
        let now = self.read_clock().await?;
        let mut found = Findings {
            differences: 0,
            report: CheckReport::new(self.report_dir(), now),
            staged: Staged::default(),
        };
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
                        report: found.report.finish()?,
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

    /// The next page of `table`'s records when nothing read is left; returns the records
    /// the page brought and how many the server says match, when a page was read.
    async fn fill_records(
        &mut self,
        table: &'static TableInfo,
        walk: &mut ServerRecords,
    ) -> Result<Option<(u64, u64)>, EngineError> {
        if !walk.buf.is_empty() || walk.done {
            return Ok(None);
        }
        let page = self.known.repo.file.page_size;
        let query = seq_page(table, walk.after, page, ExportFormat::Verbose);
        let reply = self.export(&query).await?;
        let (full, matching) = (reply.more, reply.found);
        // Held-back records of the reply count for order and paging too; a record without a
        // sequence number cannot be placed in the join and is held back.
        let seqs = reply.seqs;
        let mut records = Vec::with_capacity(reply.records.len());
        for record in reply.records {
            if record.seq().is_some() {
                records.push(record);
            } else {
                self.hold(crate::quarantine::QuarantinedRecord {
                    table: table.name.to_string(),
                    seq: None,
                    key: record.key().ok().map(|k| k.to_string()),
                    reason: "it has no numeric <sequencenumber>; correct the record in MoneyWorks"
                        .into(),
                });
            }
        }
        if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.first().is_some_and(|s| *s <= walk.after) {
            // A server that ignored the search would make this loop forever.
            return Err(invalid(format!(
                "asked for {} records after #{} in SequenceNumber order but got others",
                table.name, walk.after
            )));
        }
        match seqs.last() {
            Some(&last) => walk.after = last,
            None => walk.done = true,
        }
        walk.done |= !full;
        let read = seqs.len() as u64;
        walk.buf.extend(records);
        Ok(Some((read, matching)))
    }

    /// Compares one table: MoneyWorks' records and the files on `main`, merge-joined in
    /// sequence order; fixes are staged in checkpoints (apply) or reported (check), and
    /// files whose record is gone are deleted last, behind the mass-delete guard.
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
        let mut progress: Option<Tracker> = None;
        let mut main = self.main_walk(table).await?;
        let total = main.total;
        let max_percent = self.known.repo.file.max_delete_percent;
        let mut server = ServerRecords {
            after: 0,
            done: false,
            buf: VecDeque::new(),
        };
        let mut fixes: Vec<Record> = Vec::new();
        let mut vanished: Vec<u64> = Vec::new();
        let mut too_many: Option<usize> = None;
        let page = self.known.repo.file.page_size as usize;
        let marker = self.known.state.table(table.name).marker;
        loop {
            self.check_cancelled()?;
            if let Some((read, matching)) = self.fill_records(table, &mut server).await? {
                let tracker = progress.get_or_insert_with(|| {
                    Tracker::new(
                        ActivityKind::FullSync,
                        table.name,
                        matching,
                        tokio::time::Instant::now(),
                    )
                });
                self.progress(tracker, read);
            }
            self.fill_walk(&mut main).await?;
            let seq = match (server.buf.front(), main.peek()) {
                (None, None) => break,
                (Some(r), None) => r.seq().unwrap_or(0),
                (None, Some(m)) => m.seq,
                (Some(r), Some(m)) => r.seq().unwrap_or(0).min(m.seq),
            };
            let record = if server.buf.front().and_then(Record::seq) == Some(seq) {
                server.buf.pop_front()
            } else {
                None
            };
            let file = if main.peek().map(|m| m.seq) == Some(seq) {
                main.pop()
            } else {
                None
            };
            match (record, file) {
                (None, None) => {}
                (None, Some(file)) => {
                    found.differences += 1;
                    match mode {
                        FullSyncMode::Check => found.report.push(&format!(
                            "{} {}: on main but not in MoneyWorks\n",
                            table.name, file.path
                        ))?,
                        FullSyncMode::Apply => match too_many.as_mut() {
                            Some(n) => *n += 1,
                            None => {
                                vanished.push(seq);
                                if too_many_deletes(vanished.len(), total, max_percent) {
                                    too_many = Some(vanished.len());
                                    vanished = Vec::new();
                                }
                            }
                        },
                    }
                }
                (Some(record), file) => {
                    let Ok(path) = record.path() else {
                        // Staging holds such a record back (apply); a check leaves it out.
                        if mode == FullSyncMode::Apply {
                            fixes.push(record);
                        }
                        continue;
                    };
                    let bytes = match record.canonical_file() {
                        Ok(b) => b,
                        Err(e) => {
                            // Held back like any unusable record; not drift mwsync could fix.
                            self.hold(crate::quarantine::QuarantinedRecord {
                                table: record.table.name.to_string(),
                                seq: record.seq(),
                                key: record.key().ok().map(|k| k.to_string()),
                                reason: format!("{e}; correct the record in MoneyWorks"),
                            });
                            continue;
                        }
                    };
                    let own = file.as_ref().filter(|f| f.path == path);
                    if own.is_some_and(|f| f.bytes == bytes) {
                        continue;
                    }
                    if mode == FullSyncMode::Check
                        && marker.is_some_and(|m| record.last_modified().is_some_and(|t| t >= m))
                    {
                        // Modified at or after the marker: the next poll brings it; not drift.
                        continue;
                    }
                    found.differences += 1;
                    let stale = file.as_ref().filter(|f| f.path != path);
                    match mode {
                        FullSyncMode::Check => {
                            let old = own
                                .and_then(|f| std::str::from_utf8(&f.bytes).ok())
                                .and_then(|t| Record::from_xml(record.table, t).ok());
                            found.report.push(&describe_difference(
                                &path,
                                &record,
                                old.as_ref(),
                            ))?;
                            if let Some(stale) = stale {
                                found.differences += 1;
                                found.report.push(&format!(
                                    "{} {}: on main but not in MoneyWorks\n",
                                    table.name, stale.path
                                ))?;
                            }
                        }
                        FullSyncMode::Apply => {
                            // Staging finds and removes a stale file through the index.
                            found.differences += usize::from(stale.is_some());
                            fixes.push(record);
                        }
                    }
                }
            }
            if fixes.len() >= page && too_many.is_none() {
                self.stage_fixes(std::mem::take(&mut fixes), found).await?;
            }
        }
        if let Some(p) = progress.as_mut() {
            let end = p.finish(tokio::time::Instant::now());
            self.publish(end);
        }
        if mode == FullSyncMode::Check {
            return Ok(());
        }
        if let Some(vanished) = too_many {
            return Err(EngineError::MassDelete {
                table: table.name.to_string(),
                vanished,
                total,
                max_percent,
            });
        }
        self.stage_fixes(fixes, found).await?;
        self.delete_vanished(table, vanished, &mut found.staged, "Full sync")
            .await?;
        Ok(())
    }

    /// Stages re-read records that differ from `main`, in checkpoints.
    async fn stage_fixes(
        &mut self,
        records: Vec<Record>,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        let page = self.stage_records(records, &found.staged).await?;
        self.add_checkpointed(page, &mut found.staged, "Full sync", None)
            .await?;
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
