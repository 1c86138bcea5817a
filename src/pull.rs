//! Pull: one poll of every tracked table, committed to `main` in checkpoints. It owns the
//! query plan (modified-since with key-set restarts and tie passes), de-duplication by
//! content, code moves, and advancing the marker only past what is committed. It must not
//! sleep or schedule; the daemon decides when to poll.

use std::collections::BTreeMap;

use crate::commit_message::{RecordNote, commit_message};
use crate::engine::{Engine, EngineError};
use crate::events::{ChangedField, Event, RecordAction};
use crate::moneyworks::{Direction, ExportFormat, ExportQuery, MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::record::{LMT_FIELD, Record, TableInfo, diff_fields};
use crate::retry::retry;
use crate::state::{ClockCheck, check_clock, checkpoint_marker, note_committed, query_start};
use crate::store::{FileChange, Store};

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records committed.
    pub records: u64,
    /// MoneyWorks requests made (exports and the clock read).
    pub requests: u64,
    /// Commits pushed.
    pub commits: u64,
}

/// Records staged for the next checkpoint.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub(crate) files: BTreeMap<String, FileChange>,
    pub(crate) notes: Vec<RecordNote>,
    /// (LastModifiedTime, seq) per table of staged records, for the newest-modified marker.
    pub(crate) times: Vec<(&'static str, MwTime, u64)>,
}

impl Staged {
    pub(crate) fn len(&self) -> usize {
        self.notes.len()
    }
}

/// The search for records modified at or after `t`.
pub fn modified_since(t: MwTime) -> String {
    format!("LastModifiedTime >= TextToDate(\"{t}\", DateFormYYYYMMDDHHMMSS)")
}

/// The search for the records modified within second `t` with a sequence number above `after`.
pub fn tie_search(t: MwTime, after: u64) -> String {
    format!(
        "LastModifiedTime >= TextToDate(\"{t}\", DateFormYYYYMMDDHHMMSS) and LastModifiedTime < TextToDate(\"{}\", DateFormYYYYMMDDHHMMSS) and SequenceNumber > {after}",
        t.add_secs(1)
    )
}

fn invalid(detail: String) -> EngineError {
    EngineError::MoneyWorks(MwError::InvalidReply {
        command: "export".into(),
        detail,
    })
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// One poll: refresh `main`, read the clock, pull every tracked table, commit in
    /// checkpoints. An idle poll commits nothing.
    pub async fn poll(&mut self) -> Result<PollReport, EngineError> {
        let clock_before = self.last_clock;
        let result = self.poll_inner().await;
        if result.is_err() {
            self.rollback();
            // A failed poll's clock reading must not shorten the next regression rescan.
            self.last_clock = clock_before;
        }
        result
    }

    async fn poll_inner(&mut self) -> Result<PollReport, EngineError> {
        self.requests = 0;
        self.commits = 0;
        self.refresh_main().await?;
        let now = self.read_clock().await?;
        let elapsed = self.last_clock.map(|(_, at)| at.elapsed().as_secs());
        let last_reading = self.last_clock.map(|(t, _)| t);
        self.last_clock = Some((now, tokio::time::Instant::now()));
        let mut staged = Staged::default();
        let mut records = 0u64;
        for table in self.repo.tables.clone() {
            records += self
                .pull_table(table, now, last_reading, elapsed, &mut staged)
                .await?;
        }
        if staged.len() > 0 {
            records += staged.len() as u64;
            self.checkpoint(&mut staged, "Pull").await?;
        }
        let report = PollReport {
            records,
            requests: self.requests,
            commits: self.commits,
        };
        self.publish(Event::PollFinished {
            records: report.records,
            requests: report.requests,
            commits: report.commits,
            main: self.main.as_ref().map(ToString::to_string),
        });
        Ok(report)
    }

    /// Pulls one table. Returns the records committed by checkpoints inside it (records still
    /// staged at the end are counted by the caller).
    async fn pull_table(
        &mut self,
        table: &'static TableInfo,
        now: MwTime,
        last_reading: Option<MwTime>,
        elapsed: Option<u64>,
        staged: &mut Staged,
    ) -> Result<u64, EngineError> {
        let mut tstate = self.state.table(table.name);
        if let ClockCheck::Regressed {
            previous,
            now,
            new_marker,
            ..
        } = check_clock(&tstate, last_reading, now, elapsed)
        {
            self.publish(Event::ClockRegression {
                table: table.name.to_string(),
                previous: previous.to_string(),
                now: now.to_string(),
                rescan_from: new_marker.to_string(),
            });
            tstate.marker = Some(new_marker);
        }
        tstate.server_time = Some(now);
        self.state
            .tables
            .insert(table.name.to_string(), tstate.clone());
        let page_size = self.repo.file.page_size;
        let checkpoint_size = self.repo.file.checkpoint_records as usize;
        let mut committed = 0u64;
        let mut cursor = query_start(tstate.marker, self.repo.file.lookback_secs);
        loop {
            let query = ExportQuery {
                table,
                search: cursor.map(modified_since),
                sort: Some("LastModifiedTime".into()),
                direction: Direction::Ascending,
                start: 0,
                limit: Some(page_size),
                format: ExportFormat::Verbose,
            };
            let (records, full) = self.export(&query).await?;
            let times = modification_times(&records)?;
            if times.windows(2).any(|w| w[0] > w[1]) {
                return Err(invalid(format!(
                    "{} records are not in LastModifiedTime order",
                    table.name
                )));
            }
            let first = times.first().copied();
            let last = times.last().copied();
            if let (Some(c), Some(f)) = (cursor, first)
                && f < c
            {
                // A server that ignored the search would make this loop forever.
                return Err(invalid(format!(
                    "asked for {} records modified at or after {c} but got one from {f}",
                    table.name
                )));
            }
            self.stage_records(records, staged)?;
            if !full {
                break;
            }
            let (Some(first), Some(last)) = (first, last) else {
                break;
            };
            if first == last {
                // A whole page shares one second: read that second by sequence number.
                self.tie_pass(table, last, staged).await?;
                cursor = Some(last.add_secs(1));
            } else {
                cursor = Some(last);
            }
            if staged.len() >= checkpoint_size {
                let mut st = self.state.table(table.name);
                st.marker = checkpoint_marker(cursor, now);
                self.state.tables.insert(table.name.to_string(), st);
                committed += staged.len() as u64;
                self.checkpoint(staged, "Pull").await?;
            }
        }
        // A complete pass: everything modified before this poll's clock reading is read.
        let mut st = self.state.table(table.name);
        st.marker = Some(now);
        if tstate.marker.is_none() && st.fingerprint_time.is_none() {
            // A first sync just read everything; the first scan is due one interval later.
            st.fingerprint_time = Some(now);
        }
        self.state.tables.insert(table.name.to_string(), st);
        Ok(committed)
    }

    /// Reads every record modified within second `t`, in sequence-number pages.
    async fn tie_pass(
        &mut self,
        table: &'static TableInfo,
        t: MwTime,
        staged: &mut Staged,
    ) -> Result<(), EngineError> {
        let page_size = self.repo.file.page_size;
        let mut after = 0u64;
        loop {
            let query = ExportQuery {
                table,
                search: Some(tie_search(t, after)),
                sort: Some("SequenceNumber".into()),
                direction: Direction::Ascending,
                start: 0,
                limit: Some(page_size),
                format: ExportFormat::Verbose,
            };
            let (records, full) = self.export(&query).await?;
            let seqs: Vec<u64> = records.iter().filter_map(Record::seq).collect();
            if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.first().is_some_and(|s| *s <= after) {
                return Err(invalid(format!(
                    "{} records are not in SequenceNumber order",
                    table.name
                )));
            }
            let last_seq = seqs.last().copied();
            self.stage_records(records, staged)?;
            match last_seq {
                Some(s) if full => after = s,
                _ => return Ok(()),
            }
        }
    }

    /// One export page (with retries). Returns the records and whether more match: the
    /// page was full, or `found` says the server holds more than it sent (a server may cap
    /// pages below the limit asked for).
    pub(crate) async fn export(
        &mut self,
        query: &ExportQuery,
    ) -> Result<(Vec<Record>, bool), EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let what = format!("exporting {}", query.table.name);
        let page = retry(&policy, &self.events, &what, || mw.export(query)).await?;
        self.requests += 1;
        let sent = page.records.len() as u64;
        let more = !page.records.is_empty()
            && (query.limit.is_some_and(|l| sent >= u64::from(l))
                || page.found > page.start + sent);
        Ok((page.records, more))
    }

    /// Stages records whose canonical bytes differ from `main` (with earlier staging applied).
    pub(crate) fn stage_records(
        &mut self,
        records: Vec<Record>,
        staged: &mut Staged,
    ) -> Result<(), EngineError> {
        for record in records {
            self.stage_record(record, staged)?;
        }
        Ok(())
    }

    fn current_bytes(&self, staged: &Staged, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        if let Some(change) = staged.files.get(path) {
            return Ok(match change {
                FileChange::Put(b) => Some(b.clone()),
                FileChange::Delete => None,
            });
        }
        match &self.main {
            Some(main) => self.store.read_file(main, path).map_err(EngineError::Store),
            None => Ok(None),
        }
    }

    fn stage_record(&mut self, record: Record, staged: &mut Staged) -> Result<(), EngineError> {
        let table = record.table;
        let seq = record
            .seq()
            .ok_or_else(|| invalid(format!("a {} record has no sequence number", table.name)))?;
        let key = record
            .key()
            .map_err(|e| invalid(format!("{} record #{seq}: {e}", table.name)))?;
        let path = record.path().map_err(|e| invalid(e.to_string()))?;
        let bytes = record
            .canonical_file()
            .map_err(|e| invalid(format!("{e}; correct the value in MoneyWorks")))?;
        let current = self.current_bytes(staged, &path)?;
        // The record's previous file when its code changed, found by sequence number. Looked
        // up even when the new path already has a file: that file may be another record's
        // old one, and the previous file must go either way.
        let mut previous: Option<(String, Record)> = None;
        if let Some(old_path) = self.seq_path(table, seq)?
            && old_path != path
            && let Some(old_bytes) = self.current_bytes(staged, &old_path)?
            && let Some(old) = std::str::from_utf8(&old_bytes)
                .ok()
                .and_then(|t| Record::from_xml(table, t).ok())
                .filter(|o| o.seq() == Some(seq))
        {
            previous = Some((old_path, old));
        }
        if current.as_deref() == Some(bytes.as_slice()) && previous.is_none() {
            return Ok(());
        }
        let old_record = current
            .as_ref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| Record::from_xml(table, t).ok());
        let mut action = if current.is_some() {
            RecordAction::Updated
        } else {
            RecordAction::Created
        };
        let mut moved_from = None;
        let mut old_fields = old_record.map(|r| r.fields).unwrap_or_default();
        if let Some((old_path, old)) = previous {
            action = RecordAction::Moved;
            moved_from = old.key().ok().map(|k| k.to_string());
            old_fields = old.fields;
            staged.files.insert(old_path, FileChange::Delete);
        }
        let fields: Vec<_> = diff_fields(&old_fields, &record.fields)
            .into_iter()
            .filter(|c| c.field != LMT_FIELD)
            .collect();
        if let Some(t) = record.last_modified() {
            staged.times.push((table.name, t, seq));
        }
        self.note_seq_path(table, seq, Some(path.clone()));
        staged.files.insert(path, FileChange::Put(bytes));
        staged.notes.push(RecordNote {
            table: table.name,
            key: key.to_string(),
            action,
            fields,
            moved_from,
        });
        Ok(())
    }

    /// Commits and pushes what is staged, with the state as it stands, then publishes one
    /// event per record.
    pub(crate) async fn checkpoint(
        &mut self,
        staged: &mut Staged,
        verb: &str,
    ) -> Result<(), EngineError> {
        let staged = std::mem::take(staged);
        let mut by_table: BTreeMap<&str, Vec<(MwTime, u64)>> = BTreeMap::new();
        for (t, time, seq) in &staged.times {
            by_table.entry(t).or_default().push((*time, *seq));
        }
        for (t, times) in by_table {
            let mut st = self.state.table(t);
            note_committed(&mut st, times);
            self.state.tables.insert(t.to_string(), st);
        }
        let message = commit_message(verb, &staged.notes, &self.state, &self.repo.hash(), "");
        let commit = self
            .commit_main(staged.files, message.clone(), None)
            .await?;
        crate::engine::pause_point("after-checkpoint");
        // The commit's summary, one line per record (the message caps how many it lists).
        for line in message.lines().skip(2).take_while(|l| !l.is_empty()) {
            tracing::info!(commit = %commit.short(), "{line}");
        }
        for note in staged.notes {
            self.publish(Event::RecordChanged {
                table: note.table.to_string(),
                key: note.key,
                action: note.action,
                fields: note.fields.iter().map(ChangedField::from).collect(),
                commit: commit.to_string(),
            });
        }
        Ok(())
    }
}

fn modification_times(records: &[Record]) -> Result<Vec<MwTime>, EngineError> {
    records
        .iter()
        .map(|r| {
            r.last_modified().ok_or_else(|| {
                invalid(format!(
                    "{} record #{} has no valid lastmodifiedtime",
                    r.table.name,
                    r.seq().unwrap_or(0)
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Searches use TextToDate with the 14-digit format, and tie passes bound one second.
    #[test]
    fn searches_are_exact() {
        let t = MwTime::parse("20240101235959").expect("valid");
        assert_eq!(
            modified_since(t),
            "LastModifiedTime >= TextToDate(\"20240101235959\", DateFormYYYYMMDDHHMMSS)"
        );
        assert_eq!(
            tie_search(t, 7),
            "LastModifiedTime >= TextToDate(\"20240101235959\", DateFormYYYYMMDDHHMMSS) and LastModifiedTime < TextToDate(\"20240102000000\", DateFormYYYYMMDDHHMMSS) and SequenceNumber > 7"
        );
    }
}
