//! Disks through the fake engine: create (202, locked, then ok, backed by a real volume),
//! space accounting, delete, errors, unregistered disks and registration.

mod engine_support;

use engine_support::{item_texts, release_36, release_44, TestEngine};
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;

struct Client<'a> {
    engine: &'a TestEngine,
    auth: Vec<String>,
}

impl<'a> Client<'a> {
    fn v4(engine: &'a TestEngine) -> Self {
        let token = engine
            .curl(&[
                "-H",
                "Accept: application/json",
                "--data-urlencode",
                "grant_type=password",
                "--data-urlencode",
                "scope=ovirt-app-api",
                "--data-urlencode",
                "username=admin@internal",
                "--data-urlencode",
                &format!("password={}", engine.password),
                &engine.https("/ovirt-engine/sso/oauth/token"),
            ])
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let auth = vec![
            "-H".into(),
            format!("Authorization: Bearer {token}"),
            "-H".into(),
            "Version: 4".into(),
        ];
        Client { engine, auth }
    }

    fn v3(engine: &'a TestEngine) -> Self {
        let auth = vec![
            "-u".into(),
            format!("admin@internal:{}", engine.password),
            "-H".into(),
            "Version: 3".into(),
        ];
        Client { engine, auth }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &[&str],
    ) -> engine_support::CurlReply {
        let url = self.engine.https(&format!("/ovirt-engine/api{path}"));
        let mut args: Vec<&str> = self.auth.iter().map(String::as_str).collect();
        args.extend([
            "-X",
            method,
            "-H",
            "Content-Type: application/xml",
            "-H",
            "Accept: application/xml",
        ]);
        args.extend(extra);
        if let Some(body) = body {
            args.extend(["--data-binary", body]);
        }
        args.push(&url);
        self.engine.curl(&args)
    }

    fn get(&self, path: &str) -> engine_support::CurlReply {
        self.call("GET", path, None, &[])
    }

    fn available(&self) -> u64 {
        let sd = self
            .get(&format!("/storagedomains/{}", self.engine.config.sd_id))
            .xml();
        sd.child_text("available").unwrap().parse().unwrap()
    }
}

fn disk_body(sd: &str, alias: &str, size: u64) -> String {
    format!(
        "<disk>\n  <alias>{alias}</alias>\n  <description>hosted-engine-backup-20260101120000</description>\n  <format>raw</format>\n  <provisioned_size>{size}</provisioned_size>\n  <sparse>false</sparse>\n  <storage_domains>\n    <storage_domain id=\"{sd}\"/>\n  </storage_domains>\n</disk>\n"
    )
}

fn wait_ok(client: &Client, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let disk = client.get(&format!("/disks/{id}")).xml();
        if disk.child_text("status") == Some("ok") {
            return started.elapsed();
        }
        assert!(
            // A bound on a hang, not on speed: the lab's creation takes a few seconds.
            started.elapsed() < Duration::from_secs(300),
            "disk never became ok"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn create_locks_then_unlocks_and_moves_space() {
    let engine = TestEngine::start("disks-create", release_44());
    let client = Client::v4(&engine);
    let sd = engine.config.sd_id.clone();
    let before = client.available();
    assert_eq!(before, 90 * GIB);

    let reply = client.call(
        "POST",
        "/disks",
        Some(&disk_body(&sd, "backup", 2 * GIB)),
        &[],
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let disk = reply.xml();
    assert_eq!(disk.child_text("status"), Some("locked"));
    let id = disk.attribute("id").unwrap().to_string();
    let volume = disk.child_text("image_id").unwrap().to_string();
    assert_eq!(client.available(), 88 * GIB);

    // The real volume is there with the engine's DESCRIPTION.
    let meta_path = engine
        .config
        .volume_path(&id, &volume)
        .with_extension("meta");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    assert!(meta.contains(
        "DESCRIPTION={\"DiskAlias\":\"backup\",\"DiskDescription\":\"hosted-engine-backup-20260101120000\"}"
    ), "{meta}");
    assert!(meta.contains(&format!("CAP={}", 2 * GIB)));
    assert!(meta.contains("TYPE=PREALLOCATED\n"));
    assert!(meta.contains("DISKTYPE=DATA\n"));
    assert!(engine.config.volume_path(&id, &volume).exists());

    // Deleting a locked disk conflicts.
    let locked = client.call("DELETE", &format!("/disks/{id}"), None, &[]);
    assert_eq!(locked.status, 409);
    assert_eq!(locked.xml().child_text("reason"), Some("Operation Failed"));

    wait_ok(&client, &id);
    let listed = client.get("/disks").xml();
    assert!(item_texts(&listed, "alias").contains(&"backup".to_string()));
    assert_eq!(engine.db().disk(&id).unwrap().status, "ok");

    // Duplicate id conflicts.
    let duplicate = disk_body(&sd, "again", GIB).replace("<disk>", &format!("<disk id=\"{id}\">"));
    assert_eq!(
        client.call("POST", "/disks", Some(&duplicate), &[]).status,
        409
    );

    let deleted = client.call("DELETE", &format!("/disks/{id}"), None, &[]);
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.xml().name, "action");
    assert!(!meta_path.exists());
    assert_eq!(client.available(), before);
    assert_eq!(client.get(&format!("/disks/{id}")).status, 404);
    assert_eq!(
        client
            .call("DELETE", &format!("/disks/{id}"), None, &[])
            .status,
        404
    );
}

#[test]
fn expect_201_blocks_until_the_disk_is_ok() {
    let engine = TestEngine::start("disks-expect", release_44());
    let client = Client::v4(&engine);
    let started = Instant::now();
    let reply = client.call(
        "POST",
        &format!("/storagedomains/{}/disks", engine.config.sd_id),
        Some(&disk_body(&engine.config.sd_id, "blocking", GIB)),
        &["-H", "Expect: 201-created"],
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let disk = reply.xml();
    assert_eq!(disk.child_text("status"), Some("ok"));
    assert!(reply
        .header("location")
        .unwrap()
        .ends_with(disk.attribute("id").unwrap()));
}

#[test]
fn bad_requests_get_engine_faults() {
    let engine = TestEngine::start("disks-bad", release_44());
    let client = Client::v4(&engine);
    let sd = engine.config.sd_id.clone();
    let incomplete = client.call("POST", "/disks", Some("<disk><alias>x</alias></disk>"), &[]);
    assert_eq!(incomplete.status, 400);
    let fault = incomplete.xml();
    assert_eq!(fault.child_text("reason"), Some("Incomplete parameters"));
    assert_eq!(
        fault.child_text("detail"),
        Some("Disk [provisionedSize|size, format] required for add")
    );
    let garbage = client.call("POST", "/disks", Some("<disk><alias>"), &[]);
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.xml().name, "fault");
    let nowhere = disk_body("00000000-0000-4000-8000-00000000dead", "x", GIB);
    let nowhere = client.call("POST", "/disks", Some(&nowhere), &[]);
    assert_eq!(nowhere.status, 400);
    assert_eq!(
        nowhere.xml().child_text("detail"),
        Some("[Cannot add Virtual Disk. Storage Domain doesn't exist.]")
    );
    let huge = client.call(
        "POST",
        "/disks",
        Some(&disk_body(&sd, "huge", 500 * GIB)),
        &[],
    );
    assert_eq!(huge.status, 400);
    assert_eq!(
        huge.xml().child_text("detail"),
        Some("[Cannot add Virtual Disk. Low disk space on Storage Domain hosted_storage.]")
    );
    // v3 also requires the interface.
    let v3 = Client::v3(&engine);
    let no_interface = v3.call("POST", "/disks", Some(&disk_body(&sd, "x", GIB)), &[]);
    assert_eq!(no_interface.status, 400);
    assert_eq!(
        no_interface.xml().child_text("detail"),
        Some("Disk [interface] required for add")
    );
}

fn make_unregistered(engine: &TestEngine, alias: &str) -> (String, String) {
    let image = "c0ffee00-0000-4000-8000-0000000000a1".to_string();
    let volume = "c0ffee00-0000-4000-8000-0000000000b1".to_string();
    engine_support::write_volume(
        &engine.config,
        &image,
        &volume,
        "DATA",
        &format!("{{\"DiskAlias\":\"{alias}\",\"DiskDescription\":\"hosted-engine-backup-1\"}}"),
        10 * GIB,
    );
    (image, volume)
}

#[test]
fn v4_unregistered_list_and_register() {
    let engine = TestEngine::start("disks-unreg-v4", release_44());
    let client = Client::v4(&engine);
    let sd = engine.config.sd_id.clone();
    let (image, volume) = make_unregistered(&engine, "virtio-disk0");

    let listed = client
        .get(&format!("/storagedomains/{sd}/disks?unregistered=true"))
        .xml();
    assert_eq!(
        listed.children.len(),
        1,
        "only the user volume, not HE infrastructure: {listed:?}"
    );
    let disk = &listed.children[0];
    assert_eq!(disk.attribute("id"), Some(image.as_str()));
    assert_eq!(disk.child_text("image_id"), Some(volume.as_str()));
    assert_eq!(disk.child_text("alias"), Some("virtio-disk0"));
    assert_eq!(
        disk.child_text("description"),
        Some("hosted-engine-backup-1")
    );
    assert_eq!(
        disk.child_text("provisioned_size"),
        Some((10 * GIB).to_string().as_str())
    );
    // Without the parameter only registered disks are listed.
    let registered = client.get(&format!("/storagedomains/{sd}/disks")).xml();
    assert_eq!(item_texts(&registered, "alias"), vec!["he_virtio_disk"]);

    let missing = client.call(
        "POST",
        &format!("/datacenters/{}/storagedomains/{sd}/disks/00000000-0000-4000-8000-000000000000/register", engine.config.sp_id),
        Some("<action/>"),
        &[],
    );
    assert_eq!(missing.status, 404);
    let action = client.call(
        "POST",
        &format!(
            "/datacenters/{}/storagedomains/{sd}/disks/{image}/register",
            engine.config.sp_id
        ),
        Some("<action/>"),
        &[],
    );
    assert_eq!(action.status, 200, "{}", action.body);
    assert_eq!(action.xml().child_text("status"), Some("complete"));
    let disk = client.get(&format!("/disks/{image}")).xml();
    assert_eq!(disk.child_text("status"), Some("ok"));
    assert_eq!(disk.child_text("alias"), Some("virtio-disk0"));
    assert!(client
        .get(&format!("/storagedomains/{sd}/disks?unregistered=true"))
        .xml()
        .children
        .is_empty());
    assert!(engine.db().disk(&image).is_some());
}

#[test]
fn v4_register_by_post_with_the_sdk_body() {
    let engine = TestEngine::start("disks-unreg-post", release_44());
    let client = Client::v4(&engine);
    let sd = engine.config.sd_id.clone();
    let (image, _) = make_unregistered(&engine, "virtio-disk0");
    let reply = client.call(
        "POST",
        &format!("/storagedomains/{sd}/disks?unregistered=true"),
        Some(&format!("<disk id=\"{image}\"/>\n")),
        &[],
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.xml().attribute("id"), Some(image.as_str()));
    // A second registration finds nothing unregistered.
    let again = client.call(
        "POST",
        &format!("/storagedomains/{sd}/disks?unregistered=true"),
        Some(&format!("<disk id=\"{image}\"/>\n")),
        &[],
    );
    assert_eq!(again.status, 404);
}

#[test]
fn v3_unregistered_uses_the_matrix_parameter() {
    let engine = TestEngine::start("disks-unreg-v3", release_36());
    let client = Client::v3(&engine);
    let sd = engine.config.sd_id.clone();
    let (image, _) = make_unregistered(&engine, "virtio-disk0");
    // 3.6 ignores the query form.
    let query = client
        .get(&format!("/storagedomains/{sd}/disks?unregistered=true"))
        .xml();
    assert_eq!(item_texts(&query, "alias"), vec!["he_virtio_disk"]);
    let listed = client
        .get(&format!(
            "/storagedomains/{sd}/disks;case_sensitive=True;unregistered=True"
        ))
        .xml();
    assert_eq!(item_texts(&listed, "alias"), vec!["virtio-disk0"]);
    assert_eq!(
        listed.children[0]
            .child("status")
            .unwrap()
            .child_text("state"),
        Some("ok")
    );
    let body = format!("<disk id=\"{image}\"><alias>virtio-disk0</alias></disk>");
    let reply = client.call(
        "POST",
        &format!("/storagedomains/{sd}/disks;unregistered"),
        Some(&body),
        &[],
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(engine.db().disk(&image).is_some());
}

#[test]
fn restore_keeps_old_data_and_forgets_newer_disks() {
    let engine = TestEngine::start("disks-restore", release_36());
    let client = Client::v3(&engine);
    let dump = engine.db();
    let body = disk_body(&engine.config.sd_id, "backup", GIB)
        .replace("<disk>", "<disk><interface>virtio</interface>");
    let reply = client.call("POST", "/disks", Some(&body), &[]);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let backup_id = reply.xml().attribute("id").unwrap().to_string();

    let restored = he_lab::engine::db::EngineDb::restore_from_backup(&dump, &release_44());
    engine.set_db(&restored);
    let v4 = Client::v4(&engine);
    let dc = v4.get("/datacenters").xml().children[0].clone();
    assert_eq!(
        dc.child("version").unwrap().child_text("minor"),
        Some("6"),
        "compat level unchanged"
    );
    let disks = v4.get("/disks").xml();
    assert_eq!(item_texts(&disks, "alias"), vec!["he_virtio_disk"]);
    let unregistered = v4
        .get(&format!(
            "/storagedomains/{}/disks?unregistered=true",
            engine.config.sd_id
        ))
        .xml();
    assert_eq!(
        unregistered.children[0].attribute("id"),
        Some(backup_id.as_str())
    );
    assert_eq!(restored.data, dump.data);
}
