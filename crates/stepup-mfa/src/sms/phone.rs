//! Phone numbers in E.164: validation, the country calling code, the region a number belongs to
//! (ISO 3166, from libphonenumber's metadata), and the masked form every answer and log line
//! shows (`+1*****6789`).

use std::fmt;
use std::str::FromStr;

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

    /// The region the number belongs to (`GB`, `US`, `CA`…), by the numbering plans of
    /// libphonenumber's metadata: one calling code can serve several regions (`+1` serves the
    /// United States, Canada and the Caribbean), told apart by the number's leading digits.
    /// `None` when no region's plan holds the number (a non-geographic number, or one outside
    /// every plan).
    pub fn region(&self) -> Option<Region> {
        let number = self.0.as_str();
        // The number is `+` and 8 to 15 digits; the metadata look-up is guarded all the same, so
        // a fault in it refuses the number rather than failing the request.
        let id = std::panic::catch_unwind(|| {
            phonenumber::parse(None, number)
                .ok()
                .and_then(|parsed| parsed.country().id())
        })
        .ok()
        .flatten()?;
        Region::from_str(id.as_ref()).ok()
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

/// A region code (ISO 3166-1 alpha-2, as libphonenumber's metadata names regions: `GB`, `DE`,
/// `US`, `CA`), for the SMS allow-list ([`SmsPolicy::allowed_regions`](super::SmsPolicy)).
/// Unlike a calling code, a region is one country: `US` admits numbers of the United States
/// only, not every country sharing `+1`.
///
/// ```
/// use stepup_mfa::sms::{PhoneNumber, Region};
///
/// let gb: Region = "gb".parse().unwrap();
/// assert_eq!(gb.as_str(), "GB");
/// assert!("44".parse::<Region>().is_err(), "a calling code is not a region");
/// assert!("ZZ".parse::<Region>().is_err(), "no such region");
/// let ottawa = PhoneNumber::parse("+1 613 555 0123").unwrap();
/// assert_eq!(ottawa.region(), Some("CA".parse().unwrap()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region([u8; 2]);

impl Region {
    /// The two upper-case letters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;

    /// Two letters, either case, naming a region libphonenumber's metadata knows.
    fn from_str(input: &str) -> Result<Self, UnknownRegion> {
        let code = input.trim().to_ascii_uppercase();
        let letters: [u8; 2] = code
            .as_bytes()
            .try_into()
            .ok()
            .filter(|letters: &[u8; 2]| letters.iter().all(u8::is_ascii_uppercase))
            .ok_or(UnknownRegion)?;
        phonenumber::country::Id::from_str(&code).map_err(|_| UnknownRegion)?;
        Ok(Self(letters))
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A region code that is not two letters naming a known region (a calling code such as `44` is
/// not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a region code (two letters, ISO 3166-1 alpha-2, such as GB or US)")]
pub struct UnknownRegion;

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
    use super::{PhoneNumber, Region};

    fn region_of(number: &str) -> Option<String> {
        PhoneNumber::parse(number)
            .unwrap()
            .region()
            .map(|region| region.as_str().to_owned())
    }

    #[test]
    fn regions_are_told_apart_within_one_calling_code() {
        // +1: the United States, Canada and the Caribbean share the code.
        assert_eq!(region_of("+1 202 555 0143").as_deref(), Some("US"));
        assert_eq!(region_of("+1 613 555 0123").as_deref(), Some("CA"));
        assert_eq!(region_of("+1 876 555 0123").as_deref(), Some("JM"));
        // +44: the United Kingdom, and Guernsey and Jersey beside it.
        assert_eq!(region_of("+44 7911 123456").as_deref(), Some("GG"));
        assert_eq!(region_of("+44 7400 123456").as_deref(), Some("GB"));
        assert_eq!(region_of("+44 1534 555123").as_deref(), Some("JE"));
        assert_eq!(region_of("+49 30 1234567").as_deref(), Some("DE"));
        // A non-geographic number (an international freephone) has no region.
        assert_eq!(region_of("+800 1234 5678"), None);
    }

    #[test]
    fn region_codes_are_two_known_letters() {
        assert_eq!("us".parse::<Region>().unwrap().as_str(), "US");
        assert_eq!(" DE ".parse::<Region>().unwrap().to_string(), "DE");
        for bad in ["", "1", "44", "USA", "ZZ", "U1", "ü", "GBR", "+1"] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
    }

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
