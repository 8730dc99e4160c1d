//! A company's time zone (SPEC section 13): an IANA name or a fixed offset such as `-06:00`,
//! falling back to UTC. Local days start at local midnight (or, where a zone skips midnight, at
//! the first local time that exists that day).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

impl Zone {
    pub fn parse(name: &str) -> Self {
        if let Ok(tz) = name.parse::<Tz>() {
            return Self::Named(tz);
        }
        match name.parse::<FixedOffset>() {
            Ok(offset) => Self::Fixed(offset),
            Err(_) => Self::Named(Tz::UTC),
        }
    }

    /// The local date at `at`.
    pub fn date_at(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            Self::Named(tz) => at.with_timezone(tz).date_naive(),
            Self::Fixed(offset) => at.with_timezone(offset).date_naive(),
        }
    }

    /// When local `date` begins, in UTC.
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_time(NaiveTime::MIN);
        match self {
            Self::Fixed(offset) => first_existing(offset, midnight),
            Self::Named(tz) => first_existing(tz, midnight),
        }
    }
}

/// The earliest instant of `local`, or of the first quarter hour after it that exists (a gap).
fn first_existing<Z: TimeZone>(zone: &Z, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    (0..=8)
        .map(|quarters| local + TimeDelta::minutes(15 * quarters))
        .find_map(|candidate| zone.from_local_datetime(&candidate).earliest())
        .map_or_else(|| local.and_utc(), |at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, String> {
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("{y}-{m}-{d}"))
    }

    #[test]
    fn names_offsets_and_nonsense_parse() -> TestResult {
        assert_eq!(
            Zone::parse("America/Chicago"),
            Zone::Named(Tz::America__Chicago)
        );
        let six_west = FixedOffset::west_opt(6 * 3600).ok_or("offset")?;
        assert_eq!(Zone::parse("-06:00"), Zone::Fixed(six_west));
        assert_eq!(Zone::parse("Mars/Olympus"), Zone::Named(Tz::UTC));
        Ok(())
    }

    #[test]
    fn chicago_days_start_at_local_midnight_across_daylight_saving() -> TestResult {
        let chicago = Zone::parse("America/Chicago");
        // CDT (UTC-5) before 2026-11-01, CST (UTC-6) after.
        assert_eq!(
            chicago.start_of(date(2026, 10, 31)?).to_rfc3339(),
            "2026-10-31T05:00:00+00:00"
        );
        assert_eq!(
            chicago.start_of(date(2026, 11, 2)?).to_rfc3339(),
            "2026-11-02T06:00:00+00:00"
        );
        let late_evening: DateTime<Utc> = "2026-11-10T05:30:00Z".parse()?;
        assert_eq!(chicago.date_at(late_evening), date(2026, 11, 9)?);
        Ok(())
    }

    #[test]
    fn a_zone_that_skips_midnight_starts_the_day_at_its_first_instant() -> TestResult {
        // Santiago moves its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = Zone::parse("America/Santiago");
        let start = santiago.start_of(date(2026, 9, 6)?);
        assert_eq!(santiago.date_at(start), date(2026, 9, 6)?);
        assert_eq!(
            santiago.date_at(start - TimeDelta::seconds(1)),
            date(2026, 9, 5)?
        );
        Ok(())
    }
}
