//! Masks personal data in log text: phone numbers (`+1******7890`), e-mail addresses
//! (`j***@example.com`) and bearer tokens (`Bearer ***`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

static BEARER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*").ok());
static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").ok()
});
static PHONE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().\-]{6,}\d").ok());

/// Phone numbers have 10 to 15 digits (E.164); shorter runs are counts, ports, years.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 10..=15;

pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Some(re) = BEARER.as_ref() {
        out = replace(out, re, |_| Some("Bearer ***".to_owned()));
    }
    if let Some(re) = EMAIL.as_ref() {
        out = replace(out, re, mask_email);
    }
    if let Some(re) = PHONE.as_ref() {
        out = replace(out, re, mask_phone);
    }
    out
}

/// Replaces each match of `re` for which `mask` returns a value, leaving the rest untouched.
fn replace<'a>(
    text: Cow<'a, str>,
    re: &Regex,
    mask: impl Fn(&str) -> Option<String>,
) -> Cow<'a, str> {
    let mut result = String::new();
    let mut last = 0;
    for found in re.find_iter(&text) {
        if !stands_alone(&text, found.start(), found.end()) {
            continue;
        }
        let Some(masked) = mask(found.as_str()) else {
            continue;
        };
        result.push_str(&text[last..found.start()]);
        result.push_str(&masked);
        last = found.end();
    }
    if last == 0 {
        return text;
    }
    result.push_str(&text[last..]);
    Cow::Owned(result)
}

/// A match glued to letters, digits or '-' is part of a bigger token (a UUID, a hash): leave it.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(glued) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
}

fn mask_email(email: &str) -> Option<String> {
    let (local, domain) = email.split_once('@')?;
    let first = local.chars().next()?;
    Some(format!("{first}***@{domain}"))
}

fn mask_phone(candidate: &str) -> Option<String> {
    let digits: Vec<char> = candidate.chars().filter(char::is_ascii_digit).collect();
    if !PHONE_DIGITS.contains(&digits.len()) {
        return None;
    }
    let plus = if candidate.starts_with('+') { "+" } else { "" };
    let last4: String = digits[digits.len() - 4..].iter().collect();
    Some(format!(
        "{plus}{}{}{last4}",
        digits[0],
        "*".repeat(digits.len() - 5)
    ))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn phones_in_several_formats_are_masked() {
        let cases = [
            ("call +15551237890 now", "call +1******7890 now"),
            ("from (555) 123-7890.", "from 5*****7890."),
            ("to 555.123.7890", "to 5*****7890"),
            ("to +44 20 7946 0958", "to +4*******0958"),
            ("tel 1-555-123-7890", "tel 1******7890"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_that_are_not_phones_are_left_alone() {
        for text in [
            "took 1234 ms",
            "port 8000",
            "id 0196f1a2-3b4c-7d8e-9f00-123456789012",
            "trace 4bf92f3577b34da6a3ce929d0e0e4736",
            "2026-11-22",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(
            redact("user jane.doe@example.com signed up"),
            "user j***@example.com signed up"
        );
        assert_eq!(redact("a@b.co"), "a***@b.co");
    }

    #[test]
    fn bearer_tokens_are_masked() {
        assert_eq!(
            redact("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
            "Authorization: Bearer ***"
        );
        assert_eq!(redact("bearer abc123=="), "Bearer ***");
    }
}
