//! Waiting for a data center and this host to be `up`, as after an engine restore (SPEC 9.2).

use super::client::Connection;
use super::error::EngineError;
use super::wait::{self, Step};
use super::{datacenters, hosts};
use std::time::Duration;

/// Waits at most `timeout` until data center `dc_id` and the host with `hardware_uuid` are
/// both `up`. A zero timeout looks once (check mode: plan without blocking).
pub fn wait_until_up(
    engine: &mut Connection,
    dc_id: &str,
    hardware_uuid: &str,
    timeout: Duration,
) -> Result<(), EngineError> {
    wait::until(
        "the data center and this host to be up",
        timeout,
        wait::POLL_INTERVAL,
        || look(engine, dc_id, hardware_uuid),
    )
}

fn look(
    engine: &mut Connection,
    dc_id: &str,
    hardware_uuid: &str,
) -> Result<Step<()>, EngineError> {
    let dc_status =
        datacenters::get(engine, dc_id)?.map_or_else(|| "missing".to_string(), |dc| dc.status);
    let all_hosts = hosts::list(engine)?;
    let host = hosts::by_hardware_uuid(&all_hosts, hardware_uuid);
    if dc_status == "up" && host.is_some_and(|host| host.status == "up") {
        return Ok(Step::Done(()));
    }
    let host_status = host.map_or_else(
        || format!("with hardware UUID {hardware_uuid} not known to the engine"),
        |host| format!("{} {}", host.name, host.status),
    );
    Ok(Step::Pending(format!(
        "data center {dc_status}, host {host_status}"
    )))
}
