//! Each engine-side fault changes what the fake engine answers, and only while it is on.

mod engine_support;

use engine_support::{release_36, release_44, TestEngine};
use std::time::{Duration, Instant};

fn v3_get(engine: &TestEngine, path: &str) -> engine_support::CurlReply {
    engine.curl(&[
        "-u",
        &format!("admin@internal:{}", engine.password),
        "-H",
        "Version: 3",
        &engine.https(&format!("/ovirt-engine/api{path}")),
    ])
}

fn this_host(engine: &TestEngine) -> he_lab::engine::xml::Element {
    v3_get(engine, "/hosts")
        .xml()
        .children
        .into_iter()
        .find(|h| {
            h.child("hardware_information").unwrap().child_text("uuid")
                == Some(engine.config.host_uuid.as_str())
        })
        .unwrap()
}

fn spm_state(host: &he_lab::engine::xml::Element) -> String {
    host.child("spm")
        .unwrap()
        .child("status")
        .unwrap()
        .child_text("state")
        .unwrap()
        .to_string()
}

#[test]
fn never_healthy_reports_db_down() {
    let engine = TestEngine::start("fault-health", release_36());
    engine.set_faults(&["never_healthy"]);
    let reply = engine.curl(&[&engine.http("/ovirt-engine/services/health")]);
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("DB Up"));
    engine.set_faults(&[]);
    let reply = engine.curl(&[&engine.http("/ovirt-engine/services/health")]);
    assert_eq!(reply.body, "DB Up!Welcome to Health Status!");
}

#[test]
fn not_spm_moves_the_spm_to_another_named_host() {
    let engine = TestEngine::start("fault-spm", release_36());
    assert_eq!(spm_state(&this_host(&engine)), "spm");
    engine.set_faults(&["not_spm"]);
    assert_eq!(spm_state(&this_host(&engine)), "none");
    let hosts = v3_get(&engine, "/hosts").xml();
    let spm: Vec<_> = hosts
        .children
        .iter()
        .filter(|h| spm_state(h) == "spm")
        .collect();
    assert_eq!(spm.len(), 1);
    assert_ne!(spm[0].child_text("name"), Some("host1.lab.local"));
    assert_eq!(
        this_host(&engine).child("storage_manager").unwrap().text,
        "false"
    );
}

#[test]
fn sd_low_space_leaves_no_room() {
    let engine = TestEngine::start("fault-space", release_36());
    let available = |engine: &TestEngine| {
        v3_get(engine, &format!("/storagedomains/{}", engine.config.sd_id))
            .xml()
            .child_text("available")
            .unwrap()
            .to_string()
    };
    assert_eq!(available(&engine), (90u64 << 30).to_string());
    engine.set_faults(&["sd_low_space"]);
    assert_eq!(available(&engine), "0");
}

#[test]
fn disk_create_stuck_keeps_new_disks_locked_until_cleared() {
    let engine = TestEngine::start("fault-stuck", release_36());
    engine.set_faults(&["disk_create_stuck"]);
    let body = format!(
        "<disk><alias>b</alias><interface>virtio</interface><format>raw</format><sparse>false</sparse><size>1073741824</size><storage_domains><storage_domain id=\"{}\"/></storage_domains></disk>",
        engine.config.sd_id
    );
    let reply = engine.curl(&[
        "-u",
        &format!("admin@internal:{}", engine.password),
        "-H",
        "Content-Type: application/xml",
        "--data-binary",
        &body,
        &engine.https("/ovirt-engine/api/disks"),
    ]);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.xml().attribute("id").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let state = |engine: &TestEngine| {
        v3_get(engine, &format!("/disks/{id}"))
            .xml()
            .child("status")
            .unwrap()
            .child_text("state")
            .unwrap()
            .to_string()
    };
    assert_eq!(state(&engine), "locked");
    engine.set_faults(&[]);
    assert_eq!(state(&engine), "ok");
}

#[test]
fn api_flaky_fails_every_third_call_with_503_or_reset() {
    let engine = TestEngine::start("fault-flaky", release_36());
    engine.set_faults(&["api_flaky"]);
    let outcomes: Vec<(i32, u16)> = (0..6)
        .map(|_| {
            let reply = v3_get(&engine, "");
            (reply.exit_code, reply.status)
        })
        .collect();
    assert_eq!(outcomes[0], (0, 200));
    assert_eq!(outcomes[1], (0, 200));
    assert_eq!(outcomes[2], (0, 503));
    assert_eq!(outcomes[3], (0, 200));
    assert_eq!(outcomes[4], (0, 200));
    assert_ne!(outcomes[5].0, 0, "connection dropped: {:?}", outcomes[5]);
    // Health is not an API call and is never flaky.
    for _ in 0..3 {
        assert_eq!(
            engine
                .curl(&[&engine.http("/ovirt-engine/services/health")])
                .status,
            200
        );
    }
}

#[test]
fn api_slow_delays_api_calls() {
    std::env::set_var("HE_LAB_API_SLOW_SECONDS", "1");
    let engine = TestEngine::start("fault-slow", release_36());
    engine.set_faults(&["api_slow"]);
    let started = Instant::now();
    assert_eq!(v3_get(&engine, "").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[test]
fn dc_down_after_restore_is_down_for_a_while() {
    // A window far longer than the test: what it sees never depends on the machine's speed.
    std::env::set_var("HE_LAB_DC_DOWN_SECONDS", "600");
    let engine = TestEngine::start("fault-dcdown", release_36());
    engine.set_faults(&["dc_down_after_restore"]);
    // Not restored yet: up.
    let dc_state = |engine: &TestEngine| {
        v3_get(engine, "/datacenters").xml().children[0]
            .child("status")
            .unwrap()
            .child_text("state")
            .unwrap()
            .to_string()
    };
    assert_eq!(dc_state(&engine), "up");
    let restored = he_lab::engine::db::EngineDb::restore_from_backup(&engine.db(), &release_44());
    engine.set_db(&restored);
    assert_eq!(dc_state(&engine), "not_operational");
    let host = this_host(&engine);
    assert_eq!(
        host.child("status").unwrap().child_text("state"),
        Some("non_operational")
    );
    let unregistered = v3_get(
        &engine,
        &format!("/storagedomains/{};unregistered/disks", engine.config.sd_id),
    );
    assert_eq!(unregistered.status, 409, "{}", unregistered.body);
    // The window over: the restore happened 601 s ago.
    let mut later = engine.db();
    later.restored_at_ms = later.restored_at_ms.map(|at| at - 601_000);
    engine.set_db(&later);
    assert_eq!(dc_state(&engine), "up");
    assert_eq!(
        this_host(&engine)
            .child("status")
            .unwrap()
            .child_text("state"),
        Some("up")
    );
}
