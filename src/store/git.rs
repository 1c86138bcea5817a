//! The production `Store`: git2 over a bare local cache repository, with the `git` command line
//! for fetch and push so http(s) with an API key works without OpenSSL in libgit2.
//!
//! It owns the cache repository's objects and its `refs/remotes/origin/*` view of the remote.
//! It never creates a work tree, never moves a local branch, and never force-pushes: every
//! push is a compare-and-swap (`--force-with-lease` on the exact expected tip). Each commit
//! is built incrementally from its first parent's tree (only subtrees on changed paths are
//! rewritten) and lands in the cache as one pack, never as loose objects.

mod cli;
pub mod pack;
mod push;
mod tree;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{ErrorCode, ObjectType, Oid, Repository, Signature, Sort, Tree, TreeWalkMode};

use self::cli::GitCli;
use self::pack::PackObject;
use self::tree::plan;
pub use self::tree::validate_path;
use super::gateway::Gateway;
use super::object::{self, Kind};
use super::{CommitId, CommitInfo, DirEntry, NewCommit, Store, StoreError};

/// How the API key is presented to an http(s) remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Basic base64(user:key)`: the key is the HTTP Basic password.
    Basic {
        /// The user name sent with the key (hosted servers often ignore it).
        user: String,
    },
    /// `Authorization: Bearer key`.
    Bearer,
}

impl Default for AuthMode {
    fn default() -> Self {
        AuthMode::Basic {
            user: DEFAULT_USER.to_string(),
        }
    }
}

/// The user name sent with the key in Basic mode unless configured otherwise.
pub const DEFAULT_USER: &str = "mwsync";

/// Name and email of the author and committer of every commit mwsync writes, unless
/// [`GitStore::set_author`] names another.
pub const AUTHOR_NAME: &str = "mwsync";
/// See [`AUTHOR_NAME`].
pub const AUTHOR_EMAIL: &str = "mwsync@localhost";

/// Where the remote is and how to authenticate to it.
#[derive(Clone, PartialEq, Eq)]
pub struct GitRemote {
    /// A local path, `file://`, `http://` or `https://` URL, without a `#branch` fragment.
    pub url: String,
    /// The API key for http(s) remotes; ignored for local ones.
    pub api_key: Option<String>,
    /// How the key is sent.
    pub auth: AuthMode,
}

impl std::fmt::Debug for GitRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRemote")
            .field("url", &cli::scrub_userinfo(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("auth", &self.auth)
            .finish()
    }
}

/// Lists the remote's branches (`git ls-remote`), for `mwsync doctor`: branch name → tip.
/// `scratch` is an empty directory the probe may use as its own bare repository; the
/// daemon's cache is never touched. Read-only on the remote.
pub fn probe_branches(
    remote: &GitRemote,
    scratch: &Path,
) -> Result<BTreeMap<String, String>, StoreError> {
    let cli = scratch_cli(remote, scratch)?;
    let url = cli.url().to_string();
    let ran = cli.run(&["ls-remote", "--heads", &url])?;
    if !ran.ok {
        return Err(cli.failure("listing the branches of", &ran));
    }
    Ok(ran
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(id, r)| Some((r.strip_prefix("refs/heads/")?.to_string(), id.to_string())))
        .collect())
}

/// Shows whether the credentials may push, for `mwsync doctor`: `git push --dry-run` of a
/// commit made in `scratch` to a new branch `branch`, which nothing is ever sent to.
/// Returns what git said.
pub fn probe_push(remote: &GitRemote, scratch: &Path, branch: &str) -> Result<String, StoreError> {
    let cli = scratch_cli(remote, scratch)?;
    let identity = [
        "-c",
        "user.name=mwsync doctor",
        "-c",
        "user.email=mwsync@localhost",
    ];
    let tree = cli.run(&["mktree"])?;
    let tree_id = tree.stdout.trim().to_string();
    let mut args: Vec<&str> = identity.to_vec();
    args.extend([
        "commit-tree",
        tree_id.as_str(),
        "-m",
        "mwsync doctor: dry-run probe",
    ]);
    let commit = cli.run(&args)?;
    if !tree.ok || !commit.ok {
        return Err(StoreError::Local {
            detail: format!(
                "cannot make the probe commit in {}: {}",
                scratch.display(),
                commit.stderr.trim()
            ),
        });
    }
    let refspec = format!("{}:refs/heads/{branch}", commit.stdout.trim());
    let url = cli.url().to_string();
    let ran = cli.run(&["push", "--dry-run", "--porcelain", &url, &refspec])?;
    if ran.ok {
        Ok(ran.stdout.trim().to_string())
    } else {
        Err(cli.failure("a dry-run push to", &ran))
    }
}

fn scratch_cli(remote: &GitRemote, scratch: &Path) -> Result<GitCli, StoreError> {
    if !scratch.join("HEAD").exists() {
        Repository::init_bare(scratch).map_err(|e| StoreError::Local {
            detail: format!("cannot create {}: {e}", scratch.display()),
        })?;
    }
    Ok(GitCli::new(scratch, remote))
}

/// More packs than this in the cache (kept packs aside) triggers a geometric repack when a
/// push ends, so lookups stay fast without rewriting the whole repository each time.
const MAX_PACKS: usize = 32;

/// A pack of at least this many objects gets a `.keep` file and is never rolled up again. A
/// roll-up's `git pack-objects` holds about 290 bytes per object it copies (290 MiB for the
/// million objects of a 1M-transaction cache), so rolling up only smaller packs bounds it
/// near 2 × this × 290 bytes (58 MiB), and a roll-up's time with it, with a pack for every
/// this many objects (10 at 1M transactions).
pub const KEEP_PACKS_FROM: u32 = 100_000;

/// Bounds libgit2's memory so mwsync's resident set does not grow with the repository, and
/// lets it cache what a pull reads again and again. Mapped packs: every mapped page it has
/// read counts as resident, and by default libgit2 maps 1 GiB windows up to 8 GiB. The object
/// cache: by default it keeps no tree or commit over 4 KiB, so staging a page looked up each
/// record's path by inflating, hash-checking and parsing `main`'s commit (its message lists a
/// checkpoint's records) and shard directories of up to 1,000 entries (40 KiB) again, for
/// every record; at 1M transactions that was half of mwsync's CPU. Trees and commits up to
/// 1 MiB are cached now, within 32 MiB in all, and at most 16 MiB of packs are mapped (see
/// `memory`). Call once at the start of the process, before
/// any thread uses libgit2 (the binary does, in `main`).
pub fn bound_libgit2_memory() {
    // SAFETY: libgit2's options are plain globals; the caller runs this before any other
    // thread uses libgit2, as these functions require.
    let set = unsafe {
        git2::opts::set_mwindow_size(4 << 20)
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(16 << 20))
            .and_then(|()| git2::opts::set_cache_max_size(32 << 20))
            .and_then(|()| git2::opts::set_cache_object_limit(ObjectType::Tree, 1 << 20))
            .and_then(|()| git2::opts::set_cache_object_limit(ObjectType::Commit, 1 << 20))
    };
    if let Err(e) = set {
        tracing::warn!("cannot bound libgit2's memory: {}", e.message());
    }
}

/// The git2 `Store` over a bare cache repository. See the module header.
pub struct GitStore {
    /// The bare cache repository.
    repo: Repository,
    /// Its directory.
    path: PathBuf,
    /// Transport through the `git` command line.
    cli: GitCli,
    /// Name and email of the author and committer of new commits.
    author: (String, String),
    /// When set, pushes go through this upload gateway instead of `git push` (shared with
    /// the thread of a running push).
    gateway: Option<Arc<Mutex<Gateway>>>,
    /// With a gateway: the ids of the new objects of the last commits written and not yet
    /// pushed, so a push sends exactly them (read back from the cache batch by batch; the
    /// bodies of 12 checkpoints of transactions held about 100 MiB). Anything dropped from here
    /// is found by asking the gateway what is missing.
    unpushed: VecDeque<(CommitId, Vec<object::Oid>)>,
    /// The push running in its own thread, if any (`start_push`).
    running: Option<push::Running>,
    /// Packs of this many objects or more are kept out of roll-ups.
    keep_from: u32,
}

/// How many unpushed commits keep their objects' ids for a gateway push: more than the engine
/// lets wait behind a running push (`engine::landing`), so a push that carries all of them
/// sends their objects without asking what is missing.
const UNPUSHED_KEPT: usize = 12;

impl std::fmt::Debug for GitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitStore")
            .field("path", &self.path)
            .field("url", &self.cli.scrub(self.cli.url()))
            .finish()
    }
}

impl GitStore {
    /// Opens the bare cache at `cache_dir`, creating it (and its parents) when absent. Fails
    /// with `Local` when the directory holds something that is not a bare repository.
    pub fn open(cache_dir: &Path, remote: GitRemote) -> Result<GitStore, StoreError> {
        let local = |what: &str, e: &dyn std::fmt::Display| StoreError::Local {
            detail: format!("{what} {}: {e}", cache_dir.display()),
        };
        let empty = match std::fs::read_dir(cache_dir) {
            Ok(mut it) => it.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(local("cannot read the cache directory", &e)),
        };
        let repo = if empty {
            std::fs::create_dir_all(cache_dir)
                .map_err(|e| local("cannot create the cache directory", &e))?;
            Repository::init_bare(cache_dir)
                .map_err(|e| local("cannot create a bare repository in", &e))?
        } else {
            Repository::open_bare(cache_dir)
                .map_err(|e| local("is not a bare git repository:", &e))?
        };
        if !repo.is_bare() {
            return Err(StoreError::Local {
                detail: format!(
                    "{} is a repository with a work tree; the cache must be bare",
                    cache_dir.display()
                ),
            });
        }
        let cli = GitCli::new(cache_dir, &remote);
        Ok(GitStore {
            repo,
            path: cache_dir.to_path_buf(),
            cli,
            author: (AUTHOR_NAME.to_string(), AUTHOR_EMAIL.to_string()),
            gateway: None,
            unpushed: VecDeque::new(),
            running: None,
            keep_from: KEEP_PACKS_FROM,
        })
    }

    /// Pushes from now on go through `gateway`'s uploads (docs/gateway.md); fetches still
    /// use git against the remote URL, which is the gateway's read side.
    pub fn use_gateway(&mut self, gateway: Gateway) {
        self.gateway = Some(Arc::new(Mutex::new(gateway)));
    }

    /// Commits from now on are authored and committed by `name <email>`.
    pub fn set_author(&mut self, name: &str, email: &str) {
        self.author = (name.to_string(), email.to_string());
    }

    /// The cache repository's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves a commit id to a commit in the cache.
    fn find_commit(&self, id: &CommitId) -> Result<git2::Commit<'_>, StoreError> {
        let oid = parse_oid(id)?;
        self.repo.find_commit(oid).map_err(|e| match e.code() {
            ErrorCode::NotFound => StoreError::NotFound {
                detail: format!("commit {id} is not in the local cache"),
            },
            _ => local_err("cannot read commit", &e),
        })
    }

    /// Packs of at least `objects` objects are kept out of roll-ups from now on (default
    /// [`KEEP_PACKS_FROM`]).
    pub fn keep_packs_from(&mut self, objects: u32) {
        self.keep_from = objects;
    }

    /// Keeps large packs (see [`KEEP_PACKS_FROM`]) and rolls the others together once there
    /// are too many.
    pub(super) fn consolidate_packs(&mut self) -> Result<(), StoreError> {
        let dir = self.path.join("objects").join("pack");
        let packs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "pack"))
                    .collect()
            })
            .unwrap_or_default();
        let mut unkept = 0;
        for pack in packs {
            let keep = pack.with_extension("keep");
            if keep.exists() {
                continue;
            }
            if pack::objects_in_index(&pack.with_extension("idx")) >= Some(self.keep_from) {
                std::fs::write(&keep, "mwsync: a large pack, never rolled up again\n").map_err(
                    |e| StoreError::Local {
                        detail: format!("cannot write {}: {e}", keep.display()),
                    },
                )?;
                continue;
            }
            unkept += 1;
        }
        if unkept <= MAX_PACKS {
            return Ok(());
        }
        // --geometric rolls packs up by their object lists, so unreferenced commits survive.
        // --window=0: the packs hold no deltas and need none; objects are copied as they are.
        let ran = self
            .cli
            .run(&["repack", "-d", "-q", "--geometric=2", "--window=0"])?;
        if !ran.ok {
            return Err(StoreError::Local {
                detail: format!("git repack failed: {}", ran.stderr.trim()),
            });
        }
        // Opened again: libgit2 keeps every pack it once opened, the rolled-up ones too, with
        // their indexes mapped whole; at 1M transactions the stale maps held 50 MiB.
        self.repo = Repository::open_bare(&self.path)
            .map_err(|e| local_err("cannot open the cache again after a roll-up", &e))?;
        Ok(())
    }
}

impl Store for GitStore {
    fn fetch(&mut self) -> Result<(), StoreError> {
        let url = self.cli.url().to_string();
        let ran = self.cli.run(&[
            "fetch",
            "--prune",
            "--no-tags",
            "--quiet",
            "--no-write-fetch-head",
            &url,
            "+refs/heads/*:refs/remotes/origin/*",
        ])?;
        if ran.ok {
            Ok(())
        } else {
            Err(self.cli.failure("fetch from", &ran))
        }
    }

    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError> {
        let name = tracking_ref(branch)?;
        match self.repo.refname_to_id(&name) {
            Ok(oid) => Ok(Some(CommitId(oid.to_string()))),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(local_err("cannot read", &e)),
        }
    }

    fn remote_branches(&self) -> Result<Vec<String>, StoreError> {
        let refs = self
            .repo
            .references_glob("refs/remotes/origin/*")
            .map_err(|e| local_err("cannot list the remote's branches", &e))?;
        let mut out = Vec::new();
        for r in refs {
            let r = r.map_err(|e| local_err("cannot read a branch of the remote", &e))?;
            if let Some(name) = r
                .name()
                .ok()
                .and_then(|n| n.strip_prefix("refs/remotes/origin/"))
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_path(path)?;
        let tree = self.commit_tree(commit)?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(local_err("cannot look up a path", &e)),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| local_err("cannot read a blob", &e))?;
        Ok(Some(blob.content().to_vec()))
    }

    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let root = self.commit_tree(commit)?;
        let (tree, prefix) = if dir.is_empty() {
            (root, String::new())
        } else {
            validate_path(dir)?;
            let entry = match root.get_path(Path::new(dir)) {
                Ok(e) => e,
                Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(local_err("cannot look up a path", &e)),
            };
            if entry.kind() != Some(ObjectType::Tree) {
                return Ok(Vec::new());
            }
            let tree = self
                .repo
                .find_tree(entry.id())
                .map_err(|e| local_err("cannot read a tree", &e))?;
            (tree, format!("{dir}/"))
        };
        let mut out = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let name = String::from_utf8_lossy(entry.name_bytes());
                out.push(format!("{prefix}{root}{name}"));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| local_err("cannot walk a tree", &e))?;
        out.sort();
        Ok(out)
    }

    fn list_dir(&self, commit: &CommitId, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let root = self.commit_tree(commit)?;
        let tree = if dir.is_empty() {
            root
        } else {
            validate_path(dir)?;
            let entry = match root.get_path(Path::new(dir)) {
                Ok(e) => e,
                Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(local_err("cannot look up a path", &e)),
            };
            if entry.kind() != Some(ObjectType::Tree) {
                return Ok(Vec::new());
            }
            self.repo
                .find_tree(entry.id())
                .map_err(|e| local_err("cannot read a tree", &e))?
        };
        let mut out: Vec<DirEntry> = tree
            .iter()
            .map(|e| DirEntry {
                name: String::from_utf8_lossy(e.name_bytes()).into_owned(),
                is_dir: e.kind() == Some(ObjectType::Tree),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError> {
        let old = from.map(|c| self.commit_tree(c)).transpose()?;
        let new = self.commit_tree(to)?;
        let diff = self
            .repo
            .diff_tree_to_tree(old.as_ref(), Some(&new), None)
            .map_err(|e| local_err("cannot diff trees", &e))?;
        let mut paths = BTreeSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path() {
                    paths.insert(p.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(paths.into_iter().collect())
    }

    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError> {
        let nodes = plan(&commit.changes)?;
        let parents = commit
            .parents
            .iter()
            .map(|p| self.find_commit(p).map(|c| c.id()))
            .collect::<Result<Vec<_>, _>>()?;
        let base = match parents.first() {
            Some(p) => Some(
                self.repo
                    .find_commit(*p)
                    .and_then(|c| c.tree())
                    .map_err(|e| local_err("cannot read the parent tree", &e))?
                    .id(),
            ),
            None => None,
        };
        // Every object this commit needs that its first parent lacks, built here and written
        // as one pack without deltas (see `pack`).
        let mut objects = Vec::new();
        let tree = match self.apply_tree(base, &nodes, "", &mut objects)? {
            Some(id) => id,
            None => {
                let empty = PackObject::new(Kind::Tree, object::tree_body(Vec::new()));
                let id = empty.id;
                objects.push(empty);
                id
            }
        };
        // libgit2 validates the name and email and knows the local time zone.
        let sig = Signature::now(&self.author.0, &self.author.1)
            .map_err(|e| local_err("cannot make a signature", &e))?;
        let offset = sig.when().offset_minutes();
        let signature = format!(
            "{} <{}> {} {}{:02}{:02}",
            self.author.0,
            self.author.1,
            sig.when().seconds(),
            if offset < 0 { '-' } else { '+' },
            offset.abs() / 60,
            offset.abs() % 60
        );
        let parent_ids: Vec<object::Oid> = parents.iter().map(raw).collect();
        let body = object::commit_body(&tree, &parent_ids, &signature, &commit.message);
        let commit_obj = PackObject::new(Kind::Commit, body);
        let id = commit_obj.id;
        objects.push(commit_obj);
        pack::write_pack(&self.path.join("objects").join("pack"), &objects)?;
        self.repo
            .odb()
            .and_then(|odb| odb.refresh())
            .map_err(|e| local_err("cannot refresh the object database", &e))?;
        // Packs are rolled up when a push ends (`push::end_push`), never here: a roll-up
        // while `git push` reads the packs could pull one from under it.
        let id = CommitId(object::hex(&id));
        if self.gateway.is_some() {
            self.unpushed
                .push_back((id.clone(), objects.iter().map(|o| o.id).collect()));
            while self.unpushed.len() > UNPUSHED_KEPT {
                self.unpushed.pop_front();
            }
        }
        Ok(id)
    }

    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.begin_push(branch, expected, new)?;
        self.end_push()
    }

    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.begin_push(branch, expected, new)
    }

    fn push_running(&self) -> bool {
        self.running.as_ref().is_some_and(|r| !r.ended())
    }

    fn finish_push(&mut self) -> Result<(), StoreError> {
        self.end_push()
    }

    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError> {
        let a = self.find_commit(a)?.id();
        let b = self.find_commit(b)?.id();
        match self.repo.merge_base(a, b) {
            Ok(oid) => Ok(Some(CommitId(oid.to_string()))),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(local_err("cannot find a merge base", &e)),
        }
    }

    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError> {
        let a = self.find_commit(ancestor)?.id();
        let d = self.find_commit(descendant)?.id();
        if a == d {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(d, a)
            .map_err(|e| local_err("cannot walk history", &e))
    }

    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError> {
        let c = self.find_commit(commit)?;
        let author = c.author();
        Ok(CommitInfo {
            id: CommitId(c.id().to_string()),
            parents: c.parent_ids().map(|p| CommitId(p.to_string())).collect(),
            author: format!(
                "{} <{}>",
                String::from_utf8_lossy(author.name_bytes()),
                String::from_utf8_lossy(author.email_bytes())
            ),
            message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        })
    }

    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError> {
        let tip = self.find_commit(tip)?.id();
        let base = base
            .map(|b| self.find_commit(b).map(|c| c.id()))
            .transpose()?;
        let walk = |tip: Oid, base: Option<Oid>| -> Result<Vec<CommitId>, git2::Error> {
            let mut rw = self.repo.revwalk()?;
            rw.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
            rw.push(tip)?;
            if let Some(b) = base {
                rw.hide(b)?;
            }
            rw.map(|r| r.map(|o| CommitId(o.to_string()))).collect()
        };
        walk(tip, base).map_err(|e| local_err("cannot walk history", &e))
    }
}

impl GitStore {
    /// The root tree of a commit.
    fn commit_tree(&self, commit: &CommitId) -> Result<Tree<'_>, StoreError> {
        self.find_commit(commit)?
            .tree()
            .map_err(|e| local_err("cannot read a commit's tree", &e))
    }
}

/// `refs/remotes/origin/<branch>`, after checking the branch name is valid.
fn tracking_ref(branch: &str) -> Result<String, StoreError> {
    let full = format!("refs/heads/{branch}");
    if branch.is_empty() || branch.starts_with('-') || !git2::Reference::is_valid_name(&full) {
        return Err(StoreError::NotFound {
            detail: format!("invalid branch name `{}`", branch.escape_debug()),
        });
    }
    Ok(format!("refs/remotes/origin/{branch}"))
}

/// The raw bytes of a libgit2 id.
fn raw(id: &Oid) -> object::Oid {
    let mut out = [0u8; 20];
    out.copy_from_slice(id.as_bytes());
    out
}

/// Parses a full 40-digit commit id.
fn parse_oid(id: &CommitId) -> Result<Oid, StoreError> {
    let ok = id.0.len() == 40 && id.0.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| Oid::from_str(&id.0).ok())
        .flatten()
        .ok_or_else(|| StoreError::NotFound {
            detail: format!("`{}` is not a 40-digit commit id", id.0.escape_debug()),
        })
}

/// A libgit2 failure in the local cache.
fn local_err(what: &str, e: &git2::Error) -> StoreError {
    StoreError::Local {
        detail: format!("{what}: {}", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileChange;

    fn change_set(items: &[(&str, Option<&str>)]) -> BTreeMap<String, FileChange> {
        items
            .iter()
            .map(|(p, c)| {
                let c = match c {
                    Some(s) => FileChange::Put(s.as_bytes().to_vec()),
                    None => FileChange::Delete,
                };
                (p.to_string(), c)
            })
            .collect()
    }

    /// Every class of bad path is refused with a message naming it.
    #[test]
    fn bad_paths_are_refused() {
        for p in [
            "", "/abs", "a//b", "a/", "./a", "a/../b", "..", ".git/x", "a/.GIT", "a\\b", "a\0b",
        ] {
            let e = validate_path(p).expect_err(p);
            assert!(matches!(e, StoreError::NotFound { .. }), "{p}: {e}");
        }
        for p in [
            "a",
            "a/b.xml",
            "Name/ab/cd/x y.xml",
            ".mwsync/config.toml",
            "é/ü",
        ] {
            validate_path(p).expect(p);
        }
    }

    /// A path used as both a file and a directory in one change set is refused.
    #[test]
    fn file_and_dir_conflict_is_refused() {
        let c = change_set(&[("a", Some("x")), ("a/b", Some("y"))]);
        assert!(matches!(plan(&c), Err(StoreError::NotFound { .. })));
        let ok = change_set(&[("a/b", Some("x")), ("a/c", None)]);
        assert_eq!(plan(&ok).expect("valid plan").len(), 1);
    }

    /// Invalid branch names and commit ids are refused before any git call.
    #[test]
    fn bad_names_and_ids_are_refused() {
        for b in ["", "-x", "a..b", "a b", "a~1", "refs/../x"] {
            assert!(tracking_ref(b).is_err(), "{b}");
        }
        assert_eq!(
            tracking_ref("main").expect("valid"),
            "refs/remotes/origin/main"
        );
        for id in ["", "abc", &"g".repeat(40), &"a".repeat(41)] {
            assert!(parse_oid(&CommitId(id.to_string())).is_err(), "{id}");
        }
    }

    /// A secret in the remote never shows in the Debug form.
    #[test]
    fn remote_debug_hides_secrets() {
        let r = GitRemote {
            url: "https://u:pw@h/r".into(),
            api_key: Some("k3y".into()),
            auth: AuthMode::default(),
        };
        let s = format!("{r:?}");
        assert!(!s.contains("pw") && !s.contains("k3y"), "{s}");
    }
}
