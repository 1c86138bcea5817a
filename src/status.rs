//! The status board: what `GET /status` answers and the status page shows, folded from the
//! events as they are published (it is an [`Observer`]) plus the few facts the daemon sets
//! between cycles (state, markers, record counts, last success). It owns the snapshot's
//! schema (documented in `docs/status.md`, versioned by [`STATUS_SCHEMA`]) and the wording of
//! the actions it suggests; it must not change engine state or do I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;

use crate::error::ErrorClass;
use crate::events::{ActivityKind, Event, Observer, RecordAction};
use crate::metrics::Metrics;
use crate::mwtime::MwTime;
use crate::writeback::{Outcome, WriteReport};

/// The version of the `/status` schema. It grows by one whenever a field changes meaning or
/// goes away; new fields may appear without a new version.
pub const STATUS_SCHEMA: u32 = 1;
/// Commits the snapshot lists, newest first.
pub const RECENT_COMMITS: usize = 50;
/// Errors the snapshot lists, newest first.
pub const RECENT_ERRORS: usize = 20;

/// Whether the daemon loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    /// Started, no cycle finished yet.
    #[default]
    Starting,
    /// Cycling.
    Running,
    /// Stopped on request.
    Stopped,
    /// Stopped for a human.
    Fatal,
}

/// How far long work has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressStatus {
    /// Records read so far.
    pub done: u64,
    /// Records to read.
    pub total: u64,
    /// Records per second.
    pub per_sec: u64,
    /// Seconds left at that rate.
    pub eta_secs: Option<u64>,
}

/// What the daemon is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityStatus {
    /// The kind of work.
    pub kind: ActivityKind,
    /// The table, where the work is per table.
    pub table: Option<String>,
    /// When it began (RFC 3339, UTC).
    pub since: String,
    /// Progress, for work long enough to have some.
    pub progress: Option<ProgressStatus>,
}

/// One tracked table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// Record files on `main` (`None` until counted, after the first cycle).
    pub records: Option<u64>,
    /// The sync marker (MoneyWorks time, `YYYYMMDDHHMMSS`).
    pub marker: Option<String>,
    /// Records set aside because they cannot be stored, with the reason.
    pub quarantined: Vec<QuarantinedRecord>,
}

/// A record set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// Its key (code or `#seq`).
    pub key: String,
    /// Why.
    pub reason: String,
}

/// One commit mwsync pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatus {
    /// The commit id.
    pub commit: String,
    /// When it was pushed (RFC 3339, UTC).
    pub at: String,
    /// Its subject line.
    pub subject: String,
    /// Its record lines, with the fields that changed.
    pub lines: Vec<String>,
    /// Record lines left out.
    pub more: usize,
}

/// A write found on `changes` and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingWrite {
    /// The `changes` tip.
    pub commit: String,
    /// Its author.
    pub author: String,
    /// Record files it touches.
    pub records: usize,
    /// When mwsync found it (RFC 3339, UTC).
    pub since: String,
}

/// The last write-back's report, as `.mwsync/status.toml` on `main` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastWrite {
    /// When mwsync answered it (RFC 3339, UTC).
    pub at: String,
    /// What the writer must do now.
    pub action: String,
    /// The report: outcome, and per file the result, the reason and the fields (base,
    /// server, asked).
    pub report: WriteReport,
}

/// The write-back side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteStatus {
    /// The branch writers push to.
    pub branch: String,
    /// A write being handled or waiting.
    pub pending: Option<PendingWrite>,
    /// The last write answered since mwsync started.
    pub last: Option<LastWrite>,
}

/// An error, when it happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorStatus {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Its recovery class.
    pub class: ErrorClass,
    /// The message.
    pub message: String,
    /// What to do about it.
    pub action: String,
    /// `retry` (one failed attempt, retried at once), `cycle` (the cycle failed; the next
    /// interval retries) or `fatal` (the daemon stopped).
    pub stage: &'static str,
}

/// The last successful cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Success {
    /// When it finished (RFC 3339, UTC).
    pub at: String,
    /// The MoneyWorks clock at that poll.
    pub server_time: Option<String>,
    /// Records it committed.
    pub records: u64,
}

/// What `GET /status` answers. See `docs/status.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// [`STATUS_SCHEMA`].
    pub schema: u32,
    /// mwsync's version.
    pub version: String,
    /// The events' id prefix for this run; a new value means mwsync restarted.
    pub instance: String,
    /// When this run started (RFC 3339, UTC).
    pub started_at: String,
    /// Whether the daemon loop runs.
    pub state: DaemonState,
    /// What it is doing now.
    pub activity: ActivityStatus,
    /// The last successful cycle.
    pub last_success: Option<Success>,
    /// When the next cycle starts (RFC 3339, UTC), while idle.
    pub next_poll_at: Option<String>,
    /// Successful cycles since start.
    pub polls: u64,
    /// Whether the last cycle succeeded (`None` before the first ends).
    pub last_cycle_ok: Option<bool>,
    /// The `main` tip as mwsync last saw it.
    pub main: Option<String>,
    /// The sync branch.
    pub branch: String,
    /// Per tracked table.
    pub tables: BTreeMap<String, TableStatus>,
    /// The last commits mwsync pushed, newest first.
    pub commits: VecDeque<CommitStatus>,
    /// The write-back side.
    pub write: WriteStatus,
    /// Recent errors, newest first.
    pub errors: VecDeque<ErrorStatus>,
    /// The id of the last event folded in: resume `/events` after it to miss nothing.
    pub last_event_id: Option<String>,
}

/// A wall-clock time as RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (y, mo, d, h, mi, s) = MwTime::from_unix_secs(secs).parts();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

/// What the writer of a write-back with `outcome` does next.
pub fn write_action(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "nothing: the write is in MoneyWorks and merged into main",
        Outcome::Conflict => {
            "nothing was applied: MoneyWorks changed these fields since your base. Fetch main (it holds MoneyWorks' values), redo your edit on top of it, and push to changes again"
        }
        Outcome::Rejected => {
            "nothing was applied: fix each file named below on changes (or revert it), then push again"
        }
        Outcome::Failed => {
            "MoneyWorks did not keep all of it; main shows what MoneyWorks holds. Check each reason below, then push a corrected edit"
        }
        Outcome::LostRace => {
            "someone changed these records in MoneyWorks while the write was imported; main shows what MoneyWorks now holds. Check the fields named below, then push again if your edit still applies"
        }
    }
}

/// The daemon's facts after a successful cycle.
#[derive(Debug, Clone, Default)]
pub struct CycleFacts {
    /// The `main` tip.
    pub main: Option<String>,
    /// The sync marker per tracked table (`None`: not read yet).
    pub markers: BTreeMap<String, Option<String>>,
    /// The MoneyWorks clock at the cycle's poll.
    pub server_time: Option<String>,
    /// Records the cycle committed.
    pub records: u64,
}

/// The status board: a [`Status`] kept current from events and the daemon, and the metrics
/// kept beside it. Cheap to clone; every clone is the same board.
#[derive(Clone)]
pub struct Board {
    status: Arc<Mutex<Status>>,
    metrics: Arc<Metrics>,
}

impl Board {
    /// A board for a run whose events carry ids prefixed `instance`, syncing `branch` and
    /// taking writes on `changes_branch`.
    pub fn new(instance: &str, branch: &str, changes_branch: &str) -> Board {
        let started = now();
        Board {
            status: Arc::new(Mutex::new(Status {
                schema: STATUS_SCHEMA,
                version: env!("CARGO_PKG_VERSION").to_string(),
                instance: instance.to_string(),
                started_at: started.clone(),
                state: DaemonState::Starting,
                activity: ActivityStatus {
                    kind: ActivityKind::Idle,
                    table: None,
                    since: started,
                    progress: None,
                },
                last_success: None,
                next_poll_at: None,
                polls: 0,
                last_cycle_ok: None,
                main: None,
                branch: branch.to_string(),
                tables: BTreeMap::new(),
                commits: VecDeque::new(),
                write: WriteStatus {
                    branch: changes_branch.to_string(),
                    ..WriteStatus::default()
                },
                errors: VecDeque::new(),
                last_event_id: None,
            })),
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot as it stands.
    pub fn snapshot(&self) -> Status {
        self.lock().clone()
    }

    /// The metrics kept beside the board.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sets the daemon state.
    pub fn set_state(&self, state: DaemonState) {
        self.lock().state = state;
    }

    /// Takes in a successful cycle.
    pub fn cycle_succeeded(&self, facts: CycleFacts) {
        let mut s = self.lock();
        s.state = DaemonState::Running;
        s.polls += 1;
        s.main = facts.main;
        for (table, marker) in facts.markers {
            s.tables.entry(table).or_default().marker = marker;
        }
        let at = SystemTime::now();
        s.last_success = Some(Success {
            at: rfc3339(at),
            server_time: facts.server_time,
            records: facts.records,
        });
        self.metrics.last_success(at);
    }

    /// Lists `tables` before their first cycle, so a first sync already shows them.
    pub fn track_tables<'a>(&self, tables: impl IntoIterator<Item = &'a str>) {
        let mut s = self.lock();
        for t in tables {
            s.tables.entry(t.to_string()).or_default();
        }
    }

    /// True when a table's record count is not known yet.
    pub fn needs_counts(&self) -> bool {
        let s = self.lock();
        s.tables.is_empty() || s.tables.values().any(|t| t.records.is_none())
    }

    /// Sets the record counts on `main`, per table (counted once; events keep them current).
    pub fn set_counts(&self, counts: BTreeMap<String, u64>) {
        let mut s = self.lock();
        for (table, n) in counts {
            s.tables.entry(table.clone()).or_default().records = Some(n);
            self.metrics.records_on_main(&table, n);
        }
    }

    fn add_error(s: &mut Status, class: ErrorClass, message: &str, stage: &'static str) {
        s.errors.push_front(ErrorStatus {
            at: now(),
            class,
            message: message.to_string(),
            action: class.action().to_string(),
            stage,
        });
        s.errors.truncate(RECENT_ERRORS);
    }

    fn fold(&self, s: &mut Status, event: &Event) {
        match event {
            Event::Started { .. } => {}
            Event::Activity { kind, table } => {
                s.activity = ActivityStatus {
                    kind: *kind,
                    table: table.clone(),
                    since: now(),
                    progress: None,
                };
                if *kind != ActivityKind::Idle {
                    s.next_poll_at = None;
                }
            }
            Event::Progress {
                kind,
                table,
                done,
                total,
                per_sec,
                eta_secs,
            } => {
                if s.activity.kind != *kind || s.activity.table.as_deref() != Some(table) {
                    s.activity = ActivityStatus {
                        kind: *kind,
                        table: Some(table.clone()),
                        since: now(),
                        progress: None,
                    };
                }
                s.activity.progress = Some(ProgressStatus {
                    done: *done,
                    total: *total,
                    per_sec: *per_sec,
                    eta_secs: *eta_secs,
                });
            }
            Event::CycleFinished {
                ok,
                next_poll_in_secs,
            } => {
                s.last_cycle_ok = Some(*ok);
                s.activity = ActivityStatus {
                    kind: ActivityKind::Idle,
                    table: None,
                    since: now(),
                    progress: None,
                };
                s.next_poll_at = next_poll_in_secs
                    .map(|secs| rfc3339(SystemTime::now() + std::time::Duration::from_secs(secs)));
            }
            Event::Committed {
                commit,
                subject,
                lines,
                more,
            } => {
                s.main = Some(commit.clone());
                s.commits.push_front(CommitStatus {
                    commit: commit.clone(),
                    at: now(),
                    subject: subject.clone(),
                    lines: lines.clone(),
                    more: *more,
                });
                s.commits.truncate(RECENT_COMMITS);
            }
            Event::RecordChanged { table, action, .. } => {
                let t = s.tables.entry(table.clone()).or_default();
                if let Some(n) = t.records.as_mut() {
                    match action {
                        RecordAction::Created => *n += 1,
                        RecordAction::Deleted => *n = n.saturating_sub(1),
                        RecordAction::Updated | RecordAction::Moved => {}
                    }
                    self.metrics.records_on_main(table, *n);
                }
            }
            Event::WriteDetected {
                commit,
                author,
                records,
            } => {
                s.write.pending = Some(PendingWrite {
                    commit: commit.clone(),
                    author: author.clone(),
                    records: *records,
                    since: now(),
                });
            }
            Event::WriteStatus { report } => {
                if s.write
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.commit == report.commit)
                {
                    s.write.pending = None;
                }
                s.write.last = Some(LastWrite {
                    at: now(),
                    action: write_action(report.outcome).to_string(),
                    report: report.clone(),
                });
            }
            Event::WriteApplied { commit, .. }
            | Event::WriteConflict { commit, .. }
            | Event::WriteRejected { commit, .. }
            | Event::WriteFailed { commit, .. }
            | Event::WriteLostRace { commit, .. } => {
                if s.write
                    .pending
                    .as_ref()
                    .is_some_and(|p| &p.commit == commit)
                {
                    s.write.pending = None;
                }
            }
            Event::Retrying {
                what, error, class, ..
            } => Self::add_error(s, *class, &format!("{what} failed: {error}"), "retry"),
            Event::PollFailed { error, class } => Self::add_error(s, *class, error, "cycle"),
            Event::Fatal { error, class } => {
                s.state = DaemonState::Fatal;
                Self::add_error(s, *class, error, "fatal");
            }
            Event::PollFinished { main, .. } => {
                if main.is_some() {
                    s.main = main.clone();
                }
            }
            Event::ClockRegression { .. } => {}
        }
    }
}

impl Observer for Board {
    fn observe(&self, id: &str, event: &Event) {
        self.metrics.observe(event);
        let mut s = self.lock();
        self.fold(&mut s, event);
        s.last_event_id = Some(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Events;
    use crate::writeback::{FieldReport, FileReport, FileResult};

    fn board() -> (Events, Board) {
        let events = Events::new();
        let board = Board::new(events.instance(), "main", "changes");
        events.observe(Arc::new(board.clone()));
        (events, board)
    }

    /// Wall-clock times are RFC 3339 in UTC.
    #[test]
    fn wall_times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_782_820_800);
        assert_eq!(rfc3339(t), "2026-06-30T12:00:00Z");
    }

    /// Progress moves the activity, a finished cycle makes it idle with a next poll, and the
    /// last event id follows.
    #[test]
    fn activity_and_progress_follow_the_events() {
        let (events, board) = board();
        events.publish(Event::Activity {
            kind: ActivityKind::FirstSync,
            table: Some("Name".into()),
        });
        events.publish(Event::Progress {
            kind: ActivityKind::FirstSync,
            table: "Name".into(),
            done: 50,
            total: 200,
            per_sec: 25,
            eta_secs: Some(6),
        });
        let s = board.snapshot();
        assert_eq!(s.activity.kind, ActivityKind::FirstSync);
        assert_eq!(
            s.activity.progress,
            Some(ProgressStatus {
                done: 50,
                total: 200,
                per_sec: 25,
                eta_secs: Some(6)
            })
        );
        assert_eq!(s.last_event_id, Some(events.id_text(2)));
        events.publish(Event::CycleFinished {
            ok: true,
            next_poll_in_secs: Some(600),
        });
        let s = board.snapshot();
        assert_eq!(s.activity.kind, ActivityKind::Idle);
        assert!(s.activity.progress.is_none() && s.next_poll_at.is_some());
    }

    /// A conflict report replaces the pending write and carries the writer's next step; an
    /// error keeps its time, class and action.
    #[test]
    fn writes_and_errors_are_reported_with_what_to_do() {
        let (events, board) = board();
        events.publish(Event::WriteDetected {
            commit: "c1".into(),
            author: "w <w@x>".into(),
            records: 1,
        });
        assert_eq!(
            board.snapshot().write.pending.map(|p| p.commit),
            Some("c1".into())
        );
        let report = WriteReport {
            commit: "c1".into(),
            author: "w <w@x>".into(),
            subject: "edit".into(),
            outcome: Outcome::Conflict,
            reason: String::new(),
            server_time: "20260630120000".into(),
            files: vec![FileReport {
                path: "name/1/2/ACME.xml".into(),
                result: FileResult::Conflict,
                reason: "changed in MoneyWorks".into(),
                fields: vec![FieldReport {
                    field: "phone".into(),
                    asked: Some("3".into()),
                    server: Some("2".into()),
                    base: Some("1".into()),
                    before: None,
                }],
            }],
        };
        events.publish(Event::WriteStatus {
            report: report.clone(),
        });
        let s = board.snapshot();
        assert!(s.write.pending.is_none());
        let last = s.write.last.expect("reported");
        assert_eq!(last.report, report);
        assert!(last.action.starts_with("nothing was applied"));
        events.publish(Event::PollFailed {
            error: "MoneyWorks is busy".into(),
            class: ErrorClass::Retryable,
        });
        let e = board.snapshot().errors[0].clone();
        assert_eq!((e.class, e.stage), (ErrorClass::Retryable, "cycle"));
        assert_eq!(e.action, ErrorClass::Retryable.action());
        assert!(e.at.ends_with('Z'));
    }

    /// Counts, once set, follow created and deleted records; commits are kept newest first
    /// and at most [`RECENT_COMMITS`].
    #[test]
    fn counts_and_commits_follow_the_events() {
        let (events, board) = board();
        let changed = |action| Event::RecordChanged {
            table: "Name".into(),
            key: "A".into(),
            action,
            fields: vec![],
            commit: "c".into(),
        };
        events.publish(changed(RecordAction::Created));
        assert_eq!(board.snapshot().tables["Name"].records, None);
        board.set_counts(BTreeMap::from([("Name".to_string(), 10)]));
        events.publish(changed(RecordAction::Created));
        events.publish(changed(RecordAction::Deleted));
        events.publish(changed(RecordAction::Deleted));
        assert_eq!(board.snapshot().tables["Name"].records, Some(9));
        for i in 0..60 {
            events.publish(Event::Committed {
                commit: format!("c{i}"),
                subject: "Pull".into(),
                lines: vec![],
                more: 0,
            });
        }
        let s = board.snapshot();
        assert_eq!(s.commits.len(), RECENT_COMMITS);
        assert_eq!(s.commits[0].commit, "c59");
        assert_eq!(s.main.as_deref(), Some("c59"));
    }
}
