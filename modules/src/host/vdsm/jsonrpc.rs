//! JSON-RPC 2.0 as vdsm's `yajsonrpc` speaks it: requests `{"jsonrpc": "2.0", "method":
//! "Namespace.verb", "params": {...}, "id": "..."}`, responses carrying `result` or
//! `error: {code, message}` and the request's `id`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The body of a request with id `id`.
pub fn request(id: &str, method: &str, params: &[(&str, &str)]) -> Vec<u8> {
    let params: Map<String, Value> = params
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect();
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
        .to_string()
        .into_bytes()
}

/// A vdsm error object: its code and message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteError {
    /// vdsm's error code (e.g. 201 volume does not exist, -32601 no such method).
    pub code: i64,
    /// vdsm's message.
    #[serde(default)]
    pub message: String,
}

/// What a response body says.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The answer to request `id`.
    Answer {
        /// The request id it answers (None when vdsm could not read the request's id).
        id: Option<String>,
        /// The result, or vdsm's error.
        outcome: Result<Value, RemoteError>,
    },
    /// Something else on the subscription (an event, a notification): not an answer.
    Other,
}

/// Why a response body is not a JSON-RPC 2.0 response.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The body does not parse as JSON.
    #[error("the answer is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not one object.
    #[error("the answer is not a JSON-RPC object")]
    NotAnObject,
    /// The object lacks `"jsonrpc": "2.0"`.
    #[error("the answer is not JSON-RPC 2.0")]
    NotVersion2,
    /// The `error` member is not `{code, message}`.
    #[error("the error object is malformed: {0}")]
    MalformedError(#[source] serde_json::Error),
}

/// Reads a response body; Err says why it is not JSON-RPC.
pub fn parse_response(body: &[u8]) -> Result<Response, ResponseError> {
    let value: Value = serde_json::from_slice(body).map_err(ResponseError::NotJson)?;
    // A batch answer holds one response per request; the client sends one at a time.
    let value = match value {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    let Value::Object(mut object) = value else {
        return Err(ResponseError::NotAnObject);
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(ResponseError::NotVersion2);
    }
    let id = match object.remove("id") {
        Some(Value::String(id)) => Some(id),
        Some(Value::Null) => None,
        Some(other) => Some(other.to_string()),
        None => return Ok(Response::Other),
    };
    let outcome = match (object.remove("error"), object.remove("result")) {
        (Some(error), _) if !error.is_null() => {
            Err(serde_json::from_value(error).map_err(ResponseError::MalformedError)?)
        }
        (_, Some(result)) => Ok(result),
        _ if id.is_none() => return Ok(Response::Other),
        // vdsm omits `result` of a verb that returns nothing.
        _ => Ok(Value::Null),
    };
    Ok(Response::Answer { id, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_string_params_and_the_id() {
        let body = request("7", "Volume.extendSize", &[("newSize", "1024")]);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"jsonrpc": "2.0", "method": "Volume.extendSize", "params": {"newSize": "1024"}, "id": "7"})
        );
    }

    #[test]
    fn reads_results_errors_and_events() {
        assert_eq!(
            parse_response(br#"{"jsonrpc": "2.0", "id": "1", "result": [1]}"#).unwrap(),
            Response::Answer {
                id: Some("1".into()),
                outcome: Ok(json!([1]))
            }
        );
        assert_eq!(
            parse_response(br#"[{"jsonrpc": "2.0", "id": "2", "error": {"code": 201, "message": "Volume does not exist: ('v',)"}}]"#).unwrap(),
            Response::Answer {
                id: Some("2".into()),
                outcome: Err(RemoteError { code: 201, message: "Volume does not exist: ('v',)".into() })
            }
        );
        assert_eq!(
            parse_response(br#"{"jsonrpc": "2.0", "method": "|virt|VM_status|x", "params": {}}"#)
                .unwrap(),
            Response::Other
        );
        assert!(parse_response(b"<html>")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(parse_response(br#"{"id": "1", "result": 1}"#)
            .unwrap_err()
            .to_string()
            .contains("2.0"));
    }
}
