//! The engine's requests: exports, imports and the clock read on MoneyWorks (retried by
//! class where that is safe, and counted), and batched reads of files on `main`. It owns
//! what a reply says about paging (`more`); it must not decide what to ask for (see
//! `query`) or what an answer means for `main`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::known::shard_number;
use super::{Engine, EngineError, SeqIndex, SeqPlace, shard_dir};
use crate::events::{Event, Events};
use crate::moneyworks::xml::RejectedRecord;
use crate::moneyworks::{ExportPage, ExportQuery, MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::quarantine::QuarantinedRecord;
use crate::query;
use crate::record::{KeyField, LMT_FIELD, Record, TableInfo, parse_record_path};
use crate::retry::{RetryPolicy, retry};
use crate::store::{CommitId, Store, StoreError};

/// One export page as the engine uses it: the usable records, and for paging the stamps
/// and sequence numbers of every record of the reply (usable or quarantined) that has one,
/// in reply order.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The usable records.
    pub(crate) records: Vec<Record>,
    /// LastModifiedTime of each record of the reply that has a valid one.
    pub(crate) stamps: Vec<MwTime>,
    /// Sequence number of each record of the reply that has one.
    pub(crate) seqs: Vec<u64>,
    /// True when more records match: the page was full, or `found` says so.
    pub(crate) more: bool,
    /// How many records match the search in all (what progress of long work counts against).
    pub(crate) found: u64,
    /// How many records the reply held, usable or not (the offset of the next page).
    pub(crate) sent: u64,
}

/// An export running in a task of its own (see [`Engine::start_export`]). Dropping it
/// abandons the request.
pub(crate) struct RunningExport {
    /// What was asked.
    pub(crate) query: ExportQuery,
    task: tokio::task::JoinHandle<Result<ExportPage, MwError>>,
}

impl Drop for RunningExport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One export, retried by class under `policy`.
async fn export_with_retries<M: MoneyWorks>(
    mw: &M,
    policy: &RetryPolicy,
    events: &Events,
    query: &ExportQuery,
) -> Result<ExportPage, MwError> {
    let what = format!("exporting {}", query.table.name);
    retry(policy, events, &what, || mw.export(query)).await
}

/// The sequence number and LastModifiedTime in a canonical record file, read without a full
/// parse (scans touch every file of a table).
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

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// The text of `path` in `commit`, refusing bytes that are not UTF-8.
    pub(crate) async fn read_text(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<String>, EngineError> {
        let (c, p) = (commit.clone(), path.to_string());
        match self.store_call(move |s| s.read_file(&c, &p)).await? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| EngineError::Corrupt {
                    path: path.to_string(),
                    detail: "not UTF-8".into(),
                }),
        }
    }

    /// The bytes of every path in `paths` on `main` as last seen (absent: `None`), in one go.
    pub(crate) async fn read_main_files(
        &self,
        paths: BTreeSet<String>,
    ) -> Result<BTreeMap<String, Option<Vec<u8>>>, EngineError> {
        let Some(main) = self.known.main.clone() else {
            return Ok(paths.into_iter().map(|p| (p, None)).collect());
        };
        self.store_call(move |s| {
            paths
                .into_iter()
                .map(|p| {
                    let bytes = s.read_file(&main, &p)?;
                    Ok((p, bytes))
                })
                .collect()
        })
        .await
    }

    /// Builds the sequence-number index of every code-keyed table among `tables` that has
    /// none yet, from the files on `main`, one shard directory at a time.
    pub(crate) async fn build_seq_index(
        &mut self,
        tables: Vec<&'static TableInfo>,
    ) -> Result<(), EngineError> {
        for table in tables {
            if !matches!(table.key, KeyField::Code(_)) || self.known.seq_index.has(table) {
                continue;
            }
            let index = match self.known.main.clone() {
                None => BTreeMap::new(),
                Some(main) => {
                    self.store_call(move |s| {
                        let mut index = BTreeMap::new();
                        for_each_shard(s, &main, table, |s, shard, dir| {
                            for f in shard_files(s, &main, dir, |_| true)? {
                                index.insert(f.seq, shard);
                            }
                            Ok(())
                        })?;
                        Ok(index)
                    })
                    .await?
                }
            };
            self.known.seq_index.insert(table, index);
        }
        Ok(())
    }

    /// The previous path of every record of a code-keyed table in `records` whose sequence
    /// number is already on `main` or staged: what staging needs to move a file whose code
    /// changed. Builds the index first when needed.
    pub(crate) async fn previous_paths(
        &mut self,
        records: &[Record],
    ) -> Result<SeqIndex, EngineError> {
        let code_tables: BTreeSet<&'static str> = records
            .iter()
            .filter(|r| matches!(r.table.key, KeyField::Code(_)))
            .map(|r| r.table.name)
            .collect();
        let tables = code_tables
            .iter()
            .filter_map(|t| crate::record::table_info(t))
            .collect();
        self.build_seq_index(tables).await?;
        let mut out = SeqIndex::default();
        let mut wanted: BTreeMap<(&'static str, u32), (&'static TableInfo, Vec<u64>)> =
            BTreeMap::new();
        for r in records {
            let Some(seq) = r.seq() else { continue };
            match self.known.seq_index.place(r.table, seq) {
                Some(SeqPlace::Staged(path)) => out.set(r.table, seq, path),
                Some(SeqPlace::Shard(shard)) => wanted
                    .entry((r.table.name, shard))
                    .or_insert_with(|| (r.table, Vec::new()))
                    .1
                    .push(seq),
                None => {}
            }
        }
        let (Some(main), false) = (self.known.main.clone(), wanted.is_empty()) else {
            return Ok(out);
        };
        let found = self
            .store_call(move |s| {
                let mut found = Vec::new();
                for ((_, shard), (table, seqs)) in wanted {
                    let dir = shard_dir(table, shard);
                    for f in shard_files(s, &main, &dir, |seq| seqs.contains(&seq))? {
                        found.push((table, f.seq, f.path));
                    }
                }
                Ok(found)
            })
            .await?;
        for (table, seq, path) in found {
            out.set(table, seq, path);
        }
        Ok(out)
    }

    /// Reads the server clock (one `evaluate`).
    pub(crate) async fn read_clock(&mut self) -> Result<MwTime, EngineError> {
        self.evaluate_parsed(
            query::CLOCK_EXPRESSION,
            "reading the MoneyWorks clock",
            |text| {
                MwTime::parse(text.trim())
                    .map_err(|e| format!("the clock reading is unusable: {e}"))
            },
        )
        .await
    }

    /// One `evaluate` whose reply `parse` reads (with retries, abandoned on shutdown; a reply
    /// `parse` refuses is retried like a damaged one); `what` names it in retries.
    pub(crate) async fn evaluate_parsed<T>(
        &mut self,
        expr: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let parse = &parse;
        let value = self
            .unless_cancelled(async {
                Ok(retry(&policy, &self.events, what, || async {
                    let text = mw.evaluate(expr).await?;
                    parse(&text).map_err(|detail| MwError::InvalidReply {
                        command: "evaluate".into(),
                        detail,
                    })
                })
                .await?)
            })
            .await?;
        self.known.requests += 1;
        Ok(value)
    }

    /// One export page (with retries). Records that cannot be used (unparsable, without a
    /// valid stamp) are quarantined here, and the page goes on without them. `more` is true
    /// when the page was full, or `found` says the server holds more than it sent (a server
    /// may cap pages below the limit asked for).
    pub(crate) async fn export(&mut self, query: &ExportQuery) -> Result<Page, EngineError> {
        let policy = self.settings.retry;
        let page = self
            .unless_cancelled(async {
                Ok(export_with_retries(&*self.mw, &policy, &self.events, query).await?)
            })
            .await?;
        Ok(self.page_from(query, page))
    }

    /// Starts exporting `query` (with retries) in a task of its own, so the reply arrives
    /// and is parsed while the engine stages the page before it. Only one request is ever
    /// in flight: staging asks MoneyWorks nothing. [`Engine::finish_export`] takes the page.
    pub(crate) fn start_export(&self, query: ExportQuery) -> RunningExport {
        let (mw, policy, events) = (
            Arc::clone(&self.mw),
            self.settings.retry,
            self.events.clone(),
        );
        let asked = query.clone();
        let task =
            tokio::spawn(async move { export_with_retries(&*mw, &policy, &events, &asked).await });
        RunningExport { query, task }
    }

    /// The page of an export begun by [`Engine::start_export`], as [`Engine::export`] gives
    /// it; abandoned on shutdown.
    pub(crate) async fn finish_export(
        &mut self,
        mut running: RunningExport,
    ) -> Result<Page, EngineError> {
        let page = self
            .unless_cancelled(async {
                match (&mut running.task).await {
                    Ok(reply) => Ok(reply?),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => Err(EngineError::Cancelled),
                }
            })
            .await?;
        Ok(self.page_from(&running.query, page))
    }

    /// What the engine takes from one export reply to `query`: the request counted, the
    /// usable records, the unusable ones held back, and the paging facts.
    fn page_from(&mut self, query: &ExportQuery, page: ExportPage) -> Page {
        self.known.requests += 1;
        let sent = (page.records.len() + page.rejected.len()) as u64;
        let more = sent > 0
            && (query.limit.is_some_and(|l| sent >= u64::from(l))
                || page.found > page.start + sent);
        let mut rejected = page.rejected;
        let taken: BTreeSet<usize> = rejected.iter().map(|r| r.position).collect();
        let mut positions = (1..).filter(|p| !taken.contains(p));
        let mut entries: Vec<(usize, Option<MwTime>, Option<u64>)> = rejected
            .iter()
            .map(|r| (r.position, r.modified, r.seq))
            .collect();
        let mut records = Vec::with_capacity(page.records.len());
        for record in page.records {
            let position = positions
                .next()
                .expect("positions never run out because the filter skips only finitely many");
            let modified = record.last_modified();
            entries.push((position, modified, record.seq()));
            if modified.is_some() {
                records.push(record);
            } else {
                rejected.push(RejectedRecord {
                    position,
                    seq: record.seq(),
                    key: record.key().ok().map(|k| k.to_string()),
                    modified: None,
                    reason: format!(
                        "its <{LMT_FIELD}> is {}, not a YYYYMMDDHHMMSS time",
                        match record.text(LMT_FIELD).map(str::trim) {
                            None => "missing".to_string(),
                            Some("") => "blank".to_string(),
                            Some(t) => format!("`{t}`"),
                        }
                    ),
                });
            }
        }
        entries.sort_by_key(|e| e.0);
        for r in rejected {
            self.hold(QuarantinedRecord {
                table: query.table.name.to_string(),
                seq: r.seq,
                key: r.key,
                reason: format!("{}; correct the record in MoneyWorks", r.reason),
            });
        }
        Page {
            records,
            stamps: entries.iter().filter_map(|e| e.1).collect(),
            seqs: entries.iter().filter_map(|e| e.2).collect(),
            more,
            found: page.found,
            sent,
        }
    }

    /// Holds a record back: it stops nothing else. Logged and published when it is news.
    pub(crate) fn hold(&mut self, record: QuarantinedRecord) {
        if self.known.quarantine.hold(record.clone()) {
            self.publish(Event::RecordQuarantined {
                table: record.table.clone(),
                record: record.name(),
                reason: record.reason,
            });
        }
    }

    /// Lets a held record go: MoneyWorks fixed it (it was filed) or it vanished.
    pub(crate) fn release(&mut self, table: &str, seq: u64, key: Option<&str>) {
        let released = self
            .known
            .quarantine
            .release(table, seq)
            .or_else(|| key.and_then(|k| self.known.quarantine.release_key(table, k)));
        if let Some(r) = released {
            self.publish(Event::RecordReleased {
                table: r.table.clone(),
                record: r.name(),
            });
        }
    }

    /// Record files on `main` per tracked table, counted by listing (the status board
    /// counts once, then follows the events).
    pub async fn count_records(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for &table in &self.known.repo.tables {
            let n = match self.known.main.clone() {
                None => 0,
                Some(main) => {
                    self.store_call(move |s| {
                        let mut n = 0u64;
                        for_each_shard(s, &main, table, |s, _, dir| {
                            n +=
                                s.list_dir(&main, dir)?.iter().filter(|e| !e.is_dir).count() as u64;
                            Ok(())
                        })?;
                        Ok(n)
                    })
                    .await?
                }
            };
            out.insert(table.name.to_string(), n);
        }
        Ok(out)
    }

    /// Publishes and logs what `tracker` says after `n` more records.
    pub(crate) fn progress(&self, tracker: &mut crate::progress::Tracker, n: u64) {
        let tick = tracker.advance(n, tokio::time::Instant::now());
        if let Some(line) = tick.log {
            tracing::info!("{line}");
        }
        if let Some(event) = tick.event {
            self.events.publish(event);
        }
    }

    /// One export in a custom format (with retries), as text; `what` names it in retries.
    pub(crate) async fn export_text(
        &mut self,
        query: &ExportQuery,
        what: &str,
    ) -> Result<String, EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let text = self
            .unless_cancelled(async {
                Ok(retry(&policy, &self.events, what, || mw.export_text(query)).await?)
            })
            .await?;
        self.known.requests += 1;
        Ok(text)
    }

    /// Posts one import body. Imports are not retried blindly: a lost reply may hide an
    /// applied import, and verification and the already-applied check make a later repeat
    /// safe.
    pub(crate) async fn import(&mut self, body: &str) -> Result<String, EngineError> {
        self.known.requests += 1;
        Ok(self.mw.import(body).await?)
    }

    /// Every record `query` finds (a search that bounds its reply, such as a batch of keys),
    /// in as many exports as the server needs: a server may cap a reply below what matches,
    /// so further pages follow by offset until one says nothing more matches.
    pub(crate) async fn export_all(
        &mut self,
        mut query: ExportQuery,
    ) -> Result<Vec<Record>, EngineError> {
        let mut out = Vec::new();
        loop {
            let page = self.export(&query).await?;
            query.start += page.sent;
            out.extend(page.records);
            if !page.more {
                return Ok(out);
            }
        }
    }
}

/// Calls `f` with every shard directory of `table` on `main` and its number, in shard order
/// (for tables keyed by sequence number, that is sequence order). Directories no record path
/// has are passed over.
pub(crate) fn for_each_shard<S: Store>(
    s: &S,
    main: &CommitId,
    table: &TableInfo,
    mut f: impl FnMut(&S, u32, &str) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // The listing's order is git's byte order, which puts `100` before `99`: sort by number.
    let numbered = |dir: &str| -> Result<Vec<(u32, String)>, StoreError> {
        let mut out: Vec<(u32, String)> = s
            .list_dir(main, dir)?
            .into_iter()
            .filter(|e| e.is_dir)
            .filter_map(|e| Some((e.name.parse().ok()?, e.name)))
            .collect();
        out.sort();
        Ok(out)
    };
    for (_, d1) in numbered(table.element)? {
        let dir1 = format!("{}/{d1}", table.element);
        for (_, d2) in numbered(&dir1)? {
            let dir2 = format!("{dir1}/{d2}");
            for (_, d3) in numbered(&dir2)? {
                if let Some(n) = shard_number(&d1, &d2, &d3) {
                    f(s, n, &format!("{dir2}/{d3}"))?;
                }
            }
        }
    }
    Ok(())
}

/// One record file on `main`, as a walk in sequence order finds it.
#[derive(Debug, Clone)]
pub(crate) struct MainFile {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its path.
    pub(crate) path: String,
    /// Its bytes.
    pub(crate) bytes: Vec<u8>,
}

/// The record files of shard directory `dir` whose sequence number `keep` accepts, with
/// their bytes, in sequence order.
pub(crate) fn shard_files<S: Store>(
    s: &S,
    main: &CommitId,
    dir: &str,
    keep: impl Fn(u64) -> bool,
) -> Result<Vec<MainFile>, StoreError> {
    let mut out = Vec::new();
    for e in s.list_dir(main, dir)? {
        if e.is_dir {
            continue;
        }
        let path = format!("{dir}/{}", e.name);
        if parse_record_path(&path).is_err() {
            continue;
        }
        let bytes = s.read_file(main, &path)?.unwrap_or_default();
        let (seq, _) = quick_fingerprint(&bytes).ok_or_else(|| StoreError::NotFound {
            detail: format!("{path} on main is unreadable: it has no sequence number"),
        })?;
        if keep(seq) {
            out.push(MainFile { seq, path, bytes });
        }
    }
    out.sort_by_key(|f| f.seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick reader finds seq and stamp in canonical files.
    #[test]
    fn quick_fingerprint_reads_canonical_files() {
        let xml = b"<name>\n  <sequencenumber system=\"true\">12</sequencenumber>\n  <lastmodifiedtime system=\"true\">20240101000000</lastmodifiedtime>\n</name>\n";
        assert_eq!(quick_fingerprint(xml), Some((12, "20240101000000".into())));
    }
}
