//! Progress of long work (a first sync or full sync of a table): records done of the total
//! that the first page's `found` gave, the rate, the time left, and how often to say so (an
//! event at most twice a second, a log line at most every 10 s). Pure: the caller passes the
//! time (tokio's, so a paused clock drives the tests) and publishes what it returns; it must
//! not do I/O.

use std::time::Duration;

use tokio::time::Instant;

use crate::events::{ActivityKind, Event};

/// Shortest gap between two progress events.
pub const EVENT_EVERY: Duration = Duration::from_millis(500);
/// Shortest gap between two progress log lines.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// What an advance asks the caller to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// An event to publish.
    pub event: Option<Event>,
    /// A line to log at INFO.
    pub log: Option<String>,
}

/// The progress of one table's long read.
#[derive(Debug, Clone)]
pub struct Tracker {
    kind: ActivityKind,
    table: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_event: Option<Instant>,
    last_log: Instant,
}

impl Tracker {
    /// Work of `kind` on `table` with `total` records, starting at `now`.
    pub fn new(kind: ActivityKind, table: &'static str, total: u64, now: Instant) -> Tracker {
        Tracker {
            kind,
            table,
            total,
            done: 0,
            started: now,
            last_event: None,
            last_log: now,
        }
    }

    /// Records read so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// `n` more records were read at `now`.
    pub fn advance(&mut self, n: u64, now: Instant) -> Tick {
        self.done += n;
        // Records modified during the read can make it longer than the first `found`.
        self.total = self.total.max(self.done);
        let mut tick = Tick::default();
        let finished = self.done >= self.total;
        if finished || self.last_event.is_none_or(|t| now - t >= EVENT_EVERY) {
            self.last_event = Some(now);
            tick.event = Some(self.event(now));
        }
        if now - self.last_log >= LOG_EVERY {
            self.last_log = now;
            tick.log = Some(self.line(now));
        }
        tick
    }

    fn rate(&self, now: Instant) -> (u64, Option<u64>) {
        let secs = (now - self.started).as_secs_f64();
        if secs <= 0.0 || self.done == 0 {
            return (0, None);
        }
        let rate = self.done as f64 / secs;
        let left = (self.total - self.done) as f64 / rate;
        (rate.round() as u64, Some(left.ceil() as u64))
    }

    /// The pass read everything: done is the total (records added during the read raise
    /// it). Returns the closing event.
    pub fn finish(&mut self, now: Instant) -> Event {
        self.total = self.total.max(self.done);
        self.done = self.total;
        self.last_event = Some(now);
        self.event(now)
    }

    /// The progress event as of `now`.
    pub fn event(&self, now: Instant) -> Event {
        let (per_sec, eta_secs) = self.rate(now);
        Event::Progress {
            kind: self.kind,
            table: self.table.to_string(),
            done: self.done,
            total: self.total,
            per_sec,
            eta_secs,
        }
    }

    /// The log line as of `now`: `first sync of Name: 4,000 of 20,550 records (19%), 450
    /// records/s, about 37 s left`.
    pub fn line(&self, now: Instant) -> String {
        let (per_sec, eta) = self.rate(now);
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let left = eta.map_or_else(String::new, |s| format!(", about {} left", duration(s)));
        format!(
            "{} of {}: {} of {} records ({percent}%), {} records/s{left}",
            self.kind.words(),
            self.table,
            thousands(self.done),
            thousands(self.total),
            thousands(per_sec),
        )
    }
}

/// `20550` as `20,550`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `37 s`, `2 min 10 s` or `1 h 5 min`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events come at most every 500 ms and at the end; log lines at most every 10 s, with
    /// done of total, the rate and the time left.
    #[tokio::test(start_paused = true)]
    async fn ticks_are_rate_limited_and_say_rate_and_eta() {
        let start = Instant::now();
        let mut t = Tracker::new(ActivityKind::FirstSync, "Name", 20_550, start);
        let at = |ms| start + Duration::from_millis(ms);
        let first = t.advance(50, at(100));
        assert!(first.event.is_some() && first.log.is_none());
        assert_eq!(t.advance(50, at(400)), Tick::default());
        assert!(t.advance(50, at(600)).event.is_some());
        let mut logged = vec![];
        for s in 1..=20u64 {
            let tick = t.advance(200, at(s * 1000));
            logged.extend(tick.log);
        }
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert_eq!(
            logged[0],
            "first sync of Name: 2,150 of 20,550 records (10%), 215 records/s, about 1 min 26 s left"
        );
        let end = t.advance(20_550 - t.done(), at(60_000));
        assert_eq!(
            end.event,
            Some(Event::Progress {
                kind: ActivityKind::FirstSync,
                table: "Name".into(),
                done: 20_550,
                total: 20_550,
                per_sec: 343,
                eta_secs: Some(0),
            })
        );
    }

    /// Numbers and durations read as people write them.
    #[test]
    fn numbers_and_durations() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(37), "37 s");
        assert_eq!(duration(130), "2 min 10 s");
        assert_eq!(duration(3900), "1 h 5 min");
    }
}
