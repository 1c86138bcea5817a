//! The fingerprint scan: what a modified-since poll cannot see. It merge-joins every
//! record's sequence number and stamp (and code) in MoneyWorks with the files on `main`, both
//! in sequence order, a page and a shard at a time (the walk over `main`, [`MainWalk`], is
//! shared with the full sync), decides each sequence number with the pure [`judge`], re-reads
//! what differs in ranges ([`reread_ranges`]) and commits it in checkpoints, and deletes
//! vanished records last, behind the mass-delete guard. Quarantined records are read again
//! at every scan, and let go when they are filed or gone. A table whose scan fails is
//! reported and the other tables are scanned. Memory holds one page, one shard and the
//! vanished sequence numbers (at most `max_delete_percent` of the table). It must not
//! schedule itself (the cycle decides when it is due).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::engine::io::{MainFile, for_each_shard, quick_fingerprint, shard_files};
use crate::engine::{Engine, EngineError, SeqPlace, shard_dir};
use crate::moneyworks::{ExportFormat, MoneyWorks};
use crate::mwtime::MwTime;
use crate::pull::stage::{Staged, invalid, stage_deletes};
use crate::pull::{TableError, is_table_error};
use crate::query::{FINGERPRINT_PAGE, fingerprint_format, seq_page, seq_range};
use crate::record::{KeyField, Record, RecordKey, TableInfo};
use crate::store::{CommitId, Store};

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

/// What one sequence number's fingerprint and file say, as the scan compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The file matches MoneyWorks' stamp and key.
    Same,
    /// Re-read the record: missing on `main`, or its stamp or key differs.
    Reread,
    /// The file's record no longer exists in MoneyWorks.
    Vanished,
}

/// Compares one sequence number: its fingerprint in MoneyWorks (if any) with its file on
/// `main` (if any: path and stamp). Pure.
pub fn judge(
    table: &TableInfo,
    server: Option<&Fingerprint>,
    main: Option<(&str, &str)>,
) -> Verdict {
    match (server, main) {
        (None, None) => Verdict::Same,
        (Some(_), None) => Verdict::Reread,
        (None, Some(_)) => Verdict::Vanished,
        (Some(f), Some((path, stamp))) => {
            let key = match (&f.code, table.key) {
                (Some(code), KeyField::Code(_)) => RecordKey::Code(code.clone()),
                _ => RecordKey::Seq(f.seq),
            };
            if crate::record::record_path(table, &key) != path || f.modified != stamp {
                Verdict::Reread
            } else {
                Verdict::Same
            }
        }
    }
}

/// True when deleting `vanished` of `total` records exceeds `max_percent`.
pub fn too_many_deletes(vanished: usize, total: usize, max_percent: u32) -> bool {
    total > 0 && vanished * 100 > total * max_percent as usize
}

/// Consecutive sequence numbers to re-read, grouped so that each group spans at most
/// `page` records of the table (`pos` counts the table's records in sequence order), so one
/// range export of `SequenceNumber >= first and SequenceNumber <= last` reads a group. Pure.
pub fn reread_ranges(rereads: &[(u64, u64)], page: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut group: Option<(u64, u64, u64)> = None; // first seq, first pos, last seq
    for &(seq, pos) in rereads {
        group = match group {
            Some((first, first_pos, _)) if pos - first_pos < page => Some((first, first_pos, seq)),
            Some((first, _, last)) => {
                out.push((first, last));
                Some((seq, pos, seq))
            }
            None => Some((seq, pos, seq)),
        };
    }
    if let Some((first, _, last)) = group {
        out.push((first, last));
    }
    out
}

/// A table's files on `main` in sequence order, read one shard (or, for code-keyed tables,
/// 1,000 index entries) at a time, so a walk holds at most one shard in memory.
pub(crate) struct MainWalk {
    table: &'static TableInfo,
    /// The tip being walked.
    main: Option<CommitId>,
    /// Tables keyed by sequence number: the shard directories still to read, in order.
    shards: VecDeque<String>,
    /// Code-keyed tables: the last sequence number taken from the index.
    after: u64,
    /// True once everything is read into `buf`.
    done: bool,
    /// Read, not yet consumed.
    buf: VecDeque<MainFile>,
    /// Record files on `main` in this table.
    pub(crate) total: usize,
}

/// Index entries a code-keyed walk reads at once.
const INDEX_CHUNK: usize = 1000;

impl MainWalk {
    /// The next file, without consuming it.
    pub(crate) fn peek(&self) -> Option<&MainFile> {
        self.buf.front()
    }

    /// Consumes the next file.
    pub(crate) fn pop(&mut self) -> Option<MainFile> {
        self.buf.pop_front()
    }
}

/// MoneyWorks' fingerprints of a table in sequence order, a page at a time.
struct ServerWalk {
    after: u64,
    done: bool,
    buf: VecDeque<Fingerprint>,
    /// Fingerprints consumed so far (the position of the next one).
    pos: u64,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Starts a walk over `table`'s files on `main`: lists its shard directories (tables
    /// keyed by sequence number) or builds its index (code-keyed), and counts its files.
    pub(crate) async fn main_walk(
        &mut self,
        table: &'static TableInfo,
    ) -> Result<MainWalk, EngineError> {
        let main = self.known.main.clone();
        let mut walk = MainWalk {
            table,
            main: main.clone(),
            shards: VecDeque::new(),
            after: 0,
            done: main.is_none(),
            buf: VecDeque::new(),
            total: 0,
        };
        let Some(main) = main else {
            return Ok(walk);
        };
        match table.key {
            KeyField::Code(_) => {
                self.build_seq_index(vec![table]).await?;
                walk.total = self.known.seq_index.len(table);
            }
            KeyField::Seq => {
                let (shards, total) = self
                    .store_call(move |s| {
                        let mut shards = VecDeque::new();
                        let mut total = 0;
                        for_each_shard(s, &main, table, |s, _, dir| {
                            total += s.list_dir(&main, dir)?.iter().filter(|e| !e.is_dir).count();
                            shards.push_back(dir.to_string());
                            Ok(())
                        })?;
                        Ok((shards, total))
                    })
                    .await?;
                walk.shards = shards;
                walk.total = total;
            }
        }
        Ok(walk)
    }

    /// Reads the walk's next shard or index chunk when nothing read is left.
    pub(crate) async fn fill_walk(&self, walk: &mut MainWalk) -> Result<(), EngineError> {
        while walk.buf.is_empty() && !walk.done {
            let Some(main) = walk.main.clone() else {
                walk.done = true;
                break;
            };
            let table = walk.table;
            let files = match table.key {
                KeyField::Seq => {
                    let Some(dir) = walk.shards.pop_front() else {
                        walk.done = true;
                        break;
                    };
                    self.store_call(move |s| shard_files(s, &main, &dir, |_| true))
                        .await?
                }
                KeyField::Code(_) => {
                    let chunk = self.known.seq_index.after(table, walk.after, INDEX_CHUNK);
                    let Some(&(last, _)) = chunk.last() else {
                        walk.done = true;
                        break;
                    };
                    walk.after = last;
                    let mut shards: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
                    for (seq, shard) in chunk {
                        shards.entry(shard).or_default().push(seq);
                    }
                    self.store_call(move |s| {
                        let mut out = Vec::new();
                        for (shard, seqs) in shards {
                            let dir = shard_dir(table, shard);
                            out.extend(shard_files(s, &main, &dir, |seq| seqs.contains(&seq))?);
                        }
                        out.sort_by_key(|f| f.seq);
                        Ok(out)
                    })
                    .await?
                }
            };
            walk.buf.extend(files);
        }
        Ok(())
    }

    /// Reads the next page of fingerprints when nothing read is left.
    async fn fill_server(
        &mut self,
        table: &'static TableInfo,
        walk: &mut ServerWalk,
    ) -> Result<(), EngineError> {
        if !walk.buf.is_empty() || walk.done {
            return Ok(());
        }
        let format = ExportFormat::Custom(fingerprint_format(table));
        let query = seq_page(table, walk.after, FINGERPRINT_PAGE, format);
        let text = self.export_text(&query, "fingerprint scan").await?;
        let page = parse_fingerprints(table, &text).map_err(invalid)?;
        if page.windows(2).any(|w| w[0].seq >= w[1].seq)
            || page.first().is_some_and(|f| f.seq <= walk.after)
        {
            return Err(invalid(
                "fingerprints are not in SequenceNumber order".into(),
            ));
        }
        // Custom formats carry no `found`, and a server may cap pages below what was asked;
        // only an empty page proves the end, or records would look deleted.
        match page.last() {
            Some(last) => walk.after = last.seq,
            None => walk.done = true,
        }
        walk.buf.extend(page);
        Ok(())
    }

    /// Re-reads the records of `table` with sequence numbers `first..=last`, in pages.
    pub(crate) async fn reread_range(
        &mut self,
        table: &'static TableInfo,
        first: u64,
        last: u64,
    ) -> Result<Vec<Record>, EngineError> {
        let page = self.known.repo.file.page_size;
        let mut out = Vec::new();
        let mut from = first;
        loop {
            let reply = self.export(&seq_range(table, from, last, page)).await?;
            // Held-back records of the reply count for order and paging too.
            let (records, full, seqs) = (reply.records, reply.more, reply.seqs);
            if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.iter().any(|s| *s < from || *s > last)
            {
                return Err(invalid(format!(
                    "asked for {} records #{from}..=#{last} in SequenceNumber order, got others",
                    table.name
                )));
            }
            out.extend(records);
            match seqs.last() {
                Some(&s) if full && s < last => from = s + 1,
                _ => return Ok(out),
            }
        }
    }

    /// Runs the fingerprint scan on tables whose interval has passed. Commits deletions and
    /// corrections in checkpoints. A table whose scan fails (MoneyWorks keeps failing, or it
    /// would lose more than `max_delete_percent` at once) is left as it was and reported; the
    /// other tables are scanned. The last commit carries every scan's time, even when the
    /// scans changed nothing (then it changes only the state), so a restart does not scan
    /// again. Returns the reports of the tables that failed.
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
        let mut staged = Staged::default();
        let mut scanned = false;
        for table in self.known.repo.tables.clone() {
            let st = self.known.state.table(table.name);
            let due = st.complete
                && st.fingerprint_time.is_none_or(|t| {
                    now.unix_secs() - t.unix_secs() >= i64::try_from(interval).unwrap_or(i64::MAX)
                });
            if !due {
                continue;
            }
            let pass = self.begin_pass(st, &staged);
            match self.scan_table(table, now, &mut staged).await {
                Ok(_) => scanned = true,
                Err(e) if is_table_error(&e) => {
                    failed.push(self.undo_pass(table, pass, &mut staged, &e, &config_hash));
                }
                Err(e) => return Err(e),
            }
        }
        if scanned || staged.len() > 0 {
            self.commit_scan(&mut staged).await?;
        }
        Ok(failed)
    }

    /// Scans one table now and commits what it found (at least its time). Returns the records
    /// changed.
    pub async fn fingerprint_scan(
        &mut self,
        table: &'static TableInfo,
        now: MwTime,
    ) -> Result<usize, EngineError> {
        let mut staged = Staged::default();
        let changed = match self.scan_table(table, now, &mut staged).await {
            Ok(changed) => changed,
            Err(e) => {
                self.land_after_failure().await;
                return Err(e);
            }
        };
        self.commit_scan(&mut staged).await?;
        Ok(changed)
    }

    /// Commits what scans left staged, or only their times when that is all that changed.
    async fn commit_scan(&mut self, staged: &mut Staged) -> Result<(), EngineError> {
        let times_recorded = self.known.repo.tables.iter().all(|t| {
            self.known.committed_state().table(t.name).fingerprint_time
                == self.known.state.table(t.name).fingerprint_time
        });
        if staged.len() > 0
            || self.known.quarantine_changed()
            || (!times_recorded && self.known.main.is_some())
        {
            self.checkpoint(staged, "Fingerprint scan").await?;
        }
        Ok(())
    }

    /// Scans one table: merge-joins MoneyWorks' fingerprints with the files on `main` in
    /// sequence order, a page and a shard at a time; re-reads what differs in ranges and
    /// stages it in checkpoints; deletes vanished records last, once the whole table is
    /// compared and the mass-delete guard has passed. What is left staged is the caller's to
    /// commit. Returns the records changed.
    async fn scan_table(
        &mut self,
        table: &'static TableInfo,
        now: MwTime,
        staged: &mut Staged,
    ) -> Result<usize, EngineError> {
        self.publish(crate::events::Event::Activity {
            kind: crate::events::ActivityKind::Scanning,
            table: Some(table.name.to_string()),
        });
        let mut main = self.main_walk(table).await?;
        let total = main.total;
        let max_percent = self.known.repo.file.max_delete_percent;
        let page = u64::from(self.known.repo.file.page_size);
        let mut server = ServerWalk {
            after: 0,
            done: false,
            buf: VecDeque::new(),
            pos: 0,
        };
        let mut rereads: Vec<(u64, u64)> = Vec::new();
        let mut vanished: Vec<u64> = Vec::new();
        // Past the guard, vanished records are only counted, so the error names them all.
        let mut too_many: Option<usize> = None;
        let mut changed = 0usize;
        let mut reread_count = 0usize;
        let verb = "Fingerprint scan";
        // Held-back records are read again every scan; one MoneyWorks no longer lists is let
        // go after the walk.
        let held: BTreeSet<u64> = self.known.quarantine.seqs(table.name).into_iter().collect();
        let mut held_listed = BTreeSet::new();
        loop {
            self.check_cancelled()?;
            self.fill_server(table, &mut server).await?;
            self.fill_walk(&mut main).await?;
            let seq = match (server.buf.front(), main.peek()) {
                (None, None) => break,
                (Some(f), None) => f.seq,
                (None, Some(m)) => m.seq,
                (Some(f), Some(m)) => f.seq.min(m.seq),
            };
            let fp = server.buf.front().filter(|f| f.seq == seq).cloned();
            let file = main.peek().filter(|m| m.seq == seq).cloned();
            if fp.is_some() {
                server.buf.pop_front();
                server.pos += 1;
            }
            if file.is_some() {
                main.pop();
            }
            let stamp = file
                .as_ref()
                .map(|m| quick_fingerprint(&m.bytes).map_or_else(String::new, |(_, t)| t));
            let mut verdict = judge(
                table,
                fp.as_ref(),
                file.as_ref().map(|m| m.path.as_str()).zip(stamp.as_deref()),
            );
            if fp.is_some() && held.contains(&seq) {
                held_listed.insert(seq);
                verdict = Verdict::Reread;
            }
            match (verdict, too_many.as_mut()) {
                (Verdict::Vanished, Some(n)) => *n += 1,
                (_, Some(_)) | (Verdict::Same, None) => {}
                (Verdict::Reread, None) => rereads.push((seq, server.pos.saturating_sub(1))),
                (Verdict::Vanished, None) => {
                    vanished.push(seq);
                    if too_many_deletes(vanished.len(), total, max_percent) {
                        too_many = Some(vanished.len());
                        vanished = Vec::new();
                    }
                }
            }
            if too_many.is_none() && rereads.len() as u64 >= page {
                reread_count += rereads.len();
                changed += self
                    .reread_and_stage(table, std::mem::take(&mut rereads), staged, verb)
                    .await?;
            }
        }
        if let Some(vanished) = too_many {
            return Err(EngineError::MassDelete {
                table: table.name.to_string(),
                vanished,
                total,
                max_percent,
            });
        }
        for seq in held.difference(&held_listed) {
            self.release(table.name, *seq, None);
        }
        reread_count += rereads.len();
        changed += self.reread_and_stage(table, rereads, staged, verb).await?;
        let deleted = vanished.len();
        changed += self.delete_vanished(table, vanished, staged, verb).await?;
        self.known.state.table_mut(table.name).fingerprint_time = Some(now);
        if deleted + reread_count > 0 {
            tracing::info!(
                table = table.name,
                deleted,
                "fingerprint scan of {} found {deleted} vanished and {reread_count} to re-read",
                table.name,
            );
        }
        Ok(changed)
    }

    /// Re-reads `rereads` ((sequence number, position among the table's records)) of
    /// `table` in range exports and stages what they change, in checkpoints. Returns the
    /// records staged.
    pub(crate) async fn reread_and_stage(
        &mut self,
        table: &'static TableInfo,
        rereads: Vec<(u64, u64)>,
        staged: &mut Staged,
        verb: &str,
    ) -> Result<usize, EngineError> {
        let page = u64::from(self.known.repo.file.page_size);
        let mut changed = 0;
        for (first, last) in reread_ranges(&rereads, page) {
            self.check_cancelled()?;
            let records = self.reread_range(table, first, last).await?;
            let page = self.stage_records(records, staged).await?;
            changed += self.add_checkpointed(page, staged, verb, None).await?.0;
        }
        Ok(changed)
    }

    /// Stages the deletion of the files of `seqs` of `table` (records MoneyWorks no longer
    /// has), in checkpoints. Returns the records staged.
    pub(crate) async fn delete_vanished(
        &mut self,
        table: &'static TableInfo,
        seqs: Vec<u64>,
        staged: &mut Staged,
        verb: &str,
    ) -> Result<usize, EngineError> {
        let chunk = (self.known.repo.file.checkpoint_records as usize).max(1);
        let mut changed = 0;
        for seqs in seqs.chunks(chunk) {
            self.check_cancelled()?;
            let files = self.paths_of(table, seqs).await?;
            changed += self
                .add_checkpointed(stage_deletes(table, &files), staged, verb, None)
                .await?
                .0;
        }
        Ok(changed)
    }

    /// The committed paths of `seqs` of `table` on `main`.
    async fn paths_of(
        &mut self,
        table: &'static TableInfo,
        seqs: &[u64],
    ) -> Result<Vec<(String, u64)>, EngineError> {
        if table.key == KeyField::Seq {
            return Ok(seqs
                .iter()
                .map(|s| (crate::record::record_path(table, &RecordKey::Seq(*s)), *s))
                .collect());
        }
        let Some(main) = self.known.main.clone() else {
            return Ok(Vec::new());
        };
        let mut shards: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for &seq in seqs {
            if let Some(SeqPlace::Shard(shard)) = self.known.seq_index.place(table, seq) {
                shards.entry(shard).or_default().push(seq);
            }
        }
        self.store_call(move |s| {
            let mut out = Vec::new();
            for (shard, seqs) in shards {
                let dir = shard_dir(table, shard);
                for f in shard_files(s, &main, &dir, |seq| seqs.contains(&seq))? {
                    out.push((f.path, f.seq));
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_path, table_info};

    /// A missing file, a changed stamp and a moved code are re-read; a file without a
    /// record vanished; a matching file is left alone.
    #[test]
    fn judge_finds_every_kind_of_difference() {
        let name = table_info("Name").expect("known");
        let p = |c: &str| record_path(name, &RecordKey::Code(c.into()));
        let fp = |seq, m: &str, c: &str| Fingerprint {
            seq,
            modified: m.into(),
            code: Some(c.into()),
        };
        let t0 = "20240101000000";
        let a = fp(1, t0, "A");
        assert_eq!(judge(name, Some(&a), Some((&p("A"), t0))), Verdict::Same);
        assert_eq!(
            judge(name, Some(&a), Some((&p("A"), "20240102000000"))),
            Verdict::Reread
        );
        assert_eq!(
            judge(name, Some(&a), Some((&p("OLD"), t0))),
            Verdict::Reread
        );
        assert_eq!(judge(name, Some(&a), None), Verdict::Reread);
        assert_eq!(judge(name, None, Some((&p("A"), t0))), Verdict::Vanished);
    }

    /// Re-reads are grouped into ranges that each span at most one page of the table.
    #[test]
    fn rereads_are_grouped_into_ranges() {
        // (seq, position among the table's records)
        let rereads = [(5, 4), (7, 6), (40, 30), (41, 31), (90, 80)];
        assert_eq!(
            reread_ranges(&rereads, 10),
            vec![(5, 7), (40, 41), (90, 90)]
        );
        assert_eq!(reread_ranges(&rereads, 100), vec![(5, 90)]);
        assert_eq!(reread_ranges(&[], 10), vec![]);
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
