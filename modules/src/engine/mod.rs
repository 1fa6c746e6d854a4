//! The engine REST API client: CA acquisition, TLS, login (v4 SSO / v3 Basic), retries, and
//! one file per resource the modules read or change (reference engine-api.md).
//!
//! The client speaks XML, as the official SDKs do, and knows both dialects: v4 (engines 4.x:
//! SSO token, `Version: 4`, plain-text statuses, element versions) and v3 (engine 3.6: Basic
//! auth with a `Prefer: persistent-auth` session, `<status><state>`, attribute versions).
//! It is not a general SDK: only the calls the hosted-engine upgrade needs are here.

pub mod auth;
pub mod backup_disk_states;
pub mod backup_disks;
pub mod ca;
pub mod ca_pin;
pub mod client;
pub mod clusters;
pub mod datacenters;
pub mod disks;
pub mod domains;
pub mod error;
pub mod hosts;
pub mod options;
pub mod product;
pub mod readiness;
pub mod storage_domains;
pub mod wait;
pub mod xml;

pub use client::{ApiVersion, Connection};
pub use error::EngineError;
pub use options::EngineOptions;
