//! The deterministic world: MoneyWorks answered in-process by the fake's own router (no
//! sockets, so tokio's paused clock alone decides every timeout and delay), and a crash
//! budget that kills a daemon "after the Nth MoneyWorks or git request". It owns counting
//! and crashing; it must not decide what the engine does with a reply.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mwsync::moneyworks::transport::{HttpReply, HttpRequest, Transport, TransportError};
use mwsync::store::{CommitId, CommitInfo, NewCommit, Store, StoreError};
use tower::ServiceExt as _;

/// A crash scheduled after a number of requests, shared by the transport and the store of
/// one daemon. Once it trips, every later request of that daemon hangs (MoneyWorks) or
/// fails (git), and [`Budget::tripped`] resolves, so the driver drops the daemon there.
#[derive(Debug, Default)]
pub struct Budget {
    remaining: Mutex<Option<u64>>,
    tripped: AtomicBool,
    notify: tokio::sync::Notify,
    requests: Mutex<u64>,
}

impl Budget {
    /// Crashes after `n` more requests (the n-th is carried out, its reply never seen).
    pub fn arm(&self, n: u64) {
        *self.lock_remaining() = Some(n.max(1));
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// No crash pending; a tripped budget is reset for the restarted daemon.
    pub fn disarm(&self) {
        *self.lock_remaining() = None;
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// True once the crash point was reached.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Resolves when the crash point is reached.
    pub async fn tripped(&self) {
        loop {
            let wait = self.notify.notified();
            if self.is_tripped() {
                return;
            }
            wait.await;
        }
    }

    /// MoneyWorks and git requests counted so far.
    pub fn requests(&self) -> u64 {
        *self
            .requests
            .lock()
            .expect("the counter lock is never poisoned")
    }

    fn lock_remaining(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.remaining
            .lock()
            .expect("the budget lock is never poisoned")
    }

    /// Counts one request that has just been carried out; trips when it was the last.
    fn count(&self) {
        *self
            .requests
            .lock()
            .expect("the counter lock is never poisoned") += 1;
        let mut remaining = self.lock_remaining();
        if let Some(n) = remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                *remaining = None;
                self.tripped.store(true, Ordering::SeqCst);
                self.notify.notify_waiters();
            }
        }
    }
}

/// The fake MoneyWorks' routes called in-process, counted against a crash budget.
#[derive(Clone)]
pub struct InProcess {
    pub router: axum::Router,
    pub budget: Arc<Budget>,
}

impl Transport for InProcess {
    async fn send(&self, request: HttpRequest) -> Result<HttpReply, TransportError> {
        if self.budget.is_tripped() {
            return std::future::pending().await;
        }
        let request = request.map(axum::body::Body::from);
        let reply = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| TransportError::failed(format!("the in-process fake failed: {e}")))?;
        let (parts, body) = reply.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
            TransportError::failed(format!("the in-process reply body failed: {e}"))
        })?;
        self.budget.count();
        if self.budget.is_tripped() {
            // The request was carried out; the process died before reading the reply.
            return std::future::pending().await;
        }
        Ok(http::Response::from_parts(parts, body))
    }
}

/// A store whose remote operations (fetch and push) count against a crash budget. After the
/// crash every operation fails, so the dead daemon can change nothing more.
pub struct Counted<S> {
    pub inner: S,
    pub budget: Arc<Budget>,
}

impl<S: Store> Counted<S> {
    fn dead(&self) -> Result<(), StoreError> {
        if self.budget.is_tripped() {
            return Err(StoreError::Transport {
                detail: "the daemon crashed".into(),
            });
        }
        Ok(())
    }
}

impl<S: Store> Store for Counted<S> {
    fn fetch(&mut self) -> Result<(), StoreError> {
        self.dead()?;
        let r = self.inner.fetch();
        self.budget.count();
        self.dead()?;
        r
    }
    fn remote_tip(&self, branch: &str) -> Result<Option<CommitId>, StoreError> {
        self.dead()?;
        self.inner.remote_tip(branch)
    }
    fn remote_branches(&self) -> Result<Vec<String>, StoreError> {
        self.dead()?;
        self.inner.remote_branches()
    }
    fn read_file(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.dead()?;
        self.inner.read_file(commit, path)
    }
    fn list_files(&self, commit: &CommitId, dir: &str) -> Result<Vec<String>, StoreError> {
        self.dead()?;
        self.inner.list_files(commit, dir)
    }
    fn changed_paths(
        &self,
        from: Option<&CommitId>,
        to: &CommitId,
    ) -> Result<Vec<String>, StoreError> {
        self.dead()?;
        self.inner.changed_paths(from, to)
    }
    fn commit(&mut self, commit: NewCommit) -> Result<CommitId, StoreError> {
        self.dead()?;
        self.inner.commit(commit)
    }
    fn push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.dead()?;
        let r = self.inner.push(branch, expected, new);
        self.budget.count();
        // A push that landed but whose process died: the remote moved, the daemon never knew.
        self.dead()?;
        r
    }
    fn start_push(
        &mut self,
        branch: &str,
        expected: Option<&CommitId>,
        new: &CommitId,
    ) -> Result<(), StoreError> {
        self.dead()?;
        let r = self.inner.start_push(branch, expected, new);
        self.budget.count();
        self.dead()?;
        r
    }
    fn push_running(&self) -> bool {
        self.inner.push_running()
    }
    fn finish_push(&mut self) -> Result<(), StoreError> {
        self.dead()?;
        self.inner.finish_push()
    }
    fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, StoreError> {
        self.dead()?;
        self.inner.merge_base(a, b)
    }
    fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> Result<bool, StoreError> {
        self.dead()?;
        self.inner.is_ancestor(ancestor, descendant)
    }
    fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, StoreError> {
        self.dead()?;
        self.inner.commit_info(commit)
    }
    fn commits_between(
        &self,
        base: Option<&CommitId>,
        tip: &CommitId,
    ) -> Result<Vec<CommitId>, StoreError> {
        self.dead()?;
        self.inner.commits_between(base, tip)
    }
}
