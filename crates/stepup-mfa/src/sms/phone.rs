//! Phone numbers in E.164: validation, the country calling code, and the masked form every
//! answer and log line shows (`+1*****6789`).

/// A validated E.164 number: `+`, then 8 to 15 digits, the first not `0`.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `input` (spaces, dashes, dots and parentheses between digits are ignored).
    /// `None` when it is not an E.164 number.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > 32 {
            return None;
        }
        let rest = input.trim().strip_prefix('+')?;
        let digits: String = rest
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        valid.then(|| Self(format!("+{digits}")))
    }

    /// The number, `+` and digits (personal data: never log it).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ITU country calling code (1 to 3 digits, without the `+`).
    pub fn country_code(&self) -> &str {
        country_code(&self.0[1..])
    }

    /// The masked form: the country code, five stars, the last four digits (`+1*****6789`).
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let last = &digits[digits.len() - 4..];
        format!("+{}*****{last}", self.country_code())
    }
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The country calling code at the start of `digits` (ITU-T E.164 assignments: zones 1 and 7
/// have one digit; the listed two-digit codes; every other code has three).
fn country_code(digits: &str) -> &str {
    const TWO_DIGITS: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with(['1', '7']) {
        &digits[..1]
    } else if TWO_DIGITS.contains(&&digits[..2]) {
        &digits[..2]
    } else {
        &digits[..3]
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn e164_numbers_are_validated() {
        for good in [
            "+15551236789",
            "+44 7700 900123",
            "+49-30-1234567",
            "+35312345678",
        ] {
            assert!(PhoneNumber::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "15551236789",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1555abc6789",
            "++15551236789",
            "+",
        ] {
            assert!(PhoneNumber::parse(bad).is_none(), "{bad}");
        }
        assert!(PhoneNumber::parse(&"+1".repeat(1000)).is_none());
    }

    #[test]
    fn numbers_are_masked_with_their_country_code() {
        let us = PhoneNumber::parse("+1 555 123 6789").unwrap();
        assert_eq!(us.as_str(), "+15551236789");
        assert_eq!(us.masked(), "+1*****6789");
        assert_eq!(format!("{us:?}"), "+1*****6789");
        assert_eq!(
            PhoneNumber::parse("+447700900123").unwrap().masked(),
            "+44*****0123"
        );
        assert_eq!(
            PhoneNumber::parse("+35312345678").unwrap().country_code(),
            "353"
        );
    }
}
