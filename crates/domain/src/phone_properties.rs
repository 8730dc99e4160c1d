//! Phone normalisation under arbitrary input: never a panic; every way of writing a North
//! American number gives the same E.164; a normalised number normalises to itself.

use proptest::prelude::*;

use crate::PhoneE164;

fn normalised(raw: &str) -> Option<String> {
    PhoneE164::try_from(raw).ok().map(String::from)
}

proptest! {
    #[test]
    fn any_text_is_refused_or_normalised_without_panicking(raw in "\\PC{0,40}") {
        if let Some(phone) = normalised(&raw) {
            prop_assert!(phone.starts_with('+'));
            prop_assert_eq!(normalised(&phone), Some(phone.clone()), "idempotent");
        }
    }

    #[test]
    fn every_way_of_writing_a_nanp_number_is_the_same(
        area in 200u32..1000, exchange in 200u32..1000, line in 0u32..10000, style in 0usize..6,
    ) {
        let digits = format!("{area}{exchange}{line:04}");
        let written = match style {
            0 => digits.clone(),
            1 => format!("({area}) {exchange}-{line:04}"),
            2 => format!("{area}.{exchange}.{line:04}"),
            3 => format!("+1 {area} {exchange} {line:04}"),
            4 => format!("1-{area}-{exchange}-{line:04}"),
            _ => format!("+1{digits}"),
        };
        prop_assert_eq!(normalised(&written), Some(format!("+1{digits}")));
    }

    #[test]
    fn international_numbers_keep_their_digits(digits in "[1-9][0-9]{7,14}") {
        prop_assert_eq!(normalised(&format!("+{digits}")), Some(format!("+{digits}")));
    }
}
