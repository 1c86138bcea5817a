//! The guard on `main`: only mwsync moves it, always by compare-and-swap from the tip it last
//! pushed, which the cache records. It owns fetching and checking the tip, loading config and
//! state when `main` moved, committing on top of it, and `rebaseline`; it must not decide
//! what a commit holds.

use std::collections::BTreeMap;

use super::{Engine, EngineError};
use crate::commit_message::has_trailers;
use crate::config::{REPO_CONFIG_PATH, RepoConfigFile};
use crate::events::{COMMIT_LINES, Event};
use crate::moneyworks::MoneyWorks;
use crate::retry::retry;
use crate::state::{STATE_PATH, SyncState};
use crate::store::{CommitId, FileChange, NewCommit, Store, StoreError};
use crate::writeback::{STATUS_PATH, StatusFile};

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Fetches, checks that `main` is where mwsync left it, and loads config and state from
    /// it when it changed.
    pub async fn refresh_main(&mut self) -> Result<(), EngineError> {
        let policy = self.settings.retry;
        retry(&policy, &self.events, "git fetch", || {
            self.store_call(|s| s.fetch())
        })
        .await?;
        let branch = self.settings.branch.clone();
        let tip = self.store_call(move |s| s.remote_tip(&branch)).await?;
        let expected = self.cache.last_pushed().cloned();
        match (&expected, &tip) {
            (None, None) => {}
            (None, Some(t)) => {
                tracing::warn!(commit = %t, "adopting the existing `{}` at {} (this cache has never pushed)", self.settings.branch, t.short());
                self.record_push(t)?;
            }
            (Some(e), Some(t)) if e == t => {}
            (Some(e), Some(t)) if self.is_own_successor(e, t).await => {
                tracing::warn!(
                    "`{}` is one mwsync commit ahead of the cache ({}); a push finished just before a crash; adopting it",
                    self.settings.branch,
                    t.short()
                );
                self.record_push(t)?;
            }
            (Some(e), actual) => {
                return Err(EngineError::MainMoved {
                    branch: self.settings.branch.clone(),
                    expected: e.to_string(),
                    actual: actual
                        .as_ref()
                        .map_or("none".to_string(), ToString::to_string),
                });
            }
        }
        if tip != self.known.main {
            self.load_main(tip).await?;
        }
        Ok(())
    }

    async fn is_own_successor(&self, expected: &CommitId, tip: &CommitId) -> bool {
        let tip = tip.clone();
        self.store_call(move |s| s.commit_info(&tip))
            .await
            .is_ok_and(|info| info.parents.first() == Some(expected) && has_trailers(&info.message))
    }

    fn record_push(&mut self, tip: &CommitId) -> Result<(), EngineError> {
        self.cache
            .set_last_pushed(tip.clone())
            .map_err(|e| EngineError::Local(e.to_string()))
    }

    /// Reads config and state from `tip`.
    async fn load_main(&mut self, tip: Option<CommitId>) -> Result<(), EngineError> {
        let (repo, state) = match &tip {
            None => (None, SyncState::default()),
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
                (repo, state)
            }
        };
        self.known
            .load(tip, repo, &self.settings.initial_repo, state);
        Ok(())
    }

    /// Commits `changes` (plus the current state, and the config when `main` lacks it) on
    /// top of `main` and pushes by compare-and-swap. Returns the new tip.
    pub(crate) async fn commit_main(
        &mut self,
        mut changes: BTreeMap<String, FileChange>,
        message: String,
        extra_parent: Option<CommitId>,
    ) -> Result<CommitId, EngineError> {
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
        let mut parents: Vec<CommitId> = self.known.main.iter().cloned().collect();
        parents.extend(extra_parent);
        // The write-back report this commit puts on main, told to the status board.
        let report = match changes.get(STATUS_PATH) {
            Some(FileChange::Put(bytes)) => StatusFile::parse(&String::from_utf8_lossy(bytes))
                .ok()
                .and_then(|s| s.last_write),
            _ => None,
        };
        let committed = committed_event(&message);
        let new = self
            .store_call(move |s| {
                s.commit(NewCommit {
                    parents,
                    changes,
                    message,
                })
            })
            .await?;
        self.push_main(&new).await?;
        self.known.committed();
        self.publish(committed(&new));
        if let Some(report) = report {
            self.publish(Event::WriteStatus { report });
        }
        Ok(new)
    }

    /// Pushes `new` to the sync branch by compare-and-swap from the known tip.
    async fn push_main(&mut self, new: &CommitId) -> Result<(), EngineError> {
        let policy = self.settings.retry;
        let branch = self.settings.branch.clone();
        let expected = self.known.main.clone();
        let pushed = retry(&policy, &self.events, "git push", || {
            let (branch, expected, new) = (branch.clone(), expected.clone(), new.clone());
            self.store_call(move |s| s.push(&branch, expected.as_ref(), &new))
        })
        .await;
        match pushed {
            Ok(()) => {}
            // A retry after an unknown outcome can find its own earlier push already there.
            Err(EngineError::Store(StoreError::BranchMoved { actual, .. })) if actual == new.0 => {}
            Err(EngineError::Store(StoreError::BranchMoved {
                expected, actual, ..
            })) => {
                return Err(EngineError::MainMoved {
                    branch,
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(e),
        }
        self.record_push(new)?;
        self.known.pushed(new.clone());
        Ok(())
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
fn committed_event(message: &str) -> impl Fn(&CommitId) -> Event + use<> {
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
