//! Secrets at rest (provider refresh tokens): AES-256-GCM under `ENCRYPTION_KEY` (32 bytes,
//! base64). A sealed value is `v1.{key id}.{base64url(nonce || ciphertext || tag)}`, where the key
//! id is the first 8 hex digits of the key's SHA-256, so a new key can be introduced while rows
//! sealed under an older one (listed in `ENCRYPTION_KEYS_PREVIOUS`) still open. The owner of the
//! value (its company id) is bound as associated data: a ciphertext copied into another
//! company's row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const VERSION: &str = "v1";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("an encryption key must be 32 bytes in base64: {0}")]
    BadKey(String),
    #[error("the sealed value is not in the v1.{{key id}}.{{data}} form")]
    Malformed,
    #[error("no configured key has id {0} (is it missing from ENCRYPTION_KEYS_PREVIOUS?)")]
    UnknownKey(String),
    #[error("the sealed value does not open (tampered, or sealed for another owner)")]
    Rejected,
    #[error("the system random source failed")]
    Random,
}

struct Key {
    id: String,
    key: LessSafeKey,
}

/// The current key (seals) and the previous ones (open only).
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn key_from_base64(encoded: &str) -> Result<Key, CryptoError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|e| CryptoError::BadKey(e.to_string()))?;
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::BadKey(format!(
            "{} bytes, not {KEY_LEN}",
            bytes.len()
        )));
    }
    let id = digest(&SHA256, &bytes)
        .as_ref()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let unbound =
        UnboundKey::new(&AES_256_GCM, &bytes).map_err(|e| CryptoError::BadKey(e.to_string()))?;
    Ok(Key {
        id,
        key: LessSafeKey::new(unbound),
    })
}

impl Keyring {
    /// `current` seals; `previous` (comma-separated) only open.
    ///
    /// # Errors
    /// A key that is not 32 bytes of base64.
    pub fn new(current: &str, previous: &str) -> Result<Self, CryptoError> {
        Ok(Self {
            current: key_from_base64(current)?,
            previous: previous
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(key_from_base64)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Encrypts `plain` for `owner`.
    ///
    /// # Errors
    /// When the random source fails.
    pub fn seal(&self, owner: &str, plain: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut data = plain.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .map_err(|_| CryptoError::Rejected)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Decrypts a value [`seal`](Self::seal) made for `owner`, under whichever configured key
    /// sealed it.
    ///
    /// # Errors
    /// A malformed value, an unknown key id, or a value that does not open.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Rejected)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Rejected)
    }
}

/// 32 random bytes in base64url: tokens and `state` values that must not be guessed.
///
/// # Errors
/// When the random source fails.
pub fn random_token() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of `value` (stored in place of a secret that is only ever compared).
pub fn sha256_hex(value: &str) -> String {
    digest(&SHA256, value.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec()
}

/// Whether `tag` is the HMAC-SHA256 of `data` under `key` (compared in constant time).
pub fn verify_hmac_sha256(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::verify(&key, data, tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const OLD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const NEW: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn a_sealed_value_opens_for_its_owner_only() -> TestResult {
        let keys = Keyring::new(OLD, "")?;
        let sealed = keys.seal("org_a", "1//refresh-token")?;
        assert!(!sealed.contains("refresh"), "{sealed}");
        assert!(sealed.starts_with(&format!("v1.{}.", keys.current_id())));
        assert_eq!(keys.open("org_a", &sealed)?, "1//refresh-token");
        assert_eq!(keys.open("org_b", &sealed), Err(CryptoError::Rejected));
        assert_ne!(
            keys.seal("org_a", "1//refresh-token")?,
            sealed,
            "fresh nonce"
        );
        Ok(())
    }

    #[test]
    fn a_tampered_value_is_rejected() -> TestResult {
        let keys = Keyring::new(OLD, "")?;
        let sealed = keys.seal("org_a", "secret")?;
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered)?;
        assert_eq!(keys.open("org_a", &tampered), Err(CryptoError::Rejected));
        assert_eq!(keys.open("org_a", "nonsense"), Err(CryptoError::Malformed));
        Ok(())
    }

    #[test]
    fn rotation_keeps_old_values_open_and_seals_with_the_new_key() -> TestResult {
        let before = Keyring::new(OLD, "")?;
        let sealed_before = before.seal("org_a", "old")?;
        let rotated = Keyring::new(NEW, OLD)?;
        assert_eq!(rotated.open("org_a", &sealed_before)?, "old");
        let sealed_after = rotated.seal("org_a", "new")?;
        assert!(sealed_after.starts_with(&format!("v1.{}.", rotated.current_id())));
        assert!(matches!(
            before.open("org_a", &sealed_after),
            Err(CryptoError::UnknownKey(_))
        ));
        Ok(())
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(matches!(
            Keyring::new("c2hvcnQ=", ""),
            Err(CryptoError::BadKey(_))
        ));
        assert!(matches!(
            Keyring::new(OLD, "not base64!"),
            Err(CryptoError::BadKey(_))
        ));
    }
}
