//! The REST API under `/ovirt-engine/api`: version negotiation, authentication, the
//! database as the client sees it, and routing to one file per resource.

pub mod clusters;
pub mod context;
pub mod datacenters;
pub mod disks;
pub mod domains;
pub mod hosts;
pub mod root;
pub mod storagedomains;
pub mod unregistered;

use crate::config::LabConfig;
use crate::engine::auth::AuthState;
use crate::engine::clock;
use crate::engine::db::{EngineDb, DISK_LOCKED, DISK_OK};
use crate::engine::faults::{self, ActiveFaults};
use crate::engine::http::{Reply, Request};
use context::{fault, not_found, ApiCall, Dialect};
use std::sync::Mutex;
use std::time::Duration;

/// Path prefix of the API.
pub const API_PREFIX: &str = "/ovirt-engine/api";

/// Longest a client blocking on `Expect: 201-created` waits for a disk.
const MAX_CREATE_WAIT: Duration = Duration::from_secs(3600);

/// Picks v3 or v4 for a request (engine-api.md part 2 section 9) and returns the path
/// segments after the API prefix (and after a `/v3` / `/v4` prefix).
pub fn negotiate(db: &EngineDb, request: &Request) -> Result<(Dialect, Vec<String>), Reply> {
    let rest = request.path.strip_prefix(API_PREFIX).unwrap_or("");
    let mut segments: Vec<String> = rest
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(str::to_string)
        .collect();
    if !db.api_versions.contains(&4) {
        // A 3.6 engine has no version filter: v3 always, `Version` ignored.
        let dialect = Dialect {
            v3: true,
            base: API_PREFIX.into(),
        };
        return Ok((dialect, segments));
    }
    let from_path = segments
        .first()
        .and_then(|first| first.strip_prefix('v'))
        .and_then(|number| number.parse::<u8>().ok());
    let (version, base) = match from_path {
        Some(version) => {
            segments.remove(0);
            (version, format!("{API_PREFIX}/v{version}"))
        }
        None => {
            let version = match request.header("version") {
                Some(text) => text.parse::<u8>().map_err(|_| unsupported(db, text))?,
                None => *db.api_versions.iter().max().unwrap_or(&4),
            };
            (version, API_PREFIX.to_string())
        }
    };
    if !db.api_versions.contains(&version) {
        return Err(unsupported(db, &version.to_string()));
    }
    Ok((
        Dialect {
            v3: version == 3,
            base,
        },
        segments,
    ))
}

fn unsupported(db: &EngineDb, version: &str) -> Reply {
    let supported: Vec<String> = db.api_versions.iter().map(u8::to_string).collect();
    fault(
        400,
        "Operation Failed",
        &format!(
            "Version \"{version}\" isn't supported, supported versions are {}.",
            supported.join(", ")
        ),
    )
}

/// Serves one API request. `db_lock` serializes database read-modify-write cycles.
pub async fn handle(
    config: &LabConfig,
    auth: &Mutex<AuthState>,
    db_lock: &tokio::sync::Mutex<()>,
    request: &Request,
) -> Reply {
    let guard = db_lock.lock().await;
    let faults = ActiveFaults::read(config);
    let now_ms = clock::now_ms();
    let mut db = match EngineDb::load(config) {
        Ok(db) => db,
        Err(_) => return Reply::html_error(503, "Service Unavailable"),
    };
    if db.settle_disks(now_ms, faults.disk_create_stuck) {
        let _ = db.save(config);
    }
    let (dialect, segments) = match negotiate(&db, request) {
        Ok(negotiated) => negotiated,
        Err(reply) => return reply,
    };
    let authenticated = {
        let mut auth = auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match auth.authenticate(&db, request) {
            Ok(authenticated) => authenticated,
            Err(reply) => return reply,
        }
    };
    let (mut reply, wait_for_disk) = {
        let mut call = new_call(config, &mut db, &faults, dialect.clone(), request, now_ms);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let reply = route(&mut call, &segments);
        let (dirty, wait) = (call.dirty, call.wait_for_disk.take());
        drop(call);
        if dirty {
            if let Err(error) = db.save(config) {
                return fault(500, "Operation Failed", &format!("[{error}]"));
            }
        }
        (reply, wait)
    };
    drop(guard);
    if let Some(disk_id) = wait_for_disk {
        reply = wait_for_creation(config, db_lock, request, &dialect, &disk_id).await;
    }
    if let Some(session) = authenticated.new_session {
        reply = reply
            .with_header(
                "Set-Cookie",
                &format!("JSESSIONID={session}; Path={API_PREFIX}; Secure; HttpOnly"),
            )
            .with_header("JSESSIONID", &session);
    }
    reply
}

fn new_call<'a>(
    config: &'a LabConfig,
    db: &'a mut EngineDb,
    faults: &ActiveFaults,
    dialect: Dialect,
    request: &'a Request,
    now_ms: u64,
) -> ApiCall<'a> {
    let mut view = db.clone();
    faults::apply_to_view(&mut view, config, faults, now_ms);
    ApiCall {
        config,
        db,
        view,
        faults: faults.clone(),
        dialect,
        request,
        now_ms,
        dirty: false,
        wait_for_disk: None,
    }
}

fn route(call: &mut ApiCall, segments: &[&str]) -> Reply {
    match segments {
        [] => root::handle(call),
        ["hosts", rest @ ..] => hosts::handle(call, rest),
        ["datacenters", rest @ ..] => datacenters::handle(call, rest),
        ["clusters", rest @ ..] => clusters::handle(call, rest),
        ["storagedomains", rest @ ..] => storagedomains::handle(call, rest),
        ["disks", rest @ ..] => disks::handle(call, rest),
        ["domains", rest @ ..] => domains::handle(call, rest),
        _ => not_found(),
    }
}

/// Blocks like the engine does for `Expect: 201-created`: 201 + Location once the disk is ok.
async fn wait_for_creation(
    config: &LabConfig,
    db_lock: &tokio::sync::Mutex<()>,
    request: &Request,
    dialect: &Dialect,
    disk_id: &str,
) -> Reply {
    let started = std::time::Instant::now();
    loop {
        {
            let _guard = db_lock.lock().await;
            let faults = ActiveFaults::read(config);
            let now_ms = clock::now_ms();
            let Ok(mut db) = EngineDb::load(config) else {
                return Reply::html_error(503, "Service Unavailable");
            };
            if db.settle_disks(now_ms, faults.disk_create_stuck) {
                let _ = db.save(config);
            }
            let status = db.disk(disk_id).map(|disk| disk.status.clone());
            match status.as_deref() {
                Some(DISK_OK) => {
                    let call = new_call(config, &mut db, &faults, dialect.clone(), request, now_ms);
                    let disk = call.view.disk(disk_id).cloned().expect("disk present");
                    let location = dialect.href(&format!("disks/{disk_id}"));
                    return Reply::xml(201, disks::document(&call, &disk, None))
                        .with_header("Location", &location);
                }
                Some(DISK_LOCKED) if started.elapsed() < MAX_CREATE_WAIT => {}
                Some(_) => {
                    return context::operation_failed(
                        500,
                        "Cannot add Virtual Disk. The disk creation did not complete.",
                    )
                }
                None => return not_found(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
