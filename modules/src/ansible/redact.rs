//! Masking secret option values wherever text leaves the module (result, errors, log).

use serde_json::Value;

/// What a secret is replaced with, the same marker Ansible itself uses.
pub const MASK: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// Knows the secret values of this run and masks them in any text or JSON.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values (empty values are ignored: nothing to hide).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn text(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |acc, secret| {
            acc.replace(secret.as_str(), MASK)
        })
    }

    /// `value` with every string (keys included) passed through [`Redactor::text`].
    pub fn json(&self, value: Value) -> Value {
        if self.secrets.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.json(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secrets_in_nested_json_and_text() {
        let redactor = Redactor::new(["s3cret".to_string(), String::new()]);
        let masked =
            redactor.json(json!({"msg": "login with s3cret failed", "list": ["s3cret"], "n": 1}));
        assert_eq!(
            masked,
            json!({"msg": format!("login with {MASK} failed"), "list": [MASK], "n": 1})
        );
        assert_eq!(redactor.text("no secret here"), "no secret here");
    }

    #[test]
    fn masks_the_longest_secret_whole() {
        let redactor = Redactor::new(["abc".to_string(), "abcdef".to_string()]);
        assert_eq!(redactor.text("xabcdefx"), format!("x{MASK}x"));
    }
}
