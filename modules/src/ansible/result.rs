//! What a module reports: changed, message, warnings, diff, facts and its own return keys.

use serde::Serialize;
use serde_json::{Map, Value};

/// Before/after text or data for `--diff`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diff {
    /// State before the change.
    pub before: Value,
    /// State after the change (or as it would be, in check mode).
    pub after: Value,
}

/// A successful module result, built by the module and printed by the runner.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Whether anything changed (or would change, in check mode).
    pub changed: bool,
    /// A one-line summary for the operator.
    pub msg: Option<String>,
    /// Before/after, returned only when Ansible asked for a diff.
    pub diff: Option<Diff>,
    /// Facts merged into the host's facts (facts modules).
    pub facts: Option<Map<String, Value>>,
    /// The module's documented return keys.
    pub data: Map<String, Value>,
}

impl Outcome {
    /// An outcome with `changed` set.
    pub fn changed(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }

    /// Sets the summary message.
    pub fn msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// Adds one documented return key.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).expect("return values are plain data");
        self.data.insert(key.to_string(), value);
        self
    }

    /// Sets one fact (`ansible_facts.<name>`).
    pub fn fact(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).expect("facts are plain data");
        self.facts
            .get_or_insert_with(Map::new)
            .insert(name.to_string(), value);
        self
    }

    /// Sets the diff.
    pub fn diff(mut self, before: impl Serialize, after: impl Serialize) -> Self {
        self.diff = Some(Diff {
            before: serde_json::to_value(before).expect("diff is plain data"),
            after: serde_json::to_value(after).expect("diff is plain data"),
        });
        self
    }
}

/// A failure that carries more than a message: whether something had already changed,
/// and return keys that help the operator (for example what was written before it failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    /// What went wrong and what to do.
    pub msg: String,
    /// Whether the module changed something before failing.
    pub changed: bool,
    /// Extra return keys.
    pub data: Map<String, Value>,
}
