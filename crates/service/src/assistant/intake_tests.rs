use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Thursday 2026-10-29 16:00 UTC: 11:00 CDT in Chicago (which falls back to CST on Sunday
/// 2026-11-01), 16:00 GMT in London (already on GMT since 2026-10-25).
fn now() -> Result<DateTime<Utc>, chrono::ParseError> {
    Ok(DateTime::parse_from_rfc3339("2026-10-29T16:00:00Z")?.to_utc())
}

#[test]
fn times_are_read_in_the_company_zone() -> TestResult {
    let chicago = Zone::parse("America/Chicago");
    let london = Zone::parse("Europe/London");
    let cases: [(&Zone, &str, Option<&str>); 36] = [
        (&chicago, "tomorrow at 10am", Some("2026-10-30T15:00:00Z")),
        (
            &chicago,
            "Tomorrow at 10 a.m.",
            Some("2026-10-30T15:00:00Z"),
        ),
        (&chicago, "Friday 3pm", Some("2026-10-30T20:00:00Z")),
        (
            &chicago,
            "next Monday morning",
            Some("2026-11-02T15:00:00Z"),
        ),
        (&chicago, "Sunday at 3pm", Some("2026-11-01T21:00:00Z")),
        (&chicago, "Saturday at 2", Some("2026-10-31T19:00:00Z")),
        (&chicago, "today at 4:30pm", Some("2026-10-29T21:30:00Z")),
        (&chicago, "at 9", Some("2026-10-30T14:00:00Z")),
        (&chicago, "3:30", Some("2026-10-29T20:30:00Z")),
        (&chicago, "noon tomorrow", Some("2026-10-30T17:00:00Z")),
        (
            &chicago,
            "the day after tomorrow in the afternoon",
            Some("2026-10-31T18:00:00Z"),
        ),
        (
            &chicago,
            "December 3rd at 2pm",
            Some("2026-12-03T20:00:00Z"),
        ),
        (&chicago, "Dec 3 at 2:15 pm", Some("2026-12-03T20:15:00Z")),
        (
            &chicago,
            "3rd of December, 11am",
            Some("2026-12-03T17:00:00Z"),
        ),
        (&chicago, "12/3 at 10am", Some("2026-12-03T16:00:00Z")),
        (&chicago, "2026-12-03 14:00", Some("2026-12-03T20:00:00Z")),
        (
            &chicago,
            "on Wednesday evening",
            Some("2026-11-04T23:00:00Z"),
        ),
        (
            &chicago,
            "this Thursday at 11",
            Some("2026-11-05T17:00:00Z"),
        ),
        (&chicago, "Monday", Some("2026-11-02T15:00:00Z")),
        (&chicago, "tomorrow", Some("2026-10-30T14:00:00Z")),
        (&chicago, "1/15 at 9am", Some("2027-01-15T15:00:00Z")),
        (
            &chicago,
            "October 30 at 8:00 am",
            Some("2026-10-30T13:00:00Z"),
        ),
        (&chicago, "this afternoon", Some("2026-10-29T18:00:00Z")),
        (
            &chicago,
            "I'm free Friday around 1",
            Some("2026-10-30T18:00:00Z"),
        ),
        // The clock springs over 02:30 on 2027-03-14: the first time that exists.
        (
            &chicago,
            "March 14th at 2:30am",
            Some("2027-03-14T08:00:00Z"),
        ),
        // 01:30 happens twice on 2026-11-01: the earlier (CDT).
        (&chicago, "Sunday at 1:30am", Some("2026-11-01T06:30:00Z")),
        (&chicago, "12pm on Friday", Some("2026-10-30T17:00:00Z")),
        (&chicago, "hello there", None),
        (&chicago, "my number is 555 123 4567", None),
        (&london, "tomorrow at 10am", Some("2026-10-30T10:00:00Z")),
        (&london, "Friday 3pm", Some("2026-10-30T15:00:00Z")),
        (&london, "next Monday morning", Some("2026-11-02T09:00:00Z")),
        (&london, "at 9", Some("2026-10-30T09:00:00Z")),
        (&london, "today at 5pm", Some("2026-10-29T17:00:00Z")),
        (&london, "at 3pm", Some("2026-10-30T15:00:00Z")),
        (&london, "tuesday 9:15", Some("2026-11-03T09:15:00Z")),
    ];
    let now = now()?;
    let mut wrong = Vec::new();
    for (zone, said, expected) in cases {
        let got = parse_time(said, now, zone)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        if got.as_deref() != expected {
            wrong.push(format!(
                "{said:?} in {zone:?}: {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

#[test]
fn phones_names_and_intents_are_read() {
    let phones: [(&str, Option<&str>); 5] = [
        ("my number is 555 123 4567", Some("+15551234567")),
        ("(555) 987-6543", Some("+15559876543")),
        ("call me at +44 20 7946 0958", Some("+442079460958")),
        ("it's 1-555-222-3333", Some("+15552223333")),
        ("no number here", None),
    ];
    for (said, expected) in phones {
        assert_eq!(
            parse_phone(said).map(String::from).as_deref(),
            expected,
            "{said}"
        );
    }
    let names: [(&str, bool, Option<&str>); 8] = [
        ("My name is John Smith", false, Some("John Smith")),
        (
            "this is jane doe calling about my AC",
            false,
            Some("Jane Doe"),
        ),
        ("I'm Maria", false, Some("Maria")),
        ("Bob Lee", true, Some("Bob Lee")),
        ("hi, it's Tom", false, Some("Tom")),
        ("my AC is broken", true, None),
        ("Hello, Priya Patel", true, Some("Priya Patel")),
        ("I'm looking for a plumber", false, None),
    ];
    for (said, asked, expected) in names {
        assert_eq!(parse_name(said, asked).as_deref(), expected, "{said}");
    }
    let intents: [(&str, usize, Option<Intent>); 10] = [
        ("Can I speak to a real person?", 0, Some(Intent::Transfer)),
        ("I'd like to leave a message", 0, Some(Intent::Message)),
        ("the second one", 3, Some(Intent::Choice(1))),
        ("the first one please", 3, Some(Intent::Choice(0))),
        ("the last one", 3, Some(Intent::Choice(2))),
        ("let's do 2", 3, Some(Intent::Choice(1))),
        ("yes that works", 3, Some(Intent::Yes)),
        ("neither", 3, Some(Intent::No)),
        ("sounds good", 3, Some(Intent::Yes)),
        ("my furnace is making noise", 0, None),
    ];
    for (said, offered, expected) in intents {
        assert_eq!(parse_intent(said, offered), expected, "{said}");
    }
}
