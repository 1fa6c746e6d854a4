//! Typed, validated module options: unknown names, types, choices, required and exclusive sets.
//!
//! A module's options are one or more [`OptionSet`]s: shared groups (engine connection,
//! host files) take their own names out of the args, and the module's own struct, declared
//! `#[serde(deny_unknown_fields)]`, takes the rest, so an unknown option is an error that
//! lists the valid names.

use super::spec::{self, OptionSpec};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;

/// A bad option: names the option and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// A group of options that can take itself out of the args map. Its JSON schema (derive
/// `schemars::JsonSchema` next to `Deserialize`) says which options it has.
pub trait OptionSet: Sized + JsonSchema {
    /// Removes this set's options from `options` and returns them typed and validated.
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError>;

    /// This set's options as the sidecar docs must list them.
    fn spec() -> Vec<OptionSpec> {
        spec::of::<Self>()
    }
}

impl<A: OptionSet, B: OptionSet> OptionSet for (A, B) {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let first = A::take(options)?;
        Ok((first, B::take(options)?))
    }

    fn spec() -> Vec<OptionSpec> {
        [A::spec(), B::spec()].concat()
    }
}

/// Removes the options the struct `T` names (a shared group) and deserializes them.
pub fn take_group<T: DeserializeOwned + JsonSchema>(
    options: &mut Map<String, Value>,
) -> Result<T, OptionError> {
    let names: Vec<String> = spec::of::<T>().into_iter().map(|o| o.name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    take_named(options, &names)
}

/// Deserializes every remaining option into `T` (declare it `deny_unknown_fields`).
pub fn take_rest<T: DeserializeOwned + JsonSchema>(
    options: &mut Map<String, Value>,
) -> Result<T, OptionError> {
    deserialize(std::mem::take(options))
}

/// Removes `names` from `options` and deserializes them into `T`.
pub fn take_named<T: DeserializeOwned + JsonSchema>(
    options: &mut Map<String, Value>,
    names: &[&str],
) -> Result<T, OptionError> {
    let taken = names
        .iter()
        .filter_map(|name| options.remove(*name).map(|value| (name.to_string(), value)))
        .collect();
    deserialize(taken)
}

fn deserialize<T: DeserializeOwned + JsonSchema>(
    options: Map<String, Value>,
) -> Result<T, OptionError> {
    let kinds: std::collections::HashMap<String, String> = spec::of::<T>()
        .into_iter()
        .map(|option| (option.name, option.kind))
        .collect();
    // Ansible sends an omitted option as null; treat it as not given so defaults apply.
    let options: Map<String, Value> = options
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, value)| {
            let value = match kinds.get(&name) {
                Some(kind) => coerced(kind, value),
                None => value,
            };
            (name, value)
        })
        .collect();
    serde_path_to_error::deserialize(Value::Object(options)).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        OptionError(describe(&path, &inner))
    })
}

/// A number or boolean that arrived as text, as `AnsibleModule` converts it for its own
/// modules: ansible-core 2.16 templates `"{{ value }}"` into a string in module_defaults and in
/// some task arguments. Anything else is left for the type check to name.
fn coerced(kind: &str, value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    let text = text.trim();
    let converted = match kind {
        "int" => text.parse::<i64>().ok().map(Value::from),
        "float" => text.parse::<f64>().ok().map(Value::from),
        "bool" => match text.to_ascii_lowercase().as_str() {
            "yes" | "on" | "1" | "true" | "y" | "t" => Some(Value::Bool(true)),
            "no" | "off" | "0" | "false" | "n" | "f" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    converted.unwrap_or(value)
}

fn describe(path: &str, serde_message: &str) -> String {
    if let Some(rest) = serde_message.strip_prefix("unknown field ") {
        return format!("unsupported option {rest}");
    }
    if let Some(rest) = serde_message.strip_prefix("missing field ") {
        let name = rest.trim_matches('`');
        let within = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!(" in option '{path}'")
        };
        return format!("missing required option '{name}'{within}");
    }
    if let Some(rest) = serde_message.strip_prefix("unknown variant ") {
        return format!("option '{path}': invalid choice {rest}");
    }
    format!("option '{path}': {serde_message}")
}

/// Fails unless exactly one of the named options was given.
pub fn exactly_one_of(given: &[(&str, bool)]) -> Result<(), OptionError> {
    let names = given
        .iter()
        .map(|(name, _)| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    match given.iter().filter(|(_, set)| *set).count() {
        1 => Ok(()),
        0 => Err(OptionError(format!(
            "one of the options {names} is required"
        ))),
        _ => Err(OptionError(format!(
            "the options {names} are mutually exclusive: give only one"
        ))),
    }
}

/// Fails when more than one of the named options was given.
pub fn at_most_one_of(given: &[(&str, bool)]) -> Result<(), OptionError> {
    if given.iter().filter(|(_, set)| *set).count() > 1 {
        let names = given
            .iter()
            .map(|(name, _)| format!("'{name}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(OptionError(format!(
            "the options {names} are mutually exclusive: give only one"
        )));
    }
    Ok(())
}

/// A secret option value (password, token): never printed, logged or serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "writeOnly": true })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Example {
        path: String,
        #[serde(default = "default_timeout")]
        timeout_s: u64,
        #[serde(default)]
        state: State,
    }

    #[derive(Debug, Default, Deserialize, PartialEq, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum State {
        #[default]
        Present,
        Absent,
    }

    fn default_timeout() -> u64 {
        60
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Connection {
        url: String,
        password: Option<Secret>,
    }

    impl OptionSet for Connection {
        fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
            take_group(options)
        }
    }

    impl OptionSet for Example {
        fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
            take_rest(options)
        }
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_given_as_text_are_numbers_and_other_text_is_refused_by_name() {
        let example: Example =
            take_rest(&mut map(json!({"path": "/a", "timeout_s": " 90 "}))).unwrap();
        assert_eq!(example.timeout_s, 90);
        let error =
            take_rest::<Example>(&mut map(json!({"path": "/a", "timeout_s": "soon"}))).unwrap_err();
        assert!(error.0.contains("timeout_s"), "{error}");
        assert_eq!(coerced("bool", json!("yes")), json!(true));
        assert_eq!(coerced("bool", json!("False")), json!(false));
        assert_eq!(coerced("float", json!("1.5")), json!(1.5));
        assert_eq!(coerced("str", json!("12")), json!("12"));
    }

    #[test]
    fn applies_defaults_and_treats_null_as_omitted() {
        let example: Example =
            take_rest(&mut map(json!({"path": "/a", "timeout_s": null}))).unwrap();
        assert_eq!(example.timeout_s, 60);
        assert_eq!(example.state, State::Present);
    }

    #[test]
    fn names_an_unknown_option_and_lists_valid_ones() {
        let err =
            take_rest::<Example>(&mut map(json!({"path": "/a", "tiemout_s": 1}))).unwrap_err();
        assert!(err.0.contains("unsupported option `tiemout_s`"), "{err}");
        assert!(err.0.contains("timeout_s"), "{err}");
    }

    #[test]
    fn names_a_missing_required_option() {
        let err = take_rest::<Example>(&mut map(json!({}))).unwrap_err();
        assert_eq!(err.0, "missing required option 'path'");
    }

    #[test]
    fn names_the_option_with_a_wrong_type() {
        let err =
            take_rest::<Example>(&mut map(json!({"path": "/a", "timeout_s": "soon"}))).unwrap_err();
        assert!(
            err.0
                .starts_with("option 'timeout_s': invalid type: string \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn names_an_invalid_choice() {
        let err =
            take_rest::<Example>(&mut map(json!({"path": "/a", "state": "gone"}))).unwrap_err();
        assert!(
            err.0.contains("option 'state': invalid choice `gone`"),
            "{err}"
        );
        assert!(err.0.contains("expected `present` or `absent`"), "{err}");
    }

    #[test]
    fn groups_take_their_own_names_and_leave_the_rest() {
        let (connection, example) = <(Connection, Example)>::take(&mut map(
            json!({"url": "https://e", "password": "pw", "path": "/a"}),
        ))
        .unwrap();
        assert_eq!(connection.url, "https://e");
        assert_eq!(connection.password.unwrap().expose(), "pw");
        assert_eq!(example.path, "/a");
        let mut names: Vec<String> = <(Connection, Example)>::spec()
            .into_iter()
            .map(|o| o.name)
            .collect();
        names.sort();
        assert_eq!(names, ["password", "path", "state", "timeout_s", "url"]);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn exclusive_sets() {
        assert!(exactly_one_of(&[("src", true), ("src_volume", false)]).is_ok());
        let none = exactly_one_of(&[("src", false), ("src_volume", false)]).unwrap_err();
        assert_eq!(none.0, "one of the options 'src', 'src_volume' is required");
        let both = exactly_one_of(&[("src", true), ("src_volume", true)]).unwrap_err();
        assert!(both.0.contains("mutually exclusive"));
        assert!(at_most_one_of(&[("a", false), ("b", false)]).is_ok());
        assert!(at_most_one_of(&[("a", true), ("b", true)]).is_err());
    }
}
