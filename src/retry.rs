//! Retry with exponential backoff for retryable errors. It owns the policy only; it decides
//! by `ErrorClass`, never by message text, and waits only through `tokio::time`.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::error::{Classify, ErrorClass};
use crate::events::{Event, Events};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    /// Delay after the first failure; doubles each time.
    pub first_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or runs out of attempts.
/// Each retry is published as an [`Event::Retrying`].
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    events: &Events,
    what: &str,
    mut op: F,
) -> Result<T, E>
where
    E: Classify + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.class() == ErrorClass::Retryable && attempt < policy.attempts => {
                events.publish(Event::Retrying {
                    what: what.to_string(),
                    error: e.to_string(),
                    class: e.class(),
                    attempt,
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(policy.max_delay);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moneyworks::MwError;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Retryable errors are retried with doubling delays until success.
    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_with_backoff() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let policy = RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        };
        let out: Result<u32, MwError> = retry(&policy, &Events::new(), "export", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(MwError::LicenceLimit)
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    /// Errors that are not retryable return at once.
    #[tokio::test(start_paused = true)]
    async fn gives_up_at_once_on_other_classes() {
        let calls = AtomicU32::new(0);
        let out: Result<(), MwError> = retry(
            &RetryPolicy::default(),
            &Events::new(),
            "export",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(MwError::Auth {
                    detail: "DoConnect failed -1".into(),
                })
            },
        )
        .await;
        assert!(matches!(out, Err(MwError::Auth { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
