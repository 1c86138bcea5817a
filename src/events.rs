//! Typed events: one struct per notable moment, published on a broadcast bus. Each becomes
//! a structured log line (here), an SSE message (`http`) and a test assertion. It owns the
//! event vocabulary and its log wording; it must not decide when things happen.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::record::FieldChange;

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

/// Everything the daemon reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A poll failed; the next one will try again.
    PollFailed {
        /// The error.
        error: String,
    },
    /// The daemon stopped for a human.
    Fatal {
        /// The error, with what to do.
        error: String,
    },
}

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
            } => tracing::warn!(
                what,
                attempt,
                "{what} failed (attempt {attempt}), retrying: {error}"
            ),
            Event::PollFailed { error } => {
                tracing::error!(
                    "the cycle failed; mwsync tries again at the next interval: {error}"
                )
            }
            Event::Fatal { error } => tracing::error!("mwsync stops: {error}"),
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
            | Event::WriteFailed { .. }) => log_write(write),
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

/// The event bus: publish logs the event and hands it to every subscriber.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// A bus that keeps up to 4,096 undelivered events per subscriber.
    pub fn new() -> Events {
        Events {
            tx: broadcast::channel(4096).0,
        }
    }
    /// Logs and publishes.
    pub fn publish(&self, event: Event) {
        event.log();
        let _ = self.tx.send(event);
    }
    /// A new subscriber that sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
