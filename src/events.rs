//! Typed events: one struct per notable moment, published on a broadcast bus. Each becomes
//! a structured log line (here), an SSE message (`http`), an update of the status board and
//! the metrics (`status`, through [`Observer`]) and a test assertion. It owns the event
//! vocabulary, its log wording, event ids and the bounded ring that lets a client replay what
//! it missed; it must not decide when things happen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::error::ErrorClass;
use crate::record::FieldChange;
use crate::writeback::WriteReport;

/// One changed field, as events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedField {
    /// Field name (`detail[2].detail.net` inside subfiles).
    pub field: String,
    /// Old value, absent for new fields.
    pub old: Option<String>,
    /// New value, absent for removed fields.
    pub new: Option<String>,
}

impl From<&FieldChange> for ChangedField {
    fn from(c: &FieldChange) -> Self {
        ChangedField {
            field: c.field.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        }
    }
}

/// What happened to a record in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordAction {
    /// A new file.
    Created,
    /// Fields changed.
    Updated,
    /// The record's code changed; the file moved.
    Moved,
    /// The record vanished from MoneyWorks.
    Deleted,
}

/// What the daemon is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Waiting for the next poll.
    Idle,
    /// An ordinary modified-since poll.
    Polling,
    /// Reading a table for the first time (or resuming that read after a restart).
    FirstSync,
    /// Re-reading every record (`sync --full` or a request in the repo config).
    FullSync,
    /// A fingerprint scan for deletions and missed changes.
    Scanning,
    /// Applying a write from the `changes` branch.
    WritingBack,
}

impl ActivityKind {
    /// The words a log line uses.
    pub fn words(self) -> &'static str {
        match self {
            ActivityKind::Idle => "idle",
            ActivityKind::Polling => "poll",
            ActivityKind::FirstSync => "first sync",
            ActivityKind::FullSync => "full sync",
            ActivityKind::Scanning => "fingerprint scan",
            ActivityKind::WritingBack => "write-back",
        }
    }
}

/// Everything the daemon reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started.
    Started {
        /// mwsync's version.
        version: String,
        /// The events' id prefix: new at every start, so a client can tell a restart.
        instance: String,
    },
    /// The daemon began something (or went idle).
    Activity {
        /// What.
        kind: ActivityKind,
        /// The table, where the work is per table.
        table: Option<String>,
    },
    /// How far long work has come: published at most twice a second, and once at the end.
    Progress {
        /// The work.
        kind: ActivityKind,
        /// The table.
        table: String,
        /// Records read so far.
        done: u64,
        /// Records to read, from the first page's `found`.
        total: u64,
        /// Records per second since the work began.
        per_sec: u64,
        /// Seconds left at that rate, when there is a rate.
        eta_secs: Option<u64>,
    },
    /// A cycle ended, well or not; the next starts in `next_poll_in_secs` unless stopped.
    CycleFinished {
        /// Whether it succeeded.
        ok: bool,
        /// Seconds until the next cycle (`None`: there is none, as with `--once`).
        next_poll_in_secs: Option<u64>,
    },
    /// mwsync pushed a commit to `main`.
    Committed {
        /// The commit.
        commit: String,
        /// Its subject line.
        subject: String,
        /// Its record lines (`Name ACME updated: phone "1" → "2"`), at most
        /// [`COMMIT_LINES`].
        lines: Vec<String>,
        /// Record lines left out of `lines`.
        more: usize,
    },
    /// `.mwsync/status.toml` on `main` now holds this write-back report.
    WriteStatus {
        /// The report, with the field-level detail of conflicts and failures.
        report: WriteReport,
    },
    /// A poll finished (changed or not).
    PollFinished {
        /// Records committed in this poll.
        records: u64,
        /// Export/evaluate requests made.
        requests: u64,
        /// Commits pushed.
        commits: u64,
        /// The `main` tip after the poll.
        main: Option<String>,
    },
    /// One record changed on `main`.
    RecordChanged {
        /// Table name.
        table: String,
        /// Record key (code or `#seq`).
        key: String,
        /// What happened.
        action: RecordAction,
        /// Changed fields (empty for deletes).
        fields: Vec<ChangedField>,
        /// The commit that holds the change.
        commit: String,
    },
    /// The server clock went backwards or the marker was ahead of it.
    ClockRegression {
        /// Table whose marker moved.
        table: String,
        /// Previous reading or marker.
        previous: String,
        /// This reading.
        now: String,
        /// Where scanning restarts.
        rescan_from: String,
    },
    /// A writer's commit on the changes branch was found.
    WriteDetected {
        /// The changes tip.
        commit: String,
        /// Its author.
        author: String,
        /// Record files it touches.
        records: usize,
    },
    /// A write was applied to MoneyWorks, verified and merged into `main`.
    WriteApplied {
        /// The changes tip now merged.
        commit: String,
        /// The merge commit on `main`.
        merged_as: String,
        /// Records imported (0 when everything was already applied).
        imported: usize,
    },
    /// A write conflicts with changes made in MoneyWorks since the writer's base.
    WriteConflict {
        /// The changes tip.
        commit: String,
        /// Conflicting record files (paths on `changes`).
        records: Vec<String>,
    },
    /// A write was refused before reaching MoneyWorks.
    WriteRejected {
        /// The changes tip.
        commit: String,
        /// One reason per refused file.
        reasons: Vec<String>,
    },
    /// MoneyWorks refused or did not keep part of a write.
    WriteFailed {
        /// The changes tip.
        commit: String,
        /// What went wrong.
        reasons: Vec<String>,
    },
    /// MoneyWorks changed records of a write while it was being imported.
    WriteLostRace {
        /// The changes tip.
        commit: String,
        /// One `path: what changed` per record.
        reasons: Vec<String>,
    },
    /// A record MoneyWorks holds cannot be filed; it is held back and nothing else stops.
    RecordQuarantined {
        /// Table name.
        table: String,
        /// The record as named in messages (`Name ACME (#12)`).
        record: String,
        /// Why, and what to correct.
        reason: String,
    },
    /// A held-back record was filed after all (MoneyWorks fixed it), or vanished.
    RecordReleased {
        /// Table name.
        table: String,
        /// The record as named in messages.
        record: String,
    },
    /// One table could not be read this cycle; the other tables and the writes went on.
    TableFailed {
        /// Table name.
        table: String,
        /// The error.
        error: String,
        /// True when only a human can fix it (the table is parked until then).
        needs_human: bool,
    },
    /// The daemon stopped moving `main` until a human fixes something; it keeps running
    /// and tries again each interval.
    Parked {
        /// What is wrong and what to do.
        error: String,
    },
    /// The daemon was parked and is moving again.
    Resumed,
    /// A transient failure that will be retried.
    Retrying {
        /// What was being done.
        what: String,
        /// The error.
        error: String,
        /// Its recovery class.
        class: ErrorClass,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A poll failed; the next one will try again.
    PollFailed {
        /// The error.
        error: String,
        /// Its recovery class.
        class: ErrorClass,
    },
    /// The daemon stopped for a human.
    Fatal {
        /// The error, with what to do.
        error: String,
        /// Its recovery class.
        class: ErrorClass,
    },
}

/// Most record lines a [`Event::Committed`] carries.
pub const COMMIT_LINES: usize = 20;

impl Event {
    /// Writes the event as one log line a bookkeeper's IT person can act on.
    pub fn log(&self) {
        match self {
            Event::PollFinished {
                records,
                requests,
                commits,
                main,
            } => log_poll(
                *records,
                *requests,
                *commits,
                main.as_deref().unwrap_or("-"),
            ),
            Event::RecordChanged {
                table,
                key,
                action,
                fields,
                commit,
            } => log_record(table, key, *action, fields, commit),
            Event::ClockRegression {
                table,
                previous,
                now,
                rescan_from,
            } => tracing::warn!(
                table,
                previous,
                now,
                rescan_from,
                "the MoneyWorks clock went back from {previous} to {now}; re-reading {table} from {rescan_from}"
            ),
            Event::Retrying {
                what,
                error,
                attempt,
                ..
            } => tracing::warn!(
                what,
                attempt,
                "{what} failed (attempt {attempt}), retrying: {error}"
            ),
            Event::Started { version, instance } => {
                tracing::debug!(version, instance, "mwsync {version} started")
            }
            Event::Activity { kind, table } => {
                tracing::debug!(table, "now: {}", kind.words())
            }
            Event::Progress {
                table, done, total, ..
            } => tracing::debug!(table, done, total, "progress: {done} of {total}"),
            Event::CycleFinished {
                ok,
                next_poll_in_secs,
            } => tracing::debug!(ok, next_poll_in_secs, "cycle finished"),
            Event::Committed {
                commit, subject, ..
            } => {
                tracing::debug!(commit, "pushed {}: {subject}", short(commit))
            }
            Event::WriteStatus { report } => tracing::debug!(
                commit = report.commit,
                "status.toml reports {:?} for changes@{}",
                report.outcome,
                short(&report.commit)
            ),
            Event::PollFailed { error, .. } => {
                tracing::error!(
                    "the cycle failed; mwsync tries again at the next interval: {error}"
                )
            }
            Event::Fatal { error, .. } => tracing::error!("mwsync stops: {error}"),
            Event::RecordQuarantined {
                table,
                record,
                reason,
            } => tracing::warn!(
                table,
                record,
                "{record} is held back (quarantined), everything else goes on: {reason}. It is read again at every fingerprint scan and filed as soon as MoneyWorks holds a usable record"
            ),
            Event::RecordReleased { table, record } => tracing::info!(
                table,
                record,
                "{record} is no longer held back: it is filed normally again, or gone from MoneyWorks"
            ),
            Event::TableFailed {
                table,
                error,
                needs_human,
            } => {
                if *needs_human {
                    tracing::error!(
                        table,
                        "{table} is parked until a human acts; the other tables and the writes go on: {error}"
                    )
                } else {
                    tracing::warn!(
                        table,
                        "{table} could not be read this cycle; the other tables and the writes went on, and {table} is tried again at the next interval: {error}"
                    )
                }
            }
            Event::Parked { error } => tracing::error!(
                "mwsync is parked: it keeps running and tries again at each interval, but a human must act: {error}"
            ),
            Event::Resumed => tracing::info!("mwsync is no longer parked; syncing resumes"),
            write @ (Event::WriteDetected { .. }
            | Event::WriteApplied { .. }
            | Event::WriteConflict { .. }
            | Event::WriteRejected { .. }
            | Event::WriteFailed { .. }
            | Event::WriteLostRace { .. }) => log_write(write),
        }
    }
}

fn log_poll(records: u64, requests: u64, commits: u64, main: &str) {
    if records > 0 {
        tracing::info!(
            records,
            requests,
            commits,
            main,
            "poll finished: {records} records committed in {commits} commits"
        );
    } else if commits > 0 {
        tracing::info!(
            requests,
            commits,
            main,
            "poll finished: no record changed; the sync state was committed"
        );
    } else {
        tracing::info!(requests, main, "poll finished: nothing changed");
    }
}

fn log_record(table: &str, key: &str, action: RecordAction, fields: &[ChangedField], commit: &str) {
    // The commit summary is logged with the commit; per-record lines are detail.
    match action {
        RecordAction::Created => tracing::debug!(
            table,
            key,
            commit,
            "{table} {key} created ({} fields)",
            fields.len()
        ),
        RecordAction::Deleted => tracing::debug!(table, key, commit, "{table} {key} deleted"),
        _ => {
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            tracing::debug!(
                table,
                key,
                action = ?action,
                commit,
                "{table} {key} {}: {}",
                action_word(action),
                if names.is_empty() { "-".to_string() } else { names.join(", ") }
            )
        }
    }
}

/// The write-back events (the others never reach here).
fn log_write(event: &Event) {
    match event {
        Event::WriteDetected {
            commit,
            author,
            records,
        } => tracing::info!(
            commit,
            author,
            records,
            "detected write on changes@{}: {records} records by {author}",
            short(commit)
        ),
        Event::WriteApplied {
            commit,
            merged_as,
            imported,
        } => tracing::info!(
            commit,
            merged_as,
            imported,
            "write changes@{} verified and merged into main as {}",
            short(commit),
            short(merged_as)
        ),
        Event::WriteConflict { commit, records } => tracing::warn!(
            commit,
            "write changes@{} conflicts with MoneyWorks edits to {}; nothing applied; rebase on main and retry",
            short(commit),
            records.join(", ")
        ),
        Event::WriteRejected { commit, reasons } => tracing::warn!(
            commit,
            "write changes@{} rejected, nothing applied: {}",
            short(commit),
            reasons.join("; ")
        ),
        Event::WriteFailed { commit, reasons } => tracing::warn!(
            commit,
            "write changes@{} did not fully apply; main shows what MoneyWorks holds: {}",
            short(commit),
            reasons.join("; ")
        ),
        Event::WriteLostRace { commit, reasons } => tracing::warn!(
            commit,
            "write changes@{} raced with edits in MoneyWorks during the import; main shows what MoneyWorks holds; check it, then rebase on main and retry what is missing: {}",
            short(commit),
            reasons.join("; ")
        ),
        _ => {}
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

fn action_word(action: RecordAction) -> &'static str {
    match action {
        RecordAction::Created => "created",
        RecordAction::Updated => "updated",
        RecordAction::Moved => "moved",
        RecordAction::Deleted => "deleted",
    }
}

/// An event with its place on the bus: `id` counts from 1 within one [`Events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// The event's number.
    pub id: u64,
    /// The event.
    pub event: Event,
}

/// Sees every event as it is published, in order, before any subscriber does; the status
/// board and the metrics are observers. It must be quick and must not publish.
pub trait Observer: Send + Sync {
    /// Takes in `event`, which has the SSE id `id`.
    fn observe(&self, id: &str, event: &Event);
}

/// Why a resuming client cannot be given every event it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gap {
    /// Its last id is from another run of mwsync (it restarted), or not an id at all.
    Restarted,
    /// Its last id is older than the oldest event the ring keeps.
    TooOld,
    /// It fell behind the live stream by this many events.
    Lagged(u64),
}

/// What a client resuming from a `Last-Event-ID` gets: the events it missed, or a gap it
/// must fill by re-reading `/status`, then the live stream.
pub struct Resume {
    /// Events after the client's last one, oldest first.
    pub replay: Vec<Arc<Sequenced>>,
    /// Set when some events cannot be replayed.
    pub gap: Option<Gap>,
    /// Events published from now on.
    pub live: broadcast::Receiver<Arc<Sequenced>>,
}

/// Events the ring keeps for replay.
pub const RING_EVENTS: usize = 1024;
/// Undelivered events a live subscriber may fall behind before it is told it lagged.
pub const CHANNEL_EVENTS: usize = 4096;

struct Log {
    next: u64,
    ring: VecDeque<Arc<Sequenced>>,
    observers: Vec<Arc<dyn Observer>>,
}

struct Bus {
    instance: String,
    ring_capacity: usize,
    log: Mutex<Log>,
    tx: broadcast::Sender<Arc<Sequenced>>,
}

/// The event bus: publish logs the event, numbers it, shows it to the observers, keeps it in
/// a bounded ring for replay, and hands it to every subscriber.
#[derive(Clone)]
pub struct Events {
    bus: Arc<Bus>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("instance", &self.bus.instance)
            .finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// A bus with a ring of [`RING_EVENTS`] and room for [`CHANNEL_EVENTS`] per subscriber.
    pub fn new() -> Events {
        Events::with_capacity(RING_EVENTS, CHANNEL_EVENTS)
    }

    /// A bus whose ring keeps `ring` events and whose subscribers may fall `channel` behind.
    pub fn with_capacity(ring: usize, channel: usize) -> Events {
        Events {
            bus: Arc::new(Bus {
                instance: new_instance(),
                ring_capacity: ring.max(1),
                log: Mutex::new(Log {
                    next: 1,
                    ring: VecDeque::new(),
                    observers: Vec::new(),
                }),
                tx: broadcast::channel(channel.max(1)).0,
            }),
        }
    }

    /// This bus's id prefix, new for every run of mwsync.
    pub fn instance(&self) -> &str {
        &self.bus.instance
    }

    /// The SSE id of event number `n`: `{instance}-{n}`.
    pub fn id_text(&self, n: u64) -> String {
        format!("{}-{n}", self.bus.instance)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.bus
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an observer; it sees the events published from now on.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.log().observers.push(observer);
    }

    /// Logs, numbers and publishes.
    pub fn publish(&self, event: Event) {
        event.log();
        let mut log = self.log();
        let id = log.next;
        log.next += 1;
        let text = self.id_text(id);
        for o in &log.observers {
            o.observe(&text, &event);
        }
        let item = Arc::new(Sequenced { id, event });
        if log.ring.len() >= self.bus.ring_capacity {
            log.ring.pop_front();
        }
        log.ring.push_back(item.clone());
        // Sent under the lock, so a resuming client neither misses nor repeats an event.
        let _ = self.bus.tx.send(item);
    }

    /// A new subscriber that sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Sequenced>> {
        self.bus.tx.subscribe()
    }

    /// A subscriber that resumes after the event whose SSE id is `last` (what a browser
    /// sends as `Last-Event-ID`). Without `last` nothing is replayed.
    pub fn resume(&self, last: Option<&str>) -> Resume {
        let log = self.log();
        let live = self.bus.tx.subscribe();
        let Some(last) = last else {
            return Resume {
                replay: vec![],
                gap: None,
                live,
            };
        };
        let n = last
            .rsplit_once('-')
            .filter(|(instance, _)| *instance == self.bus.instance)
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .filter(|n| *n < log.next);
        let Some(n) = n else {
            return Resume {
                replay: vec![],
                gap: Some(Gap::Restarted),
                live,
            };
        };
        let oldest = log.ring.front().map_or(log.next, |e| e.id);
        let gap = (n + 1 < oldest).then_some(Gap::TooOld);
        let replay = log.ring.iter().filter(|e| e.id > n).cloned().collect();
        Resume { replay, gap, live }
    }
}

/// A prefix unlikely to repeat across runs: the start time in microseconds and the process id.
fn new_instance() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{:x}{:x}", micros, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll() -> Event {
        Event::PollFinished {
            records: 0,
            requests: 1,
            commits: 0,
            main: None,
        }
    }

    /// A resume replays exactly the events after the given id, and says when it cannot.
    #[test]
    fn resume_replays_after_the_last_id_or_names_the_gap() {
        let events = Events::with_capacity(3, 16);
        for _ in 0..5 {
            events.publish(poll());
        }
        let ids = |r: &Resume| r.replay.iter().map(|e| e.id).collect::<Vec<_>>();
        let r = events.resume(Some(&events.id_text(3)));
        assert_eq!((ids(&r), r.gap), (vec![4, 5], None));
        let r = events.resume(Some(&events.id_text(2)));
        assert_eq!((ids(&r), r.gap), (vec![3, 4, 5], None));
        let r = events.resume(Some(&events.id_text(1)));
        assert_eq!(r.gap, Some(Gap::TooOld));
        let r = events.resume(Some("0abc-3"));
        assert_eq!((ids(&r), r.gap), (vec![], Some(Gap::Restarted)));
        let r = events.resume(Some(&events.id_text(9)));
        assert_eq!(r.gap, Some(Gap::Restarted));
        let r = events.resume(None);
        assert_eq!((ids(&r), r.gap), (vec![], None));
    }

    /// Observers see every event with its id before subscribers do.
    #[test]
    fn observers_see_ids_in_order() {
        struct Seen(Mutex<Vec<String>>);
        impl Observer for Seen {
            fn observe(&self, id: &str, _: &Event) {
                self.0.lock().expect("test lock").push(id.to_string());
            }
        }
        let events = Events::new();
        let seen = Arc::new(Seen(Mutex::new(vec![])));
        events.observe(seen.clone());
        let mut rx = events.subscribe();
        events.publish(poll());
        events.publish(poll());
        assert_eq!(
            *seen.0.lock().expect("test lock"),
            vec![events.id_text(1), events.id_text(2)]
        );
        assert_eq!(rx.try_recv().expect("published").id, 1);
    }
}
