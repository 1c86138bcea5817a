//! The `/events` stream: server-sent events with ids, a replay of what a resuming client
//! missed (from the bus's bounded ring), an explicit `resync` event wherever events cannot
//! be replayed, and keep-alive comments when nothing else is sent. It owns the wire format
//! of the stream; it must not decide what an event means.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::events::{Event, Events, Gap, Sequenced};

/// Default seconds of silence after which a keep-alive comment is sent, so idle proxies keep
/// the connection open between polls.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 15;
/// Milliseconds a browser waits before reconnecting (sent as `retry:`).
pub const RETRY_MS: u64 = 2000;

/// The keep-alive comment.
pub const KEEPALIVE: &str = ": keep-alive\n\n";

/// One SSE message: `id:`, `event: <kind>` and the JSON event as data.
pub fn sse_frame(events: &Events, item: &Sequenced) -> String {
    format!(
        "id: {}\n{}",
        events.id_text(item.id),
        event_lines(&item.event)
    )
}

fn event_lines(event: &Event) -> String {
    let json = serde_json::to_value(event)
        .expect("events always serialise because they hold only plain data");
    let kind = json
        .get("event")
        .and_then(|k| k.as_str())
        .unwrap_or("message")
        .to_string();
    format!("event: {kind}\ndata: {json}\n\n")
}

/// The message that tells a client it missed events and must re-read `/status`.
pub fn resync_frame(gap: Gap) -> String {
    let (reason, missed) = match gap {
        Gap::Restarted => ("restarted", None),
        Gap::TooOld => ("too_old", None),
        Gap::Lagged(n) => ("lagged", Some(n)),
    };
    let data = serde_json::json!({
        "event": "resync",
        "reason": reason,
        "missed": missed,
        "action": "re-read /status: some events cannot be replayed",
    });
    format!("event: resync\ndata: {data}\n\n")
}

struct StreamState {
    events: Events,
    queued: VecDeque<String>,
    live: tokio::sync::broadcast::Receiver<Arc<Sequenced>>,
    keepalive: Duration,
}

/// The byte stream of `/events` for a client that last saw the event with id `last` (from
/// `Last-Event-ID`, or the `last_event_id` query parameter of a fresh connection). It starts
/// with `retry:` and a `: connected` comment, then a `resync` event if some events cannot be
/// replayed, the replayed events, and the live ones. After `keepalive` without anything to
/// send it sends a keep-alive comment. It ends when the bus is gone.
pub fn event_stream(
    events: &Events,
    last: Option<&str>,
    keepalive: Duration,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let resume = events.resume(last);
    let mut queued = VecDeque::new();
    queued.push_back(format!("retry: {RETRY_MS}\n: connected\n\n"));
    if let Some(gap) = resume.gap {
        queued.push_back(resync_frame(gap));
    }
    for item in &resume.replay {
        queued.push_back(sse_frame(events, item));
    }
    let state = StreamState {
        events: events.clone(),
        queued,
        live: resume.live,
        keepalive,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(text) = st.queued.pop_front() {
            return Some((Bytes::from(text), st));
        }
        let text = tokio::select! {
            got = st.live.recv() => match got {
                Ok(item) => sse_frame(&st.events, &item),
                Err(RecvError::Lagged(n)) => resync_frame(Gap::Lagged(n)),
                Err(RecvError::Closed) => return None,
            },
            () = tokio::time::sleep(st.keepalive) => KEEPALIVE.to_string(),
        };
        Some((Bytes::from(text), st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::time::Instant;

    fn poll(records: u64) -> Event {
        Event::PollFinished {
            records,
            requests: 1,
            commits: 0,
            main: None,
        }
    }

    async fn next(s: &mut (impl Stream<Item = Bytes> + Unpin)) -> String {
        String::from_utf8(s.next().await.expect("the stream goes on").to_vec()).expect("UTF-8")
    }

    /// With nothing to send, a keep-alive comment goes out every 15 s of silence, counted
    /// from the last message.
    #[tokio::test(start_paused = true)]
    async fn keepalive_after_fifteen_silent_seconds() {
        let events = Events::new();
        let start = Instant::now();
        let mut s = Box::pin(event_stream(
            &events,
            None,
            Duration::from_secs(DEFAULT_KEEPALIVE_SECS),
        ));
        assert_eq!(next(&mut s).await, "retry: 2000\n: connected\n\n");
        assert_eq!(next(&mut s).await, KEEPALIVE);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        assert_eq!(next(&mut s).await, KEEPALIVE);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        let publisher = events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            publisher.publish(poll(1));
        });
        let frame = next(&mut s).await;
        assert!(
            frame.starts_with(&format!(
                "id: {}-1\nevent: poll_finished\n",
                events.instance()
            )),
            "{frame}"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(40));
        assert_eq!(next(&mut s).await, KEEPALIVE);
        assert_eq!(start.elapsed(), Duration::from_secs(55));
    }

    /// A client resuming from `Last-Event-ID` gets exactly the events after it, in order, then
    /// the live ones; one from another run, or too old for the ring, is told to re-read
    /// `/status` before anything else.
    #[tokio::test(start_paused = true)]
    async fn last_event_id_replays_or_asks_for_a_resync() {
        let events = Events::with_capacity(4, 64);
        for n in 1..=6 {
            events.publish(poll(n));
        }
        let keep = Duration::from_secs(15);
        let mut s = Box::pin(event_stream(&events, Some(&events.id_text(4)), keep));
        next(&mut s).await;
        for n in [5, 6] {
            let frame = next(&mut s).await;
            assert!(
                frame.starts_with(&format!("id: {}\n", events.id_text(n))),
                "{frame}"
            );
            assert!(frame.contains(&format!("\"records\":{n}")), "{frame}");
        }
        events.publish(poll(7));
        assert!(
            next(&mut s)
                .await
                .starts_with(&format!("id: {}\n", events.id_text(7)))
        );

        let mut old = Box::pin(event_stream(&events, Some(&events.id_text(1)), keep));
        next(&mut old).await;
        let frame = next(&mut old).await;
        assert!(
            frame.starts_with("event: resync\n") && frame.contains("\"reason\":\"too_old\""),
            "{frame}"
        );
        let mut other = Box::pin(event_stream(&events, Some("1a2b-99"), keep));
        next(&mut other).await;
        assert!(next(&mut other).await.contains("\"reason\":\"restarted\""));
    }

    /// A live client that falls behind the channel is told how many events it missed,
    /// instead of a silent gap.
    #[tokio::test(start_paused = true)]
    async fn a_lagging_client_gets_a_resync_event() {
        let events = Events::with_capacity(4, 2);
        let mut s = Box::pin(event_stream(&events, None, Duration::from_secs(15)));
        next(&mut s).await;
        for n in 1..=5 {
            events.publish(poll(n));
        }
        let frame = next(&mut s).await;
        assert!(
            frame.starts_with("event: resync\n") && frame.contains("\"missed\":3"),
            "{frame}"
        );
        assert!(
            next(&mut s)
                .await
                .starts_with(&format!("id: {}\n", events.id_text(4)))
        );
    }
}
