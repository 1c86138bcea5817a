//! The daemon's own memory in its cache directory: which `main` commit it last pushed (what
//! lets mwsync tell its own commits from someone else's) and the lock that keeps a second
//! process off the same cache. It owns those two files and must not hold anything that
//! belongs on `main`.

use std::path::{Path, PathBuf};

use crate::store::CommitId;

/// The file name inside the cache directory.
pub const PUSH_RECORD_FILE: &str = "mwsync-last-pushed";

/// The cache directory's own files: the record of the last `main` commit this daemon pushed
/// or adopted, and the lock held while it runs.
#[derive(Debug, Clone)]
pub struct Cache {
    path: Option<PathBuf>,
    last_pushed: Option<CommitId>,
    /// An exclusive lock on the cache directory, held while any clone of this state lives:
    /// two processes sharing one cache would race on `main`.
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

/// The lock file inside the cache directory.
pub const LOCK_FILE: &str = "mwsync.lock";

impl Cache {
    /// Locks `dir` (created when missing) and loads from it. A missing file means "nothing
    /// pushed yet". Fails when another process holds the lock.
    pub fn load(dir: &Path) -> std::io::Result<Cache> {
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(format!(
                    "another mwsync process is using the cache directory {}; stop it first (for `sync --full` and `rebaseline` too)",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let path = dir.join(PUSH_RECORD_FILE);
        let last_pushed = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id = text.trim();
                if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(std::io::Error::other(format!(
                        "{} does not hold a commit id",
                        path.display()
                    )));
                }
                Some(CommitId(id.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Cache {
            path: Some(path),
            last_pushed,
            _lock: Some(std::sync::Arc::new(lock)),
        })
    }

    /// A state that lives only in memory (tests).
    pub fn in_memory() -> Cache {
        Cache {
            path: None,
            last_pushed: None,
            _lock: None,
        }
    }

    /// The last commit pushed or adopted.
    pub fn last_pushed(&self) -> Option<&CommitId> {
        self.last_pushed.as_ref()
    }

    /// Records a push, atomically (write then rename).
    pub fn set_last_pushed(&mut self, id: CommitId) -> std::io::Result<()> {
        if let Some(path) = &self.path {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{id}\n"))?;
            std::fs::rename(&tmp, path)?;
        }
        self.last_pushed = Some(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second process (here: a second load) cannot use a locked cache directory, and the
    /// last push survives a reload.
    #[test]
    fn cache_directory_is_locked_and_remembers_the_push() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut first = Cache::load(dir.path()).expect("first load");
        let err = Cache::load(dir.path()).expect_err("locked");
        assert!(err.to_string().contains("another mwsync process"), "{err}");
        let id = CommitId("a".repeat(40));
        first.set_last_pushed(id.clone()).expect("write");
        drop(first);
        assert_eq!(
            Cache::load(dir.path()).expect("reload").last_pushed(),
            Some(&id)
        );
    }
}
