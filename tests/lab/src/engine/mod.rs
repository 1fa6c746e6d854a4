//! The fake oVirt engine: REST API v3/v4 in XML, SSO, pki-resource and health, served over
//! HTTPS (and HTTP for health and pki-resource) from the database in `state/engine-db.json`.
//!
//! What it serves (shapes from shared/reference/engine-api.md):
//!
//! | URL (under `https://127.0.0.1:<https_port>`)                     | engines |
//! |------------------------------------------------------------------|---------|
//! | `GET /ovirt-engine/services/health` (also plain HTTP)             | all     |
//! | `GET /ovirt-engine/services/pki-resource?resource=..&format=..` (also HTTP) | all |
//! | `POST /ovirt-engine/sso/oauth/token`, `POST /ovirt-engine/services/sso-logout` | 4.x |
//! | `/ovirt-engine/api[/v3\|/v4]` root, `hosts[/{id}]`, `datacenters[/{id}[/clusters\|/storagedomains[/{sd}[/disks]]]]`, `clusters[/{id}]`, `storagedomains[/{id}[/disks[/{disk}]]]`, `disks[/{id}]`, `domains[/{id}]` | all |
//! | `storagedomains/{sd}/disks;unregistered` (3.6) or `?unregistered=true` (4.x): GET lists, POST registers | all |
//! | `POST datacenters/{dc}/storagedomains/{sd}/disks/{id}/register`   | 4.x (v4) |
//!
//! Auth: SSO Bearer tokens (4.x), HTTP Basic, `Prefer: persistent-auth` + JSESSIONID.
//! Faults (`state/faults.json`, read per request): see [`faults`].

pub mod api;
pub mod auth;
pub mod clock;
pub mod db;
pub mod dispatch;
pub mod faults;
pub mod ha;
pub mod http;
pub mod server;
pub mod services;
pub mod volumes;
pub mod xml;

pub use server::{serve, EngineServer};
