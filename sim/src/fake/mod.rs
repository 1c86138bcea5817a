//! The fake MoneyWorks Datacentre: shared server state (document, clock, pending faults,
//! request counts), the in-process [`Sim`] handle and its builder for tests, and `mwsim serve`.
//! It owns wiring and the test-facing API; HTTP lives in `http`, records in `db`, the commands
//! in `export` and `import`, expressions in `search`. See `docs/simulator.md`.

pub mod cli;
pub mod clock;
pub mod db;
pub mod export;
pub mod http;
pub mod import;
pub mod index;
pub mod search;
pub mod select;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::time::DateTime;
use axum::http::StatusCode;

pub use clock::{Clock, ClockMode};
pub use db::{Db, SimError};

use crate::data::{self, Dataset, GenSpec};
use crate::record::Record;
use crate::schema::LMT;

/// A fault injected into the next REST requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 with the real licence-limit text; the request is not carried out.
    LicenceLimit,
    /// HTTP 500 with an empty body; the request is not carried out.
    Http500,
    /// The request is carried out, then its reply body is cut in half.
    Truncate,
    /// The request is carried out, then its reply is made ill-formed XML.
    MalformedXml,
    /// The request waits this long (on `tokio::time`), then is carried out normally.
    Delay(Duration),
    /// HTTP 200 with `[ERROR] …`, as the server answers a request it cannot carry out; the
    /// request is not carried out.
    ErrorReply,
}

/// REST requests served, per command (faulted and refused ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// `export` requests.
    pub export: u64,
    /// `import` requests.
    pub import: u64,
    /// `evaluate` requests.
    pub evaluate: u64,
    /// `version` requests (server level).
    pub version: u64,
    /// Every other REST request.
    pub other: u64,
    /// All REST requests.
    pub total: u64,
}

/// How the server identifies itself and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The document path, exactly as a client must name it (decoded), e.g. `Acme.moneyworks`.
    pub document: String,
    /// Document user.
    pub user: String,
    /// Document password.
    pub password: String,
    /// Folder (Datacentre realm) login, when the server requires one.
    pub folder: Option<(String, String)>,
    /// The version string of `version` replies and the `Server:` header.
    pub version: String,
    /// HTTP status of a refused login (`DoConnect failed -1`).
    pub auth_fail_status: StatusCode,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            document: "Acme.moneyworks".to_string(),
            user: "Admin".to_string(),
            password: String::new(),
            folder: None,
            version: "9.2.1".to_string(),
            auth_fail_status: StatusCode::UNAUTHORIZED,
        }
    }
}

/// Everything the server shares between requests.
#[derive(Debug)]
pub struct State {
    /// Identity and logins.
    pub config: ServerConfig,
    /// The clock stamping `lastmodifiedtime`.
    pub clock: Clock,
    db: Mutex<Db>,
    faults: Mutex<VecDeque<FaultKind>>,
    /// Faults only requests of one command take: (command, fault), in order.
    command_faults: Mutex<VecDeque<(String, FaultKind)>>,
    counts: Mutex<RequestCounts>,
    /// Functions `evaluate` answers as unknown, as an older server would (lowercase).
    refused: Mutex<Vec<String>>,
}

impl State {
    /// Server state over `db`.
    pub fn new(config: ServerConfig, db: Db, clock: Clock) -> State {
        State {
            config,
            clock,
            db: Mutex::new(db),
            faults: Mutex::new(VecDeque::new()),
            command_faults: Mutex::new(VecDeque::new()),
            counts: Mutex::new(RequestCounts::default()),
            refused: Mutex::new(Vec::new()),
        }
    }

    /// From now on `evaluate` refuses any expression that calls function `name`, with the
    /// `[ERROR]` an unknown function gets, as a server without it would.
    pub fn refuse_function(&self, name: &str) {
        self.refused
            .lock()
            .expect("refusal lock poisoned only by a panic")
            .push(name.to_ascii_lowercase());
    }

    /// The first refused function `expr` calls, if any.
    pub fn refused_in(&self, expr: &str) -> Option<String> {
        let lower = expr.to_ascii_lowercase().replace(' ', "");
        self.refused
            .lock()
            .expect("refusal lock poisoned only by a panic")
            .iter()
            .find(|f| lower.contains(&format!("{f}(")))
            .cloned()
    }

    /// The document, locked.
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db
            .lock()
            .expect("document lock poisoned only by a panic")
    }

    fn count(&self, command: &str) {
        let mut c = self
            .counts
            .lock()
            .expect("counter lock poisoned only by a panic");
        match command {
            "export" => c.export += 1,
            "import" => c.import += 1,
            "evaluate" => c.evaluate += 1,
            "version" => c.version += 1,
            _ => c.other += 1,
        }
        c.total += 1;
    }

    /// REST requests served so far.
    pub fn requests(&self) -> RequestCounts {
        *self
            .counts
            .lock()
            .expect("counter lock poisoned only by a panic")
    }

    /// Queues `kind` for the next `count` REST requests (after faults already queued);
    /// `count` 0 clears the queue, the faults queued for one command included.
    pub fn fail_next(&self, kind: FaultKind, count: u32) {
        let mut q = self
            .faults
            .lock()
            .expect("fault lock poisoned only by a panic");
        if count == 0 {
            q.clear();
            self.command_faults
                .lock()
                .expect("fault lock poisoned only by a panic")
                .clear();
        }
        q.extend(std::iter::repeat_n(kind, count as usize));
    }

    /// Queues `kind` for the next `count` requests of `command` only (`export`,
    /// `evaluate`, ...); other requests pass untouched.
    pub fn fail_next_command(&self, command: &str, kind: FaultKind, count: u32) {
        let mut q = self
            .command_faults
            .lock()
            .expect("fault lock poisoned only by a panic");
        q.extend(std::iter::repeat_n(
            (command.to_ascii_lowercase(), kind),
            count as usize,
        ));
    }

    fn take_fault(&self, command: &str) -> Option<FaultKind> {
        let mut by_command = self
            .command_faults
            .lock()
            .expect("fault lock poisoned only by a panic");
        if let Some(i) = by_command.iter().position(|(c, _)| c == command) {
            return by_command.remove(i).map(|(_, k)| k);
        }
        drop(by_command);
        self.faults
            .lock()
            .expect("fault lock poisoned only by a panic")
            .pop_front()
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        let by_command = self
            .command_faults
            .lock()
            .expect("fault lock poisoned only by a panic")
            .len();
        by_command
            + self
                .faults
                .lock()
                .expect("fault lock poisoned only by a panic")
                .len()
    }

    /// The `Server:` header value.
    pub fn server_header(&self) -> String {
        let v = &self.config.version;
        let login = if self.config.folder.is_some() {
            " Login_Required"
        } else {
            ""
        };
        format!("MoneyWorks_Datacentre/{v} REST/{v}{login}")
    }

    /// True when a decoded document path names the document: `--document` itself, or, with a
    /// folder login, the folder and the document joined by `/` (`Folder/Acme.moneyworks`, as
    /// clients that log in to a folder address it).
    pub fn names_document(&self, path: &str) -> bool {
        let document = &self.config.document;
        if path == document {
            return true;
        }
        match &self.config.folder {
            Some((folder, _)) => path
                .strip_prefix(folder.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest == document),
            None => false,
        }
    }

    fn document_login_ok(&self, c: &http::Credential) -> bool {
        c.realm != Some(http::Realm::Datacentre)
            && c.user.eq_ignore_ascii_case(&self.config.user)
            && c.password == self.config.password
    }

    /// Creates or updates a record directly (see [`Db::upsert`]), stamped by the clock.
    pub fn try_upsert(
        &self,
        table: &str,
        key: &str,
        fields: &[(&str, &str)],
    ) -> Result<(u64, DateTime), SimError> {
        let now = self.clock.now();
        self.db().upsert(table, key, fields, now)
    }

    /// Deletes the record with `key`; false when there was none.
    pub fn try_delete(&self, table: &str, key: &str) -> Result<bool, SimError> {
        let mut db = self.db();
        let data = db.table_mut(table)?;
        Ok(match data.find(key) {
            Some(seq) => data.remove(seq).is_some(),
            None => false,
        })
    }

    /// The record with `key`.
    pub fn try_record(&self, table: &str, key: &str) -> Result<Option<Record>, SimError> {
        let db = self.db();
        let data = db.table(table)?;
        Ok(data.find(key).and_then(|seq| data.get(seq)).cloned())
    }

    /// Posts the unposted transaction with sequence number `seq` (status `P`, `timeposted`
    /// and `lastmodifiedtime` from the clock). False when there is none to post.
    pub fn post(&self, seq: &str) -> bool {
        let now = self.clock.now();
        let mut db = self.db();
        let Ok(data) = db.table_mut("Transaction") else {
            return false;
        };
        let Some(seq) = data.find(seq) else {
            return false;
        };
        let mut record = data.get(seq).expect("find returns stored numbers").clone();
        let field = |name: &str| {
            data.schema
                .index(name)
                .expect("the Transaction schema has status, postedby and timeposted")
        };
        let (status, postedby, timeposted) =
            (field("status"), field("postedby"), field("timeposted"));
        if record.get(status) == "P" {
            return false;
        }
        record.set(status, "P");
        let user: String = self.config.user.chars().take(3).collect();
        record.set(postedby, &user);
        record.set(timeposted, &now.to_string());
        record.set(LMT, &now.to_string());
        data.put(record);
        true
    }
}

/// Where the sample records come from.
#[derive(Debug, Clone)]
enum Source {
    Generate,
    Dataset(Dataset),
    Dir(PathBuf),
}

/// Builds and starts a fake server in-process. Defaults: seed 1, the generator's default
/// sizes, document `Acme.moneyworks`, login `Admin` with an empty password, no folder login,
/// a manual clock at 2026-06-30 12:00:00, listening on 127.0.0.1 with a free port.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    spec: GenSpec,
    source: Source,
    config: ServerConfig,
    clock_mode: ClockMode,
    addr: SocketAddr,
}

impl SimBuilder {
    /// Seed of the generated data.
    pub fn seed(mut self, seed: u64) -> Self {
        self.spec.seed = seed;
        self
    }
    /// Generated Names.
    pub fn names(mut self, n: usize) -> Self {
        self.spec.names = n;
        self
    }
    /// Generated Accounts (the generator may make a few more that transactions need).
    pub fn accounts(mut self, n: usize) -> Self {
        self.spec.accounts = n;
        self
    }
    /// Generated Products.
    pub fn products(mut self, n: usize) -> Self {
        self.spec.products = n;
        self
    }
    /// Generated Jobs.
    pub fn jobs(mut self, n: usize) -> Self {
        self.spec.jobs = n;
        self
    }
    /// Generated Transactions.
    pub fn transactions(mut self, n: usize) -> Self {
        self.spec.transactions = n;
        self
    }
    /// Generated records of `table` (an internal name such as `Contacts`).
    pub fn size(mut self, table: &str, n: usize) -> Self {
        self.spec.sizes.insert(table.to_string(), n);
        self
    }
    /// Generated sizes of several tables.
    pub fn sizes(mut self, sizes: impl IntoIterator<Item = (String, usize)>) -> Self {
        self.spec.sizes.extend(sizes);
        self
    }
    /// Serve exactly these records instead of generated ones.
    pub fn dataset(mut self, ds: Dataset) -> Self {
        self.source = Source::Dataset(ds);
        self
    }
    /// Serve the records of the verbose-XML export files in `dir`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.source = Source::Dir(dir.into());
        self
    }
    /// The document path clients must name (decoded).
    pub fn document(mut self, path: &str) -> Self {
        self.config.document = path.to_string();
        self
    }
    /// The document login.
    pub fn login(mut self, user: &str, password: &str) -> Self {
        self.config.user = user.to_string();
        self.config.password = password.to_string();
        self
    }
    /// Require a folder (Datacentre realm) login too.
    pub fn folder(mut self, folder: &str, password: &str) -> Self {
        self.config.folder = Some((folder.to_string(), password.to_string()));
        self
    }
    /// Start the manual clock at `t` (generated modification times end there).
    pub fn clock(mut self, t: DateTime) -> Self {
        self.spec.end = t;
        self
    }
    /// Let the clock follow elapsed time instead of standing still.
    pub fn clock_mode(mut self, mode: ClockMode) -> Self {
        self.clock_mode = mode;
        self
    }
    /// The HTTP status of a refused login (default 401).
    pub fn auth_fail_status(mut self, status: StatusCode) -> Self {
        self.config.auth_fail_status = status;
        self
    }
    /// The version string the server reports.
    pub fn version(mut self, version: &str) -> Self {
        self.config.version = version.to_string();
        self
    }
    /// Listen on `addr` instead of 127.0.0.1 with a free port.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Builds the server state without listening.
    pub fn build_state(self) -> anyhow::Result<(State, SocketAddr)> {
        let start = self.spec.end;
        let db = match self.source {
            Source::Generate => Db::load(&data::generate(&self.spec), start)?,
            Source::Dataset(ds) => Db::load(&ds, start)?,
            Source::Dir(dir) => {
                let mut loader = db::Loader::new(start);
                data::stream_dir(&dir, &mut |table, record| {
                    loader.add(table, record).map_err(|e| e.to_string())
                })?;
                loader.finish()
            }
        };
        Ok((
            State::new(self.config, db, Clock::new(self.clock_mode, start)),
            self.addr,
        ))
    }

    /// Binds and serves on the current tokio runtime, returning an error when the data cannot
    /// be loaded or the address cannot be bound.
    pub async fn try_start(self) -> anyhow::Result<Sim> {
        let (state, addr) = self.build_state()?;
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = http::router(state.clone());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("the fake MoneyWorks server stopped: {e}");
            }
        });
        Ok(Sim {
            state,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// A server that listens on no socket: requests reach it only through [`Sim::router`],
    /// called in-process, so a simulation on tokio's paused clock stays deterministic. Its
    /// [`Sim::url`] names port 0 and is never dialled.
    pub fn start_in_process(self) -> anyhow::Result<Sim> {
        let (state, _) = self.build_state()?;
        Ok(Sim {
            state: Arc::new(state),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown: None,
            task: None,
        })
    }

    /// Binds and serves on the current tokio runtime. Panics when it cannot, which in a test
    /// is the clearest failure.
    pub async fn start(self) -> Sim {
        match self.try_start().await {
            Ok(sim) => sim,
            Err(e) => panic!("the fake MoneyWorks server could not start: {e:#}"),
        }
    }
}

/// A running fake server. Dropping it stops the server.
#[derive(Debug)]
pub struct Sim {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task; `None` for a server that answers in-process only.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// A builder with the defaults listed on [`SimBuilder`].
    pub fn builder() -> SimBuilder {
        SimBuilder {
            spec: GenSpec::default(),
            source: Source::Generate,
            config: ServerConfig::default(),
            clock_mode: ClockMode::Manual,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// The REST routes over this server's state, to be called in-process (a `tower`
    /// service): the same handlers a socket would reach.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// The shared server state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The document's REST URL without credentials, e.g.
    /// `http://127.0.0.1:PORT/REST/Acme.moneyworks` (the path percent-encoded).
    pub fn url(&self) -> String {
        let doc = percent_encoding::utf8_percent_encode(
            &self.state.config.document,
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string()
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_");
        format!("{}/REST/{doc}", self.base_url())
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime {
        self.state.clock.now()
    }

    /// Sets the clock (forwards or backwards).
    pub fn set_clock(&self, t: DateTime) {
        self.state.clock.set(t);
    }

    /// Moves the clock by `secs` (negative steps back).
    pub fn advance(&self, secs: i64) -> DateTime {
        self.state.clock.advance(secs)
    }

    /// Creates or updates a record as a MoneyWorks user would, stamping it from the clock.
    /// `key` is the code, or the decimal sequence number (empty creates a new transaction).
    /// Panics on bad input; see [`State::try_upsert`] for the fallible form.
    pub fn upsert(&self, table: &str, key: &str, fields: &[(&str, &str)]) -> (u64, DateTime) {
        match self.state.try_upsert(table, key, fields) {
            Ok(r) => r,
            Err(e) => panic!("Sim::upsert({table}, {key}) refused: {e}"),
        }
    }

    /// Deletes a record; false when there was none (or the table is not served).
    pub fn delete(&self, table: &str, key: &str) -> bool {
        self.state.try_delete(table, key).unwrap_or(false)
    }

    /// The record with `key`, as stored.
    pub fn record(&self, table: &str, key: &str) -> Option<Record> {
        self.state.try_record(table, key).ok().flatten()
    }

    /// Every record of `table` in sequence order (empty for tables not served).
    pub fn records(&self, table: &str) -> Vec<Record> {
        let db = self.state.db();
        db.table(table)
            .map(|t| t.records().to_vec())
            .unwrap_or_default()
    }

    /// Queues `kind` for the next `count` REST requests (0 clears the queue).
    pub fn fail_next(&self, kind: FaultKind, count: u32) {
        self.state.fail_next(kind, count);
    }

    /// REST requests served so far, per command.
    pub fn requests(&self) -> RequestCounts {
        self.state.requests()
    }

    /// Makes `evaluate` refuse expressions calling `name` (see [`State::refuse_function`]).
    pub fn refuse_function(&self, name: &str) {
        self.state.refuse_function(name);
    }

    /// Posts a transaction (`key` = its sequence number). False when none or already posted.
    pub fn post(&self, table: &str, key: &str) -> bool {
        table.eq_ignore_ascii_case("transaction") && self.state.post(key)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
