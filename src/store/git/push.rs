//! Pushes of the git store, in a thread of their own so that reads and commits of the cache
//! go on while one runs: `git push` by compare-and-swap (`--force-with-lease`), or an upload
//! through the gateway. It owns starting a push, waiting for it and reading its outcome
//! (the status line `--porcelain` prints, a refusal, or a fetch when the outcome is
//! unclear); it must not decide when to push or what.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use git2::{ErrorCode, ObjectType, Oid, Repository};

use super::cli::{self, Ran};
use super::{GitStore, local_err, parse_oid, tracking_ref};
use crate::store::gateway::{Gateway, Sent};
use crate::store::object::{self, Kind};
use crate::store::{CommitId, Store, StoreError};

/// A push begun by `start_push` and not yet finished.
pub(super) struct Running {
    branch: String,
    expected: Option<CommitId>,
    new: CommitId,
    new_oid: Oid,
    job: Job,
}

/// The thread doing the push.
enum Job {
    /// `git push`, giving git's scrubbed outcome.
    Cli(JoinHandle<Result<Ran, StoreError>>),
    /// An upload through the gateway, giving the objects it took from `unpushed` back.
    Gateway {
        /// The commits the push lands; `None` when `expected` is not in the cache.
        landing: Option<BTreeSet<CommitId>>,
        job: JoinHandle<(Result<Sent, StoreError>, Unpushed)>,
    },
}

/// Commits written and not yet pushed through the gateway, with the ids of their new
/// objects (read back from the cache as the push sends them).
pub(super) type Unpushed = Vec<(CommitId, Vec<object::Oid>)>;

impl Running {
    /// True once the thread has ended.
    pub(super) fn ended(&self) -> bool {
        match &self.job {
            Job::Cli(h) => h.is_finished(),
            Job::Gateway { job, .. } => job.is_finished(),
        }
    }
}

impl GitStore {
    /// Begins pushing `new` over `expected` to `branch` in a thread; see
    /// [`Store::start_push`].
    pub(super) fn begin_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        if self.running.is_some() {
            return Err(StoreError::Local {
                detail: "a push is already running; mwsync pushes one at a time".into(),
            });
        }
        tracking_ref(branch)?;
        let new_oid = self.find_commit(new)?.id();
        if let Some(e) = expected {
            parse_oid(e)?;
        }
        let job = match &self.gateway {
            Some(gateway) => self.begin_gateway_push(Arc::clone(gateway), branch, expected, new)?,
            None => {
                let dest = format!("refs/heads/{branch}");
                let lease = format!(
                    "--force-with-lease={dest}:{}",
                    expected.map(|e| e.0.as_str()).unwrap_or("")
                );
                let refspec = format!("{new_oid}:{dest}");
                let url = self.cli.url().to_string();
                let cli = self.cli.clone();
                // `--porcelain` without `--quiet`: git prints one status line per ref, so
                // success is read from the reply and needs no fetch to confirm.
                // `pack.window=0`: the commit's objects are packed without deltas already, so
                // `pack-objects` copies them as they are instead of searching for deltas.
                let args: Vec<String> = [
                    "-c",
                    "pack.window=0",
                    "push",
                    "--porcelain",
                    "--no-verify",
                    &lease,
                    &url,
                    &refspec,
                ]
                .map(str::to_string)
                .into();
                Job::Cli(spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    cli.run(&args)
                })?)
            }
        };
        self.running = Some(Running {
            branch: branch.to_string(),
            expected: expected.cloned(),
            new: new.clone(),
            new_oid,
            job,
        });
        Ok(())
    }

    /// The gateway's thread: the objects written for the commits the push lands go in
    /// concurrent batches, whatever the gateway still misses is read from the cache, then
    /// one compare-and-swap commit.
    fn begin_gateway_push(
        &mut self,
        gateway: Arc<Mutex<Gateway>>,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<Job, StoreError> {
        // The commits this push lands; without a local `expected`, every commit kept.
        let landing: Option<BTreeSet<CommitId>> = self
            .commits_between(expected, new)
            .ok()
            .map(|c| c.into_iter().collect());
        let (pending, kept): (Unpushed, Unpushed) = std::mem::take(&mut self.unpushed)
            .into_iter()
            .partition(|(c, _)| landing.as_ref().is_none_or(|l| l.contains(c)));
        self.unpushed = kept.into();
        let (path, branch, expected, new) = (
            self.path.clone(),
            branch.to_string(),
            expected.cloned(),
            new.clone(),
        );
        let job = spawn(move || {
            let result = (|| {
                let repo = Repository::open_bare(&path)
                    .map_err(|e| local_err("cannot open the cache again to read objects", &e))?;
                let ids: Vec<object::Oid> = pending
                    .iter()
                    .flat_map(|(_, ids)| ids.iter().copied())
                    .collect();
                let read = |id: &str| read_object(&repo, &path, id);
                let mut gateway = gateway.lock().map_err(|_| StoreError::Local {
                    detail: "an earlier gateway upload panicked; restart mwsync".into(),
                })?;
                gateway.push(&branch, expected.as_ref(), &new, &ids, &read)
            })();
            (result, pending)
        })?;
        Ok(Job::Gateway { landing, job })
    }

    /// Waits for the push `begin_push` began and reads its outcome; then rolls packs up if
    /// there are too many (commits never do, as a push may be reading the packs).
    pub(super) fn end_push(&mut self) -> Result<(), StoreError> {
        let outcome = self.await_push();
        if let Err(e) = self.consolidate_packs() {
            // The push's outcome stands; the end of the next push tries the roll-up again.
            tracing::warn!("cannot roll up the cache's packs: {e}");
        }
        outcome
    }

    fn await_push(&mut self) -> Result<(), StoreError> {
        let Some(run) = self.running.take() else {
            return Err(StoreError::Local {
                detail: "no push was begun".into(),
            });
        };
        let panicked = |_| StoreError::Local {
            detail: "the thread pushing to the git remote panicked".into(),
        };
        let Running {
            branch,
            expected,
            new,
            new_oid,
            job,
        } = run;
        match job {
            Job::Cli(job) => {
                let ran = job.join().map_err(panicked)??;
                self.read_push_outcome(&branch, expected.as_ref(), &new, new_oid, &ran)
            }
            Job::Gateway { landing, job } => {
                let (result, pending) = job.join().map_err(panicked)?;
                match result {
                    Ok(sent) => {
                        tracing::debug!(
                            "pushed {} through the gateway: {} objects in {} batches",
                            new.short(),
                            sent.objects,
                            sent.batches
                        );
                        self.unpushed
                            .retain(|(c, _)| !landing.as_ref().is_none_or(|l| l.contains(c)));
                        self.record_pushed(&branch, new_oid)
                    }
                    Err(e) => {
                        self.gateway_failed(pending, matches!(e, StoreError::BranchMoved { .. }));
                        Err(e)
                    }
                }
            }
        }
    }

    /// What a `git push` run says: success from its status line, a refusal, or, when the
    /// outcome is unclear, where a fetch finds the remote.
    fn read_push_outcome(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
        new_oid: Oid,
        ran: &Ran,
    ) -> Result<(), StoreError> {
        let dest = format!("refs/heads/{branch}");
        let flag = ran
            .stdout
            .lines()
            .find(|l| l.contains(&format!(":{dest}\t")))
            .and_then(|l| l.chars().next());
        if ran.ok && matches!(flag, Some(' ' | '+' | '*' | '=')) {
            return self.record_pushed(branch, new_oid);
        }
        if let Some(reason) = cli::permanent_refusal(ran) {
            return Err(StoreError::Refused {
                branch: branch.to_string(),
                reason,
            });
        }
        let failure = self.cli.failure("push to", ran);
        if matches!(failure, StoreError::Auth { .. }) {
            return Err(failure);
        }
        // Rejected, or the outcome is unknown: learn where the remote really is.
        if let Err(fetch_err) = self.fetch() {
            return Err(match fetch_err {
                StoreError::Auth { .. } => fetch_err,
                _ => failure,
            });
        }
        let actual = self.remote_tip(branch)?;
        if actual.as_ref() == Some(new) {
            return Ok(());
        }
        if actual.as_ref() != expected {
            return Err(StoreError::BranchMoved {
                branch: branch.to_string(),
                expected: expected.map_or_else(|| "none".to_string(), |e| e.0.clone()),
                actual: actual.map_or_else(|| "none".to_string(), |a| a.0),
            });
        }
        Err(failure)
    }

    /// An upload through the gateway failed: `pending`, the objects it took, go back to be
    /// sent again, oldest first; after a refused move, a fetch learns the remote's tip.
    fn gateway_failed(&mut self, mut pending: Unpushed, moved: bool) {
        pending.extend(self.unpushed.drain(..));
        self.unpushed = pending.into();
        if moved {
            // As after a refused `git push`: learn the remote's tip and its objects.
            if let Err(fetch) = self.fetch() {
                tracing::warn!("cannot fetch after the gateway refused a move: {fetch}");
            }
        }
    }

    /// Notes that the remote's `branch` is at `new`.
    fn record_pushed(&mut self, branch: &str, new: Oid) -> Result<(), StoreError> {
        self.repo
            .reference(&tracking_ref(branch)?, new, true, "mwsync push")
            .map_err(|e| local_err("cannot record the pushed tip", &e))?;
        Ok(())
    }
}

/// Runs `f` in a thread of its own.
fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, StoreError> {
    std::thread::Builder::new()
        .name("mwsync-push".into())
        .spawn(f)
        .map_err(|e| StoreError::Local {
            detail: format!("cannot start a thread to push: {e}"),
        })
}

/// An object of the cache at `path` by hex id, for the gateway.
fn read_object(repo: &Repository, path: &Path, id: &str) -> Result<(Kind, Vec<u8>), StoreError> {
    let missing = || StoreError::Local {
        detail: format!(
            "the upload gateway needs object {id}, which is not in the local cache {}",
            path.display()
        ),
    };
    let oid = Oid::from_str(id).map_err(|_| missing())?;
    let odb = repo
        .odb()
        .map_err(|e| local_err("cannot open the object database", &e))?;
    let obj = odb.read(oid).map_err(|e| match e.code() {
        ErrorCode::NotFound => missing(),
        _ => local_err("cannot read an object", &e),
    })?;
    let kind = match obj.kind() {
        ObjectType::Commit => Kind::Commit,
        ObjectType::Tree => Kind::Tree,
        ObjectType::Blob => Kind::Blob,
        other => {
            return Err(StoreError::Local {
                detail: format!(
                    "the upload gateway needs object {id}, a {other}, which mwsync cannot send"
                ),
            });
        }
    };
    Ok((kind, obj.data().to_vec()))
}
