//! Webhook signature verification, each on the raw body with the provider's documented
//! algorithm, compared in constant time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// How far a signed timestamp may be from now (Svix and UWC).
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signed timestamp is outside the 5-minute window")]
    Stale,
    #[error("no secret is configured to verify this provider")]
    NotConfigured,
}

fn hmac_verify<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// Twilio `X-Twilio-Signature`: base64 HMAC-SHA1 (auth token) of the full URL followed by every
/// form parameter's name and value, sorted by name.
pub fn twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = STANDARD
        .decode(header.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    if hmac_verify::<Hmac<Sha1>>(auth_token.as_bytes(), &[signed.as_bytes()], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Svix (Clerk webhooks): `svix-signature` holds space-separated `v1,<base64>` entries, each an
/// HMAC-SHA256 of `"{svix-id}.{svix-timestamp}.{body}"` keyed with the base64 part of a
/// `whsec_...` secret. Any configured secret (old and new during a rotation) matching any entry
/// passes, within 5 minutes of `now`.
pub fn svix(
    secrets: &[String],
    id: Option<&str>,
    timestamp: Option<&str>,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(header)) = (id, timestamp, header) else {
        return Err(SignatureError::Missing);
    };
    fresh(timestamp, now)?;
    let candidates: Vec<Vec<u8>> = header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .collect();
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    for secret in secrets {
        let Ok(key) = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)) else {
            continue;
        };
        if candidates
            .iter()
            .any(|sig| hmac_verify::<Hmac<Sha256>>(&key, &signed, sig))
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// UWC/Shunya: `X-UWC-Signature` = hex HMAC-SHA256 of `"{X-UWC-Timestamp}.{body}"`, 5-minute window.
pub fn uwc(
    secret: &str,
    timestamp: Option<&str>,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(header)) = (timestamp, header) else {
        return Err(SignatureError::Missing);
    };
    fresh(timestamp, now)?;
    let expected = hex(header.trim()).ok_or(SignatureError::Mismatch)?;
    if hmac_verify::<Hmac<Sha256>>(
        secret.as_bytes(),
        &[timestamp.as_bytes(), b".", body],
        &expected,
    ) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// CallRail `Signature`: base64 HMAC-SHA1 of the body with the company's signing key.
pub fn callrail(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let expected = STANDARD
        .decode(header.ok_or(SignatureError::Missing)?.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    if hmac_verify::<Hmac<Sha1>>(secret.as_bytes(), &[body], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Bland `X-Webhook-Signature`: hex HMAC-SHA256 of the body.
pub fn bland(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let expected =
        hex(header.ok_or(SignatureError::Missing)?.trim()).ok_or(SignatureError::Mismatch)?;
    if hmac_verify::<Hmac<Sha256>>(secret.as_bytes(), &[body], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn fresh(timestamp: &str, now: i64) -> Result<(), SignatureError> {
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Stale)?;
    if (now - at).abs() <= TOLERANCE_SECONDS {
        Ok(())
    } else {
        Err(SignatureError::Stale)
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The signatures providers put on their deliveries, for `otto-api replay-webhook` and tests.
pub mod sign {
    use super::*;

    pub fn twilio(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let signed: String = std::iter::once(url.to_owned())
            .chain(sorted.iter().map(|(k, v)| format!("{k}{v}")))
            .collect();
        STANDARD.encode(mac::<Hmac<Sha1>>(
            auth_token.as_bytes(),
            &[signed.as_bytes()],
        ))
    }

    /// The `svix-signature` header value (`v1,<base64>`).
    pub fn svix(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .unwrap_or_default();
        format!(
            "v1,{}",
            STANDARD.encode(mac::<Hmac<Sha256>>(
                &key,
                &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
            ))
        )
    }

    /// The scheme the UWC client signs its own requests with.
    pub fn uwc(secret: &str, timestamp: &str, body: &[u8]) -> String {
        otto_integrations::uwc::signature(secret, timestamp, body)
    }

    pub fn callrail(secret: &str, body: &[u8]) -> String {
        STANDARD.encode(mac::<Hmac<Sha1>>(secret.as_bytes(), &[body]))
    }

    pub fn bland(secret: &str, body: &[u8]) -> String {
        hex_hmac_sha256(secret.as_bytes(), &[body])
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of `bytes` (body fingerprints in idempotency keys and output hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    to_hex(&Sha256::digest(bytes))
}

/// Hex HMAC-SHA256 (Bland's signature scheme).
pub fn hex_hmac_sha256(key: &[u8], parts: &[&[u8]]) -> String {
    to_hex(&mac::<Hmac<Sha256>>(key, parts))
}

#[cfg(test)]
mod tests {
    //! Vectors from `../shared/test-vectors/`, made by the providers' own libraries
    //! (twilio-python `RequestValidator`, svix-python `Webhook.sign`). The first Twilio case is the
    //! example of Twilio's security documentation; the first Svix case is Svix's documented one.
    use serde_json::Value;

    use super::*;

    fn vectors(name: &str) -> Value {
        let path = format!(
            "{}/../../../shared/test-vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn s(v: &Value) -> &str {
        v.as_str().unwrap_or_default()
    }

    #[test]
    fn twilio_vectors_verify_and_tampering_fails() {
        let cases = vectors("twilio.json");
        let cases = cases["cases"].as_array().cloned().unwrap_or_default();
        assert!(cases.len() >= 3);
        for case in cases {
            let mut params: Vec<(String, String)> = case["params"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), s(v).to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let (token, url, sig) = (
                s(&case["auth_token"]),
                s(&case["url"]),
                s(&case["signature"]),
            );
            assert_eq!(twilio(token, url, &params, Some(sig)), Ok(()), "{url}");
            assert_eq!(
                twilio("wrong", url, &params, Some(sig)),
                Err(SignatureError::Mismatch)
            );
            params.push(("Extra".into(), "1".into()));
            assert_eq!(
                twilio(token, url, &params, Some(sig)),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                twilio(token, url, &params, None),
                Err(SignatureError::Missing)
            );
        }
    }

    #[test]
    fn svix_vectors_verify_with_their_clock_and_not_with_ours() {
        let cases = vectors("svix.json");
        let cases = cases["cases"].as_array().cloned().unwrap_or_default();
        assert!(cases.len() >= 2);
        for case in cases {
            let (id, ts, body, sig) = (
                s(&case["svix_id"]),
                s(&case["svix_timestamp"]),
                s(&case["body"]),
                s(&case["svix_signature"]),
            );
            let signed_at: i64 = ts.parse().unwrap_or_default();
            let secret = vec![s(&case["secret"]).to_owned()];
            assert_eq!(
                svix(
                    &secret,
                    Some(id),
                    Some(ts),
                    Some(sig),
                    body.as_bytes(),
                    signed_at + 10
                ),
                Ok(())
            );
            // Rotation: old and new secrets side by side, several signatures in one header.
            let rotated = vec!["whsec_bmV3LXNlY3JldA==".to_owned(), secret[0].clone()];
            let header = format!("v1,bm90LWl0 {sig}");
            assert_eq!(
                svix(
                    &rotated,
                    Some(id),
                    Some(ts),
                    Some(&header),
                    body.as_bytes(),
                    signed_at
                ),
                Ok(())
            );
            let tampered = format!("{body} ");
            assert_eq!(
                svix(
                    &secret,
                    Some(id),
                    Some(ts),
                    Some(sig),
                    tampered.as_bytes(),
                    signed_at
                ),
                Err(SignatureError::Mismatch)
            );
            // With the real clock the vectors (signed in the past) are outside the window.
            let now = chrono::Utc::now().timestamp();
            assert_eq!(
                svix(&secret, Some(id), Some(ts), Some(sig), body.as_bytes(), now),
                Err(SignatureError::Stale)
            );
        }
    }

    #[test]
    fn uwc_vector_verifies_within_its_window() {
        let cases = vectors("uwc.json");
        let case = &cases["cases"][0];
        let (secret, ts, body, sig) = (
            s(&case["secret"]),
            s(&case["timestamp"]),
            s(&case["body"]),
            s(&case["signature"]),
        );
        let at: i64 = ts.parse().unwrap_or_default();
        assert_eq!(
            uwc(secret, Some(ts), Some(sig), body.as_bytes(), at + 299),
            Ok(())
        );
        assert_eq!(
            uwc(secret, Some(ts), Some(sig), body.as_bytes(), at + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            uwc("other", Some(ts), Some(sig), body.as_bytes(), at),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            hex_hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body.as_bytes()]),
            sig
        );
    }

    #[test]
    fn callrail_and_bland_sign_the_body() {
        let body = br#"{"call_id":"c1"}"#;
        let b64 = {
            let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(b"k") else {
                return;
            };
            mac.update(body);
            STANDARD.encode(mac.finalize().into_bytes())
        };
        assert_eq!(callrail("k", Some(&b64), body), Ok(()));
        assert_eq!(
            callrail("k", Some(&b64), b"{}"),
            Err(SignatureError::Mismatch)
        );
        let hex_sig = hex_hmac_sha256(b"k", &[body]);
        assert_eq!(bland("k", Some(&hex_sig), body), Ok(()));
        assert_eq!(bland("k", Some("zz"), body), Err(SignatureError::Mismatch));
    }
}
