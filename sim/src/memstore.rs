//! An in-memory `Store` and the shared "server" it talks to, for tests and the simulation.
//!
//! Objects are hashed exactly as git hashes them (sha1 over `blob <len>\0…`, sorted tree
//! entries, commit headers), so ids and trees match what `GitStore` writes for the same
//! content. The remote receives objects first, in any order, and moves a branch only in a
//! final compare-and-swap that also checks the new tip is complete (every reachable object
//! present). Faults are injected per operation, including a push whose ref update happens
//! but whose reply is lost. This module must not decide what to commit; it only stores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use mwsync::store::git::{AUTHOR_EMAIL, AUTHOR_NAME, validate_path};
use mwsync::store::{CommitId, CommitInfo, FileChange, NewCommit, Store, StoreError};

/// A raw object id.
type Oid = [u8; 20];

/// The fixed timestamp written into every commit, so ids depend only on content.
const COMMIT_TIME: &str = "1700000000 +0000";

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// True for a subtree, false for a regular file.
    dir: bool,
    /// The object it names.
    id: Oid,
}

/// A stored object.
#[derive(Debug)]
enum Obj {
    /// File content.
    Blob(Vec<u8>),
    /// Entries by name.
    Tree(BTreeMap<String, Entry>),
    /// A commit.
    Commit {
        /// Its root tree.
        tree: Oid,
        /// Parents in order.
        parents: Vec<Oid>,
        /// `Name <email>`.
        author: String,
        /// The full message.
        message: String,
    },
}

/// A content-addressed object database.
#[derive(Debug, Default)]
struct Db {
    /// Objects by id.
    objs: BTreeMap<Oid, Arc<Obj>>,
}

/// Which remote operation a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemOp {
    /// `fetch` fails with `Transport` before reading anything.
    Fetch,
    /// `push` fails with `Transport` after uploading only part of its objects; the branch
    /// does not move.
    Push,
    /// `push` moves the branch but the reply is lost: the client sees `Transport` unless
    /// its re-check (a fetch) shows the branch at the new tip.
    PushOutcomeUnknown,
}

/// The state behind a [`MemoryRemote`].
#[derive(Debug, Default)]
struct Server {
    /// Every object received, complete or not.
    db: Db,
    /// Objects whose whole closure is known present.
    complete: BTreeSet<Oid>,
    /// Branch tips.
    branches: BTreeMap<String, Oid>,
    /// Pending faults per operation.
    faults: BTreeMap<MemOp, u32>,
    /// Successful ref updates through `push`.
    pushes: u64,
}

/// The shared in-memory "server". Clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemoryRemote {
    /// The state, shared by every client and clone.
    inner: Arc<Mutex<Server>>,
}

/// A client of a [`MemoryRemote`] with its own local object cache, like `GitStore`'s bare cache.
#[derive(Debug)]
pub struct MemoryStore {
    /// The remote.
    remote: MemoryRemote,
    /// Local objects; always closed under reachability.
    db: Db,
    /// The remote's branch tips as of the last fetch or push.
    tips: BTreeMap<String, Oid>,
}

impl MemoryRemote {
    /// An empty remote with no branches.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new client with an empty local cache.
    pub fn store(&self) -> MemoryStore {
        MemoryStore {
            remote: self.clone(),
            db: Db::default(),
            tips: BTreeMap::new(),
        }
    }

    /// Locks the state; a poisoned lock is still usable because every update is atomic.
    fn lock(&self) -> MutexGuard<'_, Server> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current tip of `name`, if the branch exists.
    pub fn branch(&self, name: &str) -> Option<CommitId> {
        self.lock().branches.get(name).map(cid)
    }

    /// Every branch and its tip, sorted by name.
    pub fn branches(&self) -> Vec<(String, CommitId)> {
        let s = self.lock();
        s.branches
            .iter()
            .map(|(k, v)| (k.clone(), cid(v)))
            .collect()
    }

    /// Moves (or with `None` deletes) a branch behind every client's back. Test helper.
    ///
    /// # Panics
    /// When `id` is not a commit the remote holds completely, because a remote never points
    /// a branch at a partial history.
    pub fn set_branch(&self, name: &str, id: Option<CommitId>) {
        let mut s = self.lock();
        match id {
            None => {
                s.branches.remove(name);
            }
            Some(id) => {
                let oid = parse(&id).expect("set_branch needs a valid id because it is a test");
                assert!(
                    s.check_complete(&oid) && matches!(s.db.get(&oid), Some(Obj::Commit { .. })),
                    "set_branch needs a commit the remote holds completely: {id}"
                );
                s.branches.insert(name.to_string(), oid);
            }
        }
    }

    /// The bytes of `path` in `commit` on the remote.
    pub fn read_file(&self, commit: &CommitId, path: &str) -> Option<Vec<u8>> {
        self.lock().db.read_file(commit, path).ok().flatten()
    }

    /// Every file at or below `dir` in `commit` on the remote, sorted.
    pub fn list_files(&self, commit: &CommitId, dir: &str) -> Vec<String> {
        self.lock().db.list_files(commit, dir).unwrap_or_default()
    }

    /// A writer commits `files` (`None` deletes) on top of `branch` (created when absent)
    /// directly on the remote and moves the branch. Test helper.
    ///
    /// # Panics
    /// On an invalid path, because test input must be valid.
    pub fn commit_files(
        &self,
        branch: &str,
        files: &[(&str, Option<&[u8]>)],
        message: &str,
        author: &str,
    ) -> CommitId {
        let mut s = self.lock();
        let parent = s.branches.get(branch).copied();
        let changes = files
            .iter()
            .map(|(p, c)| {
                let c = match c {
                    Some(b) => FileChange::Put(b.to_vec()),
                    None => FileChange::Delete,
                };
                (p.to_string(), c)
            })
            .collect();
        let id =
            s.db.commit(parent.into_iter().collect(), &changes, message, author)
                .expect("commit_files needs valid paths because it is test input");
        s.check_complete(&id);
        s.branches.insert(branch.to_string(), id);
        cid(&id)
    }

    /// Makes the next `count` calls of `op` fail (see [`MemOp`]).
    pub fn fail_next(&self, op: MemOp, count: u32) {
        *self.lock().faults.entry(op).or_default() += count;
    }

    /// How many pushes moved a branch.
    pub fn push_count(&self) -> u64 {
        self.lock().pushes
    }

    /// The bare compare-and-swap a push ends with, without sending any object: moves
    /// `branch` from `expected` to `new` only if the remote already holds `new` completely.
    pub fn compare_and_swap(
        &self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        let new = parse(new)?;
        let expected = expected.map(parse).transpose()?;
        self.lock().update_ref(branch, expected, new)
    }

    /// How many objects the remote holds, complete or not.
    pub fn object_count(&self) -> usize {
        self.lock().db.objs.len()
    }
}

impl Server {
    /// Takes one pending fault of `op`, if any.
    fn take_fault(&mut self, op: MemOp) -> bool {
        match self.faults.get_mut(&op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// True when every object reachable from `id` is present; marks the closure complete.
    fn check_complete(&mut self, id: &Oid) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![*id];
        while let Some(o) = stack.pop() {
            if self.complete.contains(&o) || !seen.insert(o) {
                continue;
            }
            let Some(obj) = self.db.objs.get(&o) else {
                return false;
            };
            stack.extend(children(obj));
        }
        self.complete.extend(seen);
        true
    }

    /// The final step of a push: compare-and-swap after the completeness check.
    fn update_ref(
        &mut self,
        branch: &str,
        expected: Option<Oid>,
        new: Oid,
    ) -> Result<(), StoreError> {
        let actual = self.branches.get(branch).copied();
        if actual == Some(new) {
            return Ok(());
        }
        if actual != expected {
            return Err(moved(branch, expected.as_ref(), actual.as_ref()));
        }
        if !self.check_complete(&new) || !matches!(self.db.get(&new), Some(Obj::Commit { .. })) {
            return Err(StoreError::Transport {
                detail: format!(
                    "the remote rejected {}: missing objects below it",
                    hex(&new)
                ),
            });
        }
        self.branches.insert(branch.to_string(), new);
        self.pushes += 1;
        Ok(())
    }
}

impl MemoryStore {
    /// The remote this client talks to.
    pub fn remote(&self) -> &MemoryRemote {
        &self.remote
    }

    /// How many objects the local cache holds.
    pub fn object_count(&self) -> usize {
        self.db.objs.len()
    }

    /// The root tree id of a local commit, to compare hashing with real git.
    pub fn tree_id(&self, commit: &CommitId) -> Result<String, StoreError> {
        self.db.commit_tree(commit).map(|t| hex(&t))
    }

    /// Sends objects and does the compare-and-swap; no re-check.
    fn try_push(
        &mut self,
        branch: &str,
        expected: Option<Oid>,
        new: Oid,
    ) -> Result<(), StoreError> {
        let mut s = self.remote.lock();
        // Everything reachable from `new` that the remote does not hold completely.
        let mut send: BTreeMap<Oid, Arc<Obj>> = BTreeMap::new();
        let mut stack = vec![new];
        while let Some(o) = stack.pop() {
            if s.complete.contains(&o) || send.contains_key(&o) {
                continue;
            }
            let obj = self
                .db
                .objs
                .get(&o)
                .cloned()
                .ok_or_else(|| StoreError::Local {
                    detail: format!("object {} is missing from the local cache", hex(&o)),
                })?;
            stack.extend(children(&obj));
            send.insert(o, obj);
        }
        // Objects arrive in id order, which is no order at all as far as history goes.
        if s.take_fault(MemOp::Push) {
            let half = send.len() / 2;
            for (id, obj) in send.into_iter().take(half) {
                s.db.objs.insert(id, obj);
            }
            return Err(StoreError::Transport {
                detail: "the connection dropped while sending objects".into(),
            });
        }
        for (id, obj) in send {
            s.db.objs.insert(id, obj);
        }
        s.update_ref(branch, expected, new)?;
        if s.take_fault(MemOp::PushOutcomeUnknown) {
            return Err(StoreError::Transport {
                detail: "the connection dropped before the remote answered".into(),
            });
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn fetch(&mut self) -> Result<(), StoreError> {
        let mut s = self.remote.lock();
        if s.take_fault(MemOp::Fetch) {
            return Err(StoreError::Transport {
                detail: "the remote did not answer the fetch".into(),
            });
        }
        let mut stack: Vec<Oid> = s.branches.values().copied().collect();
        while let Some(o) = stack.pop() {
            if self.db.objs.contains_key(&o) {
                continue;
            }
            let obj =
                s.db.objs
                    .get(&o)
                    .cloned()
                    .ok_or_else(|| StoreError::Transport {
                        detail: format!("the remote lacks object {}", hex(&o)),
                    })?;
            stack.extend(children(&obj));
            self.db.objs.insert(o, obj);
        }
        self.tips = s.branches.clone();
        Ok(())
    }

    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError> {
        Ok(self.tips.get(branch).map(cid))
    }

    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.read_file(commit, path)
    }

    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        self.db.list_files(commit, dir)
    }

    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError> {
        let a = from.map(|c| self.db.commit_tree(c)).transpose()?;
        let b = self.db.commit_tree(to)?;
        let mut out = BTreeSet::new();
        self.db.diff(a, Some(b), "", &mut out);
        Ok(out.into_iter().collect())
    }

    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError> {
        let parents = commit
            .parents
            .iter()
            .map(|p| self.db.commit_oid(p))
            .collect::<Result<Vec<_>, _>>()?;
        let author = format!("{AUTHOR_NAME} <{AUTHOR_EMAIL}>");
        let id = self
            .db
            .commit(parents, &commit.changes, &commit.message, &author)?;
        Ok(cid(&id))
    }

    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        let bad_branch = branch.is_empty()
            || branch.starts_with('-')
            || branch.contains("..")
            || branch.contains(|c: char| c.is_whitespace() || "~^:?*[\\".contains(c));
        if bad_branch {
            return Err(StoreError::NotFound {
                detail: format!("invalid branch name `{}`", branch.escape_debug()),
            });
        }
        let new_oid = self.db.commit_oid(new)?;
        let exp = expected.map(parse).transpose()?;
        let failure = match self.try_push(branch, exp, new_oid) {
            Ok(()) => {
                self.tips.insert(branch.to_string(), new_oid);
                return Ok(());
            }
            Err(e @ StoreError::BranchMoved { .. }) => {
                // Learn the tip so the engine sees what the remote really holds.
                self.fetch().ok();
                return Err(e);
            }
            Err(e) => e,
        };
        // The outcome is unknown: look before reporting, exactly as `GitStore` does.
        if self.fetch().is_err() {
            return Err(failure);
        }
        let actual = self.tips.get(branch).copied();
        if actual == Some(new_oid) {
            return Ok(());
        }
        if actual != exp {
            return Err(moved(branch, exp.as_ref(), actual.as_ref()));
        }
        Err(failure)
    }

    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError> {
        let a = self.db.commit_oid(a)?;
        let b = self.db.commit_oid(b)?;
        let ours = self.db.ancestors(&[a]);
        let theirs = self.db.ancestors(&[b]);
        let common: BTreeSet<Oid> = ours.intersection(&theirs).copied().collect();
        let mut best = common.clone();
        for c in &common {
            if best.contains(c) {
                let parents = self.db.parents(c);
                for p in self.db.ancestors(&parents) {
                    best.remove(&p);
                }
            }
        }
        Ok(best.iter().next().map(cid))
    }

    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError> {
        let a = self.db.commit_oid(ancestor)?;
        let d = self.db.commit_oid(descendant)?;
        Ok(self.db.ancestors(&[d]).contains(&a))
    }

    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError> {
        let oid = self.db.commit_oid(commit)?;
        match self.db.get(&oid) {
            Some(Obj::Commit {
                parents,
                author,
                message,
                ..
            }) => Ok(CommitInfo {
                id: cid(&oid),
                parents: parents.iter().map(cid).collect(),
                author: author.clone(),
                message: message.clone(),
            }),
            _ => Err(not_found(commit)),
        }
    }

    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError> {
        let tip = self.db.commit_oid(tip)?;
        let hidden = match base {
            Some(b) => self.db.ancestors(&[self.db.commit_oid(b)?]),
            None => BTreeSet::new(),
        };
        // Iterative post-order: every parent is emitted before its children.
        let mut out = Vec::new();
        let mut done = BTreeSet::new();
        let mut stack = vec![(tip, false)];
        while let Some((c, expanded)) = stack.pop() {
            if hidden.contains(&c) || (done.contains(&c) && !expanded) {
                continue;
            }
            if expanded {
                if done.insert(c) {
                    out.push(cid(&c));
                }
                continue;
            }
            stack.push((c, true));
            for p in self.db.parents(&c).iter().rev() {
                if !done.contains(p) {
                    stack.push((*p, false));
                }
            }
        }
        Ok(out)
    }
}

impl Db {
    /// The object `id`, if present.
    fn get(&self, id: &Oid) -> Option<&Obj> {
        self.objs.get(id).map(|a| a.as_ref())
    }

    /// Stores an object under its git id.
    fn put(&mut self, obj: Obj) -> Oid {
        let id = hash(&obj);
        self.objs.entry(id).or_insert_with(|| Arc::new(obj));
        id
    }

    /// Parents of a commit (empty for anything else).
    fn parents(&self, id: &Oid) -> Vec<Oid> {
        match self.get(id) {
            Some(Obj::Commit { parents, .. }) => parents.clone(),
            _ => Vec::new(),
        }
    }

    /// The commits reachable from `starts`, including them.
    fn ancestors(&self, starts: &[Oid]) -> BTreeSet<Oid> {
        let mut seen = BTreeSet::new();
        let mut stack = starts.to_vec();
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(self.parents(&c));
            }
        }
        seen
    }

    /// Resolves a commit id that must be present.
    fn commit_oid(&self, id: &CommitId) -> Result<Oid, StoreError> {
        let oid = parse(id)?;
        match self.get(&oid) {
            Some(Obj::Commit { .. }) => Ok(oid),
            _ => Err(not_found(id)),
        }
    }

    /// The root tree of a commit.
    fn commit_tree(&self, id: &CommitId) -> Result<Oid, StoreError> {
        match self.get(&self.commit_oid(id)?) {
            Some(Obj::Commit { tree, .. }) => Ok(*tree),
            _ => Err(not_found(id)),
        }
    }

    /// The entries of a tree (empty for anything else).
    fn tree(&self, id: &Oid) -> Option<&BTreeMap<String, Entry>> {
        match self.get(id) {
            Some(Obj::Tree(t)) => Some(t),
            _ => None,
        }
    }

    /// The entry at `path` below the root tree `root`.
    fn lookup(&self, root: Oid, path: &str) -> Option<Entry> {
        let mut cur = Entry {
            dir: true,
            id: root,
        };
        for part in path.split('/') {
            if !cur.dir {
                return None;
            }
            cur = self.tree(&cur.id)?.get(part)?.clone();
        }
        Some(cur)
    }

    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_path(path)?;
        let root = self.commit_tree(commit)?;
        Ok(match self.lookup(root, path) {
            Some(Entry { dir: false, id }) => match self.get(&id) {
                Some(Obj::Blob(b)) => Some(b.clone()),
                _ => None,
            },
            _ => None,
        })
    }

    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let root = self.commit_tree(commit)?;
        let (start, prefix) = if dir.is_empty() {
            (root, String::new())
        } else {
            validate_path(dir)?;
            match self.lookup(root, dir) {
                Some(Entry { dir: true, id }) => (id, format!("{dir}/")),
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, prefix)];
        while let Some((t, p)) = stack.pop() {
            for (name, e) in self.tree(&t).into_iter().flatten() {
                if e.dir {
                    stack.push((e.id, format!("{p}{name}/")));
                } else {
                    out.push(format!("{p}{name}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Adds to `out` every file path that differs between trees `a` and `b` below `prefix`.
    fn diff(&self, a: Option<Oid>, b: Option<Oid>, prefix: &str, out: &mut BTreeSet<String>) {
        if a == b {
            return;
        }
        let empty = BTreeMap::new();
        let ta = a.and_then(|t| self.tree(&t)).unwrap_or(&empty);
        let tb = b.and_then(|t| self.tree(&t)).unwrap_or(&empty);
        let names: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
        for name in names {
            let (ea, eb) = (ta.get(name), tb.get(name));
            if ea == eb {
                continue;
            }
            let path = format!("{prefix}{name}");
            let sub = format!("{path}/");
            let file = |e: Option<&Entry>| e.filter(|e| !e.dir).is_some();
            let dir = |e: Option<&Entry>| e.filter(|e| e.dir).map(|e| e.id);
            if file(ea) || file(eb) {
                out.insert(path);
            }
            if dir(ea).is_some() || dir(eb).is_some() {
                self.diff(dir(ea), dir(eb), &sub, out);
            }
        }
    }

    /// Writes a commit with `changes` applied to the first parent's tree.
    fn commit(
        &mut self,
        parents: Vec<Oid>,
        changes: &BTreeMap<String, FileChange>,
        message: &str,
        author: &str,
    ) -> Result<Oid, StoreError> {
        for p in changes.keys() {
            validate_path(p)?;
        }
        let base = match parents.first() {
            Some(p) => match self.get(p) {
                Some(Obj::Commit { tree, .. }) => Some(*tree),
                _ => return Err(not_found(&cid(p))),
            },
            None => None,
        };
        let items: Vec<(Vec<&str>, &FileChange)> = changes
            .iter()
            .map(|(p, c)| (p.split('/').collect(), c))
            .collect();
        let tree = match self.apply(base, &items, "")? {
            Some(t) => t,
            None => self.put(Obj::Tree(BTreeMap::new())),
        };
        Ok(self.put(Obj::Commit {
            tree,
            parents,
            author: author.to_string(),
            message: message.to_string(),
        }))
    }

    /// Applies changes (paths split into components, relative to this directory) to tree
    /// `base`; `None` when the directory ends up empty.
    fn apply(
        &mut self,
        base: Option<Oid>,
        items: &[(Vec<&str>, &FileChange)],
        prefix: &str,
    ) -> Result<Option<Oid>, StoreError> {
        let mut entries = base
            .and_then(|b| self.tree(&b).cloned())
            .unwrap_or_default();
        let mut i = 0;
        while i < items.len() {
            let name = items[i].0[0];
            let mut j = i;
            while j < items.len() && items[j].0[0] == name {
                j += 1;
            }
            let group = &items[i..j];
            let path = format!("{prefix}{name}");
            let existing = entries.get(name).cloned();
            let files: Vec<&FileChange> = group
                .iter()
                .filter(|(p, _)| p.len() == 1)
                .map(|(_, c)| *c)
                .collect();
            if !files.is_empty() {
                if group.len() > 1 {
                    return Err(StoreError::NotFound {
                        detail: format!("path `{path}` is used both as a file and as a directory"),
                    });
                }
                match (files[0], &existing) {
                    (_, Some(Entry { dir: true, .. })) => {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot change `{path}`: it is a directory"),
                        });
                    }
                    (FileChange::Put(bytes), _) => {
                        let id = self.put(Obj::Blob(bytes.clone()));
                        entries.insert(name.to_string(), Entry { dir: false, id });
                    }
                    (FileChange::Delete, _) => {
                        entries.remove(name);
                    }
                }
            } else {
                let sub_base = match existing {
                    Some(Entry { dir: true, id }) => Some(id),
                    Some(_) => {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot write below `{path}`: it is a file"),
                        });
                    }
                    None => None,
                };
                let rest: Vec<(Vec<&str>, &FileChange)> =
                    group.iter().map(|(p, c)| (p[1..].to_vec(), *c)).collect();
                match self.apply(sub_base, &rest, &format!("{path}/"))? {
                    Some(id) => {
                        entries.insert(name.to_string(), Entry { dir: true, id });
                    }
                    None => {
                        entries.remove(name);
                    }
                }
            }
            i = j;
        }
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.put(Obj::Tree(entries))))
    }
}

/// The ids an object points at.
fn children(obj: &Obj) -> Vec<Oid> {
    match obj {
        Obj::Blob(_) => Vec::new(),
        Obj::Tree(t) => t.values().map(|e| e.id).collect(),
        Obj::Commit { tree, parents, .. } => {
            let mut v = vec![*tree];
            v.extend(parents);
            v
        }
    }
}

/// The git object id of `obj`: sha1 over `<kind> <len>\0<body>`.
fn hash(obj: &Obj) -> Oid {
    let (kind, body) = match obj {
        Obj::Blob(b) => ("blob", b.clone()),
        Obj::Tree(entries) => {
            // git orders entries by name, comparing a directory as if it ended in `/`.
            let mut sorted: Vec<(Vec<u8>, &String, &Entry)> = entries
                .iter()
                .map(|(n, e)| {
                    let mut k = n.as_bytes().to_vec();
                    if e.dir {
                        k.push(b'/');
                    }
                    (k, n, e)
                })
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut body = Vec::new();
            for (_, name, e) in sorted {
                body.extend_from_slice(if e.dir { b"40000 " } else { b"100644 " });
                body.extend_from_slice(name.as_bytes());
                body.push(0);
                body.extend_from_slice(&e.id);
            }
            ("tree", body)
        }
        Obj::Commit {
            tree,
            parents,
            author,
            message,
        } => {
            let mut s = format!("tree {}\n", hex(tree));
            for p in parents {
                s.push_str(&format!("parent {}\n", hex(p)));
            }
            s.push_str(&format!("author {author} {COMMIT_TIME}\n"));
            s.push_str(&format!("committer {author} {COMMIT_TIME}\n\n{message}"));
            ("commit", s.into_bytes())
        }
    };
    let mut h = sha1_smol::Sha1::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(&body);
    h.digest().bytes()
}

/// Lowercase hex of an id.
fn hex(id: &Oid) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// An id as a `CommitId`.
fn cid(id: &Oid) -> CommitId {
    CommitId(hex(id))
}

/// Parses a 40-digit hex id.
fn parse(id: &CommitId) -> Result<Oid, StoreError> {
    let s = id.0.as_bytes();
    let bad = || StoreError::NotFound {
        detail: format!("`{}` is not a 40-digit commit id", id.0.escape_debug()),
    };
    if s.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks(2).enumerate() {
        let txt = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(txt, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The error for a commit the cache does not hold.
fn not_found(id: &CommitId) -> StoreError {
    StoreError::NotFound {
        detail: format!("commit {id} is not in the local cache"),
    }
}

/// The error for a lost compare-and-swap.
fn moved(branch: &str, expected: Option<&Oid>, actual: Option<&Oid>) -> StoreError {
    StoreError::BranchMoved {
        branch: branch.to_string(),
        expected: expected.map_or_else(|| "none".to_string(), hex),
        actual: actual.map_or_else(|| "none".to_string(), hex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blob and empty-tree ids are exactly git's.
    #[test]
    fn ids_match_git() {
        assert_eq!(
            hex(&hash(&Obj::Blob(b"hello\n".to_vec()))),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            hex(&hash(&Obj::Tree(BTreeMap::new()))),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    /// Malformed ids are refused.
    #[test]
    fn bad_ids_are_refused() {
        for s in ["", "zz", &"g".repeat(40), &"a".repeat(39)] {
            assert!(parse(&CommitId(s.to_string())).is_err(), "{s}");
        }
    }
}
