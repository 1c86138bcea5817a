//! MoneyWorks date-times as the simulator stores them: `YYYYMMDDHHMMSS` text, whole seconds,
//! no time zone. It owns calendar arithmetic, parsing and formatting; it must not read any
//! clock (the fake's clock lives in `fake::clock`).

use std::fmt;
use std::str::FromStr;

/// A zone-less date-time with one-second precision, counted in seconds from
/// 1970-01-01 00:00:00 of the document's own calendar. Years 0000 to 9999 parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    secs: i64,
}

/// The calendar parts of a [`DateTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, from 1.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
}

/// Text that is not a date-time of the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {form} date: {why}")]
pub struct BadTime {
    /// The refused text.
    pub text: String,
    /// The form that was expected (`YYYYMMDDHHMMSS` or `YYYYMMDD`).
    pub form: &'static str,
    /// What was wrong.
    pub why: &'static str,
}

const DAY: i64 = 86_400;
/// Days from month start to year start, by month, in a common year.
const DAYS_BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn month_length(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Leap years among the years before `year` counted from year 1 (negative before year 1,
/// so that differences stay right for the proleptic calendar).
fn leaps_before(year: i64) -> i64 {
    let p = year - 1;
    p.div_euclid(4) - p.div_euclid(100) + p.div_euclid(400)
}

/// Days from 1970-01-01 to the first of January of `year`.
fn year_start(year: i64) -> i64 {
    365 * (year - 1970) + leaps_before(year) - leaps_before(1970)
}

fn day_of_year_start(year: i64, month: u32) -> i64 {
    let leap_day = i64::from(month > 2 && is_leap(year));
    i64::from(DAYS_BEFORE_MONTH[(month - 1) as usize]) + leap_day
}

impl DateTime {
    /// The date-time with these parts, or `None` when a part is out of range.
    pub fn new(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Self> {
        let valid = (0..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=month_length(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let days = year_start(year) + day_of_year_start(year, month) + i64::from(day - 1);
        let secs = days * DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Some(DateTime { secs })
    }

    /// Parses exactly fourteen digits, `YYYYMMDDHHMMSS`.
    pub fn parse(text: &str) -> Result<DateTime, BadTime> {
        parse_digits(text, "YYYYMMDDHHMMSS")
    }

    /// Parses exactly eight digits, `YYYYMMDD`, as midnight of that day.
    pub fn parse_date(text: &str) -> Result<DateTime, BadTime> {
        parse_digits(text, "YYYYMMDD")
    }

    /// The date-time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_secs(secs: i64) -> DateTime {
        DateTime { secs }
    }

    /// Seconds after 1970-01-01 00:00:00.
    pub fn secs(self) -> i64 {
        self.secs
    }

    /// This date-time moved by `secs` seconds (negative moves it back).
    pub fn add_secs(self, secs: i64) -> DateTime {
        DateTime {
            secs: self.secs + secs,
        }
    }

    /// Midnight at the start of this date-time's day.
    pub fn midnight(self) -> DateTime {
        DateTime {
            secs: self.secs.div_euclid(DAY) * DAY,
        }
    }

    /// The calendar parts.
    pub fn civil(self) -> Civil {
        let days = self.secs.div_euclid(DAY);
        let in_day = self.secs.rem_euclid(DAY);
        let mut year = 1970 + (days * 400).div_euclid(146_097);
        while year_start(year) > days {
            year -= 1;
        }
        while year_start(year + 1) <= days {
            year += 1;
        }
        let day_of_year = days - year_start(year);
        let mut month = 12;
        while day_of_year_start(year, month) > day_of_year {
            month -= 1;
        }
        let day = day_of_year - day_of_year_start(year, month) + 1;
        Civil {
            year,
            month,
            day: u32::try_from(day).expect("a day of the month is between 1 and 31"),
            hour: u32::try_from(in_day / 3600).expect("an hour is between 0 and 23"),
            minute: u32::try_from(in_day / 60 % 60).expect("a minute is between 0 and 59"),
            second: u32::try_from(in_day % 60).expect("a second is between 0 and 59"),
        }
    }

    /// The date part as `YYYYMMDD`.
    pub fn date_text(self) -> String {
        let c = self.civil();
        format!("{:04}{:02}{:02}", c.year, c.month, c.day)
    }
}

fn parse_digits(text: &str, form: &'static str) -> Result<DateTime, BadTime> {
    let bad = |why| BadTime {
        text: text.to_string(),
        form,
        why,
    };
    if text.len() != form.len() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(if form.len() == 8 {
            "expected exactly 8 digits"
        } else {
            "expected exactly 14 digits"
        }));
    }
    let num = |from: usize, to: usize| -> u32 {
        text[from..to]
            .bytes()
            .fold(0, |n, b| n * 10 + u32::from(b - b'0'))
    };
    let (hour, minute, second) = if form.len() == 14 {
        (num(8, 10), num(10, 12), num(12, 14))
    } else {
        (0, 0, 0)
    };
    DateTime::new(
        i64::from(num(0, 4)),
        num(4, 6),
        num(6, 8),
        hour,
        minute,
        second,
    )
    .ok_or_else(|| bad("a part of the date or time is out of range"))
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.civil();
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

impl FromStr for DateTime {
    type Err = BadTime;

    fn from_str(s: &str) -> Result<DateTime, BadTime> {
        DateTime::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants convert both ways: the epoch, a leap day, the end of a century year
    /// that is not a leap year, and year 2000 that is.
    #[test]
    fn known_instants() {
        for (text, secs) in [
            ("19700101000000", 0),
            ("20240229235959", 1_709_251_199),
            ("19000301000000", -2_203_891_200),
            ("20000229120000", 951_825_600),
            ("19691231235959", -1),
        ] {
            let t = DateTime::parse(text).expect(text);
            assert_eq!(t.secs(), secs, "{text}");
            assert_eq!(DateTime::from_secs(secs).to_string(), text);
        }
    }

    /// Every day of four centuries formats back to the digits it was parsed from.
    #[test]
    fn every_day_round_trips() {
        let mut t = DateTime::parse("18991225000000").expect("valid").secs();
        let end = DateTime::parse("23000105000000").expect("valid").secs();
        let mut last = String::new();
        while t < end {
            let text = DateTime::from_secs(t + 3_723).to_string();
            assert!(text > last, "{text} after {last}");
            assert_eq!(DateTime::parse(&text).map(DateTime::secs), Ok(t + 3_723));
            last = text;
            t += DAY;
        }
    }

    /// Impossible dates and malformed text are refused with the reason.
    #[test]
    fn refuses_bad_text() {
        for bad in [
            "20230229000000",
            "20241301000000",
            "20240100000000",
            "20240101240000",
            "2024010112000",
            "2024-01-01 00:",
            "",
        ] {
            assert!(DateTime::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DateTime::parse_date("20240229").map(|t| t.to_string()),
            Ok("20240229000000".to_string())
        );
        let e = DateTime::parse_date("2024022").expect_err("7 digits");
        assert!(e.to_string().contains("YYYYMMDD"), "{e}");
    }

    /// Midnight, the date text and second arithmetic across a year end.
    #[test]
    fn arithmetic() {
        let t = DateTime::parse("20241231235959").expect("valid");
        assert_eq!(t.add_secs(1).to_string(), "20250101000000");
        assert_eq!(t.midnight().to_string(), "20241231000000");
        assert_eq!(t.date_text(), "20241231");
        assert_eq!(t.civil().second, 59);
    }
}
