//! The sync state on `main` (`.mwsync/state.toml`) and the pure marker arithmetic: where the
//! next query starts, what a clock regression does to it, and what a checkpoint may record.
//! It must not do I/O; the state changes only in the same commit as the records it covers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::FullSyncMode;
use crate::mwtime::MwTime;

/// The state file on `main`.
pub const STATE_PATH: &str = ".mwsync/state.toml";

/// Seconds re-read before the estimated point of a backwards clock step.
pub const REGRESSION_MARGIN_SECS: i64 = 60;

/// How far the server clock may lag monotonic time between two readings (request latency,
/// rounding to whole seconds) before it counts as stepped back.
pub const CLOCK_SLACK_SECS: i64 = 5;

/// How far back to re-read after a clock regression whose size cannot be bounded (the
/// daemon restarted since it last read the clock): one day. The fingerprint scan covers
/// anything older.
pub const UNBOUNDED_REGRESSION_RESCAN_SECS: i64 = 86_400;

/// Per-table sync state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TableState {
    /// Every record modified before this time is on `main`. The next poll queries
    /// `LastModifiedTime >= marker - lookback`. Never later than the server's clock.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub marker: Option<MwTime>,
    /// The largest LastModifiedTime committed, exactly as the server wrote it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub newest_modified: Option<MwTime>,
    /// Sequence numbers committed with exactly `newest_modified`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub newest_seqs: Vec<u64>,
    /// The server clock at the poll that last wrote this table's state.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_time: Option<MwTime>,
    /// Server time of the last completed fingerprint scan.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fingerprint_time: Option<MwTime>,
    /// True once a pass has read the whole table: the first sync is finished. Until then a
    /// marker only says how far an interrupted first sync got, and no scan is due.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub complete: bool,
}

/// What the last full sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FullSyncState {
    /// The `full_sync.request` value it answered.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub request: String,
    /// `apply` or `check`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<FullSyncMode>,
    /// Server time when it finished.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finished: Option<MwTime>,
    /// Records that differed.
    #[serde(default)]
    pub differences: u64,
}

/// The layout of record paths on `main` this version writes (`docs/paths.md`): 2 is three
/// shard levels of at most 100 entries. A state file without `layout` was written with
/// layout 1 (two levels of 1,000), whose files mwsync moves before anything else.
pub const CURRENT_LAYOUT: u32 = 2;

/// The layout of a state file that names none.
fn first_layout() -> u32 {
    1
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncState {
    /// The layout of the record paths on `main` ([`CURRENT_LAYOUT`] once moved).
    #[serde(default = "first_layout")]
    pub layout: u32,
    /// Per table, by internal name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableState>,
    /// The last full sync.
    #[serde(default)]
    pub full_sync: FullSyncState,
}

impl Default for SyncState {
    /// The state of a `main` without records: nothing to move, so the current layout.
    fn default() -> SyncState {
        SyncState {
            layout: CURRENT_LAYOUT,
            tables: BTreeMap::new(),
            full_sync: FullSyncState::default(),
        }
    }
}

impl SyncState {
    /// Parses the state file; `origin` names where it came from.
    pub fn parse(text: &str, origin: &str) -> Result<SyncState, String> {
        let state: SyncState = toml::from_str(text)
            .map_err(|e| format!("{origin} is not a valid mwsync state file: {e}"))?;
        if !(1..=CURRENT_LAYOUT).contains(&state.layout) {
            return Err(format!(
                "{origin} names layout {}, which this mwsync does not know (it writes layout {CURRENT_LAYOUT}); a newer mwsync wrote it",
                state.layout
            ));
        }
        Ok(state)
    }

    /// The canonical text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self)
            .expect("the state always serialises because it holds only plain values");
        format!(
            "# mwsync sync state. Written only by mwsync, in the same commit as the records it covers.\n{body}"
        )
    }

    /// The state of `table`, default when absent.
    pub fn table(&self, table: &str) -> TableState {
        self.tables.get(table).cloned().unwrap_or_default()
    }

    /// The state of `table` to change, created empty when absent.
    pub fn table_mut(&mut self, table: &str) -> &mut TableState {
        self.tables.entry(table.to_string()).or_default()
    }
}

/// How the clock reading of this poll relates to what the state remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockCheck {
    /// The clock did not go backwards and the marker is not ahead of it.
    Normal,
    /// The clock went backwards or the marker is ahead of it; the marker moves back.
    Regressed {
        /// The previous reading (or the marker, when that is what was ahead).
        previous: MwTime,
        /// This reading.
        now: MwTime,
        /// The marker before.
        old_marker: Option<MwTime>,
        /// Where scanning restarts.
        new_marker: MwTime,
    },
}

/// Decides whether the server clock regressed and where scanning must restart.
///
/// `elapsed_secs` is the monotonic time since the previous reading in this process, when
/// known. After a backwards step, edits are stamped from the step target, which is no
/// earlier than `now - elapsed`; without that bound mwsync re-reads
/// [`UNBOUNDED_REGRESSION_RESCAN_SECS`].
pub fn check_clock(
    state: &TableState,
    last_reading: Option<MwTime>,
    now: MwTime,
    elapsed_secs: Option<u64>,
) -> ClockCheck {
    if state.marker.is_none() {
        // Nothing read yet: the next pass reads everything whatever the clock says.
        return ClockCheck::Normal;
    }
    let previous = [last_reading, state.server_time]
        .into_iter()
        .flatten()
        .max();
    let ahead = |t: Option<MwTime>| t.is_some_and(|t| t > now);
    // A step back smaller than the time since the last reading leaves the clock ahead of
    // that reading, but behind where it should be: the server moved less than monotonic time.
    let expected = last_reading
        .zip(elapsed_secs)
        .map(|(t, e)| t.add_secs(i64::try_from(e).unwrap_or(0)));
    let fell_behind = expected.is_some_and(|e| now.add_secs(CLOCK_SLACK_SECS) < e);
    if !(ahead(previous) || ahead(state.marker) || fell_behind) {
        return ClockCheck::Normal;
    }
    let back = elapsed_secs
        .filter(|_| last_reading.is_some())
        .map_or(UNBOUNDED_REGRESSION_RESCAN_SECS, |e| {
            i64::try_from(e).unwrap_or(i64::MAX / 4)
        });
    let rescan_from = now.add_secs(-back - REGRESSION_MARGIN_SECS);
    let new_marker = state.marker.map_or(rescan_from, |m| m.min(rescan_from));
    let previous = previous
        .into_iter()
        .chain(state.marker)
        .chain(expected.filter(|_| fell_behind))
        .max()
        .unwrap_or(now);
    ClockCheck::Regressed {
        previous,
        now,
        old_marker: state.marker,
        new_marker,
    }
}

/// The tables whose state on `main` (`committed`) is ahead of the server clock `now`, its
/// marker or its clock reading, while the state a poll leaves (`current`) no longer is: a
/// commit of the state alone puts them right, so a restart does not take the old reading
/// for a new step back and re-read again. Each comes with what `main` said.
pub fn behind_main(
    committed: &SyncState,
    current: &SyncState,
    now: MwTime,
) -> Vec<(String, MwTime)> {
    let ahead = |st: &TableState| st.marker.max(st.server_time).filter(|t| *t > now);
    committed
        .tables
        .iter()
        .filter_map(|(name, st)| {
            let said = ahead(st)?;
            ahead(&current.table(name))
                .is_none()
                .then(|| (name.clone(), said))
        })
        .collect()
}

/// Where a poll's first query starts: the marker less the look-back, or everything.
pub fn query_start(marker: Option<MwTime>, lookback_secs: u64) -> Option<MwTime> {
    marker.map(|m| m.add_secs(-i64::try_from(lookback_secs).unwrap_or(0)))
}

/// The marker a checkpoint may record: everything before `frontier` is committed, and the
/// marker never passes the server's clock.
pub fn checkpoint_marker(frontier: Option<MwTime>, now: MwTime) -> Option<MwTime> {
    frontier.map(|f| f.min(now))
}

/// Folds committed records' modification times into `newest_modified` / `newest_seqs`.
pub fn note_committed(state: &mut TableState, committed: impl IntoIterator<Item = (MwTime, u64)>) {
    for (t, seq) in committed {
        match state.newest_modified {
            Some(n) if t < n => {}
            Some(n) if t == n => {
                if !state.newest_seqs.contains(&seq) {
                    state.newest_seqs.push(seq);
                    state.newest_seqs.sort_unstable();
                }
            }
            _ => {
                state.newest_modified = Some(t);
                state.newest_seqs = vec![seq];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> MwTime {
        MwTime::parse(s).expect("valid test time")
    }

    /// Only a table `main` says is ahead of the clock, and that the poll put right, needs
    /// the state committed; one still ahead (its pass failed) or never ahead does not.
    #[test]
    fn behind_main_names_what_a_state_commit_fixes() {
        let at = |marker: &str, server: &str| TableState {
            marker: Some(t(marker)),
            server_time: Some(t(server)),
            ..Default::default()
        };
        let state = |tables: &[(&str, TableState)]| SyncState {
            tables: tables
                .iter()
                .map(|(n, st)| (n.to_string(), st.clone()))
                .collect(),
            ..Default::default()
        };
        let now = t("20240101110000");
        let committed = state(&[
            ("Name", at("20240101115900", "20240101120000")),
            ("Job", at("20240101105900", "20240101120000")),
            ("Product", at("20240101115900", "20240101120000")),
            ("Account", at("20240101105000", "20240101105500")),
        ]);
        let current = state(&[
            ("Name", at("20240101110000", "20240101110000")),
            ("Job", at("20240101110000", "20240101110000")),
            // Its pass failed: rolled back, still ahead.
            ("Product", at("20240101115900", "20240101120000")),
            ("Account", at("20240101110000", "20240101110000")),
        ]);
        assert_eq!(
            behind_main(&committed, &current, now),
            vec![
                ("Job".to_string(), t("20240101120000")),
                ("Name".to_string(), t("20240101120000")),
            ]
        );
        // A poll that put nothing right (every table still ahead) commits nothing for it.
        assert!(behind_main(&committed, &committed, now).is_empty());
    }

    /// A forward-moving clock leaves the marker alone.
    #[test]
    fn normal_clock_keeps_marker() {
        let st = TableState {
            marker: Some(t("20240101100000")),
            server_time: Some(t("20240101100000")),
            ..Default::default()
        };
        assert_eq!(
            check_clock(
                &st,
                Some(t("20240101100000")),
                t("20240101101000"),
                Some(600)
            ),
            ClockCheck::Normal
        );
    }

    /// A one-hour step back moves the marker to before the step, bounded by elapsed time.
    #[test]
    fn step_back_rescans_from_before_the_step() {
        let st = TableState {
            marker: Some(t("20240101120000")),
            server_time: Some(t("20240101120000")),
            ..Default::default()
        };
        let ClockCheck::Regressed { new_marker, .. } = check_clock(
            &st,
            Some(t("20240101120000")),
            t("20240101110500"),
            Some(300),
        ) else {
            panic!("a step back must be detected");
        };
        assert_eq!(new_marker, t("20240101105900"));
    }

    /// After a restart (no monotonic bound) the rescan reaches back a whole day.
    #[test]
    fn regression_after_restart_rescans_a_day() {
        let st = TableState {
            marker: Some(t("20240102120000")),
            server_time: Some(t("20240102120000")),
            ..Default::default()
        };
        let ClockCheck::Regressed { new_marker, .. } =
            check_clock(&st, None, t("20240102110000"), None)
        else {
            panic!("marker ahead of the clock must be detected");
        };
        assert_eq!(new_marker, t("20240101105900"));
    }

    /// A few seconds of NTP correction is still a regression, with a small rescan.
    #[test]
    fn small_step_is_detected() {
        let st = TableState {
            marker: Some(t("20240101120005")),
            server_time: Some(t("20240101120005")),
            ..Default::default()
        };
        let check = check_clock(
            &st,
            Some(t("20240101120005")),
            t("20240101120002"),
            Some(10),
        );
        assert!(
            matches!(check, ClockCheck::Regressed { new_marker, .. } if new_marker == t("20240101115852"))
        );
    }

    /// A step back smaller than the time between polls is still caught: the server clock
    /// moved less than monotonic time did.
    #[test]
    fn step_back_within_the_interval_is_detected() {
        let p = t("20240101120000");
        let st = TableState {
            marker: Some(p),
            server_time: Some(p),
            ..Default::default()
        };
        // 600 s passed, but the clock shows only 300 s more: it was stepped back 300 s.
        let ClockCheck::Regressed { new_marker, .. } =
            check_clock(&st, Some(p), p.add_secs(300), Some(600))
        else {
            panic!("a step back within the interval must be detected");
        };
        // Edits stamped from the step target (no earlier than now - 600 s) are re-read.
        assert!(new_marker <= p.add_secs(300 - 600), "{new_marker}");
        // A clock that keeps pace (within the slack) is normal.
        assert_eq!(
            check_clock(&st, Some(p), p.add_secs(597), Some(600)),
            ClockCheck::Normal
        );
    }

    /// A table never read has no marker to move, even when the clock went back (seed 211).
    #[test]
    fn regression_before_first_sync_keeps_reading_everything() {
        let st = TableState {
            server_time: Some(t("20240101120000")),
            ..Default::default()
        };
        assert_eq!(
            check_clock(&st, Some(t("20240101120000")), t("20240101115958"), Some(5)),
            ClockCheck::Normal
        );
    }

    /// Checkpoint markers never pass the server clock.
    #[test]
    fn checkpoint_marker_is_capped() {
        assert_eq!(
            checkpoint_marker(Some(t("20240101130000")), t("20240101120000")),
            Some(t("20240101120000"))
        );
        assert_eq!(
            checkpoint_marker(Some(t("20240101110000")), t("20240101120000")),
            Some(t("20240101110000"))
        );
    }

    /// The newest stamp and its sequence numbers track ties.
    #[test]
    fn newest_tracks_ties() {
        let mut st = TableState::default();
        note_committed(
            &mut st,
            [
                (t("20240101000001"), 5),
                (t("20240101000002"), 7),
                (t("20240101000002"), 3),
                (t("20240101000000"), 9),
            ],
        );
        assert_eq!(st.newest_modified, Some(t("20240101000002")));
        assert_eq!(st.newest_seqs, vec![3, 7]);
    }

    /// The state file round-trips and refuses unknown keys with the origin named.
    #[test]
    fn state_file_round_trips() {
        let mut s = SyncState::default();
        s.tables.insert(
            "Name".into(),
            TableState {
                marker: Some(t("20240101000000")),
                ..Default::default()
            },
        );
        assert_eq!(SyncState::parse(&s.to_toml(), "x").expect("parses"), s);
        let err = SyncState::parse(
            "[tables.Name]\nmarkr = \"20240101000000\"\n",
            ".mwsync/state.toml",
        )
        .expect_err("typo");
        assert!(
            err.contains(".mwsync/state.toml") && err.contains("markr"),
            "{err}"
        );
        assert_eq!(
            SyncState::parse("[tables.Name]\n", "x")
                .expect("old")
                .layout,
            1,
            "a state without layout is layout 1"
        );
        for unknown in ["layout = 3\n", "layout = 0\n"] {
            let err = SyncState::parse(unknown, ".mwsync/state.toml").expect_err("unknown");
            assert!(
                err.contains(".mwsync/state.toml") && err.contains("does not know"),
                "{err}"
            );
        }
    }
}
