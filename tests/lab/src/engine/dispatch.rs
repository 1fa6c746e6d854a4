//! Top-level routing of one request: services (health, pki-resource, SSO logout), the SSO
//! token endpoint and the REST API, with the transport faults (`api_slow`, `api_flaky`).

use crate::config::LabConfig;
use crate::engine::api;
use crate::engine::auth::AuthState;
use crate::engine::db::EngineDb;
use crate::engine::faults::{self, ActiveFaults, FlakyFailure};
use crate::engine::http::{Reply, Request};
use crate::engine::services;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// State shared by all connections of one running engine.
pub struct Engine {
    /// The lab.
    pub config: LabConfig,
    /// SSO tokens and REST sessions.
    pub auth: Mutex<AuthState>,
    /// Serializes database read-modify-write cycles.
    pub db_lock: tokio::sync::Mutex<()>,
    /// API calls seen so far (drives `api_flaky`).
    pub api_calls: AtomicU64,
}

impl Engine {
    /// A fresh engine for `config` (no tokens, no sessions).
    pub fn new(config: LabConfig) -> Engine {
        Engine {
            config,
            auth: Mutex::new(AuthState::default()),
            db_lock: tokio::sync::Mutex::new(()),
            api_calls: AtomicU64::new(0),
        }
    }

    /// Answers one request.
    pub async fn respond(&self, request: Request) -> Reply {
        let path = request.path.as_str();
        let faults = ActiveFaults::read(&self.config);
        let db = EngineDb::load(&self.config);
        let Ok(db) = db else {
            // No engine database: the engine is not set up, only Apache answers.
            return Reply::html_error(503, "Service Unavailable");
        };
        let v4_engine = db.api_versions.contains(&4);
        match path {
            "/ovirt-engine/services/health" => services::health(&request, &faults),
            "/ovirt-engine/services/pki-resource" => services::pki_resource(&self.config, &request),
            _ if !request.https => Reply::html_error(404, "Not Found"),
            "/ovirt-engine/sso/oauth/token" if v4_engine && request.method == "POST" => {
                self.auth().sso_token(&db, &request)
            }
            "/ovirt-engine/services/sso-logout" if v4_engine && request.method == "POST" => {
                self.auth().sso_logout(&request)
            }
            _ if path == api::API_PREFIX || path.starts_with("/ovirt-engine/api/") => {
                if let Some(reply) = self.transport_fault(&faults).await {
                    return reply;
                }
                api::handle(&self.config, &self.auth, &self.db_lock, &request).await
            }
            _ => Reply::html_error(404, "Not Found"),
        }
    }

    fn auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `api_slow` and `api_flaky` to an API call.
    async fn transport_fault(&self, faults: &ActiveFaults) -> Option<Reply> {
        if faults.api_slow {
            tokio::time::sleep(faults::slow_delay()).await;
        }
        if !faults.api_flaky {
            return None;
        }
        let call = self.api_calls.fetch_add(1, Ordering::SeqCst) + 1;
        match faults::flaky_failure(call)? {
            FlakyFailure::Unavailable => Some(Reply::html_error(503, "Service Unavailable")),
            FlakyFailure::Reset => Some(Reply::connection_reset()),
        }
    }
}
