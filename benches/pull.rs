//! First-sync throughput: the engine pulls a generated document from the in-process fake
//! MoneyWorks over HTTP into a real bare repository, in checkpoints. The baseline, measured in
//! the same run, is the same pages exported and parsed with nothing written, so the ratio is
//! what canonicalising, committing and pushing cost on top of reading.
//!
//! Run: `cargo bench -p mwsync --bench pull` (MWSYNC_BENCH_TRANSACTIONS sets the size).

use std::time::{Duration, Instant};

use mwsync::cache::Cache;
use mwsync::config::{MoneyWorksEndpoint, RepoConfigFile};
use mwsync::engine::{Engine, EngineSettings};
use mwsync::events::Events;
use mwsync::moneyworks::client::HttpMoneyWorks;
use mwsync::moneyworks::{Direction, ExportFormat, ExportQuery, MoneyWorks};
use mwsync::record::table_info;
use mwsync::retry::RetryPolicy;
use mwsync::store::git::{AuthMode, GitRemote, GitStore};
use mwsync_sim::fake::Sim;

#[tokio::main]
async fn main() {
    let transactions: usize = std::env::var("MWSYNC_BENCH_TRANSACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let sim = Sim::builder()
        .seed(3)
        .names(200)
        .accounts(40)
        .products(100)
        .jobs(20)
        .transactions(transactions)
        .document("Bench.moneyworks")
        .login("Admin", "bench")
        .clock(mwsync_sim::time::DateTime::parse("20260701000000").expect("valid time"))
        .start()
        .await;
    let endpoint = MoneyWorksEndpoint::parse(
        &sim.url().replacen("http://", "http://Admin:bench@", 1),
        None,
    )
    .expect("valid URL");
    let records: usize = ["Account", "Name", "Product", "Job", "Transaction"]
        .iter()
        .map(|t| sim.records(t).len())
        .sum();

    // Baseline: read every page, parse it, write nothing.
    let mw = HttpMoneyWorks::new(
        &endpoint,
        Duration::from_secs(60),
        mwsync::moneyworks::transport::DEFAULT_MAX_REPLY_BYTES,
    )
    .expect("client");
    let started = Instant::now();
    let mut read = 0usize;
    for name in ["Account", "Name", "Product", "Job", "Transaction"] {
        let table = table_info(name).expect("known table");
        let mut after = 0u64;
        loop {
            let q = ExportQuery {
                table,
                search: Some(format!("SequenceNumber > {after}")),
                sort: Some("SequenceNumber".into()),
                direction: Direction::Ascending,
                start: 0,
                limit: Some(100),
                format: ExportFormat::Verbose,
            };
            let page = mw.export(&q).await.expect("export");
            read += page.records.len();
            let Some(last) = page.records.last().and_then(|r| r.seq()) else {
                break;
            };
            after = last;
        }
    }
    let baseline = started.elapsed();
    assert_eq!(read, records);

    // The engine: first sync into a real bare repository, checkpoints of 1,000.
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("remote.git");
    git2::Repository::init_bare(&bare).expect("bare repo");
    let store = GitStore::open(
        &dir.path().join("cache/repo.git"),
        GitRemote {
            url: bare.display().to_string(),
            api_key: None,
            auth: AuthMode::default(),
        },
    )
    .expect("store");
    let repo = RepoConfigFile {
        page_size: 100,
        checkpoint_records: 1000,
        ..RepoConfigFile::default()
    };
    let settings = EngineSettings {
        branch: "main".into(),
        changes_branch: "changes".into(),
        initial_repo: repo.validate().expect("valid"),
        retry: RetryPolicy::default(),
        create_branch: false,
    };
    let mut engine = Engine::new(
        HttpMoneyWorks::new(
            &endpoint,
            Duration::from_secs(60),
            mwsync::moneyworks::transport::DEFAULT_MAX_REPLY_BYTES,
        )
        .expect("client"),
        store,
        Cache::in_memory(),
        settings,
        Events::new(),
    );
    let started = Instant::now();
    let report = engine.poll().await.expect("first sync");
    let sync = started.elapsed();
    assert_eq!(report.records as usize, records);
    let started = Instant::now();
    let idle = engine.poll().await.expect("idle poll");
    let idle_time = started.elapsed();
    assert_eq!(idle.records, 0);

    let per_sec = |d: Duration| records as f64 / d.as_secs_f64();
    println!(
        "records: {records} ({transactions} transactions), checkpoints: {}",
        report.commits
    );
    println!(
        "baseline (export + parse only): {:>8.2} s  {:>9.0} records/s  1.00x",
        baseline.as_secs_f64(),
        per_sec(baseline)
    );
    println!(
        "first sync into bare repo:      {:>8.2} s  {:>9.0} records/s  {:.2}x the baseline time",
        sync.as_secs_f64(),
        per_sec(sync),
        sync.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "idle poll afterwards:           {:>8.3} s  {} requests, {} commits",
        idle_time.as_secs_f64(),
        idle.requests,
        idle.commits
    );
}
