//! he_preflight against the he-lab simulated host: a host that has everything passes (with a
//! real guestfish launch, timed), and each missing piece fails, naming what and where.
//! Needs HE_LAB_BIN (path of the built `he-lab`); fails, never skips, without it.
mod support;
use support::bad_paths::BadPaths;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use support::lab::{with_vdsm, TestLab};
use support::{run_module, Run};

const GIB: u64 = 1 << 30;

struct Lab {
    lab: TestLab,
    status: Value,
}

impl Lab {
    fn init() -> Lab {
        let lab = TestLab::init(&[]);
        lab.start_daemon();
        Lab {
            status: lab.json(&["status", "--json"]),
            lab,
        }
    }

    fn run(&self, args: Value) -> Run {
        let mut args = with_vdsm(&self.status, args);
        if args.get("he_conf").is_none() {
            args["he_conf"] = json!(self.status["he_conf"]);
        }
        let bin_dir = PathBuf::from(self.status["bin_dir"].as_str().unwrap());
        run_module("he_preflight", args, self.lab.work(), Some(&bin_dir))
    }

    fn iso(&self) -> PathBuf {
        self.lab.work().join("seed/he-upgrade-cloud-init.iso")
    }
}

fn guestfish_env() {
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        std::env::set_var("LIBGUESTFS_BACKEND", "direct");
        std::env::set_var("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    }
}

#[test]
fn a_complete_host_passes_with_a_timed_guestfish_launch() {
    guestfish_env();
    let lab = Lab::init();
    let run = lab.run(
        json!({"image_size_bytes": 80 << 20, "storage_domain_free_bytes": 10 * GIB,
        "reserve_backup_disk": true, "cloudinit_iso": lab.iso()}),
    );
    run.assert_ok();
    let facts = &run.result["ansible_facts"]["he_preflight"];
    assert!(
        facts["guestfish_launch_seconds"].as_f64().unwrap() > 0.0,
        "{facts}"
    );
    assert_eq!(facts["space"]["extend_to_bytes"], json!(GIB), "{facts}");
    assert_eq!(facts["engine_disk_bytes"], json!(64 << 20));
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            facts["storage_access"],
            json!("as uid 36, gid 36, groups 36")
        );
    }
    assert_eq!(run.result["changed"], json!(false));
}

#[test]
fn each_missing_piece_is_named_with_where_it_was_looked_for() {
    let lab = Lab::init();
    let base = json!({"guestfish_launch": false, "image_size_bytes": 80 << 20,
        "cloudinit_iso": lab.iso()});
    lab.run(base.clone()).assert_ok();

    let mut no_room = base.clone();
    no_room["storage_domain_free_bytes"] = json!(GIB / 2);
    lab.run(no_room).assert_failed_with(
        "space: the storage domain has 536870912 bytes free but the upgrade needs",
    );
    let mut no_extend = base.clone();
    no_extend["extend"] = json!(false);
    lab.run(no_extend)
        .assert_failed_with("does not fit the engine disk");

    let closed = lab.lab.work().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut unreachable = base.clone();
    unreachable["cloudinit_iso"] = json!(closed.join("seed/seed.iso"));
    unreachable["_ansible_check_mode"] = json!(true);
    lab.run(unreachable).assert_failed_with(&format!(
        "cloud-init ISO directory: qemu (uid 107, gid 107, groups 107,36) cannot enter {}",
        closed.display()
    ));

    // A host without guestfish and without an ISO writer: PATH holds only the lab tools and
    // the basics the modules need.
    let bin = lab.lab.work().join("poor-bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(lab.lab.work(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let qemu_img = which("qemu-img");
    std::os::unix::fs::symlink(&qemu_img, bin.join("qemu-img")).unwrap();
    let lab_bin = PathBuf::from(lab.status["bin_dir"].as_str().unwrap());
    let path = format!("{}:{}", lab_bin.display(), bin.display());
    let mut args = with_vdsm(&lab.status, base);
    args["he_conf"] = json!(lab.status["he_conf"]);
    let args_file = lab.lab.work().join("poor.args.json");
    std::fs::write(&args_file, args.to_string()).unwrap();
    let output = assert_cmd::Command::cargo_bin("he_preflight")
        .unwrap()
        .arg(&args_file)
        .env("PATH", &path)
        .output()
        .unwrap();
    let run = support::parse("he_preflight", output);
    run.assert_failed_with(&format!(
        "guestfish: guestfish is not installed: not found on PATH ({path})"
    ));
    run.assert_failed_with("ISO tool: neither xorriso nor genisoimage is installed");
    assert_eq!(run.result["changed"], json!(false));
}

/// he_conf given as a missing path, a looping link or a directory, and cloudinit_iso as a
/// looping link or a directory, fail naming the input and the path.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let lab = Lab::init();
    let work = lab.lab.work();
    let bad = BadPaths::in_dir(work);
    let looping = bad.looping.clone();
    let a_dir = bad.directory.clone();
    let base = json!({"guestfish_launch": false, "cloudinit_iso": lab.iso()});
    for (path, reason) in bad.unreadable_files() {
        let mut args = base.clone();
        args["he_conf"] = json!(path);
        let run = lab.run(args);
        run.assert_failed_with(&format!(
            "cannot read hosted-engine configuration {}: {reason}",
            path.display()
        ));
    }
    for (path, problem) in [
        (
            looping,
            "cannot be inspected: Too many levels of symbolic links",
        ),
        (a_dir, "exists and is not a regular file"),
    ] {
        let mut args = base.clone();
        args["cloudinit_iso"] = json!(path);
        lab.run(args).assert_failed_with(&format!(
            "cloud-init ISO directory: option 'cloudinit_iso': {} {problem}",
            path.display()
        ));
    }
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} must be installed"))
}
