use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A phone number in E.164 form (`+15551234567`). Numbers written without a country code are
/// read as North American (the product's market): 10 digits, or 11 starting with 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for PhoneE164 {
    type Error = DomainError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let raw = raw.trim();
        let allowed =
            |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '+');
        if raw.is_empty() || !raw.chars().all(allowed) || raw.rfind('+').is_some_and(|at| at > 0) {
            return Err(DomainError::invalid(
                "phone",
                "must be a phone number such as +15551234567",
            ));
        }
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let international = raw.starts_with('+');
        let e164 = match (international, digits.len()) {
            (true, 8..=15) if !digits.starts_with('0') => format!("+{digits}"),
            (false, 10) if !digits.starts_with(['0', '1']) => format!("+1{digits}"),
            (false, 11) if digits.starts_with('1') => format!("+{digits}"),
            _ => {
                return Err(DomainError::invalid(
                    "phone",
                    "must be a phone number such as +15551234567",
                ));
            }
        };
        Ok(Self(e164))
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::try_from(raw.as_str())
    }
}

impl From<PhoneE164> for String {
    fn from(value: PhoneE164) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formats_normalise() {
        for (raw, e164) in [
            ("+15551234567", "+15551234567"),
            ("(555) 123-4567", "+15551234567"),
            ("555.123.4567", "+15551234567"),
            ("1-555-123-4567", "+15551234567"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(
                PhoneE164::try_from(raw).map(String::from).as_deref(),
                Ok(e164),
                "{raw}"
            );
        }
    }

    #[test]
    fn garbage_is_refused() {
        for raw in ["", "12345", "555-CALL-NOW", "+0123456789", "55+5123456"] {
            assert!(PhoneE164::try_from(raw).is_err(), "{raw}");
        }
    }
}
