//! Shared test harness: an engine wired to the in-process fake MoneyWorks over real HTTP and
//! to either the in-memory store or a real bare repository, plus the invariant checks that
//! run after every scenario. Used by the integration binary and the cucumber runner.
#![allow(dead_code)]

pub mod inproc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mwsync::cache::Cache;
use mwsync::config::{MoneyWorksEndpoint, RepoConfigFile, Secret};
use mwsync::engine::{Engine, EngineError, EngineSettings};
use mwsync::events::{Event, Events};
use mwsync::moneyworks::client::HttpMoneyWorks;
use mwsync::moneyworks::transport::ReqwestTransport;
use mwsync::moneyworks::{ExportPage, ExportQuery, MoneyWorks, MwError};
use mwsync::mwtime::MwTime;
use mwsync::retry::RetryPolicy;
use mwsync::state::SyncState;
use mwsync::store::git::{AuthMode, GitRemote, GitStore};
use mwsync::store::memory::MemoryRemote;
use mwsync::store::{CommitId, CommitInfo, NewCommit, Store};
use mwsync_sim::fake::{Sim, SimBuilder};
use mwsync_sim::layout::{self, RecordFile};
use mwsync_sim::time::DateTime;

/// The document password every harness uses; tests check it never leaks.
pub const PASSWORD: &str = "Pw-9f3c-never-in-logs";
/// The document user.
pub const USER: &str = "Admin";

/// A `Store` chosen at run time.
pub type DynStore = Box<dyn Store>;

/// A hook run before each export, given the exports (counting this one) and the imports
/// made so far.
pub type ExportHook = Box<dyn FnMut(u64, u64) + Send>;

/// A hook run just before each import, given the imports made before it: the test seam
/// between a write-back's live precondition and its import.
pub type ImportHook = Box<dyn FnMut(u64) + Send>;

/// A hook slot shared between a harness and its client.
pub type HookSlot<H> = Arc<Mutex<Option<H>>>;

/// The engine's own MoneyWorks client, over sockets or answered in-process.
pub enum Client {
    /// Real HTTP to the fake's socket.
    Sockets(HttpMoneyWorks<ReqwestTransport>),
    /// The fake's router called in-process (deterministic on a paused clock).
    InProcess(HttpMoneyWorks<inproc::InProcess>),
}

macro_rules! client_call {
    ($client:expr, $c:ident => $call:expr) => {
        match $client {
            Client::Sockets($c) => $call.await,
            Client::InProcess($c) => $call.await,
        }
    };
}

/// The HTTP client with hooks, so a scenario can change MoneyWorks between two pages, or
/// between a write-back's last read and its import.
pub struct HookedMw {
    inner: Client,
    exports: AtomicU64,
    imports: AtomicU64,
    hook: HookSlot<ExportHook>,
    import_hook: HookSlot<ImportHook>,
}

impl MoneyWorks for HookedMw {
    async fn export(&self, query: &ExportQuery) -> Result<ExportPage, MwError> {
        let n = self.exports.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = self
            .hook
            .lock()
            .expect("hook lock is never poisoned because hooks do not panic")
            .as_mut()
        {
            hook(n, self.imports.load(Ordering::SeqCst));
        }
        client_call!(&self.inner, c => c.export(query))
    }
    async fn export_text(&self, query: &ExportQuery) -> Result<String, MwError> {
        client_call!(&self.inner, c => c.export_text(query))
    }
    async fn import(&self, body: &str) -> Result<String, MwError> {
        let before = self.imports.fetch_add(1, Ordering::SeqCst);
        if let Some(hook) = self
            .import_hook
            .lock()
            .expect("hook lock is never poisoned because hooks do not panic")
            .as_mut()
        {
            hook(before);
        }
        client_call!(&self.inner, c => c.import(body))
    }
    async fn evaluate(&self, expr: &str) -> Result<String, MwError> {
        client_call!(&self.inner, c => c.evaluate(expr))
    }
}

/// Where `main` lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `MemoryRemote`.
    Memory,
    /// A real bare repository on disk, reached by path.
    Bare,
    /// A real bare repository behind the git smart-HTTP server, reached with an API key.
    Http,
}

/// The API key of the harness's git HTTP server.
pub const GIT_KEY: &str = "harness-key-31c9";

/// The repository side of a harness.
pub enum Repo {
    /// In memory.
    Memory(MemoryRemote),
    /// On disk: the bare repository and a scratch directory for caches.
    Bare {
        dir: tempfile::TempDir,
        path: PathBuf,
    },
    /// Over HTTP: the server (kept alive), a scratch directory for caches, and the URL.
    Http {
        server: mwsync_sim::gitserve::GitServer,
        dir: tempfile::TempDir,
        url: String,
    },
}

impl Repo {
    pub fn new(kind: StoreKind) -> Repo {
        match kind {
            StoreKind::Memory => Repo::Memory(MemoryRemote::new()),
            StoreKind::Bare => {
                let dir =
                    tempfile::tempdir().expect("a temp dir can be made because /tmp is writable");
                let path = dir.path().join("remote.git");
                git2::Repository::init_bare(&path)
                    .expect("a bare repository can be created in a fresh temp dir");
                Repo::Bare { dir, path }
            }
            StoreKind::Http => {
                let dir =
                    tempfile::tempdir().expect("a temp dir can be made because /tmp is writable");
                let root = dir.path().join("served");
                std::fs::create_dir_all(&root).expect("server root");
                let server = mwsync_sim::gitserve::GitServer::start(&root, GIT_KEY)
                    .expect("the git server starts");
                server
                    .init_bare("books.git")
                    .expect("a bare repository on the server");
                let url = server.url("books.git");
                Repo::Http { server, dir, url }
            }
        }
    }

    /// A new client of this repository (its own cache).
    pub fn client(&self) -> DynStore {
        match self {
            Repo::Memory(r) => Box::new(r.store()),
            Repo::Bare { dir, path } => {
                let remote = GitRemote {
                    url: path.display().to_string(),
                    api_key: None,
                    auth: AuthMode::default(),
                };
                git_client(dir, remote)
            }
            Repo::Http { dir, url, .. } => {
                let remote = GitRemote {
                    url: url.clone(),
                    api_key: Some(GIT_KEY.to_string()),
                    auth: AuthMode::default(),
                };
                git_client(dir, remote)
            }
        }
    }

    /// The tip of `branch`.
    pub fn tip(&self, branch: &str) -> Option<CommitId> {
        let mut c = self.client();
        c.fetch().expect("fetch from the test repository");
        c.remote_tip(branch).expect("read the tip")
    }

    /// Every file on `branch`, path → bytes.
    pub fn files(&self, branch: &str) -> BTreeMap<String, Vec<u8>> {
        let mut c = self.client();
        c.fetch().expect("fetch from the test repository");
        let Some(tip) = c.remote_tip(branch).expect("read the tip") else {
            return BTreeMap::new();
        };
        c.list_files(&tip, "")
            .expect("list files")
            .into_iter()
            .map(|p| {
                let bytes = c
                    .read_file(&tip, &p)
                    .expect("read")
                    .expect("listed files exist");
                (p, bytes)
            })
            .collect()
    }

    /// Commits `files` on top of `branch` (created at `from` when absent) as a writer would.
    pub fn write(
        &self,
        branch: &str,
        from: &str,
        files: &[(&str, Option<&[u8]>)],
        message: &str,
    ) -> CommitId {
        let mut c = self.client();
        c.fetch().expect("fetch");
        let parent = c
            .remote_tip(branch)
            .expect("tip")
            .or(c.remote_tip(from).expect("tip"));
        let expected = c.remote_tip(branch).expect("tip");
        let changes = files
            .iter()
            .map(|(p, b)| {
                (
                    p.to_string(),
                    match b {
                        Some(b) => mwsync::store::FileChange::Put(b.to_vec()),
                        None => mwsync::store::FileChange::Delete,
                    },
                )
            })
            .collect();
        let id = c
            .commit(NewCommit {
                parents: parent.into_iter().collect(),
                changes,
                message: message.to_string(),
            })
            .expect("commit");
        c.push(branch, expected.as_ref(), &id).expect("push");
        id
    }

    /// Commit messages on `branch`, newest first.
    pub fn log(&self, branch: &str) -> Vec<CommitInfo> {
        let mut c = self.client();
        c.fetch().expect("fetch");
        let Some(tip) = c.remote_tip(branch).expect("tip") else {
            return vec![];
        };
        let mut ids = c.commits_between(None, &tip).expect("history");
        ids.reverse();
        ids.iter()
            .map(|id| c.commit_info(id).expect("info"))
            .collect()
    }

    /// How often each text `pick` takes from a line of a commit message on `branch` occurs
    /// in its whole history (`pick` answers `None` for lines it does not count).
    pub fn message_line_counts(
        &self,
        branch: &str,
        pick: impl Fn(&str) -> Option<&str>,
    ) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for commit in self.log(branch) {
            for line in commit.message.lines() {
                if let Some(text) = pick(line) {
                    *out.entry(text.to_string()).or_default() += 1;
                }
            }
        }
        out
    }
}

fn git_client(dir: &tempfile::TempDir, remote: GitRemote) -> DynStore {
    let cache = tempfile::Builder::new()
        .prefix("cache")
        .tempdir_in(dir.path())
        .expect("cache dir");
    let cache_path = cache.keep();
    Box::new(GitStore::open(&cache_path.join("repo.git"), remote).expect("the repository opens"))
}

/// How a harness's daemons are configured: the repo config, the MoneyWorks request timeout,
/// and the crash budget of an in-process world.
struct Spec<'a> {
    repo_config: &'a RepoConfigFile,
    timeout: Duration,
    budget: Option<&'a Arc<inproc::Budget>>,
    wrap: Option<&'a StoreWrap>,
}

/// Wraps each daemon's store (a test's own fault or delay around the real one).
pub type StoreWrap = Arc<dyn Fn(DynStore) -> DynStore + Send + Sync>;

/// The engine under test with everything it talks to.
pub struct Harness {
    pub sim: Sim,
    pub repo: Repo,
    pub engine: Engine<HookedMw, DynStore>,
    pub events: Events,
    pub seen: Arc<Mutex<Vec<Event>>>,
    pub hook: HookSlot<ExportHook>,
    pub import_hook: HookSlot<ImportHook>,
    pub local: Cache,
    pub repo_config: RepoConfigFile,
    /// `main` tips observed after each step, to prove it only moves forward.
    pub tips: Vec<CommitId>,
    /// The MoneyWorks request timeout.
    pub timeout: Duration,
    /// For an in-process world: the crash budget every daemon of this harness counts against.
    pub budget: Option<Arc<inproc::Budget>>,
    /// What wraps every daemon's store, if anything ([`Harness::wrap_store`]).
    wrap: Option<StoreWrap>,
    /// In-process worlds read events synchronously (no collector task whose scheduling
    /// could reorder or drop them).
    inbox: Option<Mutex<tokio::sync::broadcast::Receiver<Arc<mwsync::events::Sequenced>>>>,
}

/// A short retry policy: the same logic, without long waits in real time.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

/// A fake document with a fixed login and a clock at 2026-01-05 09:00:00.
pub fn sim_builder() -> SimBuilder {
    Sim::builder()
        .seed(7)
        .names(0)
        .accounts(0)
        .products(0)
        .jobs(0)
        .transactions(0)
        .document("Acme.moneyworks")
        .login(USER, PASSWORD)
        .clock(DateTime::parse("20260105090000").expect("valid time"))
}

impl Harness {
    pub async fn start(
        builder: SimBuilder,
        kind: StoreKind,
        repo_config: RepoConfigFile,
    ) -> Harness {
        Self::start_with(builder, kind, repo_config, Duration::from_secs(5)).await
    }

    /// As [`Harness::start`], with a MoneyWorks request timeout.
    pub async fn start_with(
        builder: SimBuilder,
        kind: StoreKind,
        repo_config: RepoConfigFile,
        timeout: Duration,
    ) -> Harness {
        let sim = builder.start().await;
        Self::assemble(sim, Repo::new(kind), repo_config, timeout, None)
    }

    /// A deterministic harness: the fake answers in-process (no sockets), `main` lives in
    /// memory, and every MoneyWorks and git request counts against a crash budget. Run it
    /// on a current-thread runtime with tokio's clock paused.
    pub fn start_in_process(
        builder: SimBuilder,
        repo_config: RepoConfigFile,
        timeout: Duration,
    ) -> Harness {
        let sim = builder
            .start_in_process()
            .expect("the simulation's generated document loads");
        let budget = Arc::new(inproc::Budget::default());
        Self::assemble(
            sim,
            Repo::new(StoreKind::Memory),
            repo_config,
            timeout,
            Some(budget),
        )
    }

    fn assemble(
        sim: Sim,
        repo: Repo,
        repo_config: RepoConfigFile,
        timeout: Duration,
        budget: Option<Arc<inproc::Budget>>,
    ) -> Harness {
        let events = Events::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::new(Mutex::new(None));
        let import_hook = Arc::new(Mutex::new(None));
        let local = Cache::in_memory();
        let engine = Self::engine(
            &sim,
            &repo,
            &events,
            (&hook, &import_hook),
            local.clone(),
            Spec {
                repo_config: &repo_config,
                timeout,
                budget: budget.as_ref(),
                wrap: None,
            },
        );
        let inbox = budget.as_ref().map(|_| Mutex::new(events.subscribe()));
        let h = Harness {
            sim,
            repo,
            engine,
            events,
            seen,
            hook,
            import_hook,
            local,
            repo_config,
            tips: vec![],
            timeout,
            inbox,
            budget,
            wrap: None,
        };
        if h.inbox.is_none() {
            h.collect_events();
        }
        h
    }

    fn engine(
        sim: &Sim,
        repo: &Repo,
        events: &Events,
        (hook, import_hook): (&HookSlot<ExportHook>, &HookSlot<ImportHook>),
        local: Cache,
        spec: Spec<'_>,
    ) -> Engine<HookedMw, DynStore> {
        let Spec {
            repo_config,
            timeout,
            budget,
            wrap,
        } = spec;
        let endpoint = MoneyWorksEndpoint::parse(
            &sim.url()
                .replace("http://", &format!("http://{USER}:{PASSWORD}@")),
            None,
        )
        .expect("the sim URL is a valid MoneyWorks URL");
        let inner = match budget {
            None => Client::Sockets(
                HttpMoneyWorks::new(
                    &endpoint,
                    timeout,
                    mwsync::moneyworks::transport::DEFAULT_MAX_REPLY_BYTES,
                )
                .expect("client"),
            ),
            Some(budget) => Client::InProcess(
                HttpMoneyWorks::with_transport(
                    &endpoint,
                    timeout,
                    inproc::InProcess {
                        router: sim.router(),
                        budget: budget.clone(),
                    },
                )
                .expect("client"),
            ),
        };
        let mw = HookedMw {
            inner,
            exports: AtomicU64::new(0),
            imports: AtomicU64::new(0),
            hook: hook.clone(),
            import_hook: import_hook.clone(),
        };
        let settings = EngineSettings {
            branch: "main".into(),
            changes_branch: "changes".into(),
            initial_repo: repo_config
                .clone()
                .validate()
                .expect("the scenario's repo config is valid"),
            retry: quick_retry(),
            create_branch: false,
        };
        let store: DynStore = match budget {
            None => repo.client(),
            Some(budget) => Box::new(inproc::Counted {
                inner: repo.client(),
                budget: budget.clone(),
            }),
        };
        let store = match wrap {
            Some(wrap) => wrap(store),
            None => store,
        };
        Engine::new(mw, store, local, settings, events.clone())
    }

    fn collect_events(&self) {
        let mut rx = self.events.subscribe();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(e) = rx.recv().await {
                seen.lock().expect("event log lock").push(e.event.clone());
            }
        });
    }

    /// Simulates a daemon restart: a new engine over the same cache (an in-memory cache's
    /// clones share it, as processes share a cache directory), so it remembers exactly what
    /// the directory would: the last push and the pushes started.
    pub fn restart(&mut self) {
        self.engine = Self::engine(
            &self.sim,
            &self.repo,
            &self.events,
            (&self.hook, &self.import_hook),
            self.local.clone(),
            Spec {
                repo_config: &self.repo_config,
                timeout: self.timeout,
                budget: self.budget.as_ref(),
                wrap: self.wrap.as_ref(),
            },
        );
    }

    /// From now on (this daemon, restarted, and every later one) the store is `wrap`ped.
    pub fn wrap_store(&mut self, wrap: StoreWrap) {
        self.wrap = Some(wrap);
        self.restart();
    }

    pub fn set_hook(&self, hook: impl FnMut(u64, u64) + Send + 'static) {
        *self.hook.lock().expect("hook lock") = Some(Box::new(hook));
    }

    /// Runs `hook` just before each import, with the number of imports made before it.
    pub fn set_import_hook(&self, hook: impl FnMut(u64) + Send + 'static) {
        *self.import_hook.lock().expect("hook lock") = Some(Box::new(hook));
    }

    pub fn clear_hook(&self) {
        *self.hook.lock().expect("hook lock") = None;
        *self.import_hook.lock().expect("hook lock") = None;
    }

    /// One daemon cycle.
    pub async fn cycle(&mut self) -> Result<mwsync::pull::PollReport, EngineError> {
        let r = self.engine.cycle().await;
        if let Some(t) = self.repo.tip("main") {
            self.tips.push(t);
        }
        r
    }

    pub fn main_files(&self) -> BTreeMap<String, Vec<u8>> {
        self.repo.files("main")
    }

    /// The events published so far.
    pub fn events(&self) -> Vec<Event> {
        let mut seen = self.seen.lock().expect("event log lock");
        if let Some(inbox) = &self.inbox {
            let mut rx = inbox.lock().expect("inbox lock");
            loop {
                match rx.try_recv() {
                    Ok(e) => seen.push(e.event.clone()),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                        panic!("the simulation lost {n} events; raise the bus capacity")
                    }
                    Err(_) => break,
                }
            }
        }
        seen.clone()
    }

    /// The record files MoneyWorks' data should give, for the tracked tables, computed by
    /// the simulator's own layout (never the engine's).
    pub fn expected_files(&self) -> BTreeMap<String, Vec<u8>> {
        let cfg = self.engine.repo_config().clone();
        let mut out = BTreeMap::new();
        for t in &cfg.tables {
            for r in self.sim.records(t.name) {
                out.insert(
                    layout::record_path(&r).expect("sim records have keys"),
                    layout::canonical_xml(&r)
                        .expect("sim records hold only XML characters")
                        .into_bytes(),
                );
            }
        }
        out
    }

    /// Record files on main (no `.mwsync/`).
    pub fn main_records(&self) -> BTreeMap<String, Vec<u8>> {
        self.main_files()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(".mwsync/"))
            .collect()
    }

    /// The sync state on main.
    pub fn main_state(&self) -> SyncState {
        let files = self.main_files();
        let text = String::from_utf8(files.get(".mwsync/state.toml").cloned().unwrap_or_default())
            .expect("utf8");
        SyncState::parse(&text, "state").expect("state parses")
    }

    /// The invariants every scenario must leave true (STYLE: one check after every scenario).
    pub async fn check_invariants(&mut self) -> Result<(), String> {
        let files = self.main_files();
        for (path, bytes) in &files {
            if path.starts_with(".mwsync/") {
                continue;
            }
            let (table, _) = layout::parse_path(path).map_err(|e| e.to_string())?;
            let text = std::str::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8"))?;
            let file = RecordFile::parse(text).map_err(|e| format!("{path}: {e}"))?;
            if file.element() != table.element {
                return Err(format!("{path} holds a <{}> record", file.element()));
            }
            if file.canonical().map_err(|e| format!("{path}: {e}"))? != text {
                return Err(format!("{path} is not in canonical form"));
            }
        }
        for w in self.tips.windows(2) {
            let mut c = self.repo.client();
            c.fetch().map_err(|e| e.to_string())?;
            if !c.is_ancestor(&w[0], &w[1]).map_err(|e| e.to_string())? {
                return Err(format!(
                    "main moved backwards or sideways from {} to {}",
                    w[0], w[1]
                ));
            }
        }
        let now = engine_time(self.sim.now());
        for (t, st) in &self.main_state().tables {
            if let Some(m) = st.marker
                && m > now
            {
                return Err(format!(
                    "the {t} marker {m} is ahead of the server clock {now}"
                ));
            }
        }
        let before = self.repo.tip("main");
        self.clear_hook();
        self.engine
            .cycle()
            .await
            .map_err(|e| format!("repeat poll failed: {e}"))?;
        if self.repo.tip("main") != before {
            return Err("a repeated poll against an unchanged server committed something".into());
        }
        for info in self.repo.log("main") {
            if info.message.contains(PASSWORD) {
                return Err("the password appears in a commit message".into());
            }
        }
        for (path, bytes) in self.main_files() {
            if String::from_utf8_lossy(&bytes).contains(PASSWORD) {
                return Err(format!("the password appears in {path}"));
            }
        }
        Ok(())
    }
}

/// The engine's reading of a simulator date-time, converted through its text form.
pub fn engine_time(t: DateTime) -> MwTime {
    MwTime::parse(&t.to_string()).expect("the simulator writes valid YYYYMMDDHHMMSS times")
}

/// The path of the record of `table` with `code` (or sequence number), by the simulator's
/// own layout.
pub fn path_of(table: &str, key: layout::RecordKey) -> String {
    let info = mwsync_sim::schema::table_info(table).expect("a known table");
    layout::path(info, &key)
}

/// A record file with one top-level field changed, written in canonical form by the
/// simulator's layout, as a writer would commit it.
pub fn edited_file(bytes: &[u8], field: &str, value: &str) -> Vec<u8> {
    let mut file = RecordFile::parse(std::str::from_utf8(bytes).expect("record files are UTF-8"))
        .expect("a record file");
    file.set_text(field, value);
    file.canonical()
        .expect("edited values hold only XML characters")
        .into_bytes()
}

/// Secret wrapper for tests that build endpoints by hand.
pub fn secret(s: &str) -> Secret {
    Secret::new(s)
}
