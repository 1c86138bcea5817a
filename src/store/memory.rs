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

use super::git::{AUTHOR_EMAIL, AUTHOR_NAME};
use super::{CommitId, CommitInfo, DirEntry, FileChange, NewCommit, Store, StoreError};

mod objects;

use objects::{Db, Obj, Oid, children, cid, hex, not_found, parse};

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
    /// The outcome of the push `start_push` made, until `finish_push` takes it: this store
    /// pushes at once.
    started: Option<Result<(), StoreError>>,
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
            started: None,
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

    fn remote_branches(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.tips.keys().cloned().collect())
    }

    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.read_file(commit, path)
    }

    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        self.db.list_files(commit, dir)
    }
    fn list_dir(&self, commit: &CommitId, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        self.db.list_dir(commit, dir)
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

    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.started = Some(self.push(branch, expected, new));
        Ok(())
    }

    fn push_running(&self) -> bool {
        false
    }

    fn finish_push(&mut self) -> Result<(), StoreError> {
        self.started.take().unwrap_or_else(|| {
            Err(StoreError::Local {
                detail: "no push was begun".into(),
            })
        })
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

/// The error for a lost compare-and-swap.
fn moved(branch: &str, expected: Option<&Oid>, actual: Option<&Oid>) -> StoreError {
    StoreError::BranchMoved {
        branch: branch.to_string(),
        expected: expected.map_or_else(|| "none".to_string(), hex),
        actual: actual.map_or_else(|| "none".to_string(), hex),
    }
}
