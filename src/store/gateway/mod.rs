//! The upload gateway's client (docs/gateway.md), the write side of a `gateway+http(s)://`
//! store: it opens an upload (or resumes the one whose id it saved in the cache directory),
//! sends a checkpoint's new objects in concurrent batches, asks what is still missing, and
//! commits the branch by compare-and-swap. It owns the gateway's HTTP API and the saved
//! upload id; it must not build or encode objects (`object` and `GitStore` do) and must never
//! let the token reach a message.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

use super::object::{Kind, Oid, hex};
use super::{CommitId, StoreError};
use crate::error::{Classify, ErrorClass};
use crate::events::Events;
use crate::retry::{RetryPolicy, retry};
use answers::missing_ids;

mod answers;

/// The file in the cache directory that remembers the open upload across restarts.
pub const UPLOAD_FILE: &str = "mwsync-gateway-upload.json";

/// The gateway's documented defaults, used until it tells its own limits.
const DEFAULT_MAX_BATCH_BYTES: usize = 8 << 20;
const DEFAULT_MAX_BATCH_OBJECTS: usize = 10_000;

/// How many times a push asks (a missing list, or a commit) while the gateway still lists
/// missing objects; what it lists is sent between two asks, never after the last. Each round
/// reaches one tree level deeper; mwsync's trees are a handful of levels deep.
pub const MAX_ROUNDS: usize = 16;

/// How a batch is sent again when the gateway answers "busy" (423), "contended" or
/// "unavailable" (503, 502 other than `push-refused`) or not at all: 3 sends in all, 200 ms
/// and then 400 ms apart.
pub const BATCH_RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    first_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(2),
};

/// Where the gateway is and how mwsync uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The API base, e.g. `https://gw.example.com` (what precedes `/git/` in the URL).
    pub api: String,
    /// The repository path behind the gateway, e.g. `books.git`.
    pub repo: String,
    /// The gateway's token.
    pub token: String,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// The largest batch body before compression; the gateway's own cap applies as well.
    pub batch_bytes: usize,
    /// How a refused or lost batch is sent again; [`BATCH_RETRY`] unless a test waits less.
    pub batch_retry: RetryPolicy,
    /// The cache directory, where [`UPLOAD_FILE`] lives.
    pub cache_dir: PathBuf,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("api", &self.api)
            .field("repo", &self.repo)
            .field("token", &"***")
            .field("concurrency", &self.concurrency)
            .field("batch_bytes", &self.batch_bytes)
            .field("batch_retry", &self.batch_retry)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// Reads an object to send, by its hex id, from the local cache: each one as its batch is
/// built, so only the batches in flight are ever in memory.
pub type ReadObject<'a> = dyn Fn(&str) -> Result<(Kind, Vec<u8>), StoreError> + 'a;

/// What the upload saved in the cache directory says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedUpload {
    api: String,
    repo: String,
    branch: String,
    id: String,
    max_batch_bytes: usize,
    max_batch_objects: usize,
}

/// The upload in use.
#[derive(Debug, Clone)]
struct Upload {
    saved: SavedUpload,
    /// True when it was found in the cache directory at start (a crash or a stop left it
    /// open): the next push asks what is missing instead of sending everything.
    resumed: bool,
}

/// What a batch did, summed over a push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Batches sent.
    pub batches: usize,
    /// Objects sent.
    pub objects: usize,
    /// Objects the gateway staged from them.
    pub stored: usize,
    /// Objects it had staged already.
    pub already: usize,
}

/// Why a gateway call did not do its work.
#[derive(Debug)]
enum Failure {
    /// The upload is gone (`404 no-such-upload`, `410 upload-expired`): open a new one.
    Gone,
    /// Anything else, already classified.
    Store(StoreError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Gone => f.write_str("the upload gateway no longer has the upload"),
            Failure::Store(e) => e.fmt(f),
        }
    }
}

impl Classify for Failure {
    fn class(&self) -> ErrorClass {
        match self {
            // Not for a retry of the same call: the caller opens a new upload.
            Failure::Gone => ErrorClass::Conflict,
            Failure::Store(e) => e.class(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

/// What a commit answered.
enum Committed {
    /// The branch is at `new`.
    Done,
    /// The branch is not at `old`; it is at `current`.
    Moved(Option<String>),
    /// These objects are neither staged nor in the service.
    Incomplete { missing: Vec<String>, count: usize },
}

/// The gateway client. See the module header.
pub struct Gateway {
    cfg: GatewayConfig,
    http: reqwest::Client,
    /// Its own runtime: store calls are blocking, and run on the engine's blocking threads
    /// or in plain threads, so the client must not rely on a caller's runtime.
    runtime: Option<tokio::runtime::Runtime>,
    upload: Option<Upload>,
    /// Where batch retries are published, as every retry is.
    events: Events,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("cfg", &self.cfg).finish()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which an async caller may not do.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Gateway {
    /// A client for `cfg`, publishing its batch retries to `events`. Fails with `Local` only
    /// when no runtime or TLS can be set up.
    pub fn new(cfg: GatewayConfig, events: Events) -> Result<Gateway, StoreError> {
        let local = |what: &str, e: &dyn std::fmt::Display| StoreError::Local {
            detail: format!("cannot {what} for the upload gateway: {e}"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mwsync-gateway")
            .enable_all()
            .build()
            .map_err(|e| local("start a runtime", &e))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("mwsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| local("set up HTTP", &e))?;
        Ok(Gateway {
            cfg,
            http,
            runtime: Some(runtime),
            upload: None,
            events,
        })
    }

    /// Sets `branch` to `new` if it is at `expected` (`None`: absent), through an upload:
    /// sends `pending` (the ids of the objects mwsync wrote for the commits in between, read
    /// with `read` batch by batch) in concurrent batches, or, for an upload resumed after a
    /// restart, only what the gateway says is missing; then commits. Objects the gateway
    /// still misses are read and sent too, one tree level per round. A branch elsewhere is
    /// `BranchMoved`, as for a git push.
    pub fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
        pending: &[Oid],
        read: &ReadObject<'_>,
    ) -> Result<Sent, StoreError> {
        let mut sent = Sent::default();
        for _ in 0..MAX_ROUNDS {
            match self.try_push(branch, expected, new, pending, read, &mut sent) {
                Ok(()) => return Ok(sent),
                Err(Failure::Gone) => {
                    tracing::info!("the gateway upload expired or was closed; opening a new one");
                    self.forget_upload()?;
                }
                Err(Failure::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::Transport {
            detail: format!(
                "the gateway kept losing the upload for {}; check GATEWAY_UPLOAD_TTL_SECS",
                new.short()
            ),
        })
    }

    /// One attempt on one upload: the first send, then commits until one lands.
    fn try_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
        pending: &[Oid],
        read: &ReadObject<'_>,
        sent: &mut Sent,
    ) -> Result<(), Failure> {
        let upload = self.upload_for(branch, expected)?;
        if upload.resumed || pending.is_empty() {
            tracing::info!(
                "resuming gateway upload {}: asking what {} still misses",
                upload.saved.id,
                new.short()
            );
            self.send_missing(&upload.saved, new, read, sent)?;
        } else {
            self.send(&upload.saved, pending, read, sent)?;
        }
        crate::engine::pause_point("gateway-before-commit");
        let mut round = 0;
        loop {
            round += 1;
            match self.commit(&upload.saved, branch, expected, new)? {
                Committed::Done => {
                    if let Some(u) = self.upload.as_mut() {
                        u.resumed = false;
                    }
                    tracing::debug!(
                        "gateway upload {}: {} landed ({} objects in {} batches, {} already staged)",
                        upload.saved.id,
                        new.short(),
                        sent.objects,
                        sent.batches,
                        sent.already
                    );
                    return Ok(());
                }
                Committed::Moved(current) => {
                    return Err(Failure::Store(StoreError::BranchMoved {
                        branch: branch.to_string(),
                        expected: expected.map_or_else(|| "none".to_string(), |e| e.0.clone()),
                        actual: current.unwrap_or_else(|| "none".to_string()),
                    }));
                }
                Committed::Incomplete { missing, count } if round == MAX_ROUNDS => {
                    return Err(self.incomplete(&upload.saved, new, &missing, count).into());
                }
                Committed::Incomplete { missing, .. } => {
                    self.send_listed(&upload.saved, &missing, read, sent)?;
                }
            }
        }
    }

    /// Lists the gateway's live uploads of `branch`, for `mwsync doctor`: proves the token
    /// opens the API. Returns how many there are.
    pub fn probe(&self, branch: &str) -> Result<usize, StoreError> {
        let url = url::Url::parse_with_params(
            &format!("{}/v1/uploads", self.cfg.api),
            [("repo", self.cfg.repo.as_str()), ("branch", branch)],
        )
        .map_err(|e| StoreError::NotFound {
            detail: format!("the gateway URL {} is not usable: {e}", self.cfg.api),
        })?;
        let (status, body) = self.call(reqwest::Method::GET, url.as_str(), None, 60)?;
        match status {
            200 => {
                let v: serde_json::Value = self.parse("GET /v1/uploads", &body)?;
                Ok(v["uploads"].as_array().map_or(0, Vec::len))
            }
            _ => Err(self.refusal("GET /v1/uploads", status, &body)),
        }
    }

    /// The upload to use for `branch`: the one in use, the one saved in the cache directory
    /// if the gateway still has it, or a new one opened on `expected`.
    fn upload_for(&mut self, branch: &str, expected: Option<&CommitId>) -> Result<Upload, Failure> {
        if let Some(u) = &self.upload
            && u.saved.branch == branch
        {
            return Ok(u.clone());
        }
        if let Some(saved) = self.load_saved(branch)? {
            let url = format!("{}/v1/uploads/{}", self.cfg.api, saved.id);
            let (status, body) = self.call(reqwest::Method::GET, &url, None, 60)?;
            match status {
                200 => {
                    let u = Upload {
                        saved,
                        resumed: true,
                    };
                    self.upload = Some(u.clone());
                    return Ok(u);
                }
                404 | 410 => {
                    tracing::info!(
                        "the saved gateway upload {} is gone; opening a new one",
                        saved.id
                    );
                    self.forget_upload()?;
                }
                _ => return Err(self.refusal("GET /v1/uploads/{id}", status, &body).into()),
            }
        }
        let body = serde_json::json!({
            "repo": self.cfg.repo,
            "branch": branch,
            "base": expected.map(|e| e.0.clone()),
        });
        let url = format!("{}/v1/uploads", self.cfg.api);
        let (status, text) = self.call(reqwest::Method::POST, &url, Some(body), 60)?;
        if status != 201 {
            return Err(self.refusal("POST /v1/uploads", status, &text).into());
        }
        let v: serde_json::Value = self.parse("POST /v1/uploads", &text)?;
        let id = v["id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .ok_or_else(|| self.protocol("POST /v1/uploads", "no upload id"))?
            .to_string();
        let limit = |name: &str, default: usize| {
            v["limits"][name]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        let saved = SavedUpload {
            api: self.cfg.api.clone(),
            repo: self.cfg.repo.clone(),
            branch: branch.to_string(),
            id,
            max_batch_bytes: limit("maxBatchBytes", DEFAULT_MAX_BATCH_BYTES),
            max_batch_objects: limit("maxBatchObjects", DEFAULT_MAX_BATCH_OBJECTS),
        };
        self.save(&saved)?;
        tracing::info!("opened gateway upload {} for `{branch}`", saved.id);
        let u = Upload {
            saved,
            resumed: false,
        };
        self.upload = Some(u.clone());
        Ok(u)
    }

    fn upload_file(&self) -> PathBuf {
        self.cfg.cache_dir.join(UPLOAD_FILE)
    }

    /// The saved upload, if it is for this gateway, repository and branch.
    fn load_saved(&self, branch: &str) -> Result<Option<SavedUpload>, StoreError> {
        let path = self.upload_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Local {
                    detail: format!("cannot read {}: {e}", path.display()),
                });
            }
        };
        match serde_json::from_str::<SavedUpload>(&text) {
            Ok(s) if s.api == self.cfg.api && s.repo == self.cfg.repo && s.branch == branch => {
                Ok(Some(s))
            }
            Ok(_) => Ok(None),
            Err(e) => {
                // Unreadable (a crash while it was first written): a new upload replaces it.
                tracing::warn!(
                    "ignoring {}, which is not a saved upload: {e}",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    /// Saves the upload in use, durably, before anything is sent to it.
    fn save(&self, saved: &SavedUpload) -> Result<(), StoreError> {
        let path = self.upload_file();
        let local = |what: &str, e: &dyn std::fmt::Display| StoreError::Local {
            detail: format!("cannot {what} {}: {e}", path.display()),
        };
        let text = serde_json::to_string_pretty(saved).map_err(|e| local("encode", &e))? + "\n";
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| local("create", &e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| local("write", &e))?;
        std::fs::rename(&tmp, &path).map_err(|e| local("replace", &e))
    }

    /// Drops the upload in use and its saved id.
    fn forget_upload(&mut self) -> Result<(), StoreError> {
        self.upload = None;
        let path = self.upload_file();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Local {
                detail: format!("cannot remove {}: {e}", path.display()),
            }),
        }
    }

    /// Asks what `new` still misses and sends it, round after round, until nothing is.
    fn send_missing(
        &self,
        upload: &SavedUpload,
        new: &CommitId,
        read: &ReadObject<'_>,
        sent: &mut Sent,
    ) -> Result<(), Failure> {
        let url = format!("{}/v1/uploads/{}/missing", self.cfg.api, upload.id);
        let mut round = 0;
        loop {
            round += 1;
            let with_tip = format!("{url}?tip={}", new.0);
            let (status, text) = self.call(reqwest::Method::GET, &with_tip, None, 300)?;
            match status {
                200 => {}
                404 | 410 => return Err(Failure::Gone),
                _ => return Err(self.refusal("GET …/missing", status, &text).into()),
            }
            let v: serde_json::Value = self.parse("GET …/missing", &text)?;
            if v["complete"].as_bool() == Some(true) {
                return Ok(());
            }
            let (missing, count) = missing_ids(&v);
            if missing.is_empty() {
                return Err(self
                    .protocol("GET …/missing", "incomplete but lists nothing")
                    .into());
            }
            if round == MAX_ROUNDS {
                return Err(self.incomplete(upload, new, &missing, count).into());
            }
            self.send_listed(upload, &missing, read, sent)?;
        }
    }

    /// Sends the objects a missing list or an incomplete commit named.
    fn send_listed(
        &self,
        upload: &SavedUpload,
        ids: &[String],
        read: &ReadObject<'_>,
        sent: &mut Sent,
    ) -> Result<(), Failure> {
        let ids = ids
            .iter()
            .map(|id| {
                parse_hex(id).ok_or_else(|| StoreError::Transport {
                    detail: format!(
                        "the upload gateway listed `{}` as missing, which is not an object id",
                        id.escape_debug()
                    ),
                })
            })
            .collect::<Result<Vec<Oid>, StoreError>>()?;
        self.send(upload, &ids, read, sent)
    }

    /// Sends the objects `ids` in batches under both caps, `concurrency` at a time; each
    /// batch's bodies are read with `read` when a slot for it frees.
    fn send(
        &self,
        upload: &SavedUpload,
        ids: &[Oid],
        read: &ReadObject<'_>,
        sent: &mut Sent,
    ) -> Result<(), Failure> {
        let cap = self.cfg.batch_bytes.min(upload.max_batch_bytes);
        let url = format!("{}/v1/uploads/{}/objects", self.cfg.api, upload.id);
        let concurrency = self.cfg.concurrency.max(1);
        let totals = self.block_on(async {
            let batches = Batches::new(ids, read, cap, upload.max_batch_objects);
            futures_util::stream::iter(batches.map(|batch| {
                let url = url.clone();
                async move {
                    let (body, n) = batch?;
                    self.send_batch(&url, body, n).await
                }
            }))
            .buffer_unordered(concurrency)
            .try_fold(Sent::default(), |acc, s| async move {
                Ok(Sent {
                    batches: acc.batches + s.batches,
                    objects: acc.objects + s.objects,
                    stored: acc.stored + s.stored,
                    already: acc.already + s.already,
                })
            })
            .await
        })?;
        sent.batches += totals.batches;
        sent.objects += totals.objects;
        sent.stored += totals.stored;
        sent.already += totals.already;
        Ok(())
    }

    /// Sends one batch (raw body of `n` objects), gzipped, sent again by `batch_retry` while
    /// the answer is retryable ("busy", "contended", unavailable, or none).
    async fn send_batch(&self, url: &str, raw: Vec<u8>, n: usize) -> Result<Sent, Failure> {
        let gz = {
            let mut z = GzEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::new(1));
            z.write_all(&raw)
                .and_then(|()| z.finish())
                .map_err(|e| StoreError::Local {
                    detail: format!("cannot compress an upload batch: {e}"),
                })?
        };
        drop(raw);
        let body = bytes::Bytes::from(gz);
        let policy = self.cfg.batch_retry;
        match retry(&policy, &self.events, "an upload batch", || {
            self.post_batch(url, body.clone(), n)
        })
        .await
        {
            // Only a retryable failure outlasts every attempt.
            Err(Failure::Store(StoreError::Transport { detail })) => Err(StoreError::Transport {
                detail: format!("{detail} (gave up after {} attempts)", policy.attempts),
            }
            .into()),
            other => other,
        }
    }

    /// One `POST …/objects` of a gzipped batch of `n` objects.
    async fn post_batch(&self, url: &str, body: bytes::Bytes, n: usize) -> Result<Sent, Failure> {
        let answer = async {
            let r = self
                .http
                .post(url)
                .bearer_auth(&self.cfg.token)
                .header("content-type", "application/octet-stream")
                .header("content-encoding", "gzip")
                .timeout(Duration::from_secs(300))
                .body(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        };
        let (status, text) = answer
            .await
            .map_err(|e| self.transport("POST …/objects", &e))?;
        match status {
            200 => {
                let v: serde_json::Value = self.parse("POST …/objects", &text)?;
                let count = |k: &str| {
                    v[k].as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(0)
                };
                Ok(Sent {
                    batches: 1,
                    objects: n,
                    stored: count("stored"),
                    already: count("already"),
                })
            }
            404 | 410 => Err(Failure::Gone),
            _ => Err(self.refusal("POST …/objects", status, &text).into()),
        }
    }

    /// `POST …/commit {ref, old, new}`.
    fn commit(
        &self,
        upload: &SavedUpload,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<Committed, Failure> {
        let url = format!("{}/v1/uploads/{}/commit", self.cfg.api, upload.id);
        let body = serde_json::json!({
            "ref": format!("refs/heads/{branch}"),
            "old": expected.map(|e| e.0.clone()),
            "new": new.0,
        });
        // The gateway pushes one pack to the git service within its 15-minute commit lease.
        let (status, text) = self.call(reqwest::Method::POST, &url, Some(body), 960)?;
        match status {
            200 => Ok(Committed::Done),
            409 => {
                let v: serde_json::Value = self.parse("POST …/commit", &text)?;
                Ok(Committed::Moved(v["current"].as_str().map(str::to_string)))
            }
            422 => {
                let v: serde_json::Value = self.parse("POST …/commit", &text)?;
                if v["status"].as_str() != Some("incomplete") {
                    return Err(self.refusal("POST …/commit", status, &text).into());
                }
                let (missing, count) = missing_ids(&v);
                if missing.is_empty() {
                    return Err(self
                        .protocol("POST …/commit", "incomplete but lists nothing")
                        .into());
                }
                Ok(Committed::Incomplete { missing, count })
            }
            404 | 410 => Err(Failure::Gone),
            _ => Err(self.refusal("POST …/commit", status, &text).into()),
        }
    }

    /// One JSON request; `timeout` in seconds. Returns the status and the body.
    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        json: Option<serde_json::Value>,
        timeout: u64,
    ) -> Result<(u16, String), StoreError> {
        let what = format!("{method} {}", self.path_of(url));
        self.block_on(async {
            let mut req = self
                .http
                .request(method, url)
                .bearer_auth(&self.cfg.token)
                .timeout(Duration::from_secs(timeout));
            if let Some(j) = json {
                req = req
                    .header("content-type", "application/json")
                    .body(j.to_string());
            }
            let r = req.send().await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        })
        .map_err(|e| self.transport(&what, &e))
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives until drop because only Drop takes it")
            .block_on(f)
    }

    /// The URL's path, for messages (the API base is not secret, but keep them short).
    fn path_of<'u>(&self, url: &'u str) -> &'u str {
        url.strip_prefix(self.cfg.api.as_str()).unwrap_or(url)
    }
}

fn parse_hex(id: &str) -> Option<Oid> {
    if id.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The batch bodies of a list of objects, in `git cat-file --batch` framing, each at most
/// `max_bytes` (an object larger than that goes alone, for the gateway to refuse by name)
/// and at most `max_objects` objects, with each body's object count. Bodies are read only
/// as the batch that holds them is built.
pub struct Batches<'a> {
    ids: std::slice::Iter<'a, Oid>,
    read: &'a ReadObject<'a>,
    max_bytes: usize,
    max_objects: usize,
    /// The framed object that did not fit the last batch: the next one starts with it.
    carried: Option<Vec<u8>>,
}

impl<'a> Batches<'a> {
    /// The batches of `ids`, their bodies read with `read`.
    pub fn new(
        ids: &'a [Oid],
        read: &'a ReadObject<'a>,
        max_bytes: usize,
        max_objects: usize,
    ) -> Batches<'a> {
        Batches {
            ids: ids.iter(),
            read,
            max_bytes,
            max_objects: max_objects.max(1),
            carried: None,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<(Vec<u8>, usize), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (mut body, mut n) = match self.carried.take() {
            Some(framed) => (framed, 1),
            None => (Vec::new(), 0),
        };
        while n < self.max_objects {
            let Some(id) = self.ids.next() else { break };
            let id = hex(id);
            let (kind, content) = match (self.read)(&id) {
                Ok(read) => read,
                Err(e) => return Some(Err(e)),
            };
            let header = format!("{id} {} {}\n", kind.name(), content.len());
            let size = header.len() + content.len() + 1;
            if n > 0 && body.len() + size > self.max_bytes {
                let mut framed = Vec::with_capacity(size);
                frame(&mut framed, &header, &content);
                self.carried = Some(framed);
                break;
            }
            frame(&mut body, &header, &content);
            n += 1;
        }
        (n > 0).then_some(Ok((body, n)))
    }
}

fn frame(out: &mut Vec<u8>, header: &str, content: &[u8]) {
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(content);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::object::object_id;

    /// Ten 100-byte blobs: their ids, and their bodies by hex id.
    fn blobs() -> (Vec<Oid>, HashMap<String, Vec<u8>>) {
        let bodies: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i; 100]).collect();
        let ids: Vec<Oid> = bodies.iter().map(|b| object_id(Kind::Blob, b)).collect();
        let by_id = ids.iter().map(hex).zip(bodies).collect();
        (ids, by_id)
    }

    fn all(batches: Batches<'_>) -> Vec<(Vec<u8>, usize)> {
        batches
            .collect::<Result<_, _>>()
            .expect("every object reads")
    }

    /// Batches keep git's `cat-file --batch` framing and respect both caps.
    #[test]
    fn batches_respect_both_caps() {
        let (ids, by_id) = blobs();
        let read = |id: &str| Ok((Kind::Blob, by_id[id].clone()));
        let one = 40 + " blob 100\n".len() + 100 + 1;
        let by_bytes = all(Batches::new(&ids, &read, one * 3, 100));
        assert_eq!(
            by_bytes.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert!(by_bytes.iter().all(|(b, _)| b.len() <= one * 3));
        let by_count = all(Batches::new(&ids, &read, 1 << 20, 4));
        assert_eq!(
            by_count.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let first = &by_count[0].0;
        let header = format!("{} blob 100\n", hex(&ids[0]));
        assert!(first.starts_with(header.as_bytes()));
        assert_eq!(first[header.len() + 100], b'\n');
        let whole: Vec<u8> = by_bytes.into_iter().flat_map(|(b, _)| b).collect();
        let expected: Vec<u8> = ids
            .iter()
            .flat_map(|id| {
                let mut framed = Vec::new();
                frame(
                    &mut framed,
                    &format!("{} blob 100\n", hex(id)),
                    &by_id[&hex(id)],
                );
                framed
            })
            .collect();
        assert_eq!(whole, expected, "every object once, in order");
        let big = all(Batches::new(&ids[..1], &read, 10, 100));
        assert_eq!(big.len(), 1, "an object over the cap goes alone");
    }

    /// A batch reads only its own objects (and the one that did not fit it), so a push holds
    /// no more than the batches in flight; a read that fails ends the batch with its error.
    #[test]
    fn batches_read_their_objects_only_when_built() {
        let (ids, by_id) = blobs();
        let reads = std::cell::Cell::new(0);
        let read = |id: &str| {
            reads.set(reads.get() + 1);
            if reads.get() == 8 {
                return Err(StoreError::Local {
                    detail: format!("object {id} is gone"),
                });
            }
            Ok((Kind::Blob, by_id[id].clone()))
        };
        let one = 40 + " blob 100\n".len() + 100 + 1;
        let mut batches = Batches::new(&ids, &read, one * 3, 100);
        assert_eq!(
            reads.get(),
            0,
            "nothing is read before a batch is asked for"
        );
        assert_eq!(
            batches.next().map(|b| b.map(|(_, n)| n)).transpose().ok(),
            Some(Some(3))
        );
        assert_eq!(reads.get(), 4, "three objects and the one that did not fit");
        assert!(batches.next().is_some_and(|b| b.is_ok()));
        assert_eq!(reads.get(), 7);
        let failed = batches.next().expect("a third batch");
        assert!(failed.is_err_and(|e| e.to_string().contains("is gone")));
    }

    /// Object ids parse only as 40 hex digits.
    #[test]
    fn hex_ids_parse_strictly() {
        let id = object_id(Kind::Blob, b"x");
        assert_eq!(parse_hex(&hex(&id)), Some(id));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex(&"g".repeat(40)), None);
    }

    /// The token never shows in the config's Debug form.
    #[test]
    fn debug_hides_the_token() {
        let cfg = GatewayConfig {
            api: "https://gw.example".into(),
            repo: "books.git".into(),
            token: "tok-very-secret-123".into(),
            concurrency: 4,
            batch_bytes: 1 << 20,
            batch_retry: BATCH_RETRY,
            cache_dir: PathBuf::from("/tmp/x"),
        };
        assert!(!format!("{cfg:?}").contains("tok-very"));
    }
}
