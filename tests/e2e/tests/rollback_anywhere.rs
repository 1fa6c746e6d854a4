//! Rollback from any hosted-engine host of the site (issue 15 item 2): with the upgrade host's
//! state directory emptied (a reinstall, another host), the proof the verified copy kept in
//! the backup disk's metadata is enough; without it, the operator's checksum is checked
//! against the disk; a backup disk of the original tool is restored only once confirmed.

use he_e2e::{assert_failure, assert_success, backup_disks, Lab};
use serde_json::Value;
use std::path::PathBuf;

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";
const ROLLBACK: &str = "playbooks/hosted_engine_rollback.yml";
const PROFILE: &str = "el6-3.6:el7-4.0";

/// The lab's he_state_dir.
fn state_dir(lab: &Lab) -> PathBuf {
    lab.dir.path().join("var/lib/ovirt-hosted-engine-upgrade")
}

/// Empties he_state_dir, as a reinstalled host or another host of the site has it.
fn empty_state_dir(lab: &Lab) {
    for entry in std::fs::read_dir(state_dir(lab)).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => std::fs::remove_dir_all(&path).unwrap(),
            false => std::fs::remove_file(&path).unwrap(),
        }
    }
}

/// The volume of `image_id` as `he-lab inspect` lists it (export path, SHA-256, capacity).
fn volume(lab: &Lab, image_id: &str) -> Value {
    let inspect = lab.inspect();
    inspect["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["image_id"] == image_id)
        .cloned()
        .unwrap_or_else(|| panic!("no volume of image {image_id}: {inspect}"))
}

/// The engine disk's volume as the storage server holds it.
fn engine_volume(lab: &Lab) -> Value {
    let image = lab.inspect()["engine_disk"]["image_id"].clone();
    volume(lab, image.as_str().unwrap())
}

/// Upgrades (prepare, then the downtime with the engine powered off) and returns the engine
/// disk's SHA-256 at the start of the downtime and the backup disk's image id.
fn upgrade(lab: &Lab) -> (String, String) {
    assert_success(&lab.playbook(UPGRADE, &["--tags", "prepare"]));
    let poweroff = lab.hosted_engine(&["--vm-poweroff"]);
    assert_eq!(poweroff.code, 0, "{}", poweroff.text);
    let at_downtime = lab.engine_disk_sha256();
    assert_success(&lab.playbook(UPGRADE, &["--tags", "downtime"]));
    let upgraded = lab.assert_upgraded_to("4.0");
    let backup_id = backup_disks(&upgraded)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (at_downtime, backup_id)
}

/// The engine disk holds exactly `expected` over the backup's length (zeroes after), and the
/// old engine boots from it.
fn assert_restored(lab: &Lab, backup_image: &str, expected: &str) {
    let capacity = volume(lab, backup_image)["capacity"].as_u64().unwrap();
    lab.assert_engine_disk_holds(expected, capacity);
    lab.start_engine_expecting("3.6");
}

/// Rewrites the volume's description as the engine does when the disk is edited
/// (`UpdateDiskCommand`: only `DiskAlias` and `DiskDescription`), dropping any proof.
fn engine_rewrites_description(lab: &Lab, image_id: &str) {
    let meta = PathBuf::from(format!(
        "{}.meta",
        volume(lab, image_id)["path"].as_str().unwrap()
    ));
    let text = std::fs::read_to_string(&meta).unwrap();
    let description = text
        .lines()
        .find_map(|line| line.strip_prefix("DESCRIPTION="))
        .unwrap();
    let described: serde_json::Map<String, Value> = serde_json::from_str(description).unwrap();
    let rewritten = serde_json::json!({
        "DiskAlias": described["DiskAlias"],
        "DiskDescription": described["DiskDescription"],
    });
    let text = text.replace(
        &format!("DESCRIPTION={description}\n"),
        &format!("DESCRIPTION={rewritten}\n"),
    );
    std::fs::write(&meta, text).unwrap();
}

#[test]
fn with_the_state_dir_emptied_the_proof_in_the_backup_disk_restores_the_exact_disk() {
    let lab = Lab::start(PROFILE);
    let (at_downtime, backup_image) = upgrade(&lab);
    let description = volume(&lab, &backup_image)["description"].clone();
    assert!(
        description
            .as_str()
            .unwrap()
            .contains("\"HeVerified\":\"blake3:"),
        "the verified copy keeps its proof in the backup disk's metadata: {description}"
    );
    empty_state_dir(&lab);

    let rollback = lab.playbook(ROLLBACK, &[]);
    assert_success(&rollback);
    assert!(
        rollback
            .text
            .contains("from the proof of its verified copy in its volume metadata"),
        "{}",
        rollback.text
    );
    assert_restored(&lab, &backup_image, &at_downtime);
}

#[test]
fn without_any_proof_the_operators_checksum_is_checked_before_anything_is_written() {
    let lab = Lab::start(PROFILE);
    let (at_downtime, backup_image) = upgrade(&lab);
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir(&lab).join("upgrade-state.json")).unwrap(),
    )
    .unwrap();
    let checksum = record["backup_checksum"].as_str().unwrap().to_string();
    engine_rewrites_description(&lab, &backup_image);
    empty_state_dir(&lab);
    let upgraded = lab.engine_disk_sha256();

    let unconfirmed = lab.playbook(ROLLBACK, &[]);
    assert_failure(
        &unconfirmed,
        "has no verified-backup record and restoring it was not confirmed",
    );
    assert!(
        unconfirmed.text.contains(&checksum),
        "the checksum is shown: {}",
        unconfirmed.text
    );
    assert_eq!(lab.engine_disk_sha256(), upgraded, "nothing was written");

    let wrong = format!("he_backup_checksum={}", "0".repeat(64));
    let refused = lab.playbook(ROLLBACK, &["-e", &wrong]);
    assert_failure(&refused, "not to the given checksum");
    assert_eq!(lab.engine_disk_sha256(), upgraded, "nothing was written");

    let given = format!("he_backup_checksum={}", checksum.to_uppercase());
    let rollback = lab.playbook(ROLLBACK, &["-e", &given]);
    assert_success(&rollback);
    assert!(
        rollback.text.contains("hashed and compared"),
        "{}",
        rollback.text
    );
    assert_restored(&lab, &backup_image, &at_downtime);
}

#[test]
fn a_backup_disk_of_the_original_tool_is_restored_only_once_confirmed_its_checksum_shown() {
    let lab = Lab::start(PROFILE);
    let poweroff = lab.hosted_engine(&["--vm-poweroff"]);
    assert_eq!(poweroff.code, 0, "{}", poweroff.text);
    let original: Value = serde_json::from_str(&lab.run(&["original-backup-disk"])).unwrap();
    let (name, image) = (
        original["name"].as_str().unwrap(),
        original["image_id"].as_str().unwrap(),
    );
    let before = lab.engine_disk_sha256();
    let backup = volume(&lab, image);
    assert_eq!(
        backup["description"],
        format!(r#"{{"DiskAlias":"virtio-disk0","DiskDescription":"{name}"}}"#)
    );
    assert_eq!(backup["sha256"], before.as_str());
    // The engine disk changes afterwards (as an upgrade by the original tool changed it).
    let engine_disk = engine_volume(&lab)["path"].as_str().unwrap().to_string();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&engine_disk)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xa5; 1 << 20], 0).unwrap();
    drop(file);
    let changed = lab.engine_disk_sha256();
    assert_ne!(changed, before);

    let by_name = format!("he_backup_name={name}");
    let unconfirmed = lab.playbook(ROLLBACK, &["-e", &by_name, "-e", "he_checksum=sha256"]);
    assert_failure(&unconfirmed, "restoring it was not confirmed");
    assert!(
        unconfirmed.text.contains(&before),
        "its sha256 is shown: {}",
        unconfirmed.text
    );
    assert_eq!(lab.engine_disk_sha256(), changed, "nothing was written");
    let declined = lab.playbook(
        ROLLBACK,
        &["-e", &by_name, "-e", "he_confirm_unverified_backup=false"],
    );
    assert_failure(&declined, "he_confirm_unverified_backup is false");
    assert_eq!(lab.engine_disk_sha256(), changed, "nothing was written");

    let confirmed = lab.playbook(
        ROLLBACK,
        &[
            "-e",
            &by_name,
            "-e",
            "he_checksum=sha256",
            "-e",
            "he_confirm_unverified_backup=true",
        ],
    );
    assert_success(&confirmed);
    assert!(
        confirmed.text.contains(&before),
        "its sha256 is shown: {}",
        confirmed.text
    );
    assert_restored(&lab, image, &before);
}
