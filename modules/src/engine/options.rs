//! The engine options every engine-facing module takes (SPEC 4, "Common engine options").

use super::ca::Fingerprint;
use super::ca_pin::CaPin;
use crate::ansible::{take_group, OptionError, OptionSet, Seconds, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Default engine user.
pub const DEFAULT_USERNAME: &str = "admin@internal";

/// Default per-request timeout in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 60;

/// How to talk to the engine, as the user gave it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineOptions {
    /// `https://FQDN/ovirt-engine` (only scheme, host and port are used).
    pub engine_url: Option<String>,
    /// Engine user, `user@profile`.
    #[serde(default = "default_username")]
    pub username: String,
    /// The user's password.
    pub password: Option<Secret>,
    /// The engine CA certificate (PEM); fetched from the engine when not given.
    pub ca_file: Option<PathBuf>,
    /// Where the CA fetched on the first contact is pinned for every later contact.
    pub ca_pin_file: Option<PathBuf>,
    /// The attempt the pin belongs to (a pin of another attempt is made again).
    pub ca_pin_attempt: Option<String>,
    /// Pinned SHA-1 or SHA-256 fingerprint of the engine CA.
    pub ca_fingerprint: Option<String>,
    /// Timeout of one HTTP request, seconds.
    #[serde(default = "Seconds::of::<DEFAULT_TIMEOUT_S>")]
    pub timeout: Seconds,
    /// API dialect.
    #[serde(default)]
    pub api_version: ApiVersionChoice,
}

/// Which API dialect to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApiVersionChoice {
    /// v4 when the engine offers SSO (4.x), else v3.
    #[default]
    Auto,
    /// v3 (engine 3.6; 4.x engines up to 4.1 also serve it).
    V3,
    /// v4 (engines 4.x).
    V4,
}

impl ApiVersionChoice {
    /// The option value that selects it.
    fn name(self) -> &'static str {
        match self {
            ApiVersionChoice::Auto => "auto",
            ApiVersionChoice::V3 => "3",
            ApiVersionChoice::V4 => "4",
        }
    }
}

impl Serialize for ApiVersionChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl JsonSchema for ApiVersionChoice {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ApiVersionChoice".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "enum": ["auto", "3", "4"] })
    }
}

impl<'de> Deserialize<'de> for ApiVersionChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        };
        match text.as_str() {
            "auto" => Ok(ApiVersionChoice::Auto),
            "3" => Ok(ApiVersionChoice::V3),
            "4" => Ok(ApiVersionChoice::V4),
            other => Err(serde::de::Error::custom(format!(
                "invalid choice `{other}`, expected one of `auto`, `3`, `4`"
            ))),
        }
    }
}

fn default_username() -> String {
    DEFAULT_USERNAME.to_string()
}

impl OptionSet for EngineOptions {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_group(options)
    }
}

/// Where the engine CA comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    /// `ca_file`: the operator's CA file, trusted as it is.
    File(PathBuf),
    /// `ca_pin_file`: fetched on the attempt's first contact and pinned there for the others.
    Pinned(CaPin),
    /// Neither: fetched on this contact, for this connection only.
    Fetched,
}

/// Validated engine options, ready to connect.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `https://host[:port]`, no path.
    pub base_url: reqwest::Url,
    /// Engine user.
    pub username: String,
    /// The user's password.
    pub password: Secret,
    /// Where the engine CA comes from.
    pub ca: CaSource,
    /// Pinned CA fingerprint.
    pub ca_fingerprint: Option<Fingerprint>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// API dialect.
    pub api_version: ApiVersionChoice,
}

impl EngineOptions {
    /// Checks the options and returns settings; errors name the option. Call before changing anything.
    pub fn settings(&self) -> Result<EngineSettings, OptionError> {
        let url = self
            .engine_url
            .as_deref()
            .ok_or_else(|| OptionError("missing required option 'engine_url'".into()))?;
        let password = self
            .password
            .clone()
            .ok_or_else(|| OptionError("missing required option 'password'".into()))?;
        if password.expose().is_empty() {
            return Err(OptionError("option 'password' is empty".into()));
        }
        let ca_fingerprint = self
            .ca_fingerprint
            .as_deref()
            .map(Fingerprint::parse)
            .transpose()
            .map_err(|e| OptionError(format!("option 'ca_fingerprint': {e}")))?;
        if self.timeout.duration() < Duration::from_secs(1) {
            return Err(OptionError(
                "option 'timeout': must be at least 1 second".into(),
            ));
        }
        if !self.username.contains('@') {
            return Err(OptionError(format!(
                "option 'username': '{}' has no profile; expected user@profile such as admin@internal",
                self.username
            )));
        }
        Ok(EngineSettings {
            base_url: base_url(url)?,
            username: self.username.clone(),
            password,
            ca: self.ca_source()?,
            ca_fingerprint,
            timeout: self.timeout.duration(),
            api_version: self.api_version,
        })
    }
}

impl EngineOptions {
    /// The CA source: `ca_file`, or the pin of `ca_pin_file` (for `ca_pin_attempt`), or neither.
    fn ca_source(&self) -> Result<CaSource, OptionError> {
        match (&self.ca_file, &self.ca_pin_file, &self.ca_pin_attempt) {
            (Some(_), Some(_), _) => Err(OptionError(
                "options 'ca_file' and 'ca_pin_file' are mutually exclusive: a CA file is trusted as it is, a pin is made on the first contact".into(),
            )),
            (_, None, Some(_)) => Err(OptionError(
                "option 'ca_pin_attempt' needs 'ca_pin_file'".into(),
            )),
            (Some(path), None, None) => Ok(CaSource::File(path.clone())),
            (None, Some(path), attempt) => Ok(CaSource::Pinned(CaPin {
                path: path.clone(),
                attempt: attempt.clone(),
            })),
            (None, None, None) => Ok(CaSource::Fetched),
        }
    }
}

/// `https://host[:port]` of an engine URL; the SSO and API paths are fixed below it.
fn base_url(text: &str) -> Result<reqwest::Url, OptionError> {
    let bad = |why: &str| {
        OptionError(format!(
            "option 'engine_url': '{text}' {why}; expected https://FQDN/ovirt-engine"
        ))
    };
    let url = reqwest::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad("does not use https"));
    }
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    let mut base = format!("https://{host}");
    if let Some(port) = url.port() {
        base.push_str(&format!(":{port}"));
    }
    reqwest::Url::parse(&base).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(value: Value) -> Result<EngineOptions, OptionError> {
        EngineOptions::take(&mut value.as_object().unwrap().clone())
    }

    #[test]
    fn defaults_and_settings() {
        let options = take(
            json!({"engine_url": "https://engine.example.com/ovirt-engine", "password": "pw"}),
        )
        .unwrap();
        assert_eq!(options.username, "admin@internal");
        assert_eq!(options.timeout.duration(), Duration::from_secs(60));
        assert_eq!(options.api_version, ApiVersionChoice::Auto);
        let settings = options.settings().unwrap();
        assert_eq!(settings.base_url.as_str(), "https://engine.example.com/");
        assert_eq!(settings.password.expose(), "pw");
    }

    #[test]
    fn api_version_accepts_numbers_and_strings_but_not_others() {
        let v3 = take(json!({"api_version": 3})).unwrap();
        assert_eq!(v3.api_version, ApiVersionChoice::V3);
        let v4 = take(json!({"api_version": "4"})).unwrap();
        assert_eq!(v4.api_version, ApiVersionChoice::V4);
        let error = take(json!({"api_version": "5"})).unwrap_err();
        assert!(error.0.contains("option 'api_version'"), "{error}");
        assert!(error.0.contains("`auto`, `3`, `4`"), "{error}");
    }

    #[test]
    fn settings_name_the_bad_option() {
        let no_url = take(json!({"password": "pw"}))
            .unwrap()
            .settings()
            .unwrap_err();
        assert_eq!(no_url.0, "missing required option 'engine_url'");
        let http = take(json!({"engine_url": "http://e/ovirt-engine", "password": "pw"}))
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(http.0.contains("does not use https"), "{http}");
        let no_password = take(json!({"engine_url": "https://e"}))
            .unwrap()
            .settings()
            .unwrap_err();
        assert_eq!(no_password.0, "missing required option 'password'");
        let pin =
            take(json!({"engine_url": "https://e", "password": "pw", "ca_fingerprint": "zz"}))
                .unwrap()
                .settings()
                .unwrap_err();
        assert!(pin.0.starts_with("option 'ca_fingerprint'"), "{pin}");
    }

    #[test]
    fn timeouts_may_be_numeric_strings() {
        let timeout = take(json!({"timeout": "30"})).unwrap().timeout;
        assert_eq!(timeout.duration(), Duration::from_secs(30));
        let error = take(json!({"timeout": "soon"})).unwrap_err();
        assert!(error.0.contains("option 'timeout'"), "{error}");
        let empty = take(json!({"engine_url": "https://e", "password": ""}))
            .unwrap()
            .settings()
            .unwrap_err();
        assert_eq!(empty.0, "option 'password' is empty");
    }

    #[test]
    fn port_is_kept_and_path_dropped() {
        let settings = take(
            json!({"engine_url": "https://127.0.0.1:8443/ovirt-engine/api", "password": "pw"}),
        )
        .unwrap()
        .settings()
        .unwrap();
        assert_eq!(settings.base_url.as_str(), "https://127.0.0.1:8443/");
    }

    #[test]
    fn the_ca_comes_from_a_file_a_pin_or_the_first_contact() {
        let settings = |extra: Value| {
            let mut options = json!({"engine_url": "https://e", "password": "pw"});
            for (key, value) in extra.as_object().unwrap() {
                options[key.as_str()] = value.clone();
            }
            take(options).unwrap().settings()
        };
        assert_eq!(settings(json!({})).unwrap().ca, CaSource::Fetched);
        assert_eq!(
            settings(json!({"ca_file": "/ca.pem"})).unwrap().ca,
            CaSource::File("/ca.pem".into())
        );
        assert_eq!(
            settings(json!({"ca_pin_file": "/pin.json", "ca_pin_attempt": "upgrade-1"}))
                .unwrap()
                .ca,
            CaSource::Pinned(CaPin {
                path: "/pin.json".into(),
                attempt: Some("upgrade-1".into())
            })
        );
        let both = settings(json!({"ca_file": "/ca.pem", "ca_pin_file": "/pin.json"}));
        assert!(both
            .unwrap_err()
            .0
            .contains("'ca_file' and 'ca_pin_file' are mutually exclusive"));
        let alone = settings(json!({"ca_pin_attempt": "upgrade-1"}));
        assert_eq!(
            alone.unwrap_err().0,
            "option 'ca_pin_attempt' needs 'ca_pin_file'"
        );
    }
}
