//! Facts gathered from the host for the playbooks' preconditions.

pub mod maintenance;
pub mod preflight;
