//! Facts gathered from the host for the playbooks' preconditions.

pub mod engine_network;
pub mod maintenance;
pub mod preflight;
