//! `GitStore` against real bare repositories: by local path, by `file://`, and over smart
//! HTTP through the simulator's `GitServer` with an API key.

use std::path::{Path, PathBuf};

use mwsync::error::{Classify, ErrorClass};
use mwsync::store::git::{AuthMode, GitRemote, GitStore};
use mwsync::store::{CommitId, FileChange, NewCommit, Store, StoreError};
use mwsync_sim::gitserve::GitServer;

use super::{bare_remote, contract, git, git_cmd, new_commit};

const KEY: &str = "test-key-4f1e9c";

fn remote(url: &str, key: Option<&str>, auth: AuthMode) -> GitRemote {
    GitRemote {
        url: url.to_string(),
        api_key: key.map(str::to_string),
        auth,
    }
}

fn local(url: &str) -> GitRemote {
    remote(url, None, AuthMode::default())
}

fn open(dir: &Path, name: &str, r: GitRemote) -> GitStore {
    GitStore::open(&dir.join(name), r).expect("open cache")
}

/// Files directly under `objects/xx/`: loose objects.
fn loose_objects(repo: &Path) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(repo.join("objects"))
        .expect("objects dir")
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            n += std::fs::read_dir(d.path()).expect("fan-out dir").count();
        }
    }
    n
}

/// Pack files in `objects/pack`.
fn packs(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects/pack"))
        .expect("pack dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count()
}

/// The contract holds against a bare repository named by local path.
#[test]
fn contract_local_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let url = r.to_string_lossy().into_owned();
    let mut a = open(tmp.path(), "a", local(&url));
    let mut b = open(tmp.path(), "b", local(&url));
    contract::round_trip(&mut a, &mut b);
    assert_eq!(git(&r, &["rev-parse", "main"]).trim().len(), 40);
}

/// The contract holds against a `file://` remote.
#[test]
fn contract_file_url() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let url = format!("file://{}", r.display());
    let mut a = open(tmp.path(), "a", local(&url));
    let mut b = open(tmp.path(), "b", local(&url));
    contract::round_trip(&mut a, &mut b);
}

/// The contract holds over smart HTTP with the key as Basic password and as Bearer token.
#[test]
fn contract_http_with_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("srv");
    std::fs::create_dir_all(&root).expect("root");
    let server = GitServer::start(&root, KEY).expect("server");
    server.init_bare("r.git").expect("init");
    let url = server.url("r.git");
    let basic = AuthMode::Basic {
        user: "mwsync".into(),
    };
    let mut a = open(tmp.path(), "a", remote(&url, Some(KEY), basic));
    let mut b = open(tmp.path(), "b", remote(&url, Some(KEY), AuthMode::Bearer));
    contract::round_trip(&mut a, &mut b);
}

/// Bad paths, ids and file/directory clashes are refused by `GitStore`.
#[test]
fn bad_input_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "a", local(&r.to_string_lossy()));
    contract::bad_input(&mut s);
}

/// A wrong key is an `Auth` error that names neither the key nor the URL's password, and a
/// plain `git clone` with the right header sees exactly what was pushed.
#[test]
fn http_auth_and_plain_clone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("srv");
    std::fs::create_dir_all(&root).expect("root");
    let server = GitServer::start(&root, KEY).expect("server");
    server.init_bare("r.git").expect("init");
    let url = server.url("r.git");

    let mut good = open(
        tmp.path(),
        "good",
        remote(&url, Some(KEY), AuthMode::default()),
    );
    let c = good
        .commit(new_commit(
            &[],
            &[("Account/10/1000.xml", Some("<a/>\n"))],
            "accounts\n",
        ))
        .expect("commit");
    good.push("main", None, &c).expect("push with the key");

    let with_pw = url.replacen("http://", "http://bob:pw-secret-77@", 1);
    for (name, r) in [
        (
            "wrong",
            remote(&with_pw, Some("wrong-key-9d2"), AuthMode::default()),
        ),
        (
            "bearer",
            remote(&url, Some("wrong-key-9d2"), AuthMode::Bearer),
        ),
        ("none", remote(&with_pw, None, AuthMode::default())),
    ] {
        let mut bad = open(tmp.path(), name, r);
        let local = bad
            .commit(new_commit(&[], &[("x", Some("y"))], "local\n"))
            .expect("local commit needs no remote");
        for err in [
            bad.fetch().expect_err("refused"),
            bad.push("main", Some(&c), &local).expect_err("refused"),
        ] {
            assert!(matches!(err, StoreError::Auth { .. }), "{name}: {err:?}");
            assert_eq!(err.class(), ErrorClass::Invalid);
            let msg = format!("{err} {err:?}");
            for secret in ["wrong-key-9d2", "pw-secret-77", KEY] {
                assert!(!msg.contains(secret), "{name}: {msg}");
            }
        }
    }

    let out = tmp.path().join("clone");
    let outcome = git_cmd(tmp.path())
        .args([
            "-c",
            &format!("http.extraHeader=Authorization: Bearer {KEY}"),
        ])
        .args(["clone", "--quiet", &url, &out.to_string_lossy()])
        .output()
        .expect("git clone runs");
    assert!(
        outcome.status.success(),
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("Account/10/1000.xml")).expect("cloned file"),
        "<a/>\n"
    );
    assert_eq!(git(&out, &["rev-parse", "HEAD"]).trim(), c.0);

    // Without the key, a plain clone is refused.
    let denied = git_cmd(tmp.path())
        .args([
            "clone",
            "--quiet",
            &url,
            &tmp.path().join("x").to_string_lossy(),
        ])
        .output()
        .expect("git clone runs");
    assert!(!denied.status.success());
}

/// Changing one file among many rewrites only the trees on its path, in one pack.
#[test]
fn commit_is_incremental_and_packed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let mut changes = std::collections::BTreeMap::new();
    for d in 0..20 {
        for f in 0..250 {
            changes.insert(
                format!("T/d{d:02}/f{f:03}.xml"),
                FileChange::Put(format!("<r d='{d}' f='{f}'/>\n").into_bytes()),
            );
        }
    }
    let c1 = s
        .commit(NewCommit {
            parents: vec![],
            changes,
            message: "5000 files\n".into(),
        })
        .expect("big commit");
    let cache = tmp.path().join("cache");
    assert_eq!(loose_objects(&cache), 0, "a commit writes no loose objects");
    assert_eq!(packs(&cache), 1, "a commit lands as one pack");
    let count = |what: &str| -> usize {
        git(&cache, &["count-objects", "-v"])
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|v| v.trim().parse().ok())
            .expect("count-objects line")
    };
    // 5000 blobs, 20 + 2 trees, 1 commit.
    assert_eq!(count("in-pack:"), 5023);

    let c2 = s
        .commit(new_commit(
            &[&c1],
            &[("T/d07/f100.xml", Some("<changed/>\n"))],
            "one\n",
        ))
        .expect("small commit");
    assert_eq!(loose_objects(&cache), 0);
    // One blob, three trees on the path (d07, T, root) and one commit.
    assert_eq!(count("in-pack:"), 5023 + 5);
    let tree = |c: &CommitId, p: &str| git(&cache, &["rev-parse", &format!("{c}:{p}")]);
    for d in (0..20).filter(|d| *d != 7) {
        assert_eq!(
            tree(&c1, &format!("T/d{d:02}")),
            tree(&c2, &format!("T/d{d:02}"))
        );
    }
    assert_ne!(tree(&c1, "T/d07"), tree(&c2, "T/d07"));
    assert_eq!(
        s.changed_paths(Some(&c1), &c2).expect("diff"),
        ["T/d07/f100.xml"]
    );

    // Deleting every file of a directory removes it from its parent tree.
    let gone: Vec<String> = (0..250).map(|f| format!("T/d03/f{f:03}.xml")).collect();
    let items: Vec<(&str, Option<&str>)> = gone.iter().map(|p| (p.as_str(), None)).collect();
    let c3 = s
        .commit(new_commit(&[&c2], &items, "drop d03\n"))
        .expect("deletes");
    let listing = git(&cache, &["ls-tree", "--name-only", &format!("{c3}:T")]);
    assert!(!listing.lines().any(|l| l == "d03"), "{listing}");
    assert_eq!(listing.lines().count(), 19);
}

/// The packs mwsync writes are valid to git itself (`verify-pack`, `fsck --full`), hold no
/// deltas, and a push hands them on so the remote checks out clean too.
#[test]
fn packs_are_valid_to_git_and_have_no_deltas() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let mut items: Vec<(String, String)> = Vec::new();
    for i in 0..300 {
        // Near-identical files, which a delta search would gladly chain.
        items.push((
            format!("t/{:03}/{i}.xml", i % 7),
            format!("<r><n>{i}</n><pad>{}</pad></r>\n", "x".repeat(400)),
        ));
    }
    let refs: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|(p, c)| (p.as_str(), Some(c.as_str())))
        .collect();
    let c1 = s.commit(new_commit(&[], &refs, "first\n")).expect("commit");
    s.push("main", None, &c1).expect("push");
    let c2 = s
        .commit(new_commit(
            &[&c1],
            &[("t/003/3.xml", None), ("t/new.xml", Some("n\n"))],
            "second\n",
        ))
        .expect("commit");
    s.push("main", Some(&c1), &c2).expect("push");
    let cache = tmp.path().join("cache");
    for repo in [&cache, &r] {
        git(repo, &["fsck", "--full", "--no-dangling"]);
        for e in std::fs::read_dir(repo.join("objects/pack"))
            .expect("pack dir")
            .flatten()
        {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "idx") {
                let out = git(repo, &["verify-pack", "-v", &path.to_string_lossy()]);
                assert!(!out.contains("chain length"), "a delta in {path:?}:\n{out}");
            }
        }
    }
    assert_eq!(git(&r, &["rev-parse", "main"]).trim(), c2.0);
    assert_eq!(
        git(&r, &["ls-tree", "-r", "--name-only", "main"])
            .lines()
            .count(),
        300
    );
}

/// Tree and blob ids match what the in-memory store computes for the same content.
#[test]
fn hashing_matches_memory_store() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let items = [
        ("a.x", Some("dot sorts before slash\n")),
        ("a/b", Some("in dir\n")),
        ("a-b", Some("dash\n")),
        ("é/ü.xml", Some("non-ascii\n")),
        ("Z", Some("")),
    ];
    let g = s
        .commit(new_commit(&[], &items, "m\n"))
        .expect("git commit");
    let mut m = mwsync::store::memory::MemoryRemote::new().store();
    let c = m
        .commit(new_commit(&[], &items, "m\n"))
        .expect("mem commit");
    let git_tree = git(
        &tmp.path().join("cache"),
        &["rev-parse", &format!("{g}^{{tree}}")],
    );
    assert_eq!(git_tree.trim(), m.tree_id(&c).expect("tree"));
}

/// A push whose connection dies after the ref moved is re-checked and reported as success.
#[test]
fn push_outcome_unknown_is_rechecked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    // After the ref update, kill receive-pack so the client never hears the result.
    let hook = r.join("hooks/post-receive");
    std::fs::write(&hook, "#!/bin/sh\nkill -9 $PPID\n").expect("hook");
    make_executable(&hook);
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let c = s
        .commit(new_commit(&[], &[("x", Some("1"))], "m\n"))
        .expect("commit");
    s.push("main", None, &c)
        .expect("the re-check finds the push landed");
    assert_eq!(s.remote_tip("main").expect("tip"), Some(c.clone()));
    assert_eq!(git(&r, &["rev-parse", "main"]).trim(), c.0);
}

/// A successful push is read from git's own reply: no fetch follows it, so a branch that
/// moved on the remote meanwhile is still seen where the last fetch left it.
#[test]
fn successful_push_needs_no_fetch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let c1 = s
        .commit(new_commit(&[], &[("x", Some("1"))], "m\n"))
        .expect("commit");
    s.push("main", None, &c1).expect("first push");
    s.push("other", None, &c1).expect("other branch");
    s.fetch().expect("fetch");
    // Someone moves `other` on the remote; only a fetch could tell this cache.
    let c2 = s
        .commit(new_commit(&[&c1], &[("x", Some("2"))], "m\n"))
        .expect("commit");
    git(
        &tmp.path().join("cache"),
        &[
            "push",
            "--quiet",
            &r.to_string_lossy(),
            &format!("{c2}:refs/heads/other"),
        ],
    );
    let c3 = s
        .commit(new_commit(&[&c1], &[("y", Some("3"))], "m\n"))
        .expect("commit");
    s.push("main", Some(&c1), &c3)
        .expect("push by compare-and-swap");
    assert_eq!(s.remote_tip("main").expect("tip"), Some(c3));
    assert_eq!(
        s.remote_tip("other").expect("tip"),
        Some(c1),
        "a fetch ran after the successful push"
    );
}

/// A push a real `pre-receive` hook refuses is `Refused`, needs a human, and carries the
/// hook's own words; the branch did not move.
#[test]
fn remote_rejection_needs_a_human() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let hook = r.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho refused by policy >&2\nexit 1\n").expect("hook");
    make_executable(&hook);
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let c = s
        .commit(new_commit(&[], &[("x", Some("1"))], "m\n"))
        .expect("commit");
    let err = s.push("main", None, &c).expect_err("refused");
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::NeedsHuman);
    assert!(
        err.to_string().contains(
            "[remote rejected] (pre-receive hook declined); the remote said: refused by policy"
        ),
        "{err}"
    );
    assert_eq!(s.remote_tip("main").expect("tip"), None);
}

/// A remote that does not exist is a `Transport` error, and a non-bare cache is refused.
#[test]
fn missing_remote_and_bad_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = open(
        tmp.path(),
        "cache",
        local(&tmp.path().join("nope.git").to_string_lossy()),
    );
    let err = s.fetch().expect_err("no remote");
    assert!(matches!(err, StoreError::Transport { .. }), "{err:?}");
    let work = tmp.path().join("work");
    git(tmp.path(), &["init", "--quiet", &work.to_string_lossy()]);
    let err = GitStore::open(&work, local("x")).expect_err("work tree");
    assert!(matches!(err, StoreError::Local { .. }), "{err:?}");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").expect("file");
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(&junk).expect("dir");
    std::fs::write(junk.join("x"), "x").expect("file");
    assert!(GitStore::open(&junk, local("x")).is_err());
    assert!(GitStore::open(&file, local("x")).is_err());
}

/// Many pushed commits never pile up unbounded packs (the end of a push rolls them up), and
/// unreferenced commits survive the repack.
#[test]
fn packs_are_consolidated() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let mut tip: Option<CommitId> = None;
    let mut pushed: Option<CommitId> = None;
    let mut all = Vec::new();
    for i in 0..40 {
        let parents: Vec<&CommitId> = tip.iter().collect();
        let body = format!("{i}\n");
        let c = s
            .commit(new_commit(
                &parents,
                &[(&format!("f/{i}.xml"), Some(&body))],
                "c\n",
            ))
            .expect("commit");
        all.push(c.clone());
        // Every other commit is pushed, as checkpoints are when a push carries two.
        if i % 2 == 1 {
            s.push("main", pushed.as_ref(), &c).expect("push");
            pushed = Some(c.clone());
        }
        tip = Some(c);
    }
    let cache = tmp.path().join("cache");
    assert!(packs(&cache) <= 33, "{} packs", packs(&cache));
    assert_eq!(loose_objects(&cache), 0);
    for (i, c) in all.iter().enumerate() {
        assert_eq!(
            s.read_file(c, &format!("f/{i}.xml")).expect("read"),
            Some(format!("{i}\n").into_bytes())
        );
    }
}

/// A pack at the keep threshold gets a `.keep` file and outlives every later roll-up
/// unchanged, while the smaller packs after it are still rolled together.
#[test]
fn large_packs_are_kept_out_of_roll_ups() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    // Each commit below is one pack of 4 objects (blob, two trees, commit); the first
    // roll-up merges more than 40, so it reaches the threshold and is kept from then on.
    s.keep_packs_from(40);
    let mut tip: Option<CommitId> = None;
    // Each commit is pushed: the end of a push is where packs are rolled up.
    let commit = |s: &mut GitStore, tip: &mut Option<CommitId>, i: usize| {
        let parents: Vec<&CommitId> = tip.iter().collect();
        let c = s
            .commit(new_commit(
                &parents,
                &[(&format!("f/{i}.xml"), Some(&format!("{i}\n")))],
                "c\n",
            ))
            .expect("commit");
        s.push("main", tip.as_ref(), &c).expect("push");
        *tip = Some(c);
    };
    for i in 0..40 {
        commit(&mut s, &mut tip, i);
    }
    let pack_dir = tmp.path().join("cache").join("objects").join("pack");
    let kept = |dir: &Path| -> Vec<PathBuf> {
        let mut k: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("pack dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "keep"))
            .collect();
        k.sort();
        k
    };
    // The end of the next push marks the big pack.
    commit(&mut s, &mut tip, 40);
    let first = kept(&pack_dir);
    assert_eq!(first.len(), 1, "one large pack is kept: {first:?}");
    let big = first[0].with_extension("pack");
    let before = std::fs::read(&big).expect("the kept pack");
    for i in 41..120 {
        commit(&mut s, &mut tip, i);
    }
    assert_eq!(
        std::fs::read(&big).expect("the kept pack is still there"),
        before,
        "a kept pack is never rewritten"
    );
    assert!(packs(&tmp.path().join("cache")) <= 33 + kept(&pack_dir).len());
    let tip = tip.expect("commits");
    for i in 0..120 {
        assert_eq!(
            s.read_file(&tip, &format!("f/{i}.xml")).expect("read"),
            Some(format!("{i}\n").into_bytes())
        );
    }
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Measures a first-sync-sized commit (run with `--ignored --nocapture`): 100,000 files in
/// 100 directories land as one pack, and a one-file change after it stays cheap.
#[test]
#[ignore = "a measurement, slow in debug builds"]
fn hundred_thousand_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut s = open(tmp.path(), "cache", local(&r.to_string_lossy()));
    let changes = (0..100_000)
        .map(|i| {
            let body =
                format!("<Transaction>\n  <SequenceNumber>{i}</SequenceNumber>\n</Transaction>\n");
            (
                format!("Transaction/{:02}/{i}.xml", i % 100),
                FileChange::Put(body.into_bytes()),
            )
        })
        .collect();
    let t = std::time::Instant::now();
    let c1 = s
        .commit(NewCommit {
            parents: vec![],
            changes,
            message: "big\n".into(),
        })
        .expect("big commit");
    let big = t.elapsed();
    let t = std::time::Instant::now();
    let c2 = s
        .commit(new_commit(
            &[&c1],
            &[("Transaction/07/7.xml", Some("<x/>\n"))],
            "one\n",
        ))
        .expect("small commit");
    let small = t.elapsed();
    let t = std::time::Instant::now();
    s.push("main", None, &c2).expect("push");
    let push = t.elapsed();
    let cache = tmp.path().join("cache");
    eprintln!(
        "100k-file commit: {big:?}; one-file commit after it: {small:?}; push: {push:?}; \
         packs {}, loose {}; pack bytes {}",
        packs(&cache),
        loose_objects(&cache),
        std::fs::read_dir(cache.join("objects/pack"))
            .expect("dir")
            .flatten()
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    );
    assert_eq!(loose_objects(&cache), 0);
}

/// A push larger than git's post buffer (sent chunked, without a length) works over HTTP.
#[test]
fn large_push_over_http() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("srv");
    std::fs::create_dir_all(&root).expect("root");
    let server = GitServer::start(&root, KEY).expect("server");
    server.init_bare("r.git").expect("init");
    let url = server.url("r.git");
    let mut s = open(tmp.path(), "a", remote(&url, Some(KEY), AuthMode::Bearer));
    // Incompressible bytes from a fixed linear congruential sequence: about 3 MB in total.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let changes = (0..300)
        .map(|i| {
            let body: Vec<u8> = (0..10_000)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            (format!("blobs/{i}.bin"), FileChange::Put(body))
        })
        .collect();
    let c = s
        .commit(NewCommit {
            parents: vec![],
            changes,
            message: "big push\n".into(),
        })
        .expect("commit");
    s.push("main", None, &c).expect("chunked push");
    let mut other = open(tmp.path(), "b", remote(&url, Some(KEY), AuthMode::Bearer));
    other.fetch().expect("fetch");
    assert_eq!(other.remote_tip("main").expect("tip"), Some(c.clone()));
    assert_eq!(other.list_files(&c, "blobs").expect("list").len(), 300);
}

/// Commits carry the configured author and committer, the default otherwise.
#[test]
fn commits_carry_the_configured_author() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = bare_remote(tmp.path(), "remote.git");
    let mut store = open(tmp.path(), "cache.git", local(&r.to_string_lossy()));
    let first = store
        .commit(new_commit(&[], &[("a.txt", Some("1"))], "first"))
        .expect("commit");
    assert_eq!(
        store.commit_info(&first).expect("info").author,
        "mwsync <mwsync@localhost>"
    );
    store.set_author("mwsync at Acme", "it@acme.example");
    let second = store
        .commit(new_commit(&[&first], &[("a.txt", Some("2"))], "second"))
        .expect("commit");
    store.push("main", None, &second).expect("push");
    assert_eq!(
        store.commit_info(&second).expect("info").author,
        "mwsync at Acme <it@acme.example>"
    );
    let committer = git(
        tmp.path(),
        &[
            "--git-dir",
            &r.to_string_lossy(),
            "log",
            "-1",
            "--format=%cn <%ce>",
            "main",
        ],
    );
    assert_eq!(committer.trim(), "mwsync at Acme <it@acme.example>");
}
