//! The daemon's own memory in its cache directory: which `main` commit it last pushed, the
//! pushes it has started (what lets mwsync tell its own commits from anyone else's, by exact
//! id), the answer of a full sync check not yet on `main`, the markers a clock regression
//! lowered below what `main` says, and the lock that keeps a second process off the same
//! cache. It owns those files, each written atomically and fsync'd; it
//! must not hold anything that belongs on `main`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use std::collections::BTreeMap;

use crate::mwtime::MwTime;
use crate::state::FullSyncState;
use crate::store::CommitId;

/// The file holding the last `main` commit pushed or adopted.
pub const PUSH_RECORD_FILE: &str = "mwsync-last-pushed";
/// The file holding the pushes started and not yet known to have ended, one
/// `pushing <new> over <old>` line each.
pub const PUSH_INTENT_FILE: &str = "mwsync-push-intents";
/// The file holding the answer of a full sync check that `main` does not carry yet.
pub const CHECK_ANSWER_FILE: &str = "mwsync-full-sync-answer.toml";
/// The file holding, per table, a marker below the one on `main` that the next read must
/// start from (a clock regression moved it back, and no commit carries it yet).
pub const RESCAN_FLOOR_FILE: &str = "mwsync-rescan-floor.toml";
/// The lock file inside the cache directory.
pub const LOCK_FILE: &str = "mwsync.lock";

/// A push mwsync started: `new` over `old` (`None`: the branch did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIntent {
    /// The commit being pushed.
    pub new: CommitId,
    /// The tip it was pushed over.
    pub old: Option<CommitId>,
}

#[derive(Debug, Default)]
struct Memory {
    last_pushed: Option<CommitId>,
    intents: Vec<PushIntent>,
    check_answer: Option<FullSyncState>,
    rescan_floor: BTreeMap<String, MwTime>,
}

/// The cache directory's own files. Clones share one memory, as processes share one
/// directory: an in-memory cache (tests) survives a simulated restart the way the files do.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
    memory: Arc<Mutex<Memory>>,
    /// An exclusive lock on the cache directory, held while any clone of this state lives:
    /// two processes sharing one cache would race on `main`.
    _lock: Option<Arc<std::fs::File>>,
}

/// A cache file that cannot be used, named.
fn unusable(path: &Path, what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "{} {what}; it is mwsync's own file: if the cache was damaged, remove the whole cache directory and run `mwsync rebaseline`",
        path.display()
    ))
}

fn parse_id(path: &Path, text: &str) -> std::io::Result<CommitId> {
    let id = text.trim();
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unusable(path, &format!("holds `{id}`, not a commit id")));
    }
    Ok(CommitId(id.to_ascii_lowercase()))
}

fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `text` atomically and durably: write a temporary file, fsync it,
/// rename it over `path`, fsync the directory.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        // Some file systems cannot fsync a directory; the rename is still atomic there.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The intent file's text: one `pushing <new> over <old>` line per intent.
fn intents_text(intents: &[PushIntent]) -> String {
    intents
        .iter()
        .map(|i| {
            format!(
                "pushing {} over {}\n",
                i.new,
                i.old.as_ref().map_or("none", |o| o.0.as_str())
            )
        })
        .collect()
}

fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Cache {
    /// Locks `dir` (created when missing) and loads from it. Missing files mean "nothing
    /// pushed yet". Fails when another process holds the lock or a file is damaged.
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
        let record = dir.join(PUSH_RECORD_FILE);
        let last_pushed = read_optional(&record)?
            .map(|t| parse_id(&record, &t))
            .transpose()?;
        let intents_path = dir.join(PUSH_INTENT_FILE);
        let mut intents = Vec::new();
        for line in read_optional(&intents_path)?.unwrap_or_default().lines() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = line
                .strip_prefix("pushing ")
                .and_then(|rest| rest.split_once(" over "));
            let Some((new, old)) = parsed else {
                return Err(unusable(
                    &intents_path,
                    &format!("has the line `{line}`, not `pushing <new> over <old>`"),
                ));
            };
            intents.push(PushIntent {
                new: parse_id(&intents_path, new)?,
                old: match old.trim() {
                    "none" => None,
                    old => Some(parse_id(&intents_path, old)?),
                },
            });
        }
        let answer_path = dir.join(CHECK_ANSWER_FILE);
        let check_answer = read_optional(&answer_path)?
            .map(|t| {
                toml::from_str::<FullSyncState>(&t)
                    .map_err(|e| unusable(&answer_path, &format!("is unreadable ({e})")))
            })
            .transpose()?;
        let floor_path = dir.join(RESCAN_FLOOR_FILE);
        let rescan_floor = read_optional(&floor_path)?
            .map(|t| {
                toml::from_str::<BTreeMap<String, MwTime>>(&t)
                    .map_err(|e| unusable(&floor_path, &format!("is unreadable ({e})")))
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Cache {
            dir: Some(dir.to_path_buf()),
            memory: Arc::new(Mutex::new(Memory {
                last_pushed,
                intents,
                check_answer,
                rescan_floor,
            })),
            _lock: Some(Arc::new(lock)),
        })
    }

    /// A cache that lives only in memory (tests); its clones share it.
    pub fn in_memory() -> Cache {
        Cache {
            dir: None,
            memory: Arc::new(Mutex::new(Memory::default())),
            _lock: None,
        }
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .expect("the cache lock is never poisoned because nothing panics while holding it")
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The last commit pushed or adopted.
    pub fn last_pushed(&self) -> Option<CommitId> {
        self.memory().last_pushed.clone()
    }

    /// The pushes started and not known to have ended.
    pub fn intents(&self) -> Vec<PushIntent> {
        self.memory().intents.clone()
    }

    /// True when `tip` is exactly the commit of a push this cache started.
    pub fn intended(&self, tip: &CommitId) -> bool {
        self.memory().intents.iter().any(|i| &i.new == tip)
    }

    /// Records, durably and before the push starts, that `new` is about to be pushed over
    /// `old`. Earlier intents stay: a push from before a crash may still land.
    pub fn record_intent(&self, new: &CommitId, old: Option<&CommitId>) -> std::io::Result<()> {
        let mut memory = self.memory();
        let intent = PushIntent {
            new: new.clone(),
            old: old.cloned(),
        };
        if !memory.intents.contains(&intent) {
            memory.intents.push(intent);
        }
        if let Some(path) = self.file(PUSH_INTENT_FILE) {
            write_durably(&path, &intents_text(&memory.intents))?;
        }
        Ok(())
    }

    /// Forgets the intent to push `new`: the remote answered that it did not take it (a
    /// refusal), so it cannot land later.
    pub fn forget_intent(&self, new: &CommitId) -> std::io::Result<()> {
        let mut memory = self.memory();
        let before = memory.intents.len();
        memory.intents.retain(|i| &i.new != new);
        if memory.intents.len() == before {
            return Ok(());
        }
        if let Some(path) = self.file(PUSH_INTENT_FILE) {
            let text = intents_text(&memory.intents);
            if text.is_empty() {
                remove_durably(&path)?;
            } else {
                write_durably(&path, &text)?;
            }
        }
        Ok(())
    }

    /// Records that the remote's tip is `id`, pushed or adopted by mwsync, durably. Every
    /// intent ends here: a push lands only over the tip it was started over, and none was
    /// started over `id` yet.
    pub fn set_last_pushed(&self, id: CommitId) -> std::io::Result<()> {
        let mut memory = self.memory();
        if let Some(path) = self.file(PUSH_RECORD_FILE) {
            write_durably(&path, &format!("{id}\n"))?;
        }
        if let Some(path) = self.file(PUSH_INTENT_FILE) {
            remove_durably(&path)?;
        }
        memory.last_pushed = Some(id);
        memory.intents.clear();
        Ok(())
    }

    /// The answer of the last full sync check, when `main` may not carry it yet.
    pub fn check_answer(&self) -> Option<FullSyncState> {
        self.memory().check_answer.clone()
    }

    /// Keeps the answer of a full sync check (durably), or forgets it once `main` carries
    /// it (`None`).
    pub fn set_check_answer(&self, answer: Option<&FullSyncState>) -> std::io::Result<()> {
        let mut memory = self.memory();
        if memory.check_answer.as_ref() == answer {
            return Ok(());
        }
        if let Some(path) = self.file(CHECK_ANSWER_FILE) {
            match answer {
                Some(a) => write_durably(
                    &path,
                    &toml::to_string(a).expect("the full sync state always serialises"),
                )?,
                None => remove_durably(&path)?,
            }
        }
        memory.check_answer = answer.cloned();
        Ok(())
    }

    /// Per table, the marker below `main`'s that the next read must start from.
    pub fn rescan_floor(&self) -> BTreeMap<String, MwTime> {
        self.memory().rescan_floor.clone()
    }

    /// Keeps the markers a clock regression lowered below `main`'s (durably, before any read
    /// from them), or forgets them once `main` carries them or a poll passed them (empty).
    pub fn set_rescan_floor(&self, floor: &BTreeMap<String, MwTime>) -> std::io::Result<()> {
        let mut memory = self.memory();
        if &memory.rescan_floor == floor {
            return Ok(());
        }
        if let Some(path) = self.file(RESCAN_FLOOR_FILE) {
            if floor.is_empty() {
                remove_durably(&path)?;
            } else {
                write_durably(
                    &path,
                    &toml::to_string(floor).expect("a map of table names to times serialises"),
                )?;
            }
        }
        memory.rescan_floor = floor.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FullSyncMode;

    /// A second process (here: a second load) cannot use a locked cache directory, and the
    /// last push, the intents and a check answer survive a reload.
    #[test]
    fn cache_directory_is_locked_and_remembers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Cache::load(dir.path()).expect("first load");
        let err = Cache::load(dir.path()).expect_err("locked");
        assert!(err.to_string().contains("another mwsync process"), "{err}");
        let (a, b, c) = (
            CommitId("a".repeat(40)),
            CommitId("b".repeat(40)),
            CommitId("c".repeat(40)),
        );
        first.set_last_pushed(a.clone()).expect("write");
        first.record_intent(&b, Some(&a)).expect("intent");
        first.record_intent(&c, Some(&a)).expect("intent");
        let answer = FullSyncState {
            request: "audit".into(),
            mode: Some(FullSyncMode::Check),
            finished: None,
            differences: 2,
        };
        first.set_check_answer(Some(&answer)).expect("answer");
        drop(first);
        let text = std::fs::read_to_string(dir.path().join(PUSH_INTENT_FILE)).expect("file");
        assert_eq!(
            text,
            format!("pushing {b} over {a}\npushing {c} over {a}\n")
        );
        let again = Cache::load(dir.path()).expect("reload");
        assert_eq!(again.last_pushed(), Some(a));
        assert!(again.intended(&b) && again.intended(&c));
        assert_eq!(again.check_answer(), Some(answer));
        again.forget_intent(&b).expect("forget");
        assert!(!again.intended(&b) && again.intended(&c));
        again.set_last_pushed(c.clone()).expect("write");
        assert!(again.intents().is_empty());
        assert!(!dir.path().join(PUSH_INTENT_FILE).exists());
    }

    /// A damaged intent file is refused, naming the file and the line.
    #[test]
    fn damaged_files_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(PUSH_INTENT_FILE), "pushed it\n").expect("write");
        let err = Cache::load(dir.path()).expect_err("damaged");
        assert!(
            err.to_string()
                .contains("has the line `pushed it`, not `pushing <new> over <old>`"),
            "{err}"
        );
    }

    /// A rescan floor survives a reload, and forgetting it removes its file.
    #[test]
    fn rescan_floor_survives_a_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = MwTime::parse("20260101115500").expect("valid");
        let floor: BTreeMap<String, MwTime> = [("Name".to_string(), t)].into();
        let first = Cache::load(dir.path()).expect("load");
        first.set_rescan_floor(&floor).expect("write");
        drop(first);
        let second = Cache::load(dir.path()).expect("reload");
        assert_eq!(second.rescan_floor(), floor);
        second.set_rescan_floor(&BTreeMap::new()).expect("forget");
        assert!(!dir.path().join(RESCAN_FLOOR_FILE).exists());
        drop(second);
        std::fs::write(dir.path().join(RESCAN_FLOOR_FILE), "Name = 12").expect("write");
        let err = Cache::load(dir.path()).expect_err("damaged");
        assert!(err.to_string().contains(RESCAN_FLOOR_FILE), "{err}");
    }
}
