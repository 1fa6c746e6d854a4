//! The fake oVirt engine: REST API v3/v4 in XML, SSO, pki-resource and health, served over
//! HTTPS (and HTTP for health and pki-resource) from the database in `state/engine-db.json`.

pub mod api;
pub mod auth;
pub mod clock;
pub mod db;
pub mod dispatch;
pub mod faults;
pub mod http;
pub mod server;
pub mod services;
pub mod volumes;
pub mod xml;

pub use server::{serve, EngineServer};
