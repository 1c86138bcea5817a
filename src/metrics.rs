//! The Prometheus metrics behind `GET /metrics` (OpenMetrics text, through
//! `prometheus-client`): counters and gauges fed by the events, by the status board and by
//! [`Counted`], which counts MoneyWorks requests by command. It owns metric names, labels and
//! help texts (listed in `docs/status.md`); it must not decide anything.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::events::{ActivityKind, Event, RecordAction};
use crate::moneyworks::{ExportPage, ExportQuery, MoneyWorks, MwError};
use crate::writeback::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableAction {
    table: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassStage {
    class: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableKind {
    table: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// Every metric mwsync exposes, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    records_synced: Family<TableAction, Counter>,
    records_on_main: Family<TableLabel, Gauge>,
    quarantined: Family<TableLabel, Gauge>,
    polls: Counter,
    failures: Family<ClassStage, Counter>,
    requests: Family<CommandLabel, Counter>,
    writebacks: Family<OutcomeLabel, Counter>,
    commits: Counter,
    last_success: Gauge<f64, AtomicU64>,
    progress_done: Family<TableKind, Gauge>,
    progress_total: Family<TableKind, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mwsync");
        // The families first, then the registry takes a handle on each.
        let m = Metrics {
            records_synced: Family::default(),
            records_on_main: Family::default(),
            quarantined: Family::default(),
            polls: Counter::default(),
            failures: Family::default(),
            requests: Family::default(),
            writebacks: Family::default(),
            commits: Counter::default(),
            last_success: Gauge::default(),
            progress_done: Family::default(),
            progress_total: Family::default(),
            registry: Registry::default(),
        };
        let info = Family::<VersionLabel, Gauge>::default();
        info.get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
        registry.register("build_info", "mwsync's version (always 1)", info);
        registry.register(
            "records_synced",
            "Records committed to main, by table and action (created, updated, moved, deleted)",
            m.records_synced.clone(),
        );
        registry.register(
            "records_on_main",
            "Record files on main, by table (counted after the first cycle)",
            m.records_on_main.clone(),
        );
        registry.register(
            "quarantined_records",
            "Records set aside because they cannot be stored, by table",
            m.quarantined.clone(),
        );
        registry.register("polls", "Polls finished", m.polls.clone());
        registry.register(
            "failures",
            "Failures by recovery class and stage (retry: one attempt; cycle: a failed cycle; fatal: the daemon stopped)",
            m.failures.clone(),
        );
        registry.register(
            "moneyworks_requests",
            "MoneyWorks REST requests sent, by command, retries included",
            m.requests.clone(),
        );
        registry.register(
            "writebacks",
            "Writes from the changes branch answered, by outcome (applied, conflict, rejected, failed)",
            m.writebacks.clone(),
        );
        registry.register("commits", "Commits pushed to main", m.commits.clone());
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful cycle",
            m.last_success.clone(),
        );
        registry.register(
            "sync_progress_done_records",
            "Records read so far by the running or last first sync or full sync, by table and kind",
            m.progress_done.clone(),
        );
        registry.register(
            "sync_progress_total_records",
            "Records to read in that sync, from the first page's `found`",
            m.progress_total.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts what `event` says.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::RecordChanged { table, action, .. } => {
                let action = match action {
                    RecordAction::Created => "created",
                    RecordAction::Updated => "updated",
                    RecordAction::Moved => "moved",
                    RecordAction::Deleted => "deleted",
                };
                self.records_synced
                    .get_or_create(&TableAction {
                        table: table.clone(),
                        action: action.to_string(),
                    })
                    .inc();
            }
            Event::PollFinished { .. } => {
                self.polls.inc();
            }
            Event::Committed { .. } => {
                self.commits.inc();
            }
            Event::Retrying { class, .. } => self.failure(class.as_str(), "retry"),
            Event::PollFailed { class, .. } => self.failure(class.as_str(), "cycle"),
            Event::Fatal { class, .. } => self.failure(class.as_str(), "fatal"),
            Event::WriteStatus { report } => {
                let outcome = match report.outcome {
                    Outcome::Applied => "applied",
                    Outcome::Conflict => "conflict",
                    Outcome::Rejected => "rejected",
                    Outcome::Failed => "failed",
                    Outcome::LostRace => "lost_race",
                };
                self.writebacks
                    .get_or_create(&OutcomeLabel {
                        outcome: outcome.to_string(),
                    })
                    .inc();
            }
            Event::Progress {
                kind,
                table,
                done,
                total,
                ..
            } if matches!(kind, ActivityKind::FirstSync | ActivityKind::FullSync) => {
                let labels = TableKind {
                    table: table.clone(),
                    kind: match kind {
                        ActivityKind::FirstSync => "first_sync",
                        _ => "full_sync",
                    }
                    .to_string(),
                };
                self.progress_done.get_or_create(&labels).set(to_i64(*done));
                self.progress_total
                    .get_or_create(&labels)
                    .set(to_i64(*total));
            }
            _ => {}
        }
    }

    fn failure(&self, class: &str, stage: &str) {
        self.failures
            .get_or_create(&ClassStage {
                class: class.to_string(),
                stage: stage.to_string(),
            })
            .inc();
    }

    /// Sets the records on `main` for `table`.
    pub fn records_on_main(&self, table: &str, n: u64) {
        let labels = TableLabel {
            table: table.to_string(),
        };
        self.records_on_main.get_or_create(&labels).set(to_i64(n));
        // A table's quarantine gauge exists as soon as the table is known.
        let _ = self.quarantined.get_or_create(&labels);
    }

    /// Notes a successful cycle at `at`.
    pub fn last_success(&self, at: SystemTime) {
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(secs.floor());
    }

    /// Counts one MoneyWorks request of `command`.
    pub fn request(&self, command: &str) {
        self.requests
            .get_or_create(&CommandLabel {
                command: command.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A MoneyWorks that counts every request it sends in [`Metrics`], by command.
pub struct Counted<M> {
    inner: M,
    metrics: std::sync::Arc<Metrics>,
}

impl<M> Counted<M> {
    /// Counts `inner`'s requests in `metrics`.
    pub fn new(inner: M, metrics: std::sync::Arc<Metrics>) -> Counted<M> {
        Counted { inner, metrics }
    }
}

impl<M: MoneyWorks> MoneyWorks for Counted<M> {
    async fn export(&self, query: &ExportQuery) -> Result<ExportPage, MwError> {
        self.metrics.request("export");
        self.inner.export(query).await
    }
    async fn export_text(&self, query: &ExportQuery) -> Result<String, MwError> {
        self.metrics.request("export");
        self.inner.export_text(query).await
    }
    async fn import(&self, body: &str) -> Result<String, MwError> {
        self.metrics.request("import");
        self.inner.import(body).await
    }
    async fn evaluate(&self, expr: &str) -> Result<String, MwError> {
        self.metrics.request("evaluate");
        self.inner.evaluate(expr).await
    }
}
