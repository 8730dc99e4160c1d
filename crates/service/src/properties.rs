//! The service layer's parsers under arbitrary input: cursors and times never panic, and a
//! cursor written by the service reads back as the same cursor.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use crate::appointments::ListCursor;
use crate::assistant::intake;
use crate::tasks::TaskCursor;
use crate::timeline::Cursor;
use crate::zone::Zone;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

proptest! {
    #[test]
    fn cursors_refuse_garbage_without_panicking(raw in "\\PC{0,80}") {
        let _ = ListCursor::decode(&raw);
        let _ = TaskCursor::decode(&raw);
        let _ = Cursor::decode(&raw);
    }

    #[test]
    fn cursors_read_back_as_written(nanos in any::<i64>(), id in any::<u128>(), kind in 0usize..5) {
        let id = Uuid::from_u128(id).simple().to_string();
        let list = format!("{nanos}.{id}");
        prop_assert_eq!(ListCursor::decode(&list).map(|c| c.encode()), Some(list));
        let task = format!("{nanos}.{id}");
        prop_assert_eq!(TaskCursor::decode(&task).map(|c| c.encode()), Some(task));
        let undated = format!("-.{id}");
        prop_assert_eq!(TaskCursor::decode(&undated).map(|c| c.encode()), Some(undated));
        let kind = ["call", "message", "appointment", "task", "followup"][kind];
        let timeline = format!("{nanos}.{kind}.{id}");
        prop_assert_eq!(Cursor::decode(&timeline).map(|c| c.encode()), Some(timeline));
    }

    #[test]
    fn times_and_utterances_never_panic(raw in "\\PC{0,60}", zone in prop::sample::select(vec![
        "America/Chicago", "Europe/London", "Asia/Kolkata", "-06:00", "UTC", "nonsense",
    ])) {
        let zone = Zone::parse(zone);
        let _ = zone.parse_instant(&raw);
        let _ = intake::parse_time(&raw, now(), &zone);
        let _ = intake::parse_phone(&raw);
        let _ = intake::parse_name(&raw, true);
        let _ = intake::parse_intent(&raw, 3);
    }

    #[test]
    fn spoken_times_parse_in_every_zone(day in 1u32..29, hour in 1u32..13, minute in 0u32..60, pm in any::<bool>()) {
        let said = format!("December {day} at {hour}:{minute:02} {}", if pm { "pm" } else { "am" });
        for zone in ["America/Chicago", "Europe/London", "Australia/Sydney"] {
            prop_assert!(intake::parse_time(&said, now(), &Zone::parse(zone)).is_some(), "{said} in {zone}");
        }
    }
}
