//! A member's phone number or email as a clerk types it: read, normalised (E.164 for a phone, lower case for an
//! email) and masked into the hint the program keeps. The value itself is never stored; the server keeps a keyed
//! digest of it.

use serde::{Deserialize, Serialize};

use crate::LoyaltyError;

/// A phone number or an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Phone,
    Email,
}

impl ContactKind {
    /// The name the database uses.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Email => "email",
        }
    }

    pub fn from_sql(kind: &str) -> Option<Self> {
        match kind {
            "phone" => Some(Self::Phone),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// As a clerk reads it: "phone number", "email".
    pub fn label(self) -> &'static str {
        match self {
            Self::Phone => "phone number",
            Self::Email => "email",
        }
    }
}

/// A contact, normalised: `+33612345678`, `ada@example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub kind: ContactKind,
    pub value: String,
}

/// The most digits E.164 allows, and the fewest a real number has with its country code.
const MAX_DIGITS: usize = 15;
const MIN_DIGITS: usize = 8;
/// The longest email address a mail system delivers to.
const MAX_EMAIL: usize = 254;

/// What a phone number may hold besides its digits and a leading `+`: the ways people group them.
fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '.' | '-' | '(' | ')' | '/' | '\u{a0}')
}

/// Whether typed text is meant as a phone number or an email rather than a code: an `@` with a dotted domain
/// after it, or digits (at least six), perhaps after a `+`, and separators. A code always starts with letters
/// and has no dot.
pub fn looks_like_contact(raw: &str) -> bool {
    let text = raw.trim();
    if let Some((_, domain)) = text.rsplit_once('@') {
        return domain.contains('.');
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    digits >= 6
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || is_phone_separator(c))
}

impl Contact {
    /// Reads a phone number or an email. A number without `+` or `00` is a national one of the country whose
    /// calling code is `calling_code` (`33`), its leading trunk `0` dropped: `06 12 34 56 78` is
    /// `+33612345678`.
    pub fn parse(raw: &str, calling_code: &str) -> Result<Self, LoyaltyError> {
        let text = raw.trim();
        if text.contains('@') {
            return Self::email(text);
        }
        Self::phone(text, calling_code)
    }

    fn email(text: &str) -> Result<Self, LoyaltyError> {
        let value = text.to_lowercase();
        let valid = value.len() <= MAX_EMAIL
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(LoyaltyError::InvalidContact);
        }
        Ok(Self {
            kind: ContactKind::Email,
            value,
        })
    }

    fn phone(text: &str, calling_code: &str) -> Result<Self, LoyaltyError> {
        let (international, body) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || is_phone_separator(c))
        {
            return Err(LoyaltyError::InvalidContact);
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        let number = if international {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else {
            format!(
                "{calling_code}{}",
                digits.strip_prefix('0').unwrap_or(&digits)
            )
        };
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&number.len()) || number.starts_with('0') {
            return Err(LoyaltyError::InvalidContact);
        }
        Ok(Self {
            kind: ContactKind::Phone,
            value: format!("+{number}"),
        })
    }

    /// What the program keeps to show: the last four digits of a phone (`... 4821`), the first character of an
    /// email and its domain (`a...@example.com`).
    pub fn hint(&self) -> String {
        match self.kind {
            ContactKind::Phone => {
                let last = &self.value[self.value.len() - 4..];
                format!("... {last}")
            }
            ContactKind::Email => {
                let (local, domain) = self.value.split_once('@').unwrap_or(("", &self.value));
                let first: String = local.chars().take(1).collect();
                format!("{first}...@{domain}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> Result<String, LoyaltyError> {
        Contact::parse(raw, "33").map(|c| {
            assert_eq!(c.kind, ContactKind::Phone);
            c.value
        })
    }

    #[test]
    fn a_phone_number_is_read_however_it_is_grouped() {
        for raw in [
            "+33 6 12 34 56 78",
            "+33612345678",
            "0033 6 12 34 56 78",
            "06 12 34 56 78",
            "06.12.34.56.78",
            "06-12-34-56-78",
            " (0)6 12 34 56 78 ",
        ] {
            assert_eq!(phone(raw).as_deref(), Ok("+33612345678"), "{raw}");
        }
        assert_eq!(
            Contact::parse("(212) 555-0142", "1").unwrap().value,
            "+12125550142",
            "a national number of a country without a trunk zero"
        );
    }

    #[test]
    fn what_is_not_a_phone_number_is_refused() {
        for raw in [
            "+33 6 12",
            "06 12 34 56 7a",
            "+",
            "",
            "+0033612345678",
            "+1234567890123456",
        ] {
            assert_eq!(phone(raw), Err(LoyaltyError::InvalidContact), "{raw}");
        }
    }

    #[test]
    fn an_email_is_lower_cased_and_checked() {
        let c = Contact::parse("  Ada.Lovelace@Example.COM ", "33").unwrap();
        assert_eq!(c.kind, ContactKind::Email);
        assert_eq!(c.value, "ada.lovelace@example.com");
        for raw in [
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
        ] {
            assert_eq!(
                Contact::parse(raw, "33"),
                Err(LoyaltyError::InvalidContact),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_hint_masks_all_but_a_little() {
        assert_eq!(
            Contact::parse("06 12 34 48 21", "33").unwrap().hint(),
            "... 4821"
        );
        assert_eq!(
            Contact::parse("ada@example.com", "33").unwrap().hint(),
            "a...@example.com"
        );
    }

    #[test]
    fn codes_are_not_taken_for_contacts() {
        assert!(looks_like_contact("06 12 34 56 78"));
        assert!(looks_like_contact("+44 20 7946 0958"));
        assert!(looks_like_contact("ada@example.com"));
        assert!(!looks_like_contact("MBR-ABCDEFGHJK"));
        assert!(!looks_like_contact("CLM-ABCD2345EFGH7"));
        assert!(!looks_like_contact("1234"));
        assert!(!looks_like_contact("PUB-222@222"), "a mangled code");
    }
}
