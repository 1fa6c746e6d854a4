//! Logging in and out: v4 SSO bearer token, v3 HTTP Basic with a persistent session
//! (engine-api.md sections 1, 1b, 1c and part 2 section 1).

use super::error::EngineError;
use crate::ansible::Secret;
use base64::Engine as _;
use reqwest::blocking::RequestBuilder;
use reqwest::header::HeaderMap;

/// The SSO token endpoint (4.x engines).
pub const SSO_TOKEN_PATH: &str = "/ovirt-engine/sso/oauth/token";
/// The SSO logout service the SDK calls on close.
pub const SSO_LOGOUT_PATH: &str = "/ovirt-engine/services/sso-logout";

/// How requests are authenticated.
#[derive(Debug)]
pub enum Auth {
    /// v4: `Authorization: Bearer <token>`.
    Bearer {
        /// The SSO access token.
        token: Secret,
    },
    /// v3: Basic until the engine gives a session, then the `JSESSIONID` cookie.
    Basic {
        /// `Basic base64(user:password)`.
        header: Secret,
        /// The session id, once the engine has opened one.
        session: Option<Secret>,
    },
}

impl Auth {
    /// Basic credentials for v3.
    pub fn basic(username: &str, password: &Secret) -> Auth {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()));
        Auth::Basic {
            header: Secret::new(format!("Basic {encoded}")),
            session: None,
        }
    }

    /// Adds the authentication headers to an API request. `keep_session: false` is the
    /// v3 way to log out: the engine closes the session after that request.
    pub fn apply(&self, request: RequestBuilder, keep_session: bool) -> RequestBuilder {
        match self {
            Auth::Bearer { token } => {
                request.header("Authorization", format!("Bearer {}", token.expose()))
            }
            Auth::Basic { header, session } => {
                let request = match session {
                    Some(session) => {
                        request.header("Cookie", format!("JSESSIONID={}", session.expose()))
                    }
                    None => request.header("Authorization", header.expose()),
                };
                if keep_session {
                    request.header("Prefer", "persistent-auth")
                } else {
                    request
                }
            }
        }
    }

    /// Remembers the session the engine opened (v3 `JSESSIONID` header or cookie).
    pub fn remember_session(&mut self, headers: &HeaderMap) {
        if let Auth::Basic { session, .. } = self {
            if let Some(id) = session_id(headers) {
                *session = Some(Secret::new(id));
            }
        }
    }

    /// Forgets an expired session so the next request logs in again; false if there was none.
    pub fn forget_session(&mut self) -> bool {
        match self {
            Auth::Basic { session, .. } => session.take().is_some(),
            Auth::Bearer { .. } => false,
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("JSESSIONID").and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_string());
    }
    headers
        .get_all("Set-Cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|cookie| cookie.split(';').next())
        .filter_map(|pair| pair.trim().strip_prefix("JSESSIONID="))
        .map(str::to_string)
        .next()
}

/// The engine's answer to a token request, read from its JSON.
pub enum TokenAnswer {
    /// A token.
    Token(Secret),
    /// The engine has no SSO (a 3.x engine): 404 or not JSON.
    NoSso,
}

/// Reads the answer of `POST /ovirt-engine/sso/oauth/token` (status, content type, body).
pub fn read_token_answer(
    status: u16,
    content_type: &str,
    body: &str,
    username: &str,
) -> Result<TokenAnswer, EngineError> {
    if !content_type.contains("json") {
        return if status == 404 {
            Ok(TokenAnswer::NoSso)
        } else {
            Err(EngineError::Login {
                username: username.to_string(),
                reason: format!("the SSO service answered HTTP {status} without a JSON body"),
            })
        };
    }
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| EngineError::Unexpected {
            call: format!("POST {SSO_TOKEN_PATH}"),
            reason: format!("the JSON cannot be read: {e}"),
        })?;
    parse_token_json(&json, username)
}

/// Interprets the SSO token JSON (engine-api.md 1c: errors are `error_code`/`error` or `error`/`error_description`).
pub fn parse_token_json(
    body: &serde_json::Value,
    username: &str,
) -> Result<TokenAnswer, EngineError> {
    let body = match body {
        serde_json::Value::Array(items) => items.first().unwrap_or(&serde_json::Value::Null),
        other => other,
    };
    let text = |key: &str| body.get(key).and_then(|v| v.as_str());
    if let Some(error) = text("error") {
        let reason = match (text("error_code"), text("error_description")) {
            (Some(code), _) => format!("{code}: {error}"),
            (None, Some(description)) => format!("{error}: {description}"),
            (None, None) => error.to_string(),
        };
        return Err(EngineError::Login {
            username: username.to_string(),
            reason,
        });
    }
    match text("access_token") {
        Some(token) if !token.is_empty() => Ok(TokenAnswer::Token(Secret::new(token))),
        _ => Err(EngineError::Unexpected {
            call: format!("POST {SSO_TOKEN_PATH}"),
            reason: "the answer has neither access_token nor error".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_answer_from_the_engine_sample() {
        let body = json!({"access_token": "fqbR1ftzh8wBCviLxJcYuV5oSDI=", "scope": "ovirt-app-api", "exp": "1735689600000", "token_type": "bearer"});
        match parse_token_json(&body, "admin@internal").unwrap() {
            TokenAnswer::Token(token) => assert_eq!(token.expose(), "fqbR1ftzh8wBCviLxJcYuV5oSDI="),
            TokenAnswer::NoSso => panic!("expected a token"),
        }
    }

    #[test]
    fn rest_scope_errors_name_code_and_message() {
        let body = json!({"error_code": "access_denied", "error": "Cannot authenticate user 'admin@internal': Invalid credentials."});
        let error = parse_token_json(&body, "admin@internal").err().unwrap();
        assert_eq!(
            error.to_string(),
            "engine login as 'admin@internal' failed: access_denied: Cannot authenticate user 'admin@internal': Invalid credentials."
        );
    }

    #[test]
    fn an_engine_without_sso_is_told_apart_from_a_broken_one() {
        assert!(matches!(
            read_token_answer(404, "text/html", "<html>Not Found</html>", "u@p"),
            Ok(TokenAnswer::NoSso)
        ));
        let broken = read_token_answer(500, "text/html", "", "u@p")
            .err()
            .unwrap();
        assert!(
            broken.to_string().contains("HTTP 500 without a JSON body"),
            "{broken}"
        );
    }

    #[test]
    fn other_scope_errors_use_the_description() {
        let body = json!([{"error": "invalid_grant", "error_description": "bad"}]);
        let error = parse_token_json(&body, "u@p").err().unwrap();
        assert!(error.to_string().ends_with("invalid_grant: bad"), "{error}");
    }

    #[test]
    fn basic_header_and_session_cookie() {
        let mut auth = Auth::basic("admin@internal", &Secret::new("pw"));
        match &auth {
            Auth::Basic { header, .. } => {
                assert_eq!(header.expose(), "Basic YWRtaW5AaW50ZXJuYWw6cHc=")
            }
            Auth::Bearer { .. } => unreachable!(),
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "Set-Cookie",
            "JSESSIONID=abc123; Path=/ovirt-engine/api; Secure; HttpOnly"
                .parse()
                .unwrap(),
        );
        auth.remember_session(&headers);
        assert!(auth.forget_session());
        assert!(!auth.forget_session());
    }
}
