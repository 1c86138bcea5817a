//! MoneyWorks date-times (`YYYYMMDDHHMMSS`, no zone, whole seconds). It owns parsing,
//! formatting and second arithmetic; it must not read any clock.

use std::fmt;

/// A MoneyWorks date-time: seconds since 1970-01-01 00:00:00 in the server's own (unknown)
/// zone. Only ordering and differences are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MwTime(i64);

/// A text that is not a valid `YYYYMMDDHHMMSS` date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a date-time in the form YYYYMMDDHHMMSS: {reason}")]
pub struct MwTimeError {
    /// The rejected text.
    pub text: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl MwTime {
    /// Builds a time from calendar parts; `None` when any part is out of range.
    pub fn from_parts(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<MwTime> {
        if !(1..=12).contains(&mo)
            || d == 0
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(MwTime(
            days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s),
        ))
    }

    /// Parses exactly 14 ASCII digits.
    pub fn parse(text: &str) -> Result<MwTime, MwTimeError> {
        let err = |reason| MwTimeError {
            text: text.to_string(),
            reason,
        };
        if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected exactly 14 digits"));
        }
        let n = |a: usize, b: usize| -> u32 { text[a..b].parse().unwrap_or(u32::MAX) };
        MwTime::from_parts(
            i64::from(n(0, 4)),
            n(4, 6),
            n(6, 8),
            n(8, 10),
            n(10, 12),
            n(12, 14),
        )
        .ok_or_else(|| err("a calendar part is out of range"))
    }

    /// Seconds since 1970-01-01 00:00:00.
    pub fn unix_secs(self) -> i64 {
        self.0
    }

    /// The time at `secs` seconds since 1970-01-01 00:00:00.
    pub fn from_unix_secs(secs: i64) -> MwTime {
        MwTime(secs)
    }

    /// This time moved by `secs` seconds (negative moves back).
    pub fn add_secs(self, secs: i64) -> MwTime {
        MwTime(self.0 + secs)
    }

    /// Calendar parts: (year, month, day, hour, minute, second).
    pub fn parts(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (rem / 3600) as u32,
            ((rem % 3600) / 60) as u32,
            (rem % 60) as u32,
        )
    }
}

impl fmt::Display for MwTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.parts();
        write!(f, "{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
    }
}

impl std::str::FromStr for MwTime {
    type Err = MwTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MwTime::parse(s)
    }
}

impl serde::Serialize for MwTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for MwTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MwTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Proleptic Gregorian day counting (the well-known era/day-of-era method).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formatting a parsed time gives back the same 14 digits, across leap days and years.
    #[test]
    fn round_trips_through_text() {
        for t in [
            "20240229235959",
            "19700101000000",
            "20991231120000",
            "20000301000001",
        ] {
            assert_eq!(MwTime::parse(t).expect("valid time").to_string(), t);
        }
    }

    /// Arithmetic crosses day, month and year boundaries correctly.
    #[test]
    fn adds_seconds_across_boundaries() {
        let t = MwTime::parse("20231231235959").expect("valid time");
        assert_eq!(t.add_secs(1).to_string(), "20240101000000");
        assert_eq!(t.add_secs(-86_400).to_string(), "20231230235959");
    }

    /// Malformed texts are refused with the reason.
    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "2024010112000",
            "2024013112000x",
            "20240230120000",
            "20241301000000",
            "20240101246000",
        ] {
            assert!(MwTime::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
