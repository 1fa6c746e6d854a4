//! The storage domain as an NFS export with root_squash: through the domain's mount, root
//! gets only the "other" bits of each file (nothing of a vdsm:kvm 0660 volume) while vdsm
//! (36, group kvm) reads and writes; what vdsm creates there is its own; a daemon killed
//! with its mount still up leaves nothing that breaks the next `up` or `init --force`.

mod lab_support;

use lab_support::{text, Lab};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engine volume as the host sees it (under the mount), from its path in the export.
fn mounted(lab: &Lab, export_path: &Path) -> PathBuf {
    let relative = export_path
        .strip_prefix(lab.dir.join("nfs-server/exports/hosted_engine"))
        .unwrap();
    lab.dir
        .join("rhev/data-center/mnt/nfs.lab.local:_exports_hosted__engine")
        .join(relative)
}

/// Runs `sh -c SCRIPT` as vdsm:kvm (36:36, groups kvm).
fn as_vdsm(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=36",
            "--regid=36",
            "--groups=36",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn root_is_squashed_on_the_storage_domain_and_vdsm_is_not() {
    if !is_root() {
        return; // only root can be squashed
    }
    let lab = Lab::init("nfs", 47, &[]);
    lab.up();
    let volume = mounted(&lab, &lab.engine_volume());
    let metadata = std::fs::metadata(&volume).unwrap();
    assert_eq!(
        (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777),
        (36, 36, 0o660)
    );
    let read = std::fs::File::open(&volume).unwrap_err();
    assert_eq!(read.kind(), std::io::ErrorKind::PermissionDenied, "{read}");
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(&volume)
        .unwrap_err();
    assert_eq!(
        write.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{write}"
    );
    let image_dir = volume.parent().unwrap();
    let create = std::fs::File::create(image_dir.join("by-root")).unwrap_err();
    assert_eq!(
        create.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{create}"
    );

    let quoted = volume.display();
    let read = as_vdsm(&format!("head -c 4096 '{quoted}' | wc -c"));
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert_eq!(text(&read.stdout).trim(), "4096");
    let new = image_dir.join("by-vdsm");
    let write = as_vdsm(&format!(
        "umask 007 && printf x > '{}' && printf y | dd of='{quoted}' bs=1 seek=0 conv=notrunc status=none",
        new.display()
    ));
    assert!(write.status.success(), "{}", text(&write.stderr));
    let made = std::fs::metadata(&new).unwrap();
    assert_eq!(
        (made.uid(), made.gid(), made.mode() & 0o777),
        (36, 36, 0o660)
    );
    // The export holds what vdsm wrote through the mount.
    let first = std::fs::read(lab.engine_volume()).unwrap()[0];
    assert_eq!(first, b'y');
}

#[test]
fn a_killed_daemon_leaves_no_mount_that_breaks_up_or_init() {
    if !is_root() {
        return;
    }
    let lab = Lab::init("nfs-kill", 48, &[]);
    lab.up();
    let volume = mounted(&lab, &lab.engine_volume());
    let pid = std::fs::read_to_string(lab.dir.join("state/daemon.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The dead mount answers nothing until the next daemon replaces it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&volume).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the mount outlived its daemon"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    lab.up();
    let read = as_vdsm(&format!("head -c 1 '{}' | wc -c", volume.display()));
    assert_eq!(text(&read.stdout).trim(), "1", "{}", text(&read.stderr));
    let pid = std::fs::read_to_string(lab.dir.join("state/daemon.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap()
        .success());
    let init = lab.he_lab(&["init", "--force", "--seed", "48"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    assert!(std::fs::read_dir(volume.ancestors().nth(4).unwrap())
        .unwrap()
        .next()
        .is_none());
}
