//! he_upgrade_plan run as Ansible runs it: path options that are wrong are named.
mod support;
use support::bad_paths::BadPaths;

use serde_json::json;
use support::run_module;

/// state_dir, appliance_ova and appliance_desc_dir given as a missing path, a looping link
/// or a path of the wrong type fail naming the option and the path.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    let looping = bad.looping.clone();
    let a_dir = bad.directory.clone();
    let a_file = bad.file.clone();
    let missing = bad.missing.clone();
    let ova = |path: &std::path::Path| {
        json!({"state_dir": a_dir, "appliance_ova": path, "appliance_sha1": "ab",
            "appliance_version": "4.4"})
    };
    let desc_dir = |path: &std::path::Path| json!({"state_dir": a_dir, "appliance_desc_dir": path});
    let cases = [
        (json!({"state_dir": a_file}), "option 'state_dir': {} is not a directory", &a_file),
        (json!({"state_dir": looping}), "option 'state_dir': {} cannot be used: Too many levels", &looping),
        (ova(&missing), "option 'appliance_ova': {} cannot be read: No such file", &missing),
        (ova(&looping), "option 'appliance_ova': {} cannot be read: Too many levels", &looping),
        (ova(&a_dir), "option 'appliance_ova': {} is not a regular file", &a_dir),
        (desc_dir(&missing), "option 'appliance_desc_dir': cannot list the appliance descriptions in {}: No such file", &missing),
        (desc_dir(&looping), "option 'appliance_desc_dir': cannot list the appliance descriptions in {}: Too many levels", &looping),
        (desc_dir(&a_file), "option 'appliance_desc_dir': cannot list the appliance descriptions in {}: Not a directory", &a_file),
    ];
    for (args, message, path) in cases {
        run_module("he_upgrade_plan", args, dir, None)
            .assert_failed_with(&message.replace("{}", &path.display().to_string()));
    }
    let rollback = json!({"kind": "rollback", "backup_disks": [], "state_dir": a_file});
    run_module("he_upgrade_plan", rollback, dir, None).assert_failed_with(&format!(
        "option 'state_dir': {} is not a directory",
        a_file.display()
    ));
}
