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

    /// The IANA name, when the zone has one (Google wants it beside event times).
    pub fn iana_name(&self) -> Option<&'static str> {
        match self {
            Self::Named(tz) => Some(tz.name()),
            Self::Fixed(_) => None,
        }
    }

    /// The local date at `at`.
    pub fn date_at(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            Self::Named(tz) => at.with_timezone(tz).date_naive(),
            Self::Fixed(offset) => at.with_timezone(offset).date_naive(),
        }
    }

    /// The instant of an input time: RFC 3339 with an offset as given; a naive
    /// `YYYY-MM-DDTHH:MM[:SS]` read in this zone (the earlier of two when the clock falls back).
    ///
    /// # Errors
    /// Unreadable, or a naive time the zone skips (the clock springs forward over it).
    pub fn parse_instant(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
            return Ok(at.with_timezone(&Utc));
        }
        let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|format| chrono::NaiveDateTime::parse_from_str(raw, format).ok())
            .ok_or_else(|| {
                "must be an RFC 3339 time, or YYYY-MM-DDTHH:MM in the company's time zone"
                    .to_owned()
            })?;
        let local = match self {
            Self::Named(tz) => tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|at| at.with_timezone(&Utc)),
            Self::Fixed(offset) => offset
                .from_local_datetime(&naive)
                .earliest()
                .map(|at| at.with_timezone(&Utc)),
        };
        local.ok_or_else(|| {
            format!("{raw} does not exist in the company's time zone (a clock change skips it)")
        })
    }

    /// The zone of `tenant`'s company (UTC when it has none or an unreadable one).
    ///
    /// # Errors
    /// On database failure.
    pub async fn of_company(
        conn: &impl sea_orm::ConnectionTrait,
        tenant: &otto_domain::TenantId,
    ) -> Result<Self, sea_orm::DbErr> {
        use sea_orm::EntityTrait;
        let company = otto_db::entities::company::Entity::find_by_id(tenant.as_str())
            .one(conn)
            .await?;
        Ok(Self::parse(
            company.as_ref().map_or("UTC", |c| c.time_zone.as_str()),
        ))
    }

    /// The instant of a local wall-clock time (the earlier one when the clock falls back; a time
    /// the clock springs over moves to the first quarter hour that exists).
    pub fn at_local(&self, local: chrono::NaiveDateTime) -> DateTime<Utc> {
        match self {
            Self::Fixed(offset) => first_existing(offset, local),
            Self::Named(tz) => first_existing(tz, local),
        }
    }

    /// The local wall-clock time at `at`.
    pub fn local_at(&self, at: DateTime<Utc>) -> chrono::NaiveDateTime {
        match self {
            Self::Named(tz) => at.with_timezone(tz).naive_local(),
            Self::Fixed(offset) => at.with_timezone(offset).naive_local(),
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
    fn naive_times_are_read_in_the_zone_on_both_sides_of_a_clock_change() -> TestResult {
        let chicago = Zone::parse("America/Chicago");
        // 2026-11-01 02:00 CDT falls back to 01:00 CST.
        let before = chicago.parse_instant("2026-10-31T09:00")?;
        let after = chicago.parse_instant("2026-11-02T09:00:00")?;
        assert_eq!(before.to_rfc3339(), "2026-10-31T14:00:00+00:00");
        assert_eq!(after.to_rfc3339(), "2026-11-02T15:00:00+00:00");
        let ambiguous = chicago.parse_instant("2026-11-01T01:30")?;
        assert_eq!(
            ambiguous.to_rfc3339(),
            "2026-11-01T06:30:00+00:00",
            "the earlier 01:30"
        );
        // 2026-03-08 02:00 CST springs forward to 03:00 CDT: 02:30 does not exist.
        assert!(chicago.parse_instant("2026-03-08T02:30").is_err());
        let offset = chicago.parse_instant("2026-11-02T09:00:00-05:00")?;
        assert_eq!(
            offset.to_rfc3339(),
            "2026-11-02T14:00:00+00:00",
            "an offset wins"
        );
        assert!(chicago.parse_instant("tomorrow").is_err());
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
