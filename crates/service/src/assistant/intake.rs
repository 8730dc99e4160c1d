//! The deterministic intake script's reading of what a caller says (SPEC section 16): names,
//! phone numbers, times in the company's time zone, and the few intents a receptionist needs
//! (transfer, leave a message, yes, no, "the second one"). Used without a model, and as the
//! fallback when the model fails.
//!
//! Times: a day (`today`, `tomorrow`, `the day after tomorrow`, a weekday, optionally `this`/
//! `next`/`on`, meaning its first occurrence after today; `December 3rd`, `Dec 3`, `3rd of
//! December`, `12/3`, `2026-12-03`) and a time of day (`10am`, `10:30 p.m.`, `15:00`, `3:30`,
//! `at 3`, `noon`, `morning` 9:00, `afternoon` 13:00, `evening` 17:00). A bare hour without
//! am/pm is a business hour: 7-11 morning, 12-6 afternoon. A day without a time is 9:00; a time
//! without a day is today if still ahead, else tomorrow.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use otto_domain::PhoneE164;
use regex::Regex;

use crate::zone::Zone;

/// What one utterance asks for, beyond the facts it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Transfer,
    Message,
    Yes,
    No,
    /// "the second one": an offered slot, from 0.
    Choice(usize),
}

fn regex(pattern: &str) -> Regex {
    // The patterns below are constants checked by the unit tests.
    Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
}

static AMPM: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b"));
static CLOCK: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{1,2}):(\d{2})\b"));
static AT_HOUR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:at|around|by)\s+(\d{1,2})(?:\s*o'?clock)?\b(?:[^:\d]|$)"));
static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{4})-(\d{2})-(\d{2})\b"));
static SLASH_DATE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b"));
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b",
    )
});
static DAY_OF_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(\d{1,2})(?:st|nd|rd|th)?\s+of\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b",
    )
});
static WEEKDAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday|rsday)?\b")
});
static NAME_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:my name is|my name's|name is|this is|i am|i'm|it's|call me)\s+([a-z][a-z'\-]*(?:\s+[a-z][a-z'\-]*){0,2})",
    )
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| regex(r"\+?[\d][\d\s().\-]{8,}\d"));

/// Lower case, `a.m.` as `am`, punctuation other than `:` `/` `-` `+` `'` as spaces.
fn normalise(text: &str) -> String {
    let lower = text
        .to_lowercase()
        .replace("a.m.", "am")
        .replace("p.m.", "pm")
        .replace("a. m.", "am")
        .replace("p. m.", "pm");
    lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ':' | '/' | '-' | '+' | '\'') {
                c
            } else {
                ' '
            }
        })
        .collect()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    MONTHS
        .iter()
        .position(|m| name.starts_with(m))
        .and_then(|i| u32::try_from(i + 1).ok())
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.get(..3)? {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// A month and day without a year: this year, or next if it has passed.
fn upcoming(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this_year >= today {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    }
}

fn capture_u32(caps: &regex::Captures<'_>, i: usize) -> Option<u32> {
    caps.get(i)?.as_str().parse().ok()
}

fn parse_day(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if text.contains("day after tomorrow") {
        return Some(today + Duration::days(2));
    }
    if text.contains("tomorrow") || text.contains("tmrw") {
        return Some(today + Duration::days(1));
    }
    if text.contains("today")
        || text.contains("tonight")
        || text.contains("this afternoon")
        || text.contains("this evening")
        || text.contains("this morning")
    {
        return Some(today);
    }
    if let Some(c) = ISO_DATE.captures(text) {
        let year = c.get(1)?.as_str().parse().ok()?;
        return NaiveDate::from_ymd_opt(year, capture_u32(&c, 2)?, capture_u32(&c, 3)?);
    }
    if let Some(c) = MONTH_DAY.captures(text) {
        return upcoming(
            today,
            month_number(c.get(1)?.as_str())?,
            capture_u32(&c, 2)?,
        );
    }
    if let Some(c) = DAY_OF_MONTH.captures(text) {
        return upcoming(
            today,
            month_number(c.get(2)?.as_str())?,
            capture_u32(&c, 1)?,
        );
    }
    if let Some(c) = SLASH_DATE.captures(text) {
        let (month, day) = (capture_u32(&c, 1)?, capture_u32(&c, 2)?);
        return match c.get(3).and_then(|y| y.as_str().parse::<i32>().ok()) {
            Some(year) if year < 100 => NaiveDate::from_ymd_opt(2000 + year, month, day),
            Some(year) => NaiveDate::from_ymd_opt(year, month, day),
            None => upcoming(today, month, day),
        };
    }
    if let Some(c) = WEEKDAY.captures(text) {
        let wanted = weekday(c.get(1)?.as_str())?;
        let ahead = (7 + i64::from(wanted.num_days_from_monday())
            - i64::from(today.weekday().num_days_from_monday()))
            % 7;
        let ahead = if ahead == 0 { 7 } else { ahead };
        return Some(today + Duration::days(ahead));
    }
    None
}

/// A bare hour is a business hour: 7-11 in the morning, 12 and 1-6 in the afternoon.
fn business_hour(hour: u32) -> u32 {
    if (1..=6).contains(&hour) {
        hour + 12
    } else {
        hour
    }
}

fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    if let Some(c) = AMPM.captures(text) {
        let hour = capture_u32(&c, 1)?;
        let minute = capture_u32(&c, 2).unwrap_or(0);
        if !(1..=12).contains(&hour) {
            return None;
        }
        let hour = match (c.get(3)?.as_str(), hour) {
            ("am", 12) => 0,
            ("am", h) => h,
            ("pm", 12) => 12,
            (_, h) => h + 12,
        };
        return NaiveTime::from_hms_opt(hour, minute, 0);
    }
    if let Some(c) = CLOCK.captures(text) {
        let hour = capture_u32(&c, 1)?;
        let hour = if hour <= 12 {
            business_hour(hour)
        } else {
            hour
        };
        return NaiveTime::from_hms_opt(hour, capture_u32(&c, 2)?, 0);
    }
    if has_word(text, &["noon", "midday"]) {
        return NaiveTime::from_hms_opt(12, 0, 0);
    }
    if let Some(c) = AT_HOUR.captures(text) {
        let hour = capture_u32(&c, 1)?;
        if (1..=12).contains(&hour) {
            return NaiveTime::from_hms_opt(business_hour(hour), 0, 0);
        }
    }
    for (word, hour) in [
        ("morning", 9),
        ("afternoon", 13),
        ("evening", 17),
        ("tonight", 18),
    ] {
        if text.contains(word) {
            return NaiveTime::from_hms_opt(hour, 0, 0);
        }
    }
    None
}

/// The time an utterance asks for, as an instant, if it names a day or a time of day.
pub fn parse_time(text: &str, now: DateTime<Utc>, zone: &Zone) -> Option<DateTime<Utc>> {
    let text = normalise(text);
    let today = zone.date_at(now);
    let day = parse_day(&text, today);
    let time = parse_time_of_day(&text);
    let nine = NaiveTime::from_hms_opt(9, 0, 0)?;
    match (day, time) {
        (None, None) => None,
        (Some(day), None) => Some(zone.at_local(day.and_time(nine))),
        (Some(day), Some(time)) => Some(zone.at_local(day.and_time(time))),
        (None, Some(time)) => {
            let later_today = zone.at_local(today.and_time(time));
            if later_today > now {
                Some(later_today)
            } else {
                Some(zone.at_local((today + Duration::days(1)).and_time(time)))
            }
        }
    }
}

/// The first phone number in the text, in E.164.
pub fn parse_phone(text: &str) -> Option<PhoneE164> {
    PHONE
        .find_iter(text)
        .find_map(|m| PhoneE164::try_from(m.as_str().trim()).ok())
}

fn title_case(words: &str) -> String {
    words
        .split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Greetings and fillers dropped before a bare name is read.
const FILLERS: [&str; 8] = ["hi", "hello", "hey", "um", "uh", "yes", "yeah", "it's"];
/// Words that make an answer not a name ("my AC is broken").
const NOT_NAMES: [&str; 30] = [
    "no",
    "ok",
    "okay",
    "sure",
    "calling",
    "looking",
    "interested",
    "here",
    "good",
    "fine",
    "the",
    "a",
    "an",
    "my",
    "i",
    "need",
    "want",
    "please",
    "is",
    "are",
    "was",
    "it",
    "not",
    "for",
    "to",
    "and",
    "of",
    "with",
    "about",
    "broken",
];

/// A name: from "my name is ...", "this is ...", "I'm ..."; or, when the question was the
/// caller's name (`asked`), one to three words of letters.
pub fn parse_name(text: &str, asked: bool) -> Option<String> {
    if let Some(c) = NAME_PHRASE.captures(text) {
        let words: Vec<&str> = c
            .get(1)?
            .as_str()
            .split_whitespace()
            .take_while(|w| !NOT_NAMES.contains(&w.to_lowercase().as_str()))
            .collect();
        if !words.is_empty() {
            return Some(title_case(&words.join(" ")));
        }
    }
    if !asked {
        return None;
    }
    let cleaned = normalise(text);
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .filter(|w| !FILLERS.contains(w))
        .collect();
    let name_like = |w: &&str| {
        !NOT_NAMES.contains(w)
            && w.chars()
                .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
    };
    if (1..=3).contains(&words.len()) && words.iter().all(name_like) {
        Some(title_case(&words.join(" ")))
    } else {
        None
    }
}

fn has_word(text: &str, words: &[&str]) -> bool {
    text.split_whitespace().any(|w| words.contains(&w))
}

/// The intent an utterance carries, if any; `offered` is how many slots were offered.
pub fn parse_intent(text: &str, offered: usize) -> Option<Intent> {
    let text = normalise(text);
    let phrase = |phrases: &[&str]| phrases.iter().any(|p| text.contains(p));
    if phrase(&[
        "human",
        "real person",
        "representative",
        "operator",
        "transfer",
        "speak to someone",
        "talk to someone",
        "speak with someone",
        "talk to a person",
        "speak to a person",
        "agent",
    ]) {
        return Some(Intent::Transfer);
    }
    if phrase(&[
        "leave a message",
        "take a message",
        "leave message",
        "call me back",
    ]) {
        return Some(Intent::Message);
    }
    if offered > 0 {
        let ordinals: [(&[&str], usize); 4] = [
            (&["first", "1st"], 0),
            (&["second", "2nd"], 1),
            (&["third", "3rd"], 2),
            (&["last"], offered - 1),
        ];
        let cardinals: [(&[&str], usize); 3] =
            [(&["one", "1"], 0), (&["two", "2"], 1), (&["three", "3"], 2)];
        for (words, index) in ordinals.into_iter().chain(cardinals) {
            if index < offered && has_word(&text, words) {
                return Some(Intent::Choice(index));
            }
        }
    }
    if has_word(&text, &["no", "nope", "neither", "none"])
        || phrase(&[
            "another time",
            "different time",
            "doesn't work",
            "does not work",
        ])
    {
        return Some(Intent::No);
    }
    if has_word(
        &text,
        &[
            "yes", "yeah", "yep", "sure", "ok", "okay", "correct", "perfect", "great",
        ],
    ) || phrase(&["that works", "sounds good", "works for me"])
    {
        return Some(Intent::Yes);
    }
    None
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
