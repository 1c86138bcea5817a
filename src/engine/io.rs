//! The engine's requests: exports, imports and the clock read on MoneyWorks (retried by
//! class where that is safe, and counted), and batched reads of files on `main`. It owns
//! what a reply says about paging (`more`); it must not decide what to ask for (see
//! `query`) or what an answer means for `main`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Engine, EngineError};
use crate::events::Event;
use crate::moneyworks::xml::RejectedRecord;
use crate::moneyworks::{ExportQuery, MoneyWorks, MwError};
use crate::mwtime::MwTime;
use crate::quarantine::QuarantinedRecord;
use crate::query;
use crate::record::{KeyField, LMT_FIELD, Record, TableInfo, parse_record_path};
use crate::retry::retry;
use crate::store::{CommitId, Store};

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
    pub(crate) fn read_text(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<String>, EngineError> {
        match self
            .store
            .read_file(commit, path)
            .map_err(EngineError::Store)?
        {
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
    pub(crate) fn read_main_files(
        &self,
        paths: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Option<Vec<u8>>>, EngineError> {
        let Some(main) = &self.known.main else {
            return Ok(paths.iter().map(|p| (p.clone(), None)).collect());
        };
        paths
            .iter()
            .map(|p| {
                let bytes = self.store.read_file(main, p).map_err(EngineError::Store)?;
                Ok((p.clone(), bytes))
            })
            .collect()
    }

    /// Every record file of `table` on `main`: path → (sequence number, stamp).
    pub(crate) fn main_fingerprints(
        &self,
        table: &'static TableInfo,
    ) -> Result<BTreeMap<String, (u64, String)>, EngineError> {
        let mut out = BTreeMap::new();
        let Some(main) = &self.known.main else {
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

    /// Builds the sequence-number index of every code-keyed table among `tables` that has
    /// none yet, from the files on `main`.
    pub(crate) fn build_seq_index(
        &mut self,
        tables: impl IntoIterator<Item = &'static TableInfo>,
    ) -> Result<(), EngineError> {
        for table in tables {
            if !matches!(table.key, KeyField::Code(_)) || self.known.seq_index.has(table) {
                continue;
            }
            let index: HashMap<u64, String> = self
                .main_fingerprints(table)?
                .into_iter()
                .map(|(path, (s, _))| (s, path))
                .collect();
            self.known.seq_index.insert(table, index);
        }
        Ok(())
    }

    /// Reads the server clock (one `evaluate`).
    pub(crate) async fn read_clock(&mut self) -> Result<MwTime, EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let now = retry(
            &policy,
            &self.events,
            "reading the MoneyWorks clock",
            || async {
                let text = mw.evaluate(query::CLOCK_EXPRESSION).await?;
                MwTime::parse(text.trim()).map_err(|e| MwError::InvalidReply {
                    command: "evaluate".into(),
                    detail: format!("the clock reading is unusable: {e}"),
                })
            },
        )
        .await?;
        self.known.requests += 1;
        Ok(now)
    }

    /// One export page (with retries). Records that cannot be used (unparsable, without a
    /// valid stamp) are quarantined here, and the page goes on without them. `more` is true
    /// when the page was full, or `found` says the server holds more than it sent (a server
    /// may cap pages below the limit asked for).
    pub(crate) async fn export(&mut self, query: &ExportQuery) -> Result<Page, EngineError> {
        let policy = self.settings.retry;
        let mw = &self.mw;
        let what = format!("exporting {}", query.table.name);
        let page = retry(&policy, &self.events, &what, || mw.export(query)).await?;
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
        Ok(Page {
            records,
            stamps: entries.iter().filter_map(|e| e.1).collect(),
            seqs: entries.iter().filter_map(|e| e.2).collect(),
            more,
            found: page.found,
            sent,
        })
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
    pub fn count_records(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for table in &self.known.repo.tables {
            let n = match &self.known.main {
                None => 0,
                Some(main) => self
                    .store
                    .list_files(main, table.element)
                    .map_err(EngineError::Store)?
                    .iter()
                    .filter(|p| parse_record_path(p).is_ok())
                    .count() as u64,
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
        let text = retry(&policy, &self.events, what, || mw.export_text(query)).await?;
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
