//! Timeouts and intervals given in seconds: whole or fractional, as numbers or numeric strings.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A non-negative, finite number of seconds from a module option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(Duration);

impl Seconds {
    /// `S` whole seconds (for option defaults: `#[serde(default = "Seconds::of::<60>")]`).
    pub const fn of<const S: u64>() -> Self {
        Self(Duration::from_secs(S))
    }

    /// As a duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// Whole seconds as an integer, others as a float (the docs' defaults are whole).
impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.subsec_nanos() {
            0 => serializer.serialize_u64(self.0.as_secs()),
            _ => serializer.serialize_f64(self.0.as_secs_f64()),
        }
    }
}

/// Documented as Ansible's `float`.
impl schemars::JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Seconds".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "number", "minimum": 0 })
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecondsVisitor)
    }
}

struct SecondsVisitor;

impl Visitor<'_> for SecondsVisitor {
    type Value = Seconds;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds >= 0")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Seconds, E> {
        Ok(Seconds(Duration::from_secs(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Seconds, E> {
        self.visit_f64(value as f64)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Seconds, E> {
        Duration::try_from_secs_f64(value)
            .map(Seconds)
            .map_err(|_| E::custom(format!("expected a number of seconds >= 0, got {value}")))
    }

    // Ansible may template a number into a string ("{{ timeout }}").
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Seconds, E> {
        match text.trim().parse::<f64>() {
            Ok(value) => self.visit_f64(value),
            Err(_) => Err(E::custom(format!(
                "expected a number of seconds, got {text:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Seconds, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_and_numeric_strings() {
        assert_eq!(parse("1800").unwrap().duration(), Duration::from_secs(1800));
        assert_eq!(
            parse("0.25").unwrap().duration(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse("\" 30 \"").unwrap().duration(),
            Duration::from_secs(30)
        );
        assert!(parse("0").unwrap().is_zero());
    }

    #[test]
    fn negative_and_non_numbers_are_refused() {
        assert!(parse("-1").unwrap_err().to_string().contains(">= 0"));
        assert!(parse("\"soon\"")
            .unwrap_err()
            .to_string()
            .contains("\"soon\""));
        assert!(parse("true")
            .unwrap_err()
            .to_string()
            .contains("expected a number of seconds >= 0"));
    }
}
