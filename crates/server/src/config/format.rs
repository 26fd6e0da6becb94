//! How a variable's text becomes a value: one [`Format`] per kind of value. A setting's type
//! names its format (`Setting<Secs>`, `Setting<Option<BaseUrl>>`), and so what it holds,
//! how it is parsed, how its default is shown and whether it is a secret.

use std::fmt::Display;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// How a variable's text is read.
pub trait Format: 'static {
    /// What the variable holds once parsed.
    type Value;
    /// A secret: it may also be given as a file (`{NAME}_FILE`), and neither it nor its
    /// default is ever printed.
    const SECRET: bool = false;

    /// Parses a variable's text (trimmed, never empty).
    ///
    /// # Errors
    ///
    /// Why the text is refused; it is reported after the variable's name.
    fn parse(text: &str) -> Result<Self::Value, String>;

    /// A value as the documentation shows it (the default).
    fn show(value: &Self::Value) -> String;
}

/// A format of whole numbers, which a setting may bound with a range.
pub trait Numeric: Format {
    /// What the number counts, after it in messages and documentation (empty: nothing).
    const UNIT: &'static str;

    /// The value as the number written in the variable.
    fn number(value: &Self::Value) -> u64;
}

/// A variable that may be unset: its value is `None` then.
impl<F: Format> Format for Option<F> {
    type Value = Option<F::Value>;
    const SECRET: bool = F::SECRET;

    fn parse(text: &str) -> Result<Self::Value, String> {
        F::parse(text).map(Some)
    }

    fn show(value: &Self::Value) -> String {
        value.as_ref().map_or_else(|| "unset".to_string(), F::show)
    }
}

fn whole_number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| "must be a whole number".to_string())
}

/// A whole number (`u32`, `usize`).
pub struct Number<T>(PhantomData<T>);

impl<T> Format for Number<T>
where
    T: TryFrom<u64> + Display + Copy + 'static,
    u64: TryFrom<T>,
{
    type Value = T;

    fn parse(text: &str) -> Result<T, String> {
        let n = whole_number(text)?;
        T::try_from(n).map_err(|_| "too large".to_string())
    }

    fn show(value: &T) -> String {
        value.to_string()
    }
}

impl<T> Numeric for Number<T>
where
    T: TryFrom<u64> + Display + Copy + 'static,
    u64: TryFrom<T>,
{
    const UNIT: &'static str = "";

    fn number(value: &T) -> u64 {
        u64::try_from(*value).unwrap_or(u64::MAX)
    }
}

/// A duration written in whole seconds.
pub struct Secs;

impl Format for Secs {
    type Value = Duration;

    fn parse(text: &str) -> Result<Duration, String> {
        whole_number(text).map(Duration::from_secs)
    }

    fn show(value: &Duration) -> String {
        value.as_secs().to_string()
    }
}

impl Numeric for Secs {
    const UNIT: &'static str = "seconds";

    fn number(value: &Duration) -> u64 {
        value.as_secs()
    }
}

/// A duration written in whole milliseconds.
pub struct Millis;

impl Format for Millis {
    type Value = Duration;

    fn parse(text: &str) -> Result<Duration, String> {
        whole_number(text).map(Duration::from_millis)
    }

    fn show(value: &Duration) -> String {
        value.as_millis().to_string()
    }
}

impl Numeric for Millis {
    const UNIT: &'static str = "milliseconds";

    fn number(value: &Duration) -> u64 {
        u64::try_from(value.as_millis()).unwrap_or(u64::MAX)
    }
}

const DAY: u64 = 24 * 3600;

/// A duration written in whole days.
pub struct Days;

impl Format for Days {
    type Value = Duration;

    fn parse(text: &str) -> Result<Duration, String> {
        whole_number(text)?
            .checked_mul(DAY)
            .map(Duration::from_secs)
            .ok_or_else(|| "too large".to_string())
    }

    fn show(value: &Duration) -> String {
        (value.as_secs() / DAY).to_string()
    }
}

impl Numeric for Days {
    const UNIT: &'static str = "days";

    fn number(value: &Duration) -> u64 {
        value.as_secs() / DAY
    }
}

/// `true` or `false`.
pub struct Flag;

impl Format for Flag {
    type Value = bool;

    fn parse(text: &str) -> Result<bool, String> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("must be true or false".to_string()),
        }
    }

    fn show(value: &bool) -> String {
        value.to_string()
    }
}

/// Any text.
pub struct Text;

impl Format for Text {
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }

    fn show(value: &String) -> String {
        value.clone()
    }
}

/// A value of a type that parses itself (`FromStr`), refused with that type's error.
pub struct Parsed<T>(PhantomData<T>);

impl<T> Format for Parsed<T>
where
    T: FromStr + Display + 'static,
    T::Err: Display,
{
    type Value = T;

    fn parse(text: &str) -> Result<T, String> {
        text.parse().map_err(|e: T::Err| e.to_string())
    }

    fn show(value: &T) -> String {
        value.to_string()
    }
}

/// A socket address, `HOST:PORT`.
pub struct Address;

impl Format for Address {
    type Value = SocketAddr;

    fn parse(text: &str) -> Result<SocketAddr, String> {
        text.parse()
            .map_err(|_| "not an address; use HOST:PORT".to_string())
    }

    fn show(value: &SocketAddr) -> String {
        value.to_string()
    }
}

/// The base of URLs built by appending paths: `http(s)://host[:port][/path]`, without a
/// query or a fragment.
pub struct BaseUrl;

impl Format for BaseUrl {
    type Value = Url;

    fn parse(text: &str) -> Result<Url, String> {
        match Url::parse(text) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none() =>
            {
                Ok(u)
            }
            _ => Err("must be an http(s) URL with a host and no query or fragment".to_string()),
        }
    }

    fn show(value: &Url) -> String {
        value.to_string()
    }
}

/// A file's path.
pub struct FilePath;

impl Format for FilePath {
    type Value = PathBuf;

    fn parse(text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }

    fn show(value: &PathBuf) -> String {
        value.display().to_string()
    }
}

/// A JSON object.
pub struct JsonObject;

impl Format for JsonObject {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn parse(text: &str) -> Result<Self::Value, String> {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err("must be a JSON object".to_string()),
        }
    }

    fn show(value: &Self::Value) -> String {
        serde_json::Value::Object(value.clone()).to_string()
    }
}

/// A secret text.
pub struct Secret;

impl Format for Secret {
    type Value = SecretString;
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<SecretString, String> {
        Ok(SecretString::from(text))
    }

    fn show(_: &SecretString) -> String {
        "(secret)".to_string()
    }
}

/// A Postgres URL (a secret: it may carry the password).
pub struct PostgresUrl;

impl Format for PostgresUrl {
    type Value = SecretString;
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<SecretString, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(SecretString::from(text))
        } else {
            Err("must be a postgres:// or postgresql:// URL".to_string())
        }
    }

    fn show(_: &SecretString) -> String {
        "(secret)".to_string()
    }
}

/// An at-rest key: 32 bytes, base64 (checked by the keyring).
pub struct AtRestKey;

impl Format for AtRestKey {
    type Value = SecretString;
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<SecretString, String> {
        keyring::Keyring::check_key(text)
            .map(|()| SecretString::from(text))
            .map_err(|e| format!("the key {e}"))
    }

    fn show(_: &SecretString) -> String {
        "(secret)".to_string()
    }
}

/// At-rest keys, comma-separated.
pub struct AtRestKeys;

impl Format for AtRestKeys {
    type Value = Vec<SecretString>;
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<Vec<SecretString>, String> {
        let keys: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        let refused: Vec<String> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| {
                keyring::Keyring::check_key(key)
                    .err()
                    .map(|e| format!("key {} {e}", i + 1))
            })
            .collect();
        if refused.is_empty() {
            Ok(keys.into_iter().map(SecretString::from).collect())
        } else {
            Err(refused.join("; "))
        }
    }

    fn show(_: &Vec<SecretString>) -> String {
        "(secret)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations() {
        assert_eq!(Number::<u32>::parse("42"), Ok(42));
        assert_eq!(
            Number::<u32>::parse("fast"),
            Err("must be a whole number".to_string())
        );
        assert_eq!(
            Number::<u32>::parse("4294967296"),
            Err("too large".to_string())
        );
        assert_eq!(Secs::parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(Millis::parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(Days::parse("2"), Ok(Duration::from_secs(2 * DAY)));
        assert!(Days::parse(&u64::MAX.to_string()).is_err());
        for d in [Duration::from_secs(3), Duration::from_secs(3 * DAY)] {
            assert_eq!(Secs::parse(&Secs::show(&d)), Ok(d));
            assert_eq!(Millis::parse(&Millis::show(&d)), Ok(d));
            assert_eq!(
                Days::parse(&Days::show(&d)),
                Ok(Duration::from_secs(d.as_secs() / DAY * DAY))
            );
        }
    }

    #[test]
    fn urls_are_bases() {
        assert!(BaseUrl::parse("https://sessions.example.com/prefix").is_ok());
        for refused in [
            "sessions.example.com",
            "ftp://x",
            "https://x/?a=b",
            "http://",
        ] {
            assert!(BaseUrl::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        const { assert!(<Option<PostgresUrl>>::SECRET) };
        const { assert!(AtRestKeys::SECRET) };
        const { assert!(!<Option<Text>>::SECRET) };
        let url = PostgresUrl::parse("postgres://user:hunter2@db/x").unwrap();
        assert!(!PostgresUrl::show(&url).contains("hunter2"));
        let refused = AtRestKeys::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=, not-a-key")
            .unwrap_err();
        assert!(refused.starts_with("key 2 "), "{refused}");
        assert!(!refused.contains("not-a-key"), "{refused}");
    }
}
