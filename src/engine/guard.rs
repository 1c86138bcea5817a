//! The guard on `main`: only mwsync moves it, always by compare-and-swap from the tip it last
//! pushed, which the cache records. Before every push the cache records, durably, the intent
//! `pushing <new> over <old>`; a tip of `main` is mwsync's own only when it is exactly the
//! last push or the `<new>` of such an intent (at start-up, and when a compare-and-swap
//! fails: a push from before a crash may land late). Nothing else, trailers included, makes
//! a commit mwsync's own. It owns fetching and checking the tip, the start-up checks of the
//! branches, loading config, state and quarantine when `main` moved, committing on top of it
//! (with the status file when the quarantine changed), and `rebaseline`; it must not decide
//! what a commit holds.

use std::collections::BTreeMap;

use super::{Engine, EngineError};
use crate::config::{REPO_CONFIG_PATH, RepoConfigFile};
use crate::events::{COMMIT_LINES, Event};
use crate::moneyworks::MoneyWorks;
use crate::quarantine::Quarantine;
use crate::retry::retry;
use crate::state::{STATE_PATH, SyncState};
use crate::store::{CommitId, FileChange, NewCommit, Store, StoreError};
use crate::writeback::{STATUS_PATH, StatusFile};

/// The warning topic of a missing changes branch.
const CHANGES_MISSING: &str = "changes_branch";

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Fetches, checks that `main` is where mwsync left it (or at its own push from before
    /// a restart), and loads config, state and quarantine from it when it changed.
    pub async fn refresh_main(&mut self) -> Result<(), EngineError> {
        // Checkpoints still being pushed land before the remote is read.
        self.land().await?;
        let policy = self.settings.retry;
        retry(&policy, &self.events, "git fetch", || {
            self.store_call(|s| s.fetch())
        })
        .await?;
        let branch = self.settings.branch.clone();
        let b = branch.clone();
        let tip = self.store_call(move |s| s.remote_tip(&b)).await?;
        let expected = self.cache.last_pushed();
        match (&expected, &tip) {
            (Some(e), Some(t)) if e == t => {}
            (_, Some(t)) if self.cache.intended(t) => {
                tracing::warn!(
                    commit = %t,
                    "`{branch}` is at {}, mwsync's own push from before a restart (the cache recorded the intent); adopting it",
                    t.short()
                );
                self.record_push(t)?;
            }
            (None, None) => self.check_new_branch().await?,
            (None, Some(t)) => {
                return Err(EngineError::FreshCache {
                    branch,
                    tip: t.to_string(),
                });
            }
            (Some(e), actual) => {
                return Err(EngineError::MainMoved {
                    branch,
                    expected: e.to_string(),
                    actual: actual
                        .as_ref()
                        .map_or("none".to_string(), ToString::to_string),
                });
            }
        }
        self.note_changes_branch().await?;
        if tip != self.known.main {
            self.load_main(tip).await?;
        }
        Ok(())
    }

    /// The sync branch does not exist yet: mwsync creates it only on a remote without any
    /// branch, or when told to; otherwise the name is most likely a typo.
    async fn check_new_branch(&self) -> Result<(), EngineError> {
        if self.settings.create_branch {
            return Ok(());
        }
        let branches = self.store_call(|s| s.remote_branches()).await?;
        if branches.is_empty() {
            return Ok(());
        }
        Err(EngineError::BranchMissing {
            branch: self.settings.branch.clone(),
            existing: branches
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Warns once, and keeps a warning for `/status`, while the changes branch does not
    /// exist: a typo in its name would otherwise leave writes unseen for ever.
    async fn note_changes_branch(&mut self) -> Result<(), EngineError> {
        let changes = self.settings.changes_branch.clone();
        let c = changes.clone();
        let present = self.store_call(move |s| s.remote_tip(&c)).await?.is_some();
        if present {
            if self.known.warnings.remove(CHANGES_MISSING).is_some() {
                tracing::info!("the `{changes}` branch now exists; writes on it are handled");
            }
            return Ok(());
        }
        if self.known.warnings.contains_key(CHANGES_MISSING) {
            return Ok(());
        }
        let branches = self.store_call(|s| s.remote_branches()).await?;
        let has = if branches.is_empty() {
            "it has no branches yet".to_string()
        } else {
            format!("it has {}", branches.join(", "))
        };
        let text = format!(
            "the `{changes}` branch does not exist on the git remote ({has}); mwsync handles writes once someone pushes it. \
             If writers use another branch, set changes_branch (MWSYNC_CHANGES_BRANCH)"
        );
        tracing::warn!("{text}");
        self.known.warnings.insert(CHANGES_MISSING, text);
        Ok(())
    }

    fn record_push(&mut self, tip: &CommitId) -> Result<(), EngineError> {
        self.cache
            .set_last_pushed(tip.clone())
            .map_err(|e| EngineError::Local(e.to_string()))
    }

    /// Reads config, state and quarantine from `tip`. A full sync check answered locally
    /// and not yet on `main` stays in force.
    pub(super) async fn load_main(&mut self, tip: Option<CommitId>) -> Result<(), EngineError> {
        let (repo, mut state, quarantine) = match &tip {
            None => (None, SyncState::default(), Quarantine::default()),
            Some(tip_id) => {
                let repo = match self.read_text(tip_id, REPO_CONFIG_PATH).await? {
                    Some(text) => Some(RepoConfigFile::parse(&text, REPO_CONFIG_PATH)?.validate()?),
                    None => None,
                };
                let state = match self.read_text(tip_id, STATE_PATH).await? {
                    Some(text) => SyncState::parse(&text, STATE_PATH).map_err(|detail| {
                        EngineError::Corrupt {
                            path: STATE_PATH.into(),
                            detail,
                        }
                    })?,
                    None => SyncState::default(),
                };
                let quarantine = match self.read_text(tip_id, STATUS_PATH).await? {
                    Some(text) => StatusFile::parse(&text)
                        .map(|s| Quarantine::from_entries(s.quarantined))
                        .map_err(|detail| EngineError::Corrupt {
                            path: STATUS_PATH.into(),
                            detail,
                        })?,
                    None => Quarantine::default(),
                };
                (repo, state, quarantine)
            }
        };
        if let Some(answer) = self.cache.check_answer() {
            state.full_sync = answer;
        }
        self.known.load(
            tip,
            repo,
            &self.settings.initial_repo,
            state,
            quarantine,
            self.cache.rescan_floor(),
        );
        Ok(())
    }

    /// The status file as `main` holds it (empty when absent).
    async fn main_status(&self) -> Result<StatusFile, EngineError> {
        let Some(main) = &self.known.main else {
            return Ok(StatusFile::default());
        };
        match self.read_text(main, STATUS_PATH).await? {
            Some(text) => StatusFile::parse(&text).map_err(|detail| EngineError::Corrupt {
                path: STATUS_PATH.into(),
                detail,
            }),
            None => Ok(StatusFile::default()),
        }
    }

    /// Commits `changes` (plus the current state, the config when `main` lacks it, and the
    /// status file when the quarantine changed) on top of `main` and pushes by
    /// compare-and-swap, after every checkpoint whose push was still running. Returns the
    /// new tip.
    pub(crate) async fn commit_main(
        &mut self,
        changes: BTreeMap<String, FileChange>,
        message: String,
        extra_parent: Option<CommitId>,
    ) -> Result<CommitId, EngineError> {
        self.land().await?;
        let committed = committed_event(&message);
        let (new, report) = self.write_commit(changes, message, extra_parent).await?;
        self.push_main(&new).await?;
        self.known.committed();
        self.known.landed(self.known.committed_state().clone());
        self.keep_floor()?;
        self.publish(committed(&new));
        if let Some(report) = report {
            self.publish(Event::WriteStatus { report });
        }
        self.cache
            .set_check_answer(None)
            .map_err(|e| EngineError::Local(e.to_string()))?;
        Ok(new)
    }

    /// Writes the commit of `changes` on top of `main` in the cache (the remote is
    /// untouched), with the current state, the config when `main` lacks it, and the status
    /// file when the quarantine changed. Returns its id and the write-back report it puts on
    /// `main`, if any.
    pub(crate) async fn write_commit(
        &mut self,
        mut changes: BTreeMap<String, FileChange>,
        message: String,
        extra_parent: Option<CommitId>,
    ) -> Result<(CommitId, Option<crate::writeback::WriteReport>), EngineError> {
        // A full sync check's answer reaches main with the next commit.
        if let Some(answer) = self.cache.check_answer() {
            self.known.state.full_sync = answer;
        }
        changes.insert(
            STATE_PATH.to_string(),
            FileChange::Put(self.known.state.to_toml().into_bytes()),
        );
        if self.known.config_unwritten {
            // A writer's config change in the same commit wins over the initial one.
            changes
                .entry(REPO_CONFIG_PATH.to_string())
                .or_insert_with(|| FileChange::Put(self.known.repo.file.to_toml().into_bytes()));
        }
        if self.known.quarantine_changed() && !changes.contains_key(STATUS_PATH) {
            let mut status = self.main_status().await?;
            status.quarantined = self.known.quarantine.entries();
            changes.insert(
                STATUS_PATH.to_string(),
                FileChange::Put(status.to_toml().into_bytes()),
            );
        }
        let mut parents: Vec<CommitId> = self.known.main.iter().cloned().collect();
        parents.extend(extra_parent);
        // The write-back report this commit puts on main, told to the status board.
        let report = match changes.get(STATUS_PATH) {
            Some(FileChange::Put(bytes)) => StatusFile::parse(&String::from_utf8_lossy(bytes))
                .ok()
                .and_then(|s| s.last_write),
            _ => None,
        };
        let new = self
            .store_call(move |s| {
                s.commit(NewCommit {
                    parents,
                    changes,
                    message,
                })
            })
            .await?;
        Ok((new, report))
    }

    /// Keeps in the cache the rescan floors that `main` does not carry, so a restart reads
    /// from them too.
    pub(crate) fn keep_floor(&mut self) -> Result<(), EngineError> {
        self.cache
            .set_rescan_floor(&self.known.durable_floor())
            .map_err(|e| EngineError::Local(e.to_string()))
    }

    /// Pushes `new` to the sync branch by compare-and-swap from the known tip, after
    /// recording the intent in the cache (see [`Self::conclude_push`]).
    async fn push_main(&mut self, new: &CommitId) -> Result<(), EngineError> {
        let expected = self.known.main.clone();
        self.cache
            .record_intent(new, expected.as_ref())
            .map_err(|e| EngineError::Local(e.to_string()))?;
        let pushed = self.push_with_retry(new, expected.as_ref()).await;
        self.conclude_push(new, pushed).await?;
        self.known.pushed(new.clone());
        Ok(())
    }

    /// Pushes `new` over `expected`, with the usual retries.
    pub(crate) async fn push_with_retry(
        &mut self,
        new: &CommitId,
        expected: Option<&CommitId>,
    ) -> Result<(), EngineError> {
        let policy = self.settings.retry;
        let branch = self.settings.branch.clone();
        retry(&policy, &self.events, "git push", || {
            let (branch, expected, new) = (branch.clone(), expected.cloned(), new.clone());
            self.store_call(move |s| s.push(&branch, expected.as_ref(), &new))
        })
        .await
    }

    /// Reads what a push of `new` came to: success is remembered in the
    /// cache; a lost compare-and-swap against exactly one of mwsync's own intended commits
    /// adopts that commit and asks for the step again; any other move of `main` is
    /// [`EngineError::MainMoved`]; a refusal forgets the intent.
    pub(crate) async fn conclude_push(
        &mut self,
        new: &CommitId,
        pushed: Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let branch = self.settings.branch.clone();
        match pushed {
            Ok(()) => {}
            // A retry after an unknown outcome can find its own earlier push already there.
            Err(EngineError::Store(StoreError::BranchMoved { actual, .. })) if actual == new.0 => {}
            Err(EngineError::Store(StoreError::BranchMoved {
                expected, actual, ..
            })) => {
                let tip = CommitId(actual.clone());
                if actual != "none" && self.cache.intended(&tip) {
                    tracing::warn!(
                        commit = %tip,
                        "`{branch}` moved to {}, mwsync's own push from before a restart (the cache recorded the intent); adopting it and starting the step again",
                        tip.short()
                    );
                    self.record_push(&tip)?;
                    self.load_main(Some(tip)).await?;
                    return Err(EngineError::Adopted {
                        branch,
                        tip: actual,
                    });
                }
                return Err(EngineError::MainMoved {
                    branch,
                    expected,
                    actual,
                });
            }
            Err(e) => {
                if matches!(
                    e,
                    EngineError::Store(StoreError::Refused { .. } | StoreError::Auth { .. })
                ) {
                    // The remote answered no: this push cannot land later.
                    self.cache
                        .forget_intent(new)
                        .map_err(|e| EngineError::Local(e.to_string()))?;
                }
                return Err(e);
            }
        }
        self.record_push(new)
    }

    /// Accepts the remote's current tip of the sync branch as mwsync's own (after a human
    /// has checked it). Returns the adopted tip.
    pub async fn rebaseline(&mut self) -> Result<Option<CommitId>, EngineError> {
        let branch = self.settings.branch.clone();
        let tip = self
            .store_call(move |s| {
                s.fetch()?;
                s.remote_tip(&branch)
            })
            .await?;
        if let Some(t) = &tip {
            self.record_push(t)?;
        }
        self.load_main(tip.clone()).await?;
        Ok(tip)
    }
}

/// The [`Event::Committed`] for a commit with `message`, once its id is known: the subject,
/// and the body's lines without blanks and trailers, at most [`COMMIT_LINES`].
pub(super) fn committed_event(message: &str) -> impl Fn(&CommitId) -> Event + use<> {
    let mut lines = message.lines();
    let subject = lines.next().unwrap_or_default().to_string();
    let body: Vec<String> = lines
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Mwsync-"))
        .map(str::to_string)
        .collect();
    let more = body.len().saturating_sub(COMMIT_LINES);
    let shown: Vec<String> = body.into_iter().take(COMMIT_LINES).collect();
    move |id| Event::Committed {
        commit: id.to_string(),
        subject: subject.clone(),
        lines: shown.clone(),
        more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commit event carries the subject and the record lines, never the trailers.
    #[test]
    fn committed_event_keeps_subject_and_record_lines() {
        let msg = "Pull 2 records: Name 2\n\nName A updated: phone \"1\" → \"2\"\nName B created (3 fields)\n\nMwsync-Marker: Name 20240101000000\nMwsync-Config: abc\n";
        let id = CommitId("c".repeat(40));
        assert_eq!(
            committed_event(msg)(&id),
            Event::Committed {
                commit: id.to_string(),
                subject: "Pull 2 records: Name 2".into(),
                lines: vec![
                    "Name A updated: phone \"1\" → \"2\"".into(),
                    "Name B created (3 fields)".into()
                ],
                more: 0,
            }
        );
    }
}
