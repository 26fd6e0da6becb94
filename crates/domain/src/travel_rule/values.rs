//! Values of a declaration: names, countries and Legal Entity Identifiers.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{ErrorCode, RuleViolation};

/// A person's or an organisation's name: trimmed, 1 to 140 Unicode scalar values, none a
/// control (Cc) or format (Cf) character.
///
/// ```
/// use domain::PersonName;
/// assert_eq!(PersonName::parse("  Zoë Ødegård ").unwrap().as_str(), "Zoë Ødegård");
/// assert!(PersonName::parse("   ").is_err());
/// assert!(PersonName::parse("Eve\u{202e}").is_err()); // a right-to-left override (Cf)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonName(String);

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Nothing but white space.
    #[error("a name cannot be empty")]
    Empty,
    /// More than 140 characters after trimming.
    #[error("a name is at most {} characters", PersonName::MAX_CHARS)]
    TooLong,
    /// A control or invisible formatting character (tab, new line, zero-width space, bidi
    /// override…).
    #[error("a name cannot contain control or invisible formatting characters")]
    ControlCharacter,
}

impl RuleViolation for InvalidName {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidName
    }
}

impl PersonName {
    /// The most Unicode scalar values a name has.
    pub const MAX_CHARS: usize = 140;

    /// Trims `s` and checks it.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(InvalidName::Empty);
        }
        if trimmed.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(InvalidName::TooLong);
        }
        if trimmed.chars().any(|c| {
            matches!(
                c.general_category(),
                GeneralCategory::Control | GeneralCategory::Format
            )
        }) {
            return Err(InvalidName::ControlCharacter);
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 3166-1 alpha-2 country code: upper case, officially assigned, or `XK` (Kosovo, a
/// user-assigned code in common use).
///
/// ```
/// use domain::Country;
/// assert_eq!(Country::parse("DE").unwrap().as_str(), "DE");
/// assert!(Country::parse("de").is_err());
/// assert!(Country::parse("UK").is_err()); // reserved, not assigned: the code is GB
/// assert!(Country::parse("XK").is_ok());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// A string that is not an assigned country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a country is an upper-case ISO 3166-1 alpha-2 code such as DE or FR")]
pub struct InvalidCountry;

impl RuleViolation for InvalidCountry {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidCountry
    }
}

/// The 249 officially assigned ISO 3166-1 alpha-2 codes (as listed by Debian's `iso-codes`
/// 4.15 from the ISO 3166 Maintenance Agency's data), then `XK`. Sorted, for a binary search.
///
/// Written out because the list is short and stable, and a country crate would bring names
/// and subdivisions the rule does not need.
const COUNTRIES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

impl Country {
    /// Parses an upper-case assigned code (no trimming, no case folding).
    pub fn parse(s: &str) -> Result<Self, InvalidCountry> {
        let bytes: [u8; 2] = s.as_bytes().try_into().map_err(|_| InvalidCountry)?;
        COUNTRIES
            .binary_search(&s)
            .map(|_| Self(bytes))
            .map_err(|_| InvalidCountry)
    }

    /// The two letters.
    pub fn as_str(&self) -> &str {
        // Only codes from COUNTRIES are held: ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({self})")
    }
}

/// A Legal Entity Identifier (ISO 17442): 20 characters `[0-9A-Z]` whose last two are check
/// digits under ISO 7064 MOD 97-10.
///
/// ```
/// use domain::Lei;
/// assert_eq!(Lei::parse("5493000IBP32UQZ0KL24").unwrap().as_str(), "5493000IBP32UQZ0KL24");
/// assert!(Lei::parse("5493000IBP32UQZ0KL25").is_err()); // a wrong check digit
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lei([u8; 20]);

/// Why a string is not an LEI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLei {
    /// Not 20 characters of digits and upper-case letters.
    #[error("an LEI is 20 characters, digits and upper-case letters")]
    Malformed,
    /// Well formed, but the check digits do not match.
    #[error("the check digits of this LEI are wrong")]
    CheckDigits,
}

impl RuleViolation for InvalidLei {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidLei
    }
}

impl Lei {
    /// Parses an LEI (upper case, no spaces) and checks its check digits.
    pub fn parse(s: &str) -> Result<Self, InvalidLei> {
        let bytes: [u8; 20] = s.as_bytes().try_into().map_err(|_| InvalidLei::Malformed)?;
        if !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(InvalidLei::Malformed);
        }
        if mod97(&bytes) != 1 {
            return Err(InvalidLei::CheckDigits);
        }
        Ok(Self(bytes))
    }

    /// The 20 characters.
    pub fn as_str(&self) -> &str {
        // Only digits and upper-case letters are held.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// ISO 7064 MOD 97-10 over digits and letters (A = 10 … Z = 35): the remainder of the
/// decimal number they spell, computed digit group by digit group.
///
/// Hand-written: it is four lines, and the check-digit crates (`iso_iec_7064`) would be a
/// dependency for this loop.
fn mod97(chars: &[u8]) -> u32 {
    chars.iter().fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c.saturating_sub(b'A')) + 10) % 97
        }
    })
}

impl fmt::Display for Lei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Lei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lei({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_country_table_is_sorted_and_complete() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(COUNTRIES.len(), 249 + 1);
        for code in ["FR", "GB", "US", "CH", "SS", "BQ", "CW", "SX", "AQ", "XK"] {
            assert!(Country::parse(code).is_ok(), "{code}");
        }
        // Reserved, withdrawn, user-assigned (other than XK) or malformed.
        for code in [
            "UK", "EU", "AN", "YU", "ZZ", "XX", "QO", "fr", "Fr", "F", "FRA", " FR", "",
        ] {
            assert_eq!(Country::parse(code), Err(InvalidCountry), "{code:?}");
        }
    }

    #[test]
    fn published_leis_pass_and_altered_ones_fail() {
        // Examples from the LEI's published descriptions (G.E. Financing GmbH, Jaguar Land
        // Rover Ltd, British Broadcasting Corporation) and GLEIF's API documentation.
        for lei in [
            "54930084UKLVMY22DS16",
            "213800WSGIIZCXF1P572",
            "5493000IBP32UQZ0KL24",
            "5493001KJTIIGC8Y1R12",
        ] {
            assert!(Lei::parse(lei).is_ok(), "{lei}");
            // Every single-character change of a check digit is caught.
            for i in [18, 19] {
                for d in b'0'..=b'9' {
                    let mut altered = lei.as_bytes().to_vec();
                    if altered[i] == d {
                        continue;
                    }
                    altered[i] = d;
                    let altered = String::from_utf8(altered).unwrap();
                    assert_eq!(
                        Lei::parse(&altered),
                        Err(InvalidLei::CheckDigits),
                        "{altered}"
                    );
                }
            }
        }
        // Two transposed characters are caught too.
        assert_eq!(
            Lei::parse("4593000IBP32UQZ0KL24"),
            Err(InvalidLei::CheckDigits)
        );
        for bad in [
            "",
            "5493000IBP32UQZ0KL2",
            "5493000ibp32uqz0kl24",
            "5493000IBP32UQZ0KL24 ",
            "5493000IBP32UQZ0KL2é",
        ] {
            assert_eq!(Lei::parse(bad), Err(InvalidLei::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn names_refuse_controls_and_format_characters() {
        for bad in [
            "Ada\tLovelace",
            "Ada\nLovelace",
            "Ada\u{0}",
            "Ada\u{200b}Lovelace", // zero-width space
            "Ada\u{200d}",         // zero-width joiner
            "\u{feff}Ada",         // byte-order mark
            "Ada\u{202e}",         // right-to-left override
            "Ada\u{7f}",
            "Ada\u{85}x",
        ] {
            assert_eq!(
                PersonName::parse(bad),
                Err(InvalidName::ControlCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(PersonName::parse(""), Err(InvalidName::Empty));
        assert_eq!(PersonName::parse("\u{3000} \n"), Err(InvalidName::Empty));
        let long = "é".repeat(140);
        assert_eq!(
            PersonName::parse(&format!(" {long} ")).unwrap().as_str(),
            long
        );
        assert_eq!(
            PersonName::parse(&format!("{long}x")),
            Err(InvalidName::TooLong)
        );
        assert_eq!(PersonName::parse("李小龍").unwrap().as_str(), "李小龍");
        assert_eq!(InvalidName::Empty.code(), ErrorCode::InvalidName);
    }

    proptest! {
        #[test]
        fn mod97_is_the_big_number_remainder(s in "[0-9A-Z]{1,20}") {
            let digits: String = s.chars().map(|c| c.to_digit(36).unwrap().to_string()).collect();
            let expected = digits.bytes().fold(0u128, |r, d| (r * 10 + u128::from(d - b'0')) % 97);
            prop_assert_eq!(u128::from(mod97(s.as_bytes())), expected);
        }

        #[test]
        fn names_are_trimmed_and_never_panic(s in "\\PC{0,160}") {
            if let Ok(n) = PersonName::parse(&s) {
                prop_assert_eq!(n.as_str(), s.trim());
                prop_assert!(n.as_str().chars().count() <= 140);
            }
        }
    }
}
