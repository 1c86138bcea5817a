//! The seam between the engine and git: the `Store` trait (what the engine needs from a
//! repository and its remote) and its error classification. It must not decide what to
//! commit; the git2 implementation lives in `git`.

pub mod gateway;
pub mod git;
pub mod memory;
pub mod object;

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Classify, ErrorClass};

/// A commit id: 40 lowercase hex digits.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CommitId(pub String);

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CommitId {
    /// The first 10 hex digits, for messages.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(10)]
    }
}

/// What happens to one path in a new commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Create or replace the file with these bytes.
    Put(Vec<u8>),
    /// Remove the file (and any directory it leaves empty).
    Delete,
}

/// Author or committer identity and the commit message of an existing commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit.
    pub id: CommitId,
    /// Parents in order.
    pub parents: Vec<CommitId>,
    /// `Name <email>` of the author.
    pub author: String,
    /// The full message.
    pub message: String,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (no `/`).
    pub name: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// A commit to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommit {
    /// Parents in order. The tree starts from the first parent's tree (empty when none).
    pub parents: Vec<CommitId>,
    /// Paths to change relative to that tree; `/`-separated, relative, no `..`.
    pub changes: BTreeMap<String, FileChange>,
    /// The full message.
    pub message: String,
}

/// A git error, classified for retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-swap push lost: the remote branch is not where we expected it.
    #[error(
        "the remote branch `{branch}` is at {actual} but mwsync expected {expected}; someone else moved it"
    )]
    BranchMoved {
        /// The branch.
        branch: String,
        /// What we expected (`none` for absent).
        expected: String,
        /// What it is (`none` for absent).
        actual: String,
    },
    /// The remote refused our credentials.
    #[error("the git remote refused the credentials: {detail}")]
    Auth {
        /// What git said, secrets removed.
        detail: String,
    },
    /// The remote declined the push for good: a hook, a size limit or branch protection.
    /// Retrying the same push cannot help; a human must change the remote (or the data).
    #[error(
        "the git remote refused to update `{branch}` and will keep refusing: {reason}. \
         A human must fix this on the git host (a hook, a size limit or branch protection); \
         nothing is lost, and a running daemon tries again at each poll interval"
    )]
    Refused {
        /// The branch.
        branch: String,
        /// Git's own reason, with what the remote printed.
        reason: String,
    },
    /// A network or remote-side failure that may pass.
    #[error("git transport failed: {detail}")]
    Transport {
        /// What git said, secrets removed.
        detail: String,
    },
    /// A commit, tree or path that does not exist, or a malformed path.
    #[error("git object problem: {detail}")]
    NotFound {
        /// What was missing.
        detail: String,
    },
    /// The upload gateway still misses objects of a commit after every round of sending what
    /// it listed. The upload and the local objects are kept, so a later push resumes it.
    #[error(
        "the upload gateway at {gateway} still misses {count} object(s) of commit {commit} after {rounds} rounds of sending what it listed, among them {}; upload {upload} and the local objects are kept for the next attempt",
        missing.join(", ")
    )]
    Incomplete {
        /// The gateway's API base.
        gateway: String,
        /// The upload's id.
        upload: String,
        /// The commit that could not land.
        commit: String,
        /// How many times the gateway was asked.
        rounds: usize,
        /// How many objects are missing in all.
        count: usize,
        /// The first of them.
        missing: Vec<String>,
    },
    /// The local cache repository is unusable.
    #[error("the local git cache is unusable: {detail}")]
    Local {
        /// What went wrong.
        detail: String,
    },
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::BranchMoved { .. } => ErrorClass::Conflict,
            StoreError::Auth { .. } | StoreError::NotFound { .. } => ErrorClass::Invalid,
            StoreError::Transport { .. } => ErrorClass::Retryable,
            StoreError::Incomplete { .. } => ErrorClass::Retryable,
            StoreError::Refused { .. } | StoreError::Local { .. } => ErrorClass::NeedsHuman,
        }
    }
}

/// What the engine needs from git. Reads address commits by id; only `push` changes the
/// remote, and only by compare-and-swap. Calls may block; the engine makes them on a
/// blocking thread, which is why a store must be `Send + 'static`.
pub trait Store: Send + 'static {
    /// Refreshes the known tips of the remote's branches.
    fn fetch(&mut self) -> Result<(), StoreError>;
    /// The tip of `branch` on the remote as of the last `fetch` or successful `push`.
    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError>;
    /// Every branch on the remote as of the last `fetch`, sorted.
    fn remote_branches(&self) -> Result<Vec<String>, StoreError>;
    /// The bytes of `path` in `commit`, or `None` when the path is absent.
    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every file path at or below directory `dir` in `commit` (`""` for the whole tree), sorted.
    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError>;
    /// The entries directly inside directory `dir` of `commit` (`""` for the root), sorted by
    /// name: each name and whether it is a directory. Empty when `dir` is absent. Scans walk
    /// a table one shard directory at a time with it, so memory never holds a whole table.
    fn list_dir(&self, commit: &CommitId, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        for path in self.list_files(commit, dir)? {
            let Some(rest) = path.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((sub, _)) => out.insert(sub.to_string(), true),
                None => out.insert(rest.to_string(), false),
            };
        }
        Ok(out
            .into_iter()
            .map(|(name, is_dir)| DirEntry { name, is_dir })
            .collect())
    }
    /// The paths whose content differs between `from` (the empty tree when `None`) and `to`, sorted.
    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError>;
    /// Writes the objects of a new commit locally and returns its id. The remote is untouched.
    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError>;
    /// Sets remote `branch` to `new` only if it is at `expected` (`None`: absent). Never forces.
    /// Fails with `BranchMoved` if the remote is elsewhere.
    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError>;
    /// Begins the same `push`, so that reads and commits can go on while it runs (a first
    /// sync reads its next pages meanwhile); [`Store::finish_push`] ends it. At most one
    /// push runs at a time, and nothing fetches or pushes until it has ended. A store
    /// without a background push performs it here and keeps the outcome.
    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError>;
    /// True while the push [`Store::start_push`] began has not ended, so that
    /// [`Store::finish_push`] would wait.
    fn push_running(&self) -> bool;
    /// Waits for the push [`Store::start_push`] began and gives its outcome, exactly as
    /// `push` would have. Fails with `Local` when no push was begun.
    fn finish_push(&mut self) -> Result<(), StoreError>;
    /// The best common ancestor of two commits.
    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError>;
    /// True when `ancestor` is `descendant` or one of its ancestors.
    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError>;
    /// The parents, author and message of a commit.
    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError>;
    /// The commits reachable from `tip` but not from `base`, oldest first.
    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError>;
}

/// A boxed store is a store, so callers may choose one at run time (`Box<dyn Store>`).
impl<S: Store + ?Sized> Store for Box<S> {
    fn fetch(&mut self) -> Result<(), StoreError> {
        (**self).fetch()
    }
    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError> {
        (**self).remote_tip(branch)
    }
    fn remote_branches(&self) -> Result<Vec<String>, StoreError> {
        (**self).remote_branches()
    }
    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).read_file(commit, path)
    }
    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        (**self).list_files(commit, dir)
    }
    fn list_dir(&self, commit: &CommitId, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        (**self).list_dir(commit, dir)
    }
    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError> {
        (**self).changed_paths(from, to)
    }
    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError> {
        (**self).commit(commit)
    }
    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        (**self).push(branch, expected, new)
    }
    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        (**self).start_push(branch, expected, new)
    }
    fn push_running(&self) -> bool {
        (**self).push_running()
    }
    fn finish_push(&mut self) -> Result<(), StoreError> {
        (**self).finish_push()
    }
    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError> {
        (**self).merge_base(a, b)
    }
    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError> {
        (**self).is_ancestor(ancestor, descendant)
    }
    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError> {
        (**self).commit_info(commit)
    }
    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError> {
        (**self).commits_between(base, tip)
    }
}
