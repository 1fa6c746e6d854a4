//! Authentication: SSO tokens (4.x), HTTP Basic and `Prefer: persistent-auth` sessions
//! (engine-api.md part 1 sections 1-1c, part 2 section 1).

use crate::engine::db::EngineDb;
use crate::engine::http::{parse_form, Reply, Request};
use base64::Engine as _;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// The scope the REST API requires.
pub const API_SCOPE: &str = "ovirt-app-api";

/// Live SSO tokens and REST sessions of one running engine.
#[derive(Debug, Default)]
pub struct AuthState {
    /// Token -> full version of the engine that issued it (a different engine rejects it).
    tokens: HashMap<String, String>,
    /// JSESSIONID -> full version of the engine that created it.
    sessions: HashMap<String, String>,
}

/// Who a request authenticated as, and the session it opened if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// A JSESSIONID created by this request (to send back as a cookie).
    pub new_session: Option<String>,
}

/// An unguessable opaque token.
fn new_secret() -> String {
    let mut out = String::new();
    for round in 0..3u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(round ^ crate::engine::clock::now_ms());
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// Checks `user@profile` and password against the engine's user store.
pub fn credentials_valid(db: &EngineDb, user: &str, password: &str) -> bool {
    user == db.admin_user && password == db.admin_password
}

impl AuthState {
    /// `POST /ovirt-engine/sso/oauth/token` (4.x engines): JSON token or JSON error, 400.
    pub fn sso_token(&mut self, db: &EngineDb, request: &Request) -> Reply {
        let form = parse_form(&request.body_text());
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let scope = field("scope").unwrap_or_default();
        let error = |code: &str, message: &str| {
            let api_scope = scope.contains(API_SCOPE)
                && !scope.contains("ovirt-app-admin")
                && !scope.contains("ovirt-app-portal");
            let body = if api_scope {
                serde_json::json!({"error_code": code, "error": message})
            } else {
                serde_json::json!({"error": code, "error_description": message})
            };
            Reply::json(400, &body)
        };
        if request.header("accept") != Some("application/json") {
            return error("invalid_request", "Missing parameter: 'Accept Header'");
        }
        let grant_type = match field("grant_type") {
            Some(grant_type) => grant_type,
            None => return error("invalid_request", "Missing parameter: 'grant_type'"),
        };
        if grant_type != "password" {
            return error(
                "unsupported_grant_type",
                &format!("The authorization grant type is not supported: {grant_type}."),
            );
        }
        if scope.is_empty() {
            return error("invalid_request", "Missing parameter: 'scope'");
        }
        let Some(username) = field("username") else {
            return error("invalid_request", "Missing parameter: 'username'");
        };
        let Some(password) = field("password") else {
            return error("invalid_request", "Missing parameter: 'password'");
        };
        if !credentials_valid(db, &username, &password) {
            return error(
                "access_denied",
                &format!(
                    "Cannot authenticate user '{username}': The username or password is incorrect."
                ),
            );
        }
        let token = new_secret();
        self.tokens
            .insert(token.clone(), db.product.full_version.clone());
        Reply::json(
            200,
            &serde_json::json!({
                "access_token": token,
                "scope": format!("{scope} ovirt-ext=token-info:validate"),
                "exp": i64::MAX.to_string(),
                "token_type": "bearer",
            }),
        )
    }

    /// `POST /ovirt-engine/services/sso-logout`: revokes `token`, always `{}` with 200.
    pub fn sso_logout(&mut self, request: &Request) -> Reply {
        let form = parse_form(&request.body_text());
        if let Some((_, token)) = form.iter().find(|(key, _)| key == "token") {
            self.tokens.remove(token);
        }
        Reply::json(200, &serde_json::json!({}))
    }

    /// Authenticates an API request, or returns the engine's 401 reply.
    pub fn authenticate(
        &mut self,
        db: &EngineDb,
        request: &Request,
    ) -> Result<Authenticated, Reply> {
        let engine = &db.product.full_version;
        let persistent = request
            .header("prefer")
            .map(|prefer| {
                let tokens: Vec<&str> = prefer.split(',').map(str::trim).collect();
                tokens.contains(&"persistent-auth") && !tokens.contains(&"new-auth")
            })
            .unwrap_or(false);
        let cookie = request.cookie("JSESSIONID");
        if let Some(session) = &cookie {
            if persistent && self.sessions.get(session) == Some(engine) {
                return Ok(Authenticated { new_session: None });
            }
            // Without persistent-auth the engine invalidates the session first.
            if !persistent {
                self.sessions.remove(session);
            }
        }
        let authorized = match request.header("authorization") {
            Some(value) if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") => {
                db.api_versions.contains(&4) && self.tokens.get(value[7..].trim()) == Some(engine)
            }
            Some(value) if value.len() > 6 && value[..6].eq_ignore_ascii_case("basic ") => {
                basic_credentials(&value[6..])
                    .map(|(user, password)| credentials_valid(db, &user, &password))
                    .unwrap_or(false)
            }
            _ => false,
        };
        if !authorized {
            return Err(Reply::html_error(401, "Unauthorized")
                .with_header("WWW-Authenticate", "Basic realm=\"RESTAPI\""));
        }
        let new_session = persistent.then(|| {
            let session = new_secret();
            self.sessions.insert(session.clone(), engine.clone());
            session
        });
        Ok(Authenticated { new_session })
    }
}

/// Decodes `base64(user:password)`; `profile\user` is turned into `user@profile`.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    let user = match user.split_once('\\') {
        Some((profile, name)) if !user.contains('@') => format!("{name}@{profile}"),
        _ => user.to_string(),
    };
    Some((user, password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_accept_both_user_forms() {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(
            basic_credentials(&encode("admin@internal:p:w")),
            Some(("admin@internal".into(), "p:w".into()))
        );
        assert_eq!(
            basic_credentials(&encode("internal\\admin:x")),
            Some(("admin@internal".into(), "x".into()))
        );
        assert_eq!(basic_credentials("%%%"), None);
    }
}
