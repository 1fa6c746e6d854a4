//! One verified, authenticated connection to the engine: TLS trusting only the engine CA,
//! bounded retries with backoff on transport errors and 5xx, 4xx reported with the engine's
//! fault, logout when dropped.

use super::auth::{self, Auth, TokenAnswer};
use super::ca::{EngineCa, PKI_RESOURCE_PATH};
use super::ca_pin::CaPin;
use super::error::EngineError;
use super::options::{ApiVersionChoice, CaSource, EngineSettings};
use super::product::ProductInfo;
use super::xml::Element;
use crate::ansible::Context;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::Serialize;
use std::time::Duration;

/// The API root path.
pub const API_PATH: &str = "/ovirt-engine/api";

/// The API dialect in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// v3 (engine 3.6).
    V3,
    /// v4 (engines 4.x).
    V4,
}

impl ApiVersion {
    /// `3` or `4`.
    pub fn number(self) -> u8 {
        match self {
            ApiVersion::V3 => 3,
            ApiVersion::V4 => 4,
        }
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Pause before the first retry; doubled for each next one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_secs(1),
        }
    }
}

/// Whether a call may be repeated when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, deletes, registrations: repeating is harmless.
    Safe,
    /// Creations: the caller checks what happened before trying again.
    Never,
}

/// An HTTP answer, read completely.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn content_type(&self) -> &str {
        self.headers
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A logged-in connection. Dropping it logs out.
pub struct Connection {
    http: Client,
    base_url: reqwest::Url,
    version: ApiVersion,
    auth: Auth,
    settings: EngineSettings,
    retry: RetryPolicy,
    ca: EngineCa,
    product: ProductInfo,
    first_contact_pin: bool,
    logged_out: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url.as_str())
            .field("version", &self.version)
            .field("username", &self.settings.username)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Gets the CA (file, the attempt's pin, or pki-resource on the first contact), checks
    /// `ca_fingerprint`, logs in and reads the API root; pins a CA fetched on the attempt's
    /// first contact (not in check mode, which writes nothing).
    pub fn open(settings: &EngineSettings, context: &Context) -> Result<Connection, EngineError> {
        Connection::open_with(settings, context, RetryPolicy::default())
    }

    /// [`Connection::open`] with an explicit retry policy.
    pub fn open_with(
        settings: &EngineSettings,
        context: &Context,
        retry: RetryPolicy,
    ) -> Result<Connection, EngineError> {
        let (ca, pin) = trusted_ca(settings, retry)?;
        if let Some(wanted) = &settings.ca_fingerprint {
            ca.check_pin(wanted)?;
        }
        tracing::info!(subject = %ca.subject, sha1 = %ca.sha1, sha256 = %ca.sha256, "engine CA");
        let mut connection = match Connection::connect(settings, retry, ca.clone()) {
            Err(error @ EngineError::Untrusted { .. }) => {
                return Err(match pin {
                    Some(Pinning::Kept(pin)) => changed_ca(settings, retry, pin, &ca, error),
                    _ => error,
                })
            }
            other => other?,
        };
        match pin {
            Some(Pinning::FirstContact(pin)) => {
                if context.check_mode {
                    tracing::info!(pin = %pin.path.display(), "check mode: the engine CA is shown, not pinned");
                } else {
                    pin.store(connection.ca(), &context.run_id)?;
                    tracing::info!(pin = %pin.path.display(), "pinned the engine CA on the attempt's first contact");
                }
                connection.first_contact_pin = true;
            }
            Some(Pinning::Kept(_)) | None => {}
        }
        Ok(connection)
    }

    /// Logs in over TLS trusting `ca` alone and reads the API root.
    fn connect(
        settings: &EngineSettings,
        retry: RetryPolicy,
        ca: EngineCa,
    ) -> Result<Connection, EngineError> {
        let http = verified_client(&ca, settings.timeout)?;
        let (version, auth) = login(&http, settings, retry)?;
        tracing::info!(api_version = version.number(), username = %settings.username, "logged in to the engine");
        let mut connection = Connection {
            http,
            base_url: settings.base_url.clone(),
            version,
            auth,
            settings: settings.clone(),
            retry,
            ca,
            // Read from the API root just below, once logged in.
            product: ProductInfo::default(),
            first_contact_pin: false,
            logged_out: false,
        };
        let root = connection.get("")?;
        connection.product =
            ProductInfo::from_api_root(&root).ok_or_else(|| EngineError::Unexpected {
                call: format!("GET {API_PATH}"),
                reason: "the API root has no product_info version".into(),
            })?;
        tracing::info!(version = %connection.product.full_version, "engine product");
        Ok(connection)
    }

    /// Whether this was the attempt's first contact, which pinned the engine CA (in check
    /// mode: would have pinned it).
    pub fn first_contact_pin(&self) -> bool {
        self.first_contact_pin
    }

    /// The dialect in use.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The engine CA this connection trusts.
    pub fn ca(&self) -> &EngineCa {
        &self.ca
    }

    /// The retry policy of this connection (for callers that retry non-idempotent calls).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The engine's product info (from the API root).
    pub fn product(&self) -> &ProductInfo {
        &self.product
    }

    /// `GET` an API path (relative to `/ovirt-engine/api`, may carry `?query` or `;matrix`).
    pub fn get(&mut self, path: &str) -> Result<Element, EngineError> {
        self.call(Method::GET, path, None, Retry::Safe)
    }

    /// `GET`, with 404 meaning "no such entity".
    pub fn get_optional(&mut self, path: &str) -> Result<Option<Element>, EngineError> {
        match self.get(path) {
            Ok(element) => Ok(Some(element)),
            Err(error) if error.refused_status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST` an XML body to an API path.
    pub fn post(&mut self, path: &str, body: &str, retry: Retry) -> Result<Element, EngineError> {
        self.call(Method::POST, path, Some(body), retry)
    }

    /// `DELETE` an API path.
    pub fn delete(&mut self, path: &str) -> Result<(), EngineError> {
        self.call(Method::DELETE, path, None, Retry::Safe).map(drop)
    }

    fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
        retry: Retry,
    ) -> Result<Element, EngineError> {
        let url = api_url(path);
        let call = format!("{method} {url}");
        let mut relogged = false;
        loop {
            let answer = self.exchange(&call, retry, || {
                let request = self
                    .http
                    .request(method.clone(), self.absolute(&url))
                    .header("Version", self.version.number().to_string())
                    .header("Accept", "application/xml");
                let request = self.auth.apply(request, true);
                match body {
                    Some(body) => request
                        .header("Content-Type", "application/xml")
                        .body(body.to_string()),
                    None => request,
                }
            })?;
            self.auth.remember_session(&answer.headers);
            tracing::debug!(%call, status = answer.status, "engine answered");
            match answer.status {
                200..=299 => return parse_body(&call, &answer),
                401 if !relogged => {
                    relogged = true;
                    self.login_again(&call)?;
                }
                401 => {
                    return Err(EngineError::Login {
                        username: self.settings.username.clone(),
                        reason: format!("{call} was refused with HTTP {}", answer.status),
                    })
                }
                status => {
                    let (reason, detail) = fault(&answer);
                    return Err(EngineError::Refused {
                        call,
                        status,
                        reason,
                        detail,
                    });
                }
            }
        }
    }

    /// After a 401: a v3 session expired (log in again with Basic) or a v4 token expired
    /// (get a new one, as the SDK does); otherwise the credentials are wrong.
    fn login_again(&mut self, call: &str) -> Result<(), EngineError> {
        if self.auth.forget_session() {
            return Ok(());
        }
        if let Auth::Bearer { .. } = self.auth {
            if let TokenAnswer::Token(token) =
                request_token(&self.http, &self.settings, self.retry)?
            {
                self.auth = Auth::Bearer { token };
                return Ok(());
            }
        }
        Err(EngineError::Login {
            username: self.settings.username.clone(),
            reason: format!(
                "{call} was refused with HTTP 401: wrong user name or password, or the user cannot log in"
            ),
        })
    }

    fn absolute(&self, path: &str) -> String {
        format!("{}{}", self.base_url.as_str().trim_end_matches('/'), path)
    }

    fn exchange(
        &self,
        call: &str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, EngineError> {
        let policy = match retry {
            Retry::Safe => self.retry,
            Retry::Never => RetryPolicy {
                attempts: 1,
                ..self.retry
            },
        };
        exchange(call, policy, self.settings.timeout, build)
    }

    fn logout(&mut self) {
        if self.logged_out {
            return;
        }
        self.logged_out = true;
        let url = match &self.auth {
            Auth::Bearer { .. } => self.absolute(auth::SSO_LOGOUT_PATH),
            Auth::Basic { session: None, .. } => return,
            Auth::Basic { .. } => self.absolute(API_PATH),
        };
        let request = match &self.auth {
            Auth::Bearer { token } => self
                .http
                .post(url)
                .header("Accept", "application/json")
                .form(&[("scope", "ovirt-app-api"), ("token", token.expose())]),
            // v3: a last request without `Prefer: persistent-auth` ends the session.
            Auth::Basic { .. } => self
                .auth
                .apply(self.http.get(url), false)
                .header("Version", "3")
                .header("Accept", "application/xml"),
        };
        match request.send() {
            Ok(response) => tracing::debug!(status = response.status().as_u16(), "logged out"),
            Err(error) => tracing::warn!("logout from the engine failed: {}", describe(&error)),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.logout();
    }
}

/// How a pinned CA takes part in opening a connection.
enum Pinning<'a> {
    /// The attempt pinned its CA earlier: it is trusted, not fetched again.
    Kept(&'a CaPin),
    /// The attempt's first contact: the fetched CA is pinned once the engine proved it holds it.
    FirstContact(&'a CaPin),
}

/// The CA to trust: the operator's file, the attempt's pin, or (on the first contact)
/// the one pki-resource gives now.
fn trusted_ca(
    settings: &EngineSettings,
    retry: RetryPolicy,
) -> Result<(EngineCa, Option<Pinning<'_>>), EngineError> {
    match &settings.ca {
        CaSource::File(path) => Ok((EngineCa::from_file(path)?, None)),
        CaSource::Pinned(pin) => match pin.load()? {
            Some(ca) => Ok((ca, Some(Pinning::Kept(pin)))),
            None => Ok((fetch_ca(settings, retry)?, Some(Pinning::FirstContact(pin)))),
        },
        CaSource::Fetched => Ok((fetch_ca(settings, retry)?, None)),
    }
}

/// After the engine's certificate failed verification against the attempt's pinned CA: the
/// CA it presents now, named next to the pinned one when it differs; else the TLS error.
fn changed_ca(
    settings: &EngineSettings,
    retry: RetryPolicy,
    pin: &CaPin,
    pinned: &EngineCa,
    tls_error: EngineError,
) -> EngineError {
    match fetch_ca(settings, retry) {
        Ok(presented) if presented.sha256 != pinned.sha256 => EngineError::CaChanged {
            presented: presented.identity(),
            pinned: pinned.identity(),
            pin_file: pin.path.display().to_string(),
        },
        Ok(_) => tls_error,
        Err(error) => {
            tracing::warn!("cannot fetch the CA the engine presents now: {error}");
            tls_error
        }
    }
}

fn api_url(path: &str) -> String {
    if path.is_empty() {
        API_PATH.to_string()
    } else {
        format!("{API_PATH}/{path}")
    }
}

/// Fetches the CA over TLS without verification: there is nothing to verify against yet;
/// the pin (or the operator reading the fingerprint) is the trust anchor.
fn fetch_ca(settings: &EngineSettings, retry: RetryPolicy) -> Result<EngineCa, EngineError> {
    let client = Client::builder()
        .danger_accept_invalid_certs(true)
        .use_rustls_tls()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EngineError::Input(format!("cannot set up HTTPS: {}", describe(&e))))?;
    let url = format!(
        "{}{PKI_RESOURCE_PATH}",
        settings.base_url.as_str().trim_end_matches('/')
    );
    let call = format!("GET {PKI_RESOURCE_PATH}");
    let answer = exchange(&call, retry, settings.timeout, || client.get(&url))?;
    if answer.status != 200 {
        return Err(EngineError::Refused {
            call,
            status: answer.status,
            reason: "the engine did not give its CA certificate".into(),
            detail: String::new(),
        });
    }
    EngineCa::from_pem(&answer.body, &url)
}

/// A client that trusts the engine CA and nothing else.
fn verified_client(ca: &EngineCa, timeout: Duration) -> Result<Client, EngineError> {
    let certificate = reqwest::Certificate::from_pem(ca.pem.as_bytes()).map_err(|e| {
        EngineError::Input(format!("the engine CA cannot be used: {}", describe(&e)))
    })?;
    Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(certificate)
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EngineError::Input(format!("cannot set up HTTPS: {}", describe(&e))))
}

/// Picks the dialect and logs in: SSO for v4; Basic for v3; `auto` tries SSO and falls
/// back to v3 when the engine has none (3.x engines).
fn login(
    http: &Client,
    settings: &EngineSettings,
    retry: RetryPolicy,
) -> Result<(ApiVersion, Auth), EngineError> {
    if settings.api_version == ApiVersionChoice::V3 {
        return Ok((
            ApiVersion::V3,
            Auth::basic(&settings.username, &settings.password),
        ));
    }
    match request_token(http, settings, retry)? {
        TokenAnswer::Token(token) => Ok((ApiVersion::V4, Auth::Bearer { token })),
        TokenAnswer::NoSso if settings.api_version == ApiVersionChoice::Auto => {
            Ok((ApiVersion::V3, Auth::basic(&settings.username, &settings.password)))
        }
        TokenAnswer::NoSso => Err(EngineError::Login {
            username: settings.username.clone(),
            reason: "the engine has no SSO service, so it does not speak API v4 (a 3.x engine?): use api_version 3 or auto".into(),
        }),
    }
}

/// Asks the SSO service for a token (engine-api.md section 1).
fn request_token(
    http: &Client,
    settings: &EngineSettings,
    retry: RetryPolicy,
) -> Result<TokenAnswer, EngineError> {
    let url = format!(
        "{}{}",
        settings.base_url.as_str().trim_end_matches('/'),
        auth::SSO_TOKEN_PATH
    );
    let call = format!("POST {}", auth::SSO_TOKEN_PATH);
    let answer = exchange(&call, retry, settings.timeout, || {
        http.post(&url).header("Accept", "application/json").form(&[
            ("grant_type", "password"),
            ("scope", "ovirt-app-api"),
            ("username", settings.username.as_str()),
            ("password", settings.password.expose()),
        ])
    })?;
    auth::read_token_answer(
        answer.status,
        answer.content_type(),
        &answer.body,
        &settings.username,
    )
}

/// Sends a request built by `build` until it gets an answer below 500, at most
/// `policy.attempts` times, doubling the pause after each transport error or 5xx.
fn exchange(
    call: &str,
    policy: RetryPolicy,
    timeout: Duration,
    build: impl Fn() -> RequestBuilder,
) -> Result<Answer, EngineError> {
    let attempts = policy.attempts.max(1);
    let mut delay = policy.first_delay;
    for attempt in 1..=attempts {
        let outcome = build().send().and_then(|response| {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.text()?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        });
        let (error, transient) = match outcome {
            Ok(answer) if answer.status < 500 => return Ok(answer),
            Ok(answer) => {
                let (reason, detail) = fault(&answer);
                let error = EngineError::ServerError {
                    call: call.to_string(),
                    status: answer.status,
                    reason,
                    detail,
                    attempts: attempt,
                };
                (error, true)
            }
            Err(error) => transport_error(call, &error, attempt, timeout),
        };
        if !transient || attempt == attempts {
            return Err(error);
        }
        tracing::warn!("{error}; retrying in {} ms", delay.as_millis());
        std::thread::sleep(delay);
        delay = delay.saturating_mul(2);
    }
    unreachable!("the loop returns on its last attempt")
}

fn transport_error(
    call: &str,
    error: &reqwest::Error,
    attempt: u32,
    timeout: Duration,
) -> (EngineError, bool) {
    let detail = describe(error);
    if is_tls_verification_failure(error) {
        let error = EngineError::Untrusted {
            call: call.to_string(),
            reason: detail,
        };
        return (error, false);
    }
    let reason = if error.is_timeout() {
        format!(
            "no answer within {} s (option 'timeout')",
            timeout.as_secs()
        )
    } else if detail.contains("Connection refused") {
        format!("connection refused, is the engine up? ({detail})")
    } else {
        detail
    };
    let error = EngineError::Unreachable {
        call: call.to_string(),
        reason,
        attempts: attempt,
    };
    (error, true)
}

/// Whether the TLS handshake refused the engine's certificate (retrying cannot help).
/// Only the causes are read: the top-level message holds the URL, which names `ca-certificate`.
fn is_tls_verification_failure(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string().to_lowercase();
        if text.contains("peer certificate") || text.contains("certificate verif") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The whole chain of an error, which reqwest keeps in its sources.
fn describe(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn parse_body(call: &str, answer: &Answer) -> Result<Element, EngineError> {
    if answer.body.trim().is_empty() {
        return Ok(Element::default());
    }
    Element::parse(&answer.body).map_err(|e| EngineError::Unexpected {
        call: call.to_string(),
        reason: e.to_string(),
    })
}

/// The engine's `<fault>` (or `<action><fault>`) reason and detail; for non-XML error
/// pages, the page title.
fn fault(answer: &Answer) -> (String, String) {
    if let Ok(root) = Element::parse(&answer.body) {
        let fault = if root.name == "fault" {
            Some(&root)
        } else {
            root.child("fault")
        };
        if let Some(fault) = fault {
            return (
                fault.child_text("reason").unwrap_or("").to_string(),
                fault.child_text("detail").unwrap_or("").to_string(),
            );
        }
        if let Some(title) = root.child("head").and_then(|head| head.child_text("title")) {
            return (title.to_string(), String::new());
        }
    }
    let text = answer.body.trim();
    let short: String = text.chars().take(200).collect();
    (short, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: body.to_string(),
        }
    }

    #[test]
    fn fault_reason_and_detail_from_the_engine_sample() {
        let body = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<fault>
    <reason>Operation Failed</reason>
    <detail>[Cannot add Virtual Disk. Low disk space on Storage Domain hosted_storage.]</detail>
</fault>"#;
        let (reason, detail) = fault(&answer(400, body));
        assert_eq!(reason, "Operation Failed");
        assert_eq!(
            detail,
            "[Cannot add Virtual Disk. Low disk space on Storage Domain hosted_storage.]"
        );
    }

    #[test]
    fn fault_inside_an_action() {
        let body = "<action><status>failed</status><fault><reason>Operation Failed</reason><detail>[x]</detail></fault></action>";
        assert_eq!(
            fault(&answer(409, body)),
            ("Operation Failed".into(), "[x]".into())
        );
    }

    #[test]
    fn html_error_pages_give_their_title() {
        let body = "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>";
        assert_eq!(fault(&answer(503, body)).0, "503 Service Unavailable");
    }

    #[test]
    fn api_paths() {
        assert_eq!(api_url(""), "/ovirt-engine/api");
        assert_eq!(
            api_url("storagedomains/S/disks;unregistered"),
            "/ovirt-engine/api/storagedomains/S/disks;unregistered"
        );
    }

    #[test]
    fn empty_success_bodies_are_fine_and_bad_xml_is_named() {
        assert_eq!(
            parse_body("DELETE x", &answer(200, "")).unwrap(),
            Element::default()
        );
        let error = parse_body("GET x", &answer(200, "<html>")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unexpected answer from the engine to GET x"),
            "{error}"
        );
    }

    #[test]
    fn connection_refused_is_retried_then_named() {
        // A port held (bound, never listening) for the whole test: connections are refused.
        let held =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let port = held.local_addr().unwrap().as_socket().unwrap().port();
        let client = Client::builder().build().unwrap();
        let url = format!("http://127.0.0.1:{port}/ovirt-engine/api");
        let policy = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(10),
        };
        let error = exchange(
            "GET /ovirt-engine/api",
            policy,
            Duration::from_secs(5),
            || client.get(&url),
        )
        .err()
        .unwrap();
        let message = error.to_string();
        assert!(
            message.contains("cannot reach the engine for GET /ovirt-engine/api"),
            "{message}"
        );
        assert!(message.contains("connection refused"), "{message}");
        assert!(message.contains("tried 3 times"), "{message}");
    }
}
