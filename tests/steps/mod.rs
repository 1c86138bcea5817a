//! Step definitions, one module per feature area, sharing one world.

pub mod converge;
pub mod precondition;
pub mod process;
pub mod pull;
pub mod tables;
pub mod writeback;

use std::fmt;

use mwsync::config::RepoConfigFile;
use mwsync::store::CommitId;

use crate::support::{Harness, StoreKind, sim_builder};

/// The state of one scenario.
#[derive(cucumber::World, Default)]
pub struct SyncWorld {
    /// Sample data sizes: names, accounts, products, jobs, transactions.
    pub sizes: [usize; 5],
    /// Where `main` lives.
    pub kind: Option<StoreKind>,
    /// The repo config for the first run.
    pub repo_config: RepoConfigFile,
    /// The running harness, once started.
    pub harness: Option<Harness>,
    /// The last cycle's outcome.
    pub last: Option<Result<mwsync::pull::PollReport, String>>,
    /// `main` before the last step that acted.
    pub main_before: Option<CommitId>,
    /// Requests served before the last step that acted (export + evaluate).
    pub requests_before: u64,
    /// Imports served before the last step that acted.
    pub imports_before: u64,
    /// The writer's last commit on `changes`.
    pub writer_commit: Option<CommitId>,
    /// True when a scenario leaves the system in a state where the invariants do not apply.
    pub skip_invariants: bool,
    /// Every real process run, for the invariants checked after the scenario.
    pub binary: Option<process::BinaryRuns>,
    /// Output of the last real process run: exit code, stdout, stderr.
    pub process: Option<(i32, String, String)>,
    /// Scratch directory for process scenarios.
    pub scratch: Option<tempfile::TempDir>,
    /// The sequence number of the posted transaction, when a scenario made one.
    pub posted_seq: Option<u64>,
    /// The git HTTP server, for scenarios that need one.
    pub http_git: Option<process::HttpGit>,
    /// The last full sync's outcome.
    pub full_sync: Option<Result<usize, String>>,
    /// Collected server-sent events text.
    pub sse: Option<std::sync::Arc<std::sync::Mutex<String>>>,
    /// The name codes a writer changed in one write, and the value it set.
    pub written_codes: Vec<String>,
    /// The value the writer set on every name.
    pub write_value: Option<String>,
    /// The name codes a scenario's bookkeeper changed in MoneyWorks during a write.
    pub bookkeeper_codes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Requests one write made: imports, exports, clock reads.
    pub write_requests: Option<(u64, u64, u64)>,
}

impl fmt::Debug for SyncWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncWorld")
            .field("sizes", &self.sizes)
            .field("kind", &self.kind)
            .field("last", &self.last)
            .finish()
    }
}

impl SyncWorld {
    /// The harness, started on first use with the scenario's settings.
    pub async fn h(&mut self) -> &mut Harness {
        if self.harness.is_none() {
            let [n, a, p, j, t] = self.sizes;
            let builder = sim_builder()
                .names(n)
                .accounts(a)
                .products(p)
                .jobs(j)
                .transactions(t);
            let h = Harness::start(
                builder,
                self.kind.unwrap_or(StoreKind::Memory),
                self.repo_config.clone(),
            )
            .await;
            self.harness = Some(h);
        }
        self.harness.as_mut().expect("just started")
    }

    /// Remembers `main` and request counters before an action.
    pub async fn mark(&mut self) {
        let h = self.h().await;
        let main = h.repo.tip("main");
        let r = h.sim.requests();
        let (req, imp) = (r.export + r.evaluate, r.import);
        self.main_before = main;
        self.requests_before = req;
        self.imports_before = imp;
    }

    /// Runs one daemon cycle and records its outcome.
    pub async fn cycle(&mut self) {
        self.mark().await;
        let r = self.h().await.cycle().await.map_err(|e| e.to_string());
        self.last = Some(r);
    }
}
