//! What can go wrong talking to the engine; every variant names the call or input it is about.

/// An engine API failure. Messages never contain the password (it is never formatted in).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An option or input cannot be used (bad URL, unreadable CA file, ...).
    #[error("{0}")]
    Input(String),
    /// The engine could not be reached (after the retries).
    #[error("cannot reach the engine for {call}: {reason} (tried {attempts} times)")]
    Unreachable {
        /// The call, as `METHOD /path`.
        call: String,
        /// The last transport error.
        reason: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The engine kept answering with a server error (after the retries).
    #[error("engine failed {call} with HTTP {status} (tried {attempts} times){}", describe_fault(.reason, .detail))]
    ServerError {
        /// The call, as `METHOD /path`.
        call: String,
        /// HTTP status.
        status: u16,
        /// The engine's fault reason, if it sent one.
        reason: String,
        /// The engine's fault detail, if it sent one.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The engine refused the call (4xx).
    #[error("engine refused {call} with HTTP {status}{}", describe_fault(.reason, .detail))]
    Refused {
        /// The call, as `METHOD /path`.
        call: String,
        /// HTTP status.
        status: u16,
        /// The engine's fault reason.
        reason: String,
        /// The engine's fault detail.
        detail: String,
    },
    /// Login failed (bad credentials, unknown profile, ...).
    #[error("engine login as '{username}' failed: {reason}")]
    Login {
        /// The user name used.
        username: String,
        /// The engine's explanation.
        reason: String,
    },
    /// The engine CA does not match the pinned fingerprint; nothing else was sent.
    #[error("the engine CA certificate ({subject}) does not match ca_fingerprint {pinned}: its SHA-1 is {sha1} and its SHA-256 is {sha256}; check that you are talking to the right engine, then fix ca_fingerprint")]
    PinMismatch {
        /// The pin given by the user, as given.
        pinned: String,
        /// Subject of the certificate received.
        subject: String,
        /// SHA-1 fingerprint of the certificate received.
        sha1: String,
        /// SHA-256 fingerprint of the certificate received.
        sha256: String,
    },
    /// The engine's certificate does not verify against the engine CA in use (retrying
    /// cannot help); nothing was sent.
    #[error("cannot reach the engine for {call}: TLS verification against the engine CA failed: {reason}")]
    Untrusted {
        /// The call, as `METHOD /path`.
        call: String,
        /// The TLS error.
        reason: String,
    },
    /// The engine presents another CA than the one pinned on the attempt's first contact;
    /// nothing but the CA request was sent.
    #[error("the engine presents the CA certificate {presented}, not the one pinned on this attempt's first contact ({pinned}, kept in {pin_file}): nothing was sent to it. Check that this is the right engine; if its CA was replaced on purpose, remove {pin_file} to pin the new one")]
    CaChanged {
        /// The CA the engine presents now: subject and fingerprints.
        presented: String,
        /// The pinned CA: subject and fingerprints.
        pinned: String,
        /// The pin file.
        pin_file: String,
    },
    /// The engine's answer could not be understood.
    #[error("unexpected answer from the engine to {call}: {reason}")]
    Unexpected {
        /// The call, as `METHOD /path`.
        call: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// Something did not reach the wanted state in time.
    #[error("{what} did not happen within {timeout_s} s ({last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        timeout_s: u64,
        /// The last state seen.
        last: String,
    },
}

impl EngineError {
    /// Whether the outcome of the call is unknown (transport error or 5xx after retries):
    /// a creation may or may not have happened.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. } | EngineError::ServerError { .. }
        )
    }

    /// The HTTP status of a refused call, if this is one.
    pub fn refused_status(&self) -> Option<u16> {
        match self {
            EngineError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn describe_fault(reason: &str, detail: &str) -> String {
    match (reason.is_empty(), detail.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {reason}"),
        (true, false) => format!(": {detail}"),
        (false, false) => format!(": {reason}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names_the_call_and_the_engine_fault() {
        let error = EngineError::Refused {
            call: "POST /ovirt-engine/api/disks".into(),
            status: 400,
            reason: "Operation Failed".into(),
            detail: "[Cannot add Virtual Disk. Low disk space.]".into(),
        };
        assert_eq!(
            error.to_string(),
            "engine refused POST /ovirt-engine/api/disks with HTTP 400: Operation Failed: [Cannot add Virtual Disk. Low disk space.]"
        );
        assert_eq!(error.refused_status(), Some(400));
    }

    #[test]
    fn server_error_without_fault_body_is_still_clear() {
        let error = EngineError::ServerError {
            call: "GET /ovirt-engine/api".into(),
            status: 503,
            reason: String::new(),
            detail: String::new(),
            attempts: 4,
        };
        assert_eq!(
            error.to_string(),
            "engine failed GET /ovirt-engine/api with HTTP 503 (tried 4 times)"
        );
    }
}
