//! The fake oVirt engine: REST API v3/v4 in XML, SSO, pki-resource and health.

pub mod clock;
pub mod db;
