//! The fake server's clock, which stamps `lastmodifiedtime` and answers `Time()`. It owns the
//! two modes: manual (moves only when told: set anywhere, stepped back, jumped forward) and
//! real (follows monotonic time from a start value, through `tokio::time`, so paused tests stay
//! deterministic). It must not read the wall clock.

use std::sync::Mutex;

use crate::time::DateTime;
use tokio::time::Instant;

/// How the clock moves between explicit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClockMode {
    /// Moves only when set or advanced.
    #[default]
    Manual,
    /// Follows elapsed (monotonic) time from its last set value.
    Real,
}

/// A settable clock. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Clock {
    mode: ClockMode,
    state: Mutex<(DateTime, Instant)>,
}

impl Clock {
    /// A clock reading `start`, in `mode`.
    pub fn new(mode: ClockMode, start: DateTime) -> Clock {
        Clock {
            mode,
            state: Mutex::new((start, Instant::now())),
        }
    }

    /// The clock's mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The current time.
    pub fn now(&self) -> DateTime {
        let state = self
            .state
            .lock()
            .expect("clock lock poisoned only by a panic");
        read(self.mode, &state)
    }

    /// Sets the clock to `t` (forwards or backwards).
    pub fn set(&self, t: DateTime) {
        let mut state = self
            .state
            .lock()
            .expect("clock lock poisoned only by a panic");
        *state = (t, Instant::now());
    }

    /// Moves the clock by `secs` seconds (negative steps it back). Returns the new time.
    pub fn advance(&self, secs: i64) -> DateTime {
        let mut state = self
            .state
            .lock()
            .expect("clock lock poisoned only by a panic");
        let t = read(self.mode, &state).add_secs(secs);
        *state = (t, Instant::now());
        t
    }
}

fn read(mode: ClockMode, (base, anchor): &(DateTime, Instant)) -> DateTime {
    match mode {
        ClockMode::Manual => *base,
        ClockMode::Real => {
            let elapsed = i64::try_from(anchor.elapsed().as_secs()).unwrap_or(i64::MAX / 4);
            base.add_secs(elapsed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime {
        DateTime::parse(s).expect("valid test time")
    }

    /// A manual clock stands still while time passes, and moves both ways when told.
    #[tokio::test(start_paused = true)]
    async fn manual_clock_moves_only_when_told() {
        let clock = Clock::new(ClockMode::Manual, t("20240101120000"));
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), t("20240101120000"));
        assert_eq!(clock.advance(-3600), t("20240101110000"));
        clock.set(t("20300101000000"));
        assert_eq!(clock.now(), t("20300101000000"));
    }

    /// A real clock follows elapsed time from its last set value.
    #[tokio::test(start_paused = true)]
    async fn real_clock_follows_elapsed_time() {
        let clock = Clock::new(ClockMode::Real, t("20240101120000"));
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), t("20240101120130"));
        clock.advance(-90);
        assert_eq!(clock.now(), t("20240101120000"));
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert_eq!(clock.now(), t("20240101120005"));
    }
}
