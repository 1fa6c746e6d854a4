//! The options a module accepts, as its sidecar documentation lists them: name, Ansible
//! type, required, default, choices, list elements and no_log, read from the option
//! structs themselves (their JSON schema, derived with schemars from the same serde
//! attributes that parse the options), so a test can hold the docs to them.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One option, in the terms of an Ansible `DOCUMENTATION.options` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionSpec {
    /// Option name.
    pub name: String,
    /// Ansible type: `str`, `int`, `float`, `bool`, `list`, `dict` or `raw`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the option must be given.
    pub required: bool,
    /// The value used when it is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The values it accepts, when they are a fixed set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Value>>,
    /// The type of a list's elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<String>,
    /// Whether its value is a secret, masked everywhere.
    #[serde(default)]
    pub no_log: bool,
}

/// The options of the struct `T` (one per field, serde names).
pub fn of<T: JsonSchema>() -> Vec<OptionSpec> {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let root = schema.as_value();
    let required: Vec<&str> = root["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let empty = Map::new();
    let properties = root["properties"].as_object().unwrap_or(&empty);
    properties
        .iter()
        .map(|(name, property)| {
            let property = &not_null(property);
            let items = &not_null(&property["items"]);
            // A list of fixed values has its choices on the items, as Ansible documents it.
            let choices = choices(property).or_else(|| choices(items));
            OptionSpec {
                name: name.clone(),
                kind: kind(property),
                required: required.contains(&name.as_str()),
                default: property.get("default").cloned(),
                elements: (property.get("type") == Some(&Value::from("array")))
                    .then(|| kind(items)),
                choices,
                no_log: false,
            }
        })
        .collect()
}

/// `schema` without the `null` an `Option` adds (`"type": [T, "null"]`, `anyOf: [T, null]`,
/// `enum: [.., null]`): an omitted option is the same as a null one.
fn not_null(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(variants) = schema["anyOf"].as_array() {
        let others: Vec<&Value> = variants
            .iter()
            .filter(|variant| variant["type"] != "null")
            .collect();
        if let [only] = others.as_slice() {
            let only = (*only).clone();
            if let (Value::Object(target), Value::Object(source)) = (&mut schema, only) {
                target.remove("anyOf");
                target.extend(source);
            }
        }
    }
    if let Some(types) = schema["type"].as_array() {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match types.as_slice() {
            [only] => only.clone(),
            _ => Value::Array(types),
        };
    }
    if let Some(values) = schema["enum"].as_array() {
        schema["enum"] = values.iter().filter(|v| !v.is_null()).cloned().collect();
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        schema["oneOf"] = (variants.iter())
            .filter(|variant| variant.get("const") != Some(&Value::Null))
            .cloned()
            .collect();
    }
    schema
}

/// The Ansible type of a schema.
fn kind(schema: &Value) -> String {
    if let Some(values) = choices(schema) {
        return kind_of_values(&values);
    }
    let name = match &schema["type"] {
        Value::String(name) => name.as_str(),
        _ => return "raw".into(),
    };
    match name {
        "string" => "str",
        "integer" => "int",
        "number" => "float",
        "boolean" => "bool",
        "array" => "list",
        "object" => "dict",
        _ => "raw",
    }
    .into()
}

/// The fixed values of an enum schema (`enum`, or `oneOf` of `const`s).
fn choices(schema: &Value) -> Option<Vec<Value>> {
    if let Some(values) = schema["enum"].as_array() {
        return Some(values.clone());
    }
    let variants = schema["oneOf"].as_array()?;
    variants
        .iter()
        .map(
            |variant| match (variant.get("const"), variant["enum"].as_array()) {
                (Some(value), _) => Some(vec![value.clone()]),
                (None, Some(values)) => Some(values.clone()),
                (None, None) => None,
            },
        )
        .collect::<Option<Vec<_>>>()
        .map(|values| values.concat())
}

fn kind_of_values(values: &[Value]) -> String {
    match values.iter().all(Value::is_string) {
        true => "str".into(),
        false => "raw".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An example option set.
    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Example {
        path: std::path::PathBuf,
        #[serde(default = "sixty")]
        timeout_s: u64,
        #[serde(default)]
        state: State,
        names: Option<Vec<String>>,
        #[serde(default)]
        force: bool,
    }

    /// A state.
    #[allow(dead_code)]
    #[derive(Default, Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum State {
        /// There.
        #[default]
        Present,
        /// Gone.
        Absent,
    }

    fn sixty() -> u64 {
        60
    }

    #[test]
    fn names_types_required_defaults_choices_and_elements() {
        let spec = of::<Example>();
        let by_name = |name: &str| spec.iter().find(|o| o.name == name).unwrap().clone();
        assert_eq!(spec.len(), 5);
        let path = by_name("path");
        assert_eq!((path.kind.as_str(), path.required), ("str", true));
        let timeout = by_name("timeout_s");
        assert_eq!(timeout.kind, "int");
        assert_eq!(timeout.default, Some(Value::from(60)));
        assert!(!timeout.required);
        let state = by_name("state");
        assert_eq!(state.kind, "str");
        assert_eq!(
            state.choices,
            Some(vec![Value::from("present"), Value::from("absent")])
        );
        assert_eq!(state.default, Some(Value::from("present")));
        let names = by_name("names");
        assert_eq!(
            (names.kind.as_str(), names.elements),
            ("list", Some("str".into()))
        );
        assert_eq!(by_name("force").default, Some(Value::Bool(false)));
    }
}
