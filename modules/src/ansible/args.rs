//! Reading the args file Ansible hands a binary module as argv[1].

use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;

/// The `_ansible_*` keys a module cares about; unknown internal keys are ignored.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct InternalArgs {
    /// `--check`: compute and report, change nothing.
    #[serde(rename = "_ansible_check_mode")]
    pub check_mode: bool,
    /// `--diff`: return before/after.
    #[serde(rename = "_ansible_diff")]
    pub diff: bool,
    /// `no_log: true` on the task: log no option values and no result content.
    #[serde(rename = "_ansible_no_log")]
    pub no_log: bool,
    /// Number of `-v` flags.
    #[serde(rename = "_ansible_verbosity")]
    pub verbosity: u8,
    /// Name the task used for the module.
    #[serde(rename = "_ansible_module_name")]
    pub module_name: Option<String>,
    /// The controller's ansible-core version.
    #[serde(rename = "_ansible_version")]
    pub ansible_version: Option<String>,
}

/// The parsed args file: internal keys apart, user options as given.
#[derive(Debug, Clone)]
pub struct ModuleArgs {
    /// The `_ansible_*` keys.
    pub internal: InternalArgs,
    /// Every key that does not start with `_ansible_`, untouched.
    pub options: Map<String, Value>,
}

/// Why the args file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// argv[1] is missing.
    #[error("no module arguments file provided: a binary module is run as MODULE ARGS_FILE")]
    Missing,
    /// The file could not be read.
    #[error("cannot read the module arguments file {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a JSON object.
    #[error("malformed module arguments in {path}: {reason}")]
    Malformed { path: String, reason: MalformedArgs },
}

/// Why a text is not module args.
#[derive(Debug, thiserror::Error)]
pub enum MalformedArgs {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    /// JSON, but not an object.
    #[error("expected a JSON object of option names to values")]
    NotAnObject,
    /// An `_ansible_*` key with a value of the wrong type.
    #[error("invalid internal _ansible_ key: {0}")]
    InternalKey(serde_json::Error),
}

impl ModuleArgs {
    /// Reads and splits the args file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ArgsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ArgsError::Unreadable {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text).map_err(|reason| ArgsError::Malformed {
            path: shown,
            reason,
        })
    }

    /// Splits a JSON object of args into internal keys and user options.
    pub fn from_json(text: &str) -> Result<Self, MalformedArgs> {
        let value: Value = serde_json::from_str(text).map_err(MalformedArgs::Json)?;
        let Value::Object(all) = value else {
            return Err(MalformedArgs::NotAnObject);
        };
        let (internal, options): (Map<String, Value>, Map<String, Value>) = all
            .into_iter()
            .partition(|(key, _)| key.starts_with("_ansible_"));
        let internal =
            serde_json::from_value(Value::Object(internal)).map_err(MalformedArgs::InternalKey)?;
        Ok(Self { internal, options })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_internal_keys_and_ignores_unknown_ones() {
        let args = ModuleArgs::from_json(
            r#"{"he_conf": "/x", "_ansible_check_mode": true, "_ansible_diff": true,
                "_ansible_verbosity": 3, "_ansible_tmpdir": "/tmp/a", "_ansible_new_thing": [1]}"#,
        )
        .unwrap();
        assert!(args.internal.check_mode);
        assert!(args.internal.diff);
        assert_eq!(args.internal.verbosity, 3);
        assert_eq!(args.options.keys().collect::<Vec<_>>(), ["he_conf"]);
    }

    #[test]
    fn rejects_non_object_and_invalid_json() {
        assert!(matches!(
            ModuleArgs::from_json("[1]"),
            Err(MalformedArgs::NotAnObject)
        ));
        assert!(ModuleArgs::from_json("{")
            .unwrap_err()
            .to_string()
            .starts_with("invalid JSON"));
    }

    #[test]
    fn names_the_missing_file() {
        let err = ModuleArgs::from_file(Path::new("/nonexistent/args")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/args"), "{err}");
    }
}
