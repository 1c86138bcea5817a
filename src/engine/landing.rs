//! Checkpoints whose push runs while the next pages are read. A checkpoint inside a pass is
//! committed in the cache at once and its push begins in the background; the next
//! checkpoint waits for it only when it has ended or too many commits wait behind it, and
//! then pushes the newest commit, which carries every one before it. Every step that reads
//! the remote, and every commit that is not such a checkpoint, first lands them all. It
//! owns the commits made and not yet confirmed on the remote, and what happens when their
//! push fails (the engine starts again from the last confirmed commit); it must not decide
//! when to checkpoint.

use std::collections::{BTreeMap, VecDeque};

use super::{Engine, EngineError};
use crate::error::{Classify, ErrorClass};
use crate::moneyworks::MoneyWorks;
use crate::state::SyncState;
use crate::store::{CommitId, FileChange, Store};

/// Most commits that wait behind a running push before the next checkpoint waits for it.
pub(crate) const MAX_AHEAD: usize = 8;

/// Commits made on top of the remote's tip and not yet confirmed there.
#[derive(Debug)]
pub(crate) struct Flight {
    /// The remote's tip as last confirmed: the commits below build on it.
    confirmed: Option<CommitId>,
    /// The commits on top of it, oldest first, each with the sync state it carries.
    ahead: VecDeque<(CommitId, SyncState)>,
    /// The commit whose push is running (the newest of `ahead` when it began).
    running: Option<CommitId>,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Commits a checkpoint of `changes` in the cache and lets its push run while what
    /// follows is read. Returns the new commit, which is `main`'s tip from here on.
    pub(crate) async fn commit_checkpoint(
        &mut self,
        changes: BTreeMap<String, FileChange>,
        message: String,
    ) -> Result<CommitId, EngineError> {
        let base = self.known.main.clone();
        let committed = super::guard::committed_event(&message);
        let (new, _) = self.write_commit(changes, message, None).await?;
        self.known.committed();
        self.known.pushed(new.clone());
        self.publish(committed(&new));
        let flight = self.flight.get_or_insert_with(|| Flight {
            confirmed: base,
            ahead: VecDeque::new(),
            running: None,
        });
        flight
            .ahead
            .push_back((new.clone(), self.known.committed_state().clone()));
        let crowded = flight.ahead.len() > MAX_AHEAD;
        if flight.running.is_some() {
            let ended = self.store_call(|s| Ok(!s.push_running())).await?;
            if ended || crowded {
                self.settle().await?;
            }
        }
        self.launch().await?;
        Ok(new)
    }

    /// Waits until every commit made is on the remote (nothing to do when none waits).
    pub(crate) async fn land(&mut self) -> Result<(), EngineError> {
        loop {
            self.settle().await?;
            match &self.flight {
                None => return Ok(()),
                Some(f) if f.ahead.is_empty() => {
                    self.flight = None;
                    return Ok(());
                }
                Some(_) => self.launch().await?,
            }
        }
    }

    /// Lands what waits after a step failed, so that its checkpoints are not read again;
    /// a failure here is logged, and the step's own error is what counts.
    pub(crate) async fn land_after_failure(&mut self) {
        if self.flight.is_some()
            && let Err(e) = self.land().await
        {
            tracing::warn!("the checkpoints made before the failure did not all land: {e}");
        }
    }

    /// Begins pushing the newest commit, unless a push runs or nothing waits.
    async fn launch(&mut self) -> Result<(), EngineError> {
        let Some(flight) = &self.flight else {
            return Ok(());
        };
        let Some((tip, _)) = flight.ahead.back().filter(|_| flight.running.is_none()) else {
            return Ok(());
        };
        let (tip, expected) = (tip.clone(), flight.confirmed.clone());
        self.cache
            .record_intent(&tip, expected.as_ref())
            .map_err(|e| EngineError::Local(e.to_string()))?;
        let branch = self.settings.branch.clone();
        let (t, e) = (tip.clone(), expected.clone());
        match self
            .store_call(move |s| s.start_push(&branch, e.as_ref(), &t))
            .await
        {
            Ok(()) => {
                if let Some(f) = &mut self.flight {
                    f.running = Some(tip);
                }
                Ok(())
            }
            Err(err) => self.outcome(tip, Err(err)).await,
        }
    }

    /// Waits for the running push, if any, and takes in its outcome. A push that failed
    /// on the way is made again, with the usual retries, before it counts as failed.
    async fn settle(&mut self) -> Result<(), EngineError> {
        let Some(flight) = &mut self.flight else {
            return Ok(());
        };
        let Some(new) = flight.running.take() else {
            return Ok(());
        };
        let expected = flight.confirmed.clone();
        let outcome = match self.store_call(|s| s.finish_push()).await {
            Err(e) if e.class() == ErrorClass::Retryable => {
                tracing::info!("the push of {} failed on the way ({e}); again", new.short());
                self.push_with_retry(&new, expected.as_ref()).await
            }
            other => other,
        };
        self.outcome(new, outcome).await
    }

    /// What the push of `new` came to. On success every commit up to `new` is confirmed;
    /// on failure the commits after the last confirmed one never reached the remote, and
    /// the engine starts again from it.
    async fn outcome(
        &mut self,
        new: CommitId,
        pushed: Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        match self.conclude_push(&new, pushed).await {
            Ok(()) => {
                let Some(flight) = &mut self.flight else {
                    return Ok(());
                };
                flight.confirmed = Some(new.clone());
                let mut landed = None;
                while let Some((commit, state)) = flight.ahead.pop_front() {
                    landed = Some(state);
                    if commit == new {
                        break;
                    }
                }
                if flight.ahead.is_empty() {
                    self.flight = None;
                }
                if let Some(state) = landed {
                    self.known.landed(state);
                }
                self.keep_floor()?;
                self.cache
                    .set_check_answer(None)
                    .map_err(|e| EngineError::Local(e.to_string()))?;
                Ok(())
            }
            Err(e) => {
                let flight = self.flight.take();
                // An adopted tip is loaded already; a moved `main` stops mwsync.
                if !matches!(
                    e,
                    EngineError::Adopted { .. } | EngineError::MainMoved { .. }
                ) {
                    let base = flight.and_then(|f| f.confirmed);
                    tracing::warn!(
                        "the push of {} failed; the commits after {} are dropped and read again",
                        new.short(),
                        base.as_ref()
                            .map_or_else(|| "the start".to_string(), |b| b.short().to_string())
                    );
                    // The next `refresh_main` would find `main` behind and load it too; loading
                    // now keeps what the engine reports true in between.
                    if let Err(reload) = self.load_main(base).await {
                        tracing::warn!("cannot load `main` again after the failed push: {reload}");
                    }
                }
                Err(e)
            }
        }
    }
}
