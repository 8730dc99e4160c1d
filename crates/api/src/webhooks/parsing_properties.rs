//! Webhook parsing under arbitrary input: signatures, form bodies and JSON bodies never panic;
//! a signature Otto computes verifies, and any change to what was signed is refused.

use proptest::prelude::*;

use super::signature::{self, sign};
use super::{json_body, text_of};

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z]{1,12}", "\\PC{0,20}"), 0..8)
}

proptest! {
    #[test]
    fn twilio_signatures_round_trip_and_refuse_changes(
        token in "[a-f0-9]{32}", path in "/[a-z/]{0,20}", params in pairs(), extra in "\\PC{1,10}",
    ) {
        let url = format!("https://otto.example.com{path}");
        let header = sign::twilio(&token, &url, &params);
        prop_assert!(signature::twilio(&token, &url, &params, Some(&header)).is_ok());
        let mut changed = params.clone();
        changed.push(("Extra".to_owned(), extra));
        prop_assert!(signature::twilio(&token, &url, &changed, Some(&header)).is_err());
        let other_url = format!("{url}x");
        prop_assert!(signature::twilio(&token, &other_url, &params, Some(&header)).is_err());
    }

    #[test]
    fn arbitrary_signature_headers_are_refused_without_panicking(header in "\\PC{0,120}", body in prop::collection::vec(any::<u8>(), 0..64)) {
        let params = vec![("Body".to_owned(), "hi".to_owned())];
        let _ = signature::twilio("token", "https://x", &params, Some(&header));
        let _ = signature::callrail("secret", Some(&header), &body);
        let _ = signature::bland("secret", Some(&header), &body);
        let _ = signature::svix(&["whsec_c2VjcmV0".to_owned()], Some(&header), Some("1700000000"), Some(&header), &body, 1_700_000_000);
    }

    #[test]
    fn hmac_signatures_round_trip(secret in "\\PC{1,20}", body in prop::collection::vec(any::<u8>(), 0..128)) {
        prop_assert!(signature::callrail(&secret, Some(&sign::callrail(&secret, &body)), &body).is_ok());
        prop_assert!(signature::bland(&secret, Some(&sign::bland(&secret, &body)), &body).is_ok());
    }

    #[test]
    fn form_and_json_bodies_never_panic(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&raw);
        if let Ok(body) = json_body(&raw) {
            for key in ["company_id", "call_id", "id", "call"] {
                let _ = text_of(body.get(key));
            }
        }
    }

    #[test]
    fn provider_ids_are_read_as_strings_or_numbers(id in any::<i64>(), text in "[A-Za-z0-9_-]{1,30}") {
        prop_assert_eq!(text_of(Some(&serde_json::json!(id))), Some(id.to_string()));
        prop_assert_eq!(text_of(Some(&serde_json::json!(format!(" {text} ")))), Some(text.clone()));
    }
}
