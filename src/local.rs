//! The daemon's own memory in its cache directory: which `main` commit it last pushed. It is
//! what lets mwsync tell its own commits from someone else's. It owns that one file and must
//! not hold anything that belongs on `main`.

use std::path::{Path, PathBuf};

use crate::store::CommitId;

/// The file name inside the cache directory.
pub const LOCAL_FILE: &str = "mwsync-last-pushed";

/// The last `main` commit this daemon pushed or adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalState {
    path: Option<PathBuf>,
    last_pushed: Option<CommitId>,
}

impl LocalState {
    /// Loads from `dir` (created when missing). A missing file means "nothing pushed yet".
    pub fn load(dir: &Path) -> std::io::Result<LocalState> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOCAL_FILE);
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
        Ok(LocalState {
            path: Some(path),
            last_pushed,
        })
    }

    /// A state that lives only in memory (tests).
    pub fn in_memory() -> LocalState {
        LocalState {
            path: None,
            last_pushed: None,
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
