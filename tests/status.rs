//! The status server over real HTTP, fed by a real engine against the fake MoneyWorks: the
//! `/status` schema, `/healthz`, and `/metrics` read back by an independent Prometheus
//! text-format parser.

use std::sync::Arc;
use std::time::Duration;

use mwsync::cache::Cache;
use mwsync::config::{MoneyWorksEndpoint, RepoConfigFile};
use mwsync::daemon::{RunOptions, run};
use mwsync::engine::{Engine, EngineSettings};
use mwsync::events::Events;
use mwsync::http::{ServeOptions, serve};
use mwsync::metrics::Counted;
use mwsync::moneyworks::client::HttpMoneyWorks;
use mwsync::status::Board;
use mwsync_sim::fake::{FaultKind, Sim};
use mwsync_sim::layout::RecordKey;
use tokio_util::sync::CancellationToken;

use crate::support::{
    DynStore, PASSWORD, Repo, StoreKind, USER, edited_file, path_of, quick_retry, sim_builder,
};

struct Served {
    sim: Sim,
    repo: Repo,
    events: Events,
    board: Board,
    engine: Option<Engine<Counted<HttpMoneyWorks>, DynStore>>,
    base: String,
    _stop: CancellationToken,
}

async fn served(names: usize) -> Served {
    let sim = sim_builder().names(names).start().await;
    let repo = Repo::new(StoreKind::Memory);
    let events = Events::new();
    let board = Board::new(events.instance(), "main", "changes");
    events.observe(Arc::new(board.clone()));
    let endpoint = MoneyWorksEndpoint::parse(
        &sim.url()
            .replace("http://", &format!("http://{USER}:{PASSWORD}@")),
        None,
    )
    .expect("valid URL");
    let mw = Counted::new(
        HttpMoneyWorks::new(&endpoint, Duration::from_secs(5)).expect("client"),
        board.metrics().clone(),
    );
    let repo_config = RepoConfigFile {
        tables: vec!["Name".into()],
        page_size: 10,
        poll_interval_secs: 1,
        ..RepoConfigFile::default()
    };
    let settings = EngineSettings {
        branch: "main".into(),
        changes_branch: "changes".into(),
        initial_repo: repo_config.validate().expect("valid"),
        retry: quick_retry(),
    };
    let engine = Engine::new(
        mw,
        repo.client(),
        Cache::in_memory(),
        settings,
        events.clone(),
    );
    let stop = CancellationToken::new();
    let addr = serve(
        "127.0.0.1:0".parse().expect("addr"),
        board.clone(),
        events.clone(),
        ServeOptions::default(),
        stop.clone(),
    )
    .await
    .expect("binds");
    Served {
        sim,
        repo,
        events,
        board,
        engine: Some(engine),
        base: format!("http://{addr}"),
        _stop: stop,
    }
}

impl Served {
    async fn once(&mut self) -> Result<(), mwsync::engine::EngineError> {
        let options = RunOptions {
            once: true,
            max_polls: None,
            count_records: true,
        };
        run(
            self.engine.as_mut().expect("not running in the background"),
            &options,
            &self.board,
            &CancellationToken::new(),
        )
        .await
    }
    /// Runs the daemon in the background until the returned token is cancelled.
    fn spawn(&mut self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let mut engine = self.engine.take().expect("not yet running");
        let board = self.board.clone();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let options = RunOptions {
                once: false,
                max_polls: None,
                count_records: true,
            };
            let _ = run(&mut engine, &options, &board, &token).await;
        });
        (stop, task)
    }

    /// Waits (up to 20 s) until `path` answers `code`; returns the body.
    async fn until(&self, path: &str, code: u16) -> String {
        for _ in 0..400 {
            let (got, body) = self.get(path).await;
            if got == code {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never answered {code}: {:?}", self.get(path).await);
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
    async fn metrics(&self) -> prometheus_parse::Scrape {
        let (code, text) = self.get("/metrics").await;
        assert_eq!(code, 200);
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("the Prometheus text parser reads /metrics")
    }
}

/// The value of the sample named `name` whose labels include `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// After a first sync and a conflicting write, /metrics holds every metric the docs list,
/// with the values the fake and the repository agree on.
#[tokio::test]
async fn metrics_parse_and_count_what_happened() {
    let mut s = served(30).await;
    s.once().await.expect("first sync");
    let m = s.metrics().await;
    let req = s.sim.requests();
    assert_eq!(
        sample(
            &m,
            "mwsync_records_synced_total",
            &[("table", "Name"), ("action", "created")]
        ),
        Some(30.0)
    );
    assert_eq!(
        sample(&m, "mwsync_records_on_main", &[("table", "Name")]),
        Some(30.0)
    );
    assert_eq!(
        sample(&m, "mwsync_quarantined_records", &[("table", "Name")]),
        Some(0.0)
    );
    assert_eq!(sample(&m, "mwsync_polls_total", &[]), Some(1.0));
    assert_eq!(
        sample(
            &m,
            "mwsync_moneyworks_requests_total",
            &[("command", "export")]
        ),
        Some(req.export as f64)
    );
    assert_eq!(
        sample(
            &m,
            "mwsync_moneyworks_requests_total",
            &[("command", "evaluate")]
        ),
        Some(req.evaluate as f64)
    );
    assert_eq!(
        sample(
            &m,
            "mwsync_sync_progress_done_records",
            &[("table", "Name"), ("kind", "first_sync")]
        ),
        Some(30.0)
    );
    assert_eq!(
        sample(
            &m,
            "mwsync_sync_progress_total_records",
            &[("table", "Name"), ("kind", "first_sync")]
        ),
        Some(30.0)
    );
    assert!(sample(&m, "mwsync_last_success_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9));
    assert_eq!(
        sample(
            &m,
            "mwsync_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "mwsync_commits_total", &[]),
        Some(s.repo.log("main").len() as f64)
    );

    // A writer edits ACME's phone while a MoneyWorks user edits the same field.
    let code = s.sim.records("Name")[0]
        .text("code")
        .expect("a code")
        .to_string();
    let path = path_of("Name", RecordKey::Code(code.clone()));
    let file = s.repo.files("main")[&path].clone();
    s.sim.advance(60);
    s.sim.upsert("Name", &code, &[("phone", "555 0001")]);
    s.repo.write(
        "changes",
        "main",
        &[(&path, Some(&edited_file(&file, "phone", "555 0002")))],
        "writer edit",
    );
    s.once()
        .await
        .expect("the conflict is reported, not an error");
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, "mwsync_writebacks_total", &[("outcome", "conflict")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "mwsync_records_synced_total",
            &[("table", "Name"), ("action", "updated")]
        ),
        Some(1.0)
    );

    let (_, body) = s.get("/status").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["instance"], s.events.instance());
    assert_eq!(v["tables"]["Name"]["records"], 30);
    assert!(v["tables"]["Name"]["marker"].is_string());
    let last = &v["write"]["last"];
    assert_eq!(last["report"]["outcome"], "conflict");
    let field = &last["report"]["files"][0]["fields"][0];
    assert_eq!(field["field"], "phone");
    assert_eq!(field["server"], "555 0001");
    assert_eq!(field["asked"], "555 0002");
    assert!(field["base"].is_string());
    assert!(
        last["action"]
            .as_str()
            .is_some_and(|a| a.contains("redo your edit"))
    );
    assert!(v["commits"].as_array().is_some_and(|c| !c.is_empty()));
    let last_id = v["last_event_id"].as_str().expect("an id");
    assert!(
        last_id.starts_with(&format!("{}-", s.events.instance())),
        "{last_id}"
    );
}

/// /healthz/ready is ready after a good cycle and not while cycles fail (the daemon stays
/// live and retries); once stopped, /healthz is not live; failures are counted by class.
#[tokio::test]
async fn health_follows_the_cycles() {
    let mut s = served(3).await;
    let body = s.until("/healthz/ready", 503).await;
    assert!(body.contains("no cycle has finished yet"), "{body}");
    let (stop, task) = s.spawn();
    s.until("/healthz/ready", 200).await;
    s.sim.fail_next(FaultKind::LicenceLimit, 10_000);
    let body = s.until("/healthz/ready", 503).await;
    assert!(
        body.contains("the last cycle failed and will be retried"),
        "{body}"
    );
    assert!(body.contains("licensed concurrent users"), "{body}");
    assert_eq!(s.get("/healthz").await.0, 200, "still live");
    let m = s.metrics().await;
    assert!(
        sample(
            &m,
            "mwsync_failures_total",
            &[("class", "retryable"), ("stage", "retry")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        sample(
            &m,
            "mwsync_failures_total",
            &[("class", "retryable"), ("stage", "cycle")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    s.sim.fail_next(FaultKind::LicenceLimit, 0);
    s.until("/healthz/ready", 200).await;
    stop.cancel();
    task.await.expect("the daemon stops");
    let body = s.until("/healthz", 503).await;
    assert!(body.contains("stopped"), "{body}");
    assert_eq!(s.get("/").await.0, 200);
    assert!(s.get("/").await.1.contains("new EventSource"));
}

/// A failure that stops the daemon makes it not live, with the error's class, time and
/// action on /status.
#[tokio::test]
async fn a_fatal_stop_is_shown_with_its_class_and_action() {
    let mut s = served(3).await;
    s.sim.fail_next(FaultKind::LicenceLimit, 50);
    s.once().await.expect_err("every attempt is refused");
    let (code, body) = s.get("/healthz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("licensed concurrent users"), "{body}");
    let m = s.metrics().await;
    assert_eq!(
        sample(
            &m,
            "mwsync_failures_total",
            &[("class", "retryable"), ("stage", "fatal")]
        ),
        Some(1.0)
    );
    let v: serde_json::Value = serde_json::from_str(&s.get("/status").await.1).expect("JSON");
    assert_eq!(v["state"], "fatal");
    let e = &v["errors"][0];
    assert_eq!(
        (e["class"].as_str(), e["stage"].as_str()),
        (Some("retryable"), Some("fatal"))
    );
    assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')) && e["action"].is_string());
}
