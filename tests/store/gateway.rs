//! `GitStore` pushing through mwsync's gateway client (`store::gateway`) to a fake upload
//! gateway over real HTTP: an axum server on a free loopback port that answers as
//! docs/gateway.md says, verifies every object by its SHA-1, walks closures with its own
//! commit and tree parser, and counts what it received. It can be told to refuse batches
//! (423 busy, 503 contended) or to lose objects it acknowledged, which the real gateway
//! (tested in `gateway/test/` and `tests/gateway_e2e.rs`) cannot be made to do. It owns only
//! these tests and the fake.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha1::{Digest as _, Sha1};

use mwsync::error::{Classify as _, ErrorClass};
use mwsync::events::{Event, Events};
use mwsync::retry::RetryPolicy;
use mwsync::store::gateway::{BATCH_RETRY, Gateway, GatewayConfig, MAX_ROUNDS, UPLOAD_FILE};
use mwsync::store::git::{AuthMode, GitRemote, GitStore};
use mwsync::store::{CommitId, NewCommit, Store as _, StoreError};

use super::{changes, git};

const TOKEN: &str = "gw-fake-token-8d2f61c0aa7e";

/// What the fake gateway holds and what it was sent.
#[derive(Debug)]
struct Fake {
    /// Live upload ids.
    uploads: BTreeSet<String>,
    /// Objects staged by batches: id → (type, content).
    staged: BTreeMap<String, (String, Vec<u8>)>,
    /// Objects the git service behind it has (moved there by commits).
    service: BTreeSet<String>,
    /// The service's branches: ref → commit.
    refs: BTreeMap<String, String>,
    /// The `maxBatchObjects` an upload reports.
    max_batch_objects: usize,
    /// Statuses the next batches are answered with, one each, before normal service.
    refuse_next: VecDeque<u16>,
    /// A status every batch is answered with.
    refuse_all: Option<u16>,
    /// Objects a batch acknowledges as stored but never stages (a gateway losing writes).
    lose: BTreeSet<String>,
    /// Every request, in the order it was answered.
    log: Vec<Seen>,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// `open`, `status`, `objects`, `missing` or `commit`.
    call: &'static str,
    status: u16,
    /// For a batch, the SHA-1 of its decoded body.
    digest: Option<String>,
    /// For a batch, the ids it carried.
    ids: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

/// The fake on a free loopback port; stops when dropped.
struct Served {
    url: String,
    fake: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Served {
    fn start(max_batch_objects: usize) -> Served {
        let fake = Arc::new(Mutex::new(Fake {
            uploads: BTreeSet::new(),
            staged: BTreeMap::new(),
            service: BTreeSet::new(),
            refs: BTreeMap::new(),
            max_batch_objects,
            refuse_next: VecDeque::new(),
            refuse_all: None,
            lose: BTreeSet::new(),
            log: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/uploads", post(open))
            .route("/v1/uploads/{id}", get(status))
            .route("/v1/uploads/{id}/objects", post(objects))
            .route("/v1/uploads/{id}/missing", get(missing))
            .route("/v1/uploads/{id}/commit", post(commit))
            .with_state(fake.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fake gateway");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("the bound address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Served {
            url: format!("http://{addr}"),
            fake,
            _runtime: runtime,
        }
    }

    fn fake(&self) -> MutexGuard<'_, Fake> {
        lock(&self.fake)
    }

    /// The calls answered so far with their statuses, and the log emptied.
    fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut self.fake().log)
    }
}

fn lock(fake: &Shared) -> MutexGuard<'_, Fake> {
    fake.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply(status: u16, body: serde_json::Value) -> Response {
    let code = StatusCode::from_u16(status).expect("the fake answers valid statuses");
    (code, format!("{body}\n")).into_response()
}

/// `None` when the request carries the token, else the 401 the gateway gives.
fn refuse_token(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    (!ok).then(|| {
        reply(
            401,
            serde_json::json!({"status": "error", "error": "unauthorized", "message": "missing or wrong gateway token"}),
        )
    })
}

/// The fake's state for a call on upload `id`, or the 401 or 404 the gateway gives.
fn enter<'a>(
    fake: &'a Shared,
    headers: &HeaderMap,
    id: &str,
    call: &'static str,
) -> Result<MutexGuard<'a, Fake>, Box<Response>> {
    if let Some(r) = refuse_token(headers) {
        return Err(Box::new(r));
    }
    let mut f = lock(fake);
    if !f.uploads.contains(id) {
        log(&mut f, call, 404);
        return Err(Box::new(reply(
            404,
            serde_json::json!({"status": "error", "error": "no-such-upload", "message": format!("no upload {id}")}),
        )));
    }
    Ok(f)
}

fn log(f: &mut Fake, call: &'static str, status: u16) {
    f.log.push(Seen {
        call,
        status,
        digest: None,
        ids: Vec::new(),
    });
}

async fn open(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_token(&headers) {
        return r;
    }
    let mut f = lock(&fake);
    let n = f.uploads.len() + 1;
    let id = format!("{n:08x}-0000-4000-8000-{n:012x}");
    f.uploads.insert(id.clone());
    log(&mut f, "open", 201);
    reply(
        201,
        serde_json::json!({"id": id, "limits": {"maxBatchBytes": 8 << 20, "maxBatchObjects": f.max_batch_objects}}),
    )
}

async fn status(
    State(fake): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut f = match enter(&fake, &headers, &id, "status") {
        Ok(f) => f,
        Err(r) => return *r,
    };
    log(&mut f, "status", 200);
    reply(200, serde_json::json!({"id": id}))
}

async fn objects(
    State(fake): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut raw = Vec::new();
    let gzipped = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    if gzipped {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .expect("mwsync sends valid gzip");
    } else {
        raw = body.to_vec();
    }
    let batch = parse_batch(&raw);
    let mut f = match enter(&fake, &headers, &id, "objects") {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let mut seen = Seen {
        call: "objects",
        status: 200,
        digest: Some(format!("{:x}", Sha1::digest(&raw))),
        ids: batch.iter().map(|(id, _, _)| id.clone()).collect(),
    };
    if let Some(status) = f.refuse_next.pop_front().or(f.refuse_all) {
        let code = match status {
            423 => "busy",
            503 => "contended",
            _ => "batch-too-large",
        };
        seen.status = status;
        f.log.push(seen);
        // A careless gateway that echoes the request's credentials: mwsync must scrub them.
        return reply(
            status,
            serde_json::json!({"status": "error", "error": code, "message": format!("try again (Authorization: Bearer {TOKEN})")}),
        );
    }
    let (mut stored, mut already) = (0, 0);
    for (oid, kind, content) in batch {
        let mut h = Sha1::new();
        h.update(format!("{kind} {}\0", content.len()).as_bytes());
        h.update(&content);
        assert_eq!(
            format!("{:x}", h.finalize()),
            oid,
            "mwsync sent an object whose content is not its id"
        );
        if f.staged.contains_key(&oid) || f.service.contains(&oid) {
            already += 1;
        } else {
            stored += 1;
            if !f.lose.contains(&oid) {
                f.staged.insert(oid, (kind, content));
            }
        }
    }
    f.log.push(seen);
    reply(
        200,
        serde_json::json!({"received": stored + already, "stored": stored, "already": already}),
    )
}

async fn missing(
    State(fake): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut f = match enter(&fake, &headers, &id, "missing") {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let tip = q.get("tip").expect("mwsync names the tip").clone();
    let (missing, staged) = f.walk(&tip);
    log(&mut f, "missing", 200);
    reply(
        200,
        serde_json::json!({"tip": tip, "complete": missing.is_empty(), "missing": missing,
            "missingCount": missing.len(), "truncated": false, "staged": staged.len()}),
    )
}

async fn commit(
    State(fake): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v: serde_json::Value = serde_json::from_slice(&body).expect("mwsync sends JSON");
    let (r, old, new) = (
        v["ref"].as_str().expect("a ref").to_string(),
        v["old"].as_str().map(str::to_string),
        v["new"].as_str().expect("a new commit").to_string(),
    );
    let mut f = match enter(&fake, &headers, &id, "commit") {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let current = f.refs.get(&r).cloned();
    if current != old {
        log(&mut f, "commit", 409);
        return reply(
            409,
            serde_json::json!({"status": "ref-moved", "ref": r, "expected": old, "current": current}),
        );
    }
    let (missing, staged) = f.walk(&new);
    if !missing.is_empty() {
        log(&mut f, "commit", 422);
        return reply(
            422,
            serde_json::json!({"status": "incomplete", "missing": missing,
                "missingCount": missing.len(), "truncated": false}),
        );
    }
    for oid in staged {
        f.staged.remove(&oid);
        f.service.insert(oid);
    }
    f.refs.insert(r.clone(), new.clone());
    log(&mut f, "commit", 200);
    reply(
        200,
        serde_json::json!({"status": "committed", "ref": r, "old": old, "new": new}),
    )
}

impl Fake {
    /// The closure of `tip` as the gateway walks it: objects neither staged nor in the
    /// service (sorted), and the staged objects reached.
    fn walk(&self, tip: &str) -> (Vec<String>, BTreeSet<String>) {
        let (mut missing, mut staged, mut seen) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut todo = vec![tip.to_string()];
        while let Some(oid) = todo.pop() {
            if !seen.insert(oid.clone()) || self.service.contains(&oid) {
                continue;
            }
            match self.staged.get(&oid) {
                None => {
                    missing.insert(oid);
                }
                Some((kind, content)) => {
                    todo.extend(links(kind, content));
                    staged.insert(oid);
                }
            }
        }
        (missing.into_iter().collect(), staged)
    }
}

/// The objects a commit or tree names (its tree and parents; its entries but gitlinks).
fn links(kind: &str, content: &[u8]) -> Vec<String> {
    match kind {
        "commit" => String::from_utf8_lossy(content)
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                l.strip_prefix("tree ")
                    .or_else(|| l.strip_prefix("parent "))
            })
            .map(str::to_string)
            .collect(),
        "tree" => {
            let mut out = Vec::new();
            let mut rest = content;
            while !rest.is_empty() {
                let nul = rest
                    .iter()
                    .position(|b| *b == 0)
                    .expect("a tree entry ends its name with NUL");
                let gitlink = rest.starts_with(b"160000 ");
                let id: String = rest[nul + 1..nul + 21]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if !gitlink {
                    out.push(id);
                }
                rest = &rest[nul + 21..];
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A batch body in `git cat-file --batch` framing: (id, type, content) each.
fn parse_batch(mut raw: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let nl = raw.iter().position(|b| *b == b'\n').expect("a header line");
        let header = std::str::from_utf8(&raw[..nl]).expect("an ASCII header");
        let mut parts = header.split(' ');
        let (id, kind, size) = (
            parts.next().expect("an id").to_string(),
            parts.next().expect("a type").to_string(),
            parts
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .expect("a size"),
        );
        let content = raw[nl + 1..nl + 1 + size].to_vec();
        assert_eq!(raw[nl + 1 + size], b'\n', "each object ends with LF");
        out.push((id, kind, content));
        raw = &raw[nl + 2 + size..];
    }
    out
}

/// A store on `cache` whose pushes go through the fake, with batch retries that do not wait
/// (the back-off's timing is `retry`'s, pinned there on a paused clock).
fn store(cache: &Path, served: &Served, events: &Events) -> GitStore {
    let mut store = GitStore::open(
        &cache.join("repo.git"),
        GitRemote {
            url: format!("{}/git/books.git", served.url),
            api_key: Some(TOKEN.into()),
            auth: AuthMode::Bearer,
        },
    )
    .expect("the cache opens");
    let gateway = Gateway::new(
        GatewayConfig {
            api: served.url.clone(),
            repo: "books.git".into(),
            token: TOKEN.into(),
            concurrency: 2,
            batch_bytes: 65_536,
            batch_retry: RetryPolicy {
                first_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                ..BATCH_RETRY
            },
            cache_dir: cache.to_path_buf(),
        },
        events.clone(),
    )
    .expect("the client starts");
    store.use_gateway(gateway);
    store
}

/// A root commit of `files` records spread over 7 directories.
fn first_commit(store: &mut GitStore, files: usize) -> CommitId {
    let items: Vec<(String, String)> = (0..files)
        .map(|i| {
            (
                format!("t/{:02}/r{i}.xml", i % 7),
                format!("<r i='{i}'/>\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|(p, c)| (p.as_str(), Some(c.as_str())))
        .collect();
    store
        .commit(NewCommit {
            parents: Vec::new(),
            changes: changes(&refs),
            message: "first\n".into(),
        })
        .expect("a commit")
}

/// Every object of `commit`'s closure, as git itself lists them from the cache.
fn closure(cache: &Path, commit: &CommitId) -> BTreeSet<String> {
    git(
        &cache.join("repo.git"),
        &["rev-list", "--objects", &commit.0],
    )
    .lines()
    .map(|l| l[..40].to_string())
    .collect()
}

/// The `Retrying` events published so far.
fn retries(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<mwsync::events::Sequenced>>,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(item) = rx.try_recv() {
        if let Event::Retrying {
            what, error, class, ..
        } = &item.event
        {
            assert_eq!(*class, ErrorClass::Retryable);
            out.push(format!("{what}: {error}"));
        }
    }
    out
}

/// One test's fake, cache, event bus and store, with a first commit of `files` records.
struct Case {
    served: Served,
    _tmp: tempfile::TempDir,
    cache: std::path::PathBuf,
    events: Events,
    store: GitStore,
    commit: CommitId,
}

impl Case {
    fn new(max_batch_objects: usize, files: usize) -> Case {
        let served = Served::start(max_batch_objects);
        let tmp = tempfile::tempdir().expect("temp dir");
        let cache = tmp.path().join("cache");
        let events = Events::new();
        let mut store = store(&cache, &served, &events);
        let commit = first_commit(&mut store, files);
        Case {
            served,
            _tmp: tmp,
            cache,
            events,
            store,
            commit,
        }
    }
}

fn calls(log: &[Seen], call: &str) -> Vec<Seen> {
    log.iter().filter(|s| s.call == call).cloned().collect()
}

/// Batches answered 423 busy and 503 contended are sent again, unchanged, and the push lands
/// with one commit; each retry is published, without the token.
#[test]
fn busy_and_contended_batches_are_sent_again_and_the_push_lands() {
    let mut t = Case::new(8, 40);
    let mut rx = t.events.subscribe();
    let objects = closure(&t.cache, &t.commit);
    assert_eq!(objects.len(), 50, "40 blobs, 9 trees and the commit");
    t.served.fake().refuse_next = VecDeque::from([423, 503]);

    t.store
        .push("main", None, &t.commit)
        .expect("the push lands");

    let log = t.served.take_log();
    let batches = calls(&log, "objects");
    let refused: Vec<&Seen> = batches.iter().filter(|s| s.status != 200).collect();
    assert_eq!(
        refused.iter().map(|s| s.status).collect::<Vec<_>>(),
        [423, 503],
        "the first two batch requests were refused"
    );
    let accepted: BTreeMap<&str, usize> =
        batches
            .iter()
            .filter(|s| s.status == 200)
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s.digest.as_deref().expect("a digest")).or_default() += 1;
                m
            });
    assert_eq!(accepted.len(), 50_usize.div_ceil(8), "7 distinct batches");
    assert!(
        accepted.values().all(|n| *n == 1),
        "each batch was accepted exactly once: {accepted:?}"
    );
    for r in &refused {
        assert!(
            accepted.contains_key(r.digest.as_deref().expect("a digest")),
            "a refused batch was sent again unchanged"
        );
    }
    assert_eq!(batches.len(), 7 + 2, "two re-sends, nothing more");
    assert_eq!(
        calls(&log, "commit")
            .iter()
            .map(|s| s.status)
            .collect::<Vec<_>>(),
        [200],
        "one commit, and it landed"
    );
    let f = t.served.fake();
    assert_eq!(f.refs.get("refs/heads/main"), Some(&t.commit.0));
    assert_eq!(f.service, objects, "the service holds exactly the closure");
    drop(f);
    let retried = retries(&mut rx);
    assert_eq!(retried.len(), 2, "{retried:?}");
    assert!(
        retried.iter().any(|r| r.contains("423 busy")),
        "{retried:?}"
    );
    assert!(
        retried.iter().any(|r| r.contains("503 contended")),
        "{retried:?}"
    );
    assert!(retried.iter().all(|r| !r.contains(TOKEN)), "{retried:?}");
}

/// A gateway that keeps answering 503 gets each batch the policy's number of times, then a
/// retryable error that names the gateway's URL, never the token it echoed; no commit is
/// tried and the saved upload stays.
#[test]
fn a_gateway_that_stays_unavailable_ends_in_a_retryable_error_without_the_token() {
    let mut t = Case::new(100, 3);
    let mut rx = t.events.subscribe();
    t.served.fake().refuse_all = Some(503);

    let err = t
        .store
        .push("main", None, &t.commit)
        .expect_err("an unavailable gateway fails the push");

    let text = err.to_string();
    assert!(matches!(err, StoreError::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(
        text.contains(&format!("the upload gateway at {}", t.served.url))
            && text.contains("503 contended")
            && text.contains(&format!("gave up after {} attempts", BATCH_RETRY.attempts)),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(
        text.contains("Bearer ***"),
        "the echoed token is scrubbed: {text}"
    );
    let log = t.served.take_log();
    let batches = calls(&log, "objects");
    assert_eq!(batches.len(), BATCH_RETRY.attempts as usize, "{log:?}");
    assert!(
        batches.iter().all(|s| s.digest == batches[0].digest),
        "the one batch, sent again unchanged"
    );
    assert!(calls(&log, "commit").is_empty(), "no commit was tried");
    assert!(t.served.fake().refs.is_empty(), "nothing became visible");
    assert_eq!(retries(&mut rx).len(), BATCH_RETRY.attempts as usize - 1);
    let saved = std::fs::read_to_string(t.cache.join(UPLOAD_FILE)).expect("the upload is kept");
    assert!(
        saved.contains("00000001-0000-4000-8000-000000000001"),
        "{saved}"
    );
}

/// A refusal that is not transient (413) is not sent again: one request, and the error says
/// what the gateway answered.
#[test]
fn a_lasting_batch_refusal_is_sent_once() {
    let mut t = Case::new(100, 3);
    t.served.fake().refuse_all = Some(413);

    let err = t
        .store
        .push("main", None, &t.commit)
        .expect_err("a refused batch fails the push");

    assert_ne!(err.class(), ErrorClass::Retryable, "{err:?}");
    assert!(err.to_string().contains("413 batch-too-large"), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert_eq!(calls(&t.served.take_log(), "objects").len(), 1);
}

/// A gateway that keeps listing an object as missing gets [`MAX_ROUNDS`] commits (and, after
/// a restart, as many missing lists) with the object re-sent between two of them, then a
/// retryable error naming the object, the commit, the gateway and the upload; the branch is
/// untouched, the saved upload and local objects stay, and a restart once the gateway
/// behaves resumes the same upload, sends only that object and lands.
#[test]
fn objects_still_missing_after_every_round_stop_the_push_and_lose_nothing() {
    let mut t = Case::new(8, 40);
    let objects = closure(&t.cache, &t.commit);
    let root = git(
        &t.cache.join("repo.git"),
        &["rev-parse", &format!("{}^{{tree}}", t.commit.0)],
    )
    .trim()
    .to_string();
    t.served.fake().lose = BTreeSet::from([root.clone()]);
    let upload = "00000001-0000-4000-8000-000000000001";

    let check = |err: StoreError| {
        let text = err.to_string();
        match &err {
            StoreError::Incomplete {
                gateway,
                upload: id,
                commit,
                rounds,
                count,
                missing,
            } => {
                assert_eq!(gateway, &t.served.url);
                assert_eq!(id, upload);
                assert_eq!(commit, &t.commit.0);
                assert_eq!(*rounds, MAX_ROUNDS);
                assert_eq!(*count, 1);
                assert_eq!(missing, std::slice::from_ref(&root));
            }
            other => panic!("expected Incomplete, got {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Retryable);
        for part in [t.served.url.as_str(), upload, &t.commit.0, &root] {
            assert!(text.contains(part), "{part} not in: {text}");
        }
        assert!(!text.contains(TOKEN), "{text}");
        let saved = std::fs::read_to_string(t.cache.join(UPLOAD_FILE)).expect("the upload is kept");
        assert!(saved.contains(upload) && !saved.contains(TOKEN), "{saved}");
        assert!(t.served.fake().refs.is_empty(), "nothing became visible");
    };
    let resends = |log: &[Seen], first: usize| {
        let batches = calls(log, "objects");
        assert!(
            batches[first..]
                .iter()
                .all(|s| s.status == 200 && s.ids == [root.clone()]),
            "each round re-sent only the missing tree: {batches:?}"
        );
        batches.len() - first
    };

    let err = t
        .store
        .push("main", None, &t.commit)
        .expect_err("a tree the gateway keeps losing stops the push");
    check(err);
    let log = t.served.take_log();
    let commits = calls(&log, "commit");
    assert_eq!(commits.len(), MAX_ROUNDS, "{log:?}");
    assert!(commits.iter().all(|s| s.status == 422));
    assert_eq!(
        resends(&log, 50_usize.div_ceil(8)),
        MAX_ROUNDS - 1,
        "sent between two commits, never after the last"
    );

    // A restart resumes by asking what is missing, with the same rule.
    drop(t.store);
    t.store = store(&t.cache, &t.served, &t.events);
    let err = t
        .store
        .push("main", None, &t.commit)
        .expect_err("the resumed push meets the same gateway");
    check(err);
    let log = t.served.take_log();
    assert_eq!(
        log[0].call, "status",
        "the saved upload is resumed: {log:?}"
    );
    assert_eq!(calls(&log, "missing").len(), MAX_ROUNDS, "{log:?}");
    assert_eq!(resends(&log, 0), MAX_ROUNDS - 1);
    assert!(calls(&log, "commit").is_empty(), "{log:?}");

    // Once the gateway keeps what it is sent, a restart lands, sending only the tree.
    drop(t.store);
    t.served.fake().lose.clear();
    t.store = store(&t.cache, &t.served, &t.events);
    t.store
        .push("main", None, &t.commit)
        .expect("the resumed push lands");
    let log = t.served.take_log();
    assert_eq!(
        log.iter().map(|s| (s.call, s.status)).collect::<Vec<_>>(),
        [
            ("status", 200),
            ("missing", 200),
            ("objects", 200),
            ("missing", 200),
            ("commit", 200)
        ],
        "same upload, one missing list, the tree, a complete list, one commit"
    );
    assert_eq!(calls(&log, "objects")[0].ids, std::slice::from_ref(&root));
    let f = t.served.fake();
    assert_eq!(f.uploads.len(), 1, "no second upload was opened");
    assert_eq!(f.refs.get("refs/heads/main"), Some(&t.commit.0));
    assert_eq!(f.service, objects, "the service holds exactly the closure");
}
