//! Pull: one poll of every tracked table, committed to `main` in checkpoints. The shell here
//! owns the paging loop (modified-since pages with key-set restarts, and tie passes when a
//! whole page shares one second), the checks that a reply is in the order asked for, and
//! advancing the marker only past what is committed; what each record means for `main` is
//! decided by the pure `stage`. A table whose pass fails (MoneyWorks keeps failing, an
//! `[ERROR]` answer, an oversized reply) is rolled back alone and reported, and the other
//! tables go on; an unusable record is quarantined and the cursor steps past it. It must not
//! sleep or schedule; the daemon decides when to poll.

pub(crate) mod stage;

use std::collections::{BTreeMap, BTreeSet};

use crate::commit_message::commit_message;
use crate::engine::io::RunningExport;
use crate::engine::{ClockReading, Engine, EngineError};
use crate::error::{Classify, ErrorClass};
use crate::events::{ActivityKind, ChangedField, Event};
use crate::moneyworks::{MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::progress::Tracker;
use crate::query;
use crate::record::{Record, TableInfo};
use crate::state::{
    ClockCheck, TableState, behind_main, check_clock, checkpoint_marker, note_committed,
    query_start,
};
use crate::store::Store;
use stage::{Staged, invalid};

/// Record lines logged at INFO per commit; the rest are in the commit message and at debug.
pub const INFO_RECORD_LINES: usize = 10;

/// Where a pass of one table began, for [`Engine::undo_pass`].
pub(crate) struct PassStart {
    before: TableState,
    staged: Staged,
    commits: u64,
}

/// One table that could not be read in a cycle; the others went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The table.
    pub table: String,
    /// What went wrong.
    pub error: String,
    /// True when only a human can fix it; the table is parked until then.
    pub needs_human: bool,
}

/// What one poll (or a whole cycle) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records committed.
    pub records: u64,
    /// MoneyWorks requests made (exports and the clock read).
    pub requests: u64,
    /// Commits pushed.
    pub commits: u64,
    /// Tables that failed while the others went on, each once.
    pub table_errors: Vec<TableError>,
}

impl PollReport {
    /// Adds what a later poll of the same cycle did.
    pub fn add(&mut self, later: &PollReport) {
        self.records += later.records;
        self.requests += later.requests;
        self.commits += later.commits;
        for e in &later.table_errors {
            self.note_table_error(e.clone());
        }
    }

    /// Notes a table's failure; a later one for the same table replaces the earlier.
    pub fn note_table_error(&mut self, error: TableError) {
        self.table_errors.retain(|e| e.table != error.table);
        self.table_errors.push(error);
    }
}

/// True when `e`, met while reading one table, concerns that table alone: MoneyWorks kept
/// failing, answered `[ERROR]`, sent an unusable or oversized page. A refused login, git
/// and `main` concern everything.
pub(crate) fn is_table_error(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::MoneyWorks(_) | EngineError::MassDelete { .. }
    ) && e.class() != ErrorClass::Invalid
}

/// The clock as this poll found it, and what it knew before.
#[derive(Debug, Clone, Copy)]
struct PollClock {
    now: MwTime,
    /// The previous successful poll's reading.
    last_reading: Option<MwTime>,
    /// Monotonic seconds since that reading.
    elapsed: Option<u64>,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// One poll: refresh `main`, read the clock, pull every tracked table, commit in
    /// checkpoints. An idle poll commits nothing. A failed poll rolls back what it staged,
    /// and its clock reading is not kept, so it cannot shorten the next regression rescan.
    pub async fn poll(&mut self) -> Result<PollReport, EngineError> {
        let result = self.poll_inner().await;
        match result {
            Ok(_) => {
                self.known.poll_succeeded();
                self.keep_floor()?;
            }
            Err(_) => {
                // What the poll checkpointed before it failed still goes to the remote.
                self.land_after_failure().await;
                self.known.rollback();
            }
        }
        result
    }

    async fn poll_inner(&mut self) -> Result<PollReport, EngineError> {
        self.known.reset_counters();
        self.publish(Event::Activity {
            kind: ActivityKind::Polling,
            table: None,
        });
        self.refresh_main().await?;
        self.migrate_layout().await?;
        let (now, unchanged) = self.read_clock_and_changes().await?;
        let reading = ClockReading {
            time: now,
            at: tokio::time::Instant::now(),
        };
        let clock = PollClock {
            now,
            last_reading: self.known.last_clock.map(|c| c.time),
            elapsed: self.known.last_clock.map(|c| c.at.elapsed().as_secs()),
        };
        let mut staged = Staged::default();
        let mut report = PollReport::default();
        let config_hash = self.known.repo.hash();
        for table in self.known.repo.tables.clone() {
            if let Some((hash, error)) = self.known.parked_tables.get(table.name) {
                if *hash == config_hash {
                    report.note_table_error(TableError {
                        table: table.name.to_string(),
                        error: error.to_string(),
                        needs_human: true,
                    });
                    continue;
                }
                self.known.parked_tables.remove(table.name);
            }
            let before = self.known.state.table(table.name);
            let start = self.start_table(table, clock);
            // A marker a regression moved back is kept in the cache before anything is read
            // from it: a crash from here on must not resume from `main`'s higher marker.
            self.keep_floor()?;
            if unchanged.contains(table.name) && start == before.marker {
                // The probe asked from this marker and found nothing modified since: the
                // pass is complete without an export.
                self.known.state.table_mut(table.name).marker = Some(clock.now);
                continue;
            }
            let pass = self.begin_pass(before, &staged);
            match self.pull_table(table, start, clock, &mut staged).await {
                Ok(n) => report.records += n,
                Err(e) if is_table_error(&e) => {
                    let failed = self.undo_pass(table, pass, &mut staged, &e, &config_hash);
                    report.note_table_error(failed);
                }
                Err(e) => return Err(e),
            }
        }
        // After a clock step back, `main`'s state is ahead of the clock until a commit
        // carries the moved markers; without one, every restart would take it for a new
        // step back and re-read the day again.
        let behind = behind_main(self.known.committed_state(), &self.known.state, now);
        if staged.len() > 0 || self.known.quarantine_changed() || !behind.is_empty() {
            report.records += staged.len() as u64;
            let note = crate::commit_message::clock_note(now, &behind);
            self.checkpoint_with(&mut staged, "Pull", false, &note)
                .await?;
        }
        self.land().await?;
        self.known.last_clock = Some(reading);
        report.requests = self.known.requests;
        report.commits = self.known.commits;
        self.publish(Event::PollFinished {
            records: report.records,
            requests: report.requests,
            commits: report.commits,
            main: self.known.main.as_ref().map(ToString::to_string),
        });
        Ok(report)
    }

    /// Notes what a pass of one table may have to undo: the table's state `before` it, what
    /// was staged and how many pushes were made.
    pub(crate) fn begin_pass(&self, before: TableState, staged: &Staged) -> PassStart {
        PassStart {
            before,
            staged: staged.clone(),
            commits: self.known.commits,
        }
    }

    /// Undoes the failed pass of `table` that began at `pass`, and reports the failure. A
    /// checkpoint inside the pass committed everything staged before it, so what is left
    /// staged after it is this table's alone and goes; otherwise the staging returns to where
    /// the pass began.
    pub(crate) fn undo_pass(
        &mut self,
        table: &'static TableInfo,
        pass: PassStart,
        staged: &mut Staged,
        e: &EngineError,
        config_hash: &str,
    ) -> TableError {
        let checkpointed = self.known.commits != pass.commits;
        *staged = if checkpointed {
            Staged::default()
        } else {
            pass.staged
        };
        self.known
            .rollback_table(table.name, pass.before, checkpointed);
        self.table_failed(table, e, config_hash)
    }

    /// Reports that `table` failed with `e`: published, and parked when only a human can
    /// fix it (an oversized reply is then not asked for again until the repo config
    /// changes).
    pub(crate) fn table_failed(
        &mut self,
        table: &TableInfo,
        e: &EngineError,
        config_hash: &str,
    ) -> TableError {
        let needs_human = e.class() == ErrorClass::NeedsHuman;
        if needs_human && matches!(e, EngineError::MoneyWorks(_)) {
            self.known
                .parked_tables
                .insert(table.name.to_string(), (config_hash.to_string(), e.clone()));
        }
        self.publish(Event::TableFailed {
            table: table.name.to_string(),
            error: e.to_string(),
            needs_human,
        });
        TableError {
            table: table.name.to_string(),
            error: e.to_string(),
            needs_human,
        }
    }

    /// Reads the server clock and, in the same `evaluate`, which completed tables changed
    /// since their markers (`query::changes_expression`); returns the clock and the tables
    /// that certainly did not. A server that refuses the expression, or answers it in
    /// another shape, is told so once in the log and from then on gets a plain clock read
    /// and an export per table.
    async fn read_clock_and_changes(
        &mut self,
    ) -> Result<(MwTime, BTreeSet<&'static str>), EngineError> {
        let lookback = self.known.repo.file.lookback_secs;
        let probe: Vec<(&'static TableInfo, MwTime)> = self
            .known
            .repo
            .tables
            .iter()
            .filter_map(|t| {
                let st = self.known.state.table(t.name);
                let start = query_start(st.marker, lookback).filter(|_| st.complete)?;
                Some((*t, start))
            })
            .collect();
        if probe.is_empty() || self.known.probe_refused {
            return Ok((self.read_clock().await?, BTreeSet::new()));
        }
        let expr = query::changes_expression(&probe);
        let tables = probe.len();
        let answer = self
            .evaluate_parsed(
                &expr,
                "reading the MoneyWorks clock and what changed",
                |text| {
                    // A reply without a clock is damaged and worth a retry; one with a clock but
                    // not one flag per table is a server that evaluates Find differently.
                    match query::parse_changes(text, tables) {
                        Some(parsed) => Ok(Ok(parsed)),
                        None => {
                            let clock = text.split('|').next().unwrap_or_default().trim();
                            match MwTime::parse(clock) {
                                Ok(now) => {
                                    Ok(Err((now, text.chars().take(80).collect::<String>())))
                                }
                                Err(e) => Err(format!("the clock reading is unusable: {e}")),
                            }
                        }
                    }
                },
            )
            .await;
        let (now, why) = match answer {
            Ok(Ok((now, changed))) => {
                let unchanged = probe
                    .iter()
                    .zip(changed)
                    .filter(|(_, changed)| !changed)
                    .map(|((t, _), _)| t.name)
                    .collect();
                return Ok((now, unchanged));
            }
            Ok(Err((now, text))) => (Some(now), format!("it answered {text:?}")),
            // `[ERROR]` is how a server refuses an expression it cannot evaluate; it is
            // retried like any `[ERROR]` first, then taken as a refusal.
            Err(e @ EngineError::MoneyWorks(MwError::ErrorReply { .. })) => (None, e.to_string()),
            Err(e) if e.class() == ErrorClass::Retryable => return Err(e),
            Err(e) => (None, e.to_string()),
        };
        tracing::warn!(
            "MoneyWorks does not answer the one-request idle poll (Find() in an evaluate: {why}); \
             each poll now reads the clock and exports every table"
        );
        self.known.probe_refused = true;
        match now {
            Some(now) => Ok((now, BTreeSet::new())),
            None => Ok((self.read_clock().await?, BTreeSet::new())),
        }
    }

    /// Pulls one table. Returns the records committed by checkpoints inside it (records still
    /// staged at the end are counted by the caller). A checkpoint is committed only when the
    /// next page brings records that would not fit, so the last records of a table are always
    /// committed together with its completed state (marker, `complete`, `fingerprint_time`).
    async fn pull_table(
        &mut self,
        table: &'static TableInfo,
        start: Option<MwTime>,
        clock: PollClock,
        staged: &mut Staged,
    ) -> Result<u64, EngineError> {
        let page_size = self.known.repo.file.page_size;
        // A table never completed is in its first sync (perhaps resumed from a checkpoint).
        let first_sync = !self.known.state.table(table.name).complete;
        let kind = if first_sync {
            self.publish(Event::Activity {
                kind: ActivityKind::FirstSync,
                table: Some(table.name.to_string()),
            });
            ActivityKind::FirstSync
        } else {
            ActivityKind::Polling
        };
        let mut progress: Option<Tracker> = None;
        let mut committed = 0u64;
        let mut cursor = query_start(start, self.known.repo.file.lookback_secs);
        // The next page's export, begun before this page is staged when its cursor is known.
        let mut ahead: Option<RunningExport> = None;
        loop {
            self.check_cancelled()?;
            let asked = query::modified_page(table, cursor, page_size);
            let page = match ahead.take() {
                Some(running) if running.query == asked => self.finish_export(running).await?,
                _ => self.export(&asked).await?,
            };
            let full = page.more;
            if progress.is_none() && full {
                // More than a page to read: worth a progress bar, counted against `found`.
                progress = Some(Tracker::new(
                    kind,
                    table.name,
                    page.found,
                    tokio::time::Instant::now(),
                ));
            }
            let bounds = modification_bounds(table, &page.stamps, cursor)?;
            // Records of the restart second may be re-reads of the last page's; progress
            // counts only the newer ones (and is made whole when the pass completes).
            let fresh = page
                .stamps
                .iter()
                .filter(|t| cursor.is_none_or(|c| **t > c))
                .count() as u64;
            let page_len = page.stamps.len() as u64;
            if let (true, Some((first, last))) = (full, bounds)
                && first != last
            {
                ahead = Some(self.start_export(query::modified_page(table, Some(last), page_size)));
            }
            // Everything before the cursor of this page is read.
            committed += self
                .stage_checkpointed(table, page.records, staged, cursor, clock.now)
                .await?;
            if let Some(p) = progress.as_mut() {
                self.progress(p, fresh);
            }
            let (true, Some((first, last))) = (full, bounds) else {
                break;
            };
            if first == last {
                // A whole page shares one second: read that second by sequence number.
                let (read, done) = self.tie_pass(table, last, staged, clock.now).await?;
                committed += done;
                if let Some(p) = progress.as_mut() {
                    self.progress(p, read.saturating_sub(page_len));
                }
                cursor = Some(last.add_secs(1));
            } else {
                cursor = Some(last);
            }
        }
        if let Some(p) = progress.as_mut() {
            let end = p.finish(tokio::time::Instant::now());
            self.publish(end);
        }
        // A complete pass: everything modified before this poll's clock reading is read.
        let st = self.known.state.table_mut(table.name);
        st.marker = Some(clock.now);
        if !st.complete {
            // The first sync just read everything; the first scan is due one interval later.
            st.complete = true;
            st.fingerprint_time.get_or_insert(clock.now);
        }
        if first_sync {
            self.publish(Event::Activity {
                kind: ActivityKind::Polling,
                table: None,
            });
        }
        Ok(committed)
    }

    /// Stages `records` of `table`, committing a checkpoint whenever one is full and more
    /// records follow, so every checkpoint holds exactly `checkpoint_records` records and the
    /// last records of a pass stay staged until the pass ends. `frontier` is the position
    /// everything before which is read (a checkpoint's marker, capped at `now`). Returns the
    /// records committed.
    async fn stage_checkpointed(
        &mut self,
        table: &'static TableInfo,
        mut records: Vec<Record>,
        staged: &mut Staged,
        frontier: Option<MwTime>,
        now: MwTime,
    ) -> Result<u64, EngineError> {
        let checkpoint_size = self.known.repo.file.checkpoint_records as usize;
        let mut committed = 0u64;
        while !records.is_empty() {
            if staged.len() >= checkpoint_size {
                self.known.state.table_mut(table.name).marker = checkpoint_marker(frontier, now);
                committed += staged.len() as u64;
                self.checkpoint_and_go_on(staged, "Pull").await?;
                self.check_cancelled()?;
            }
            let room = checkpoint_size - staged.len();
            let (page, rest) = self.stage_records_up_to(records, staged, room).await?;
            self.apply_staged(page, staged);
            records = rest;
        }
        Ok(committed)
    }

    /// Adds `page` to `staged`, first committing `staged` as a checkpoint (`verb` names it)
    /// when the page would not fit in it. `marker`, when given, is the marker `table` records
    /// in that checkpoint. Returns the records added and the records committed.
    pub(crate) async fn add_checkpointed(
        &mut self,
        page: Staged,
        staged: &mut Staged,
        verb: &str,
        marker: Option<(&'static str, Option<MwTime>)>,
    ) -> Result<(usize, usize), EngineError> {
        let added = page.len();
        let checkpoint_size = self.known.repo.file.checkpoint_records as usize;
        let mut committed = 0;
        if staged.len() > 0 && staged.len() + added > checkpoint_size {
            if let Some((table, m)) = marker {
                self.known.state.table_mut(table).marker = m;
            }
            committed = staged.len();
            self.checkpoint_and_go_on(staged, verb).await?;
            self.check_cancelled()?;
        }
        self.apply_staged(page, staged);
        Ok((added, committed))
    }

    /// Notes the clock reading in `table`'s state, moving its marker back after a clock
    /// regression, and returns the marker the pass starts from.
    fn start_table(&mut self, table: &'static TableInfo, clock: PollClock) -> Option<MwTime> {
        let mut tstate = self.known.state.table(table.name);
        if let ClockCheck::Regressed {
            previous,
            now,
            new_marker,
            ..
        } = check_clock(&tstate, clock.last_reading, clock.now, clock.elapsed)
        {
            self.publish(Event::ClockRegression {
                table: table.name.to_string(),
                previous: previous.to_string(),
                now: now.to_string(),
                rescan_from: new_marker.to_string(),
            });
            self.known.note_regression(table.name, new_marker);
            tstate.marker = Some(new_marker);
        }
        tstate.server_time = Some(clock.now);
        let marker = tstate.marker;
        self.known
            .state
            .tables
            .insert(table.name.to_string(), tstate);
        marker
    }

    /// Reads every record modified within second `t`, in sequence-number pages. Checkpoints
    /// inside it record `t` as the marker: everything before that second is read. Returns how
    /// many records it read and how many it committed.
    async fn tie_pass(
        &mut self,
        table: &'static TableInfo,
        t: MwTime,
        staged: &mut Staged,
        now: MwTime,
    ) -> Result<(u64, u64), EngineError> {
        let page_size = self.known.repo.file.page_size;
        let mut after = 0u64;
        let mut read = 0u64;
        let mut committed = 0;
        loop {
            self.check_cancelled()?;
            let page = self
                .export(&query::tie_page(table, t, after, page_size))
                .await?;
            let last_seq = last_seq_in_order(table, &page.seqs, after)?;
            let full = page.more;
            read += page.stamps.len() as u64;
            committed += self
                .stage_checkpointed(table, page.records, staged, Some(t), now)
                .await?;
            match last_seq {
                Some(s) if full => after = s,
                _ => return Ok((read, committed)),
            }
        }
    }

    /// Stages records (of any tracked tables) on top of `staged` without adding them: finds
    /// the previous file of records whose code may have changed, reads the current bytes of
    /// every path they touch in one go, and lets [`stage::stage`] decide. The caller applies
    /// the result.
    pub(crate) async fn stage_records(
        &mut self,
        records: Vec<Record>,
        staged: &Staged,
    ) -> Result<Staged, EngineError> {
        Ok(self
            .stage_records_up_to(records, staged, usize::MAX)
            .await?
            .0)
    }

    /// Like [`Self::stage_records`], stopping after `limit` records are staged; returns
    /// the records after those, unstaged.
    async fn stage_records_up_to(
        &mut self,
        records: Vec<Record>,
        staged: &Staged,
        limit: usize,
    ) -> Result<(Staged, Vec<Record>), EngineError> {
        if records.is_empty() {
            return Ok((Staged::default(), records));
        }
        let previous = self.previous_paths(&records).await?;
        let paths = stage::paths_to_read(&records, &previous);
        let (in_staged, on_main): (BTreeSet<String>, BTreeSet<String>) =
            paths.into_iter().partition(|p| staged.staged(p).is_some());
        let mut current = self.read_main_files(on_main).await?;
        for path in in_staged {
            let bytes = staged.staged(&path).flatten().map(<[u8]>::to_vec);
            current.insert(path, bytes);
        }
        Ok(stage::stage_up_to(records, &current, &previous, limit))
    }

    /// Adds `page` to `staged`, records its index updates, holds back the records it could
    /// not stage and lets go of held records it filed or deleted.
    pub(crate) fn apply_staged(&mut self, mut page: Staged, staged: &mut Staged) {
        for (table, seq, path) in &page.index {
            self.known.seq_index.note(table, *seq, path.clone());
            self.release(table, *seq, None);
        }
        for held in std::mem::take(&mut page.quarantined) {
            self.hold(held);
        }
        staged.extend(page);
    }

    /// What a commit says about the quarantine when it changed: the records newly held
    /// back (with the reason) and those let go. Empty when it did not change.
    fn quarantine_note(&self) -> String {
        if !self.known.quarantine_changed() {
            return String::new();
        }
        let before = self.known.committed_quarantine().entries();
        let now = self.known.quarantine.entries();
        let mut out = String::new();
        for q in now.iter().filter(|q| !before.contains(q)) {
            out.push_str(&format!("Held back: {}: {}\n", q.name(), q.reason));
        }
        for q in before
            .iter()
            .filter(|q| !now.iter().any(|n| n.name() == q.name()))
        {
            out.push_str(&format!("No longer held back: {}\n", q.name()));
        }
        out.push_str(&format!(
            "{} records held back in total; see {}\n",
            now.len(),
            crate::writeback::STATUS_PATH
        ));
        out
    }

    /// Commits and pushes what is staged, with the state as it stands, after every earlier
    /// checkpoint, then publishes one event per record.
    pub(crate) async fn checkpoint(
        &mut self,
        staged: &mut Staged,
        verb: &str,
    ) -> Result<(), EngineError> {
        self.checkpoint_with(staged, verb, false, "").await
    }

    /// Like [`Self::checkpoint`] inside a pass: the commit's push runs while the pass goes
    /// on (`engine::landing`).
    pub(crate) async fn checkpoint_and_go_on(
        &mut self,
        staged: &mut Staged,
        verb: &str,
    ) -> Result<(), EngineError> {
        self.checkpoint_with(staged, verb, true, "").await
    }

    /// The commit behind both; `note` (whole lines) goes into its message before what the
    /// quarantine note says.
    async fn checkpoint_with(
        &mut self,
        staged: &mut Staged,
        verb: &str,
        go_on: bool,
        note: &str,
    ) -> Result<(), EngineError> {
        let staged = std::mem::take(staged);
        let mut by_table: BTreeMap<&str, Vec<(MwTime, u64)>> = BTreeMap::new();
        for (t, time, seq) in &staged.times {
            by_table.entry(t).or_default().push((*time, *seq));
        }
        for (t, times) in by_table {
            note_committed(self.known.state.table_mut(t), times);
        }
        let message = commit_message(
            verb,
            &staged.notes,
            &self.known.state,
            &self.known.repo.hash(),
            &format!("{note}{}", self.quarantine_note()),
        );
        let commit = if go_on {
            self.commit_checkpoint(staged.files, message.clone())
                .await?
        } else {
            self.commit_main(staged.files, message.clone(), None)
                .await?
        };
        // Committed; with `go_on` its push may still be running (a kill here is a kill
        // during a push).
        crate::engine::pause_point("after-checkpoint");
        // The commit's summary at INFO, capped: the message lists every record, and each
        // record's event logs it at debug level.
        let total = staged.notes.len();
        for line in message
            .lines()
            .skip(2)
            .take_while(|l| !l.is_empty())
            .take(INFO_RECORD_LINES.min(total))
        {
            tracing::info!(commit = %commit.short(), "{line}");
        }
        if total > INFO_RECORD_LINES {
            tracing::info!(
                commit = %commit.short(),
                "… and {} more records in {}; its commit message lists them all, and RUST_LOG=debug logs each",
                total - INFO_RECORD_LINES,
                commit.short()
            );
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

/// The first and last LastModifiedTime of a modified-since page (`times`: the stamps of
/// every record of the reply, quarantined ones included, in reply order), after checking
/// that the page is in stamp order and starts at or after `cursor`.
fn modification_bounds(
    table: &TableInfo,
    times: &[MwTime],
    cursor: Option<MwTime>,
) -> Result<Option<(MwTime, MwTime)>, EngineError> {
    if times.windows(2).any(|w| w[0] > w[1]) {
        return Err(invalid(format!(
            "{} records are not in LastModifiedTime order",
            table.name
        )));
    }
    let (Some(first), Some(last)) = (times.first().copied(), times.last().copied()) else {
        return Ok(None);
    };
    if let Some(c) = cursor
        && first < c
    {
        // A server that ignored the search would make the paging loop forever.
        return Err(invalid(format!(
            "asked for {} records modified at or after {c} but got one from {first}",
            table.name
        )));
    }
    Ok(Some((first, last)))
}

/// The last sequence number of a tie-pass page (`seqs`, in reply order), after checking
/// that the page is in strictly rising sequence order after `after`.
fn last_seq_in_order(
    table: &TableInfo,
    seqs: &[u64],
    after: u64,
) -> Result<Option<u64>, EngineError> {
    if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.first().is_some_and(|s| *s <= after) {
        return Err(invalid(format!(
            "{} records are not in SequenceNumber order",
            table.name
        )));
    }
    Ok(seqs.last().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::table_info;

    fn page(stamps: &[&str]) -> Vec<MwTime> {
        stamps
            .iter()
            .map(|s| MwTime::parse(s).expect("valid"))
            .collect()
    }

    /// A page out of stamp order, or from before the cursor, is refused; a good page gives
    /// its bounds.
    #[test]
    fn pages_must_follow_the_query() {
        let name = table_info("Name").expect("known");
        let t = |s| MwTime::parse(s).expect("valid");
        let good = page(&["20240101000000", "20240101000005"]);
        assert_eq!(
            modification_bounds(name, &good, Some(t("20240101000000"))).expect("in order"),
            Some((t("20240101000000"), t("20240101000005")))
        );
        let backwards = page(&["20240101000005", "20240101000000"]);
        assert!(modification_bounds(name, &backwards, None).is_err());
        let early = modification_bounds(name, &good, Some(t("20240101000001")))
            .expect_err("before the cursor");
        assert!(
            early
                .to_string()
                .contains("but got one from 20240101000000"),
            "{early}"
        );
        assert_eq!(
            last_seq_in_order(name, &[1, 2], 0).expect("in order"),
            Some(2)
        );
        assert!(last_seq_in_order(name, &[1, 2], 1).is_err());
    }
}
