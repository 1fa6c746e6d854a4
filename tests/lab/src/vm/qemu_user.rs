//! The VM's user: qemu opens every drive at start as user qemu (uid 107, groups qemu 107 and
//! kvm 36 on EL hosts), never as root, and a drive it cannot open stops the launch with
//! `Could not open '<path>': Permission denied`.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// qemu's uid on EL hosts.
pub const QEMU_UID: u32 = 107;
/// qemu's primary group.
pub const QEMU_GID: u32 = 107;
/// The kvm group, qemu's supplementary group (vdsm's primary one).
pub const KVM_GID: u32 = 36;

/// Opens `path` (for writing too when `writable`) as qemu does: on a thread that becomes
/// qemu for good with raw system calls (only that thread) and ends after the open. The error
/// is qemu's own message.
pub fn open_drive(path: &Path, writable: bool) -> Result<File, String> {
    let opened = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                become_qemu()?;
                OpenOptions::new().read(true).write(writable).open(path)
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the opening thread panicked")))
    });
    opened.map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
            std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
            _ => error.to_string(),
        };
        format!("Could not open '{}': {reason}", path.display())
    })
}

fn become_qemu() -> std::io::Result<()> {
    let groups = [QEMU_GID, KVM_GID];
    let check = |result: libc::c_long| match result {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    };
    // SAFETY: raw credential system calls with a valid group list; they change only the
    // calling thread, which ends right after the open.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            groups.len(),
            groups.as_ptr(),
        ))?;
        check(libc::syscall(
            libc::SYS_setresgid,
            QEMU_GID,
            QEMU_GID,
            QEMU_GID,
        ))?;
        check(libc::syscall(
            libc::SYS_setresuid,
            QEMU_UID,
            QEMU_UID,
            QEMU_UID,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn qemu_opens_what_its_groups_allow_and_nothing_of_roots() {
        if !nix_is_root() {
            return;
        }
        let dir = tempfile_dir();
        let volume = dir.join("volume");
        std::fs::write(&volume, b"disk").unwrap();
        std::os::unix::fs::chown(&volume, Some(36), Some(36)).unwrap();
        std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o660)).unwrap();
        assert!(open_drive(&volume, true).is_ok());
        let private = dir.join("seed.iso");
        std::fs::write(&private, b"iso").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            open_drive(&private, false).unwrap_err(),
            format!("Could not open '{}': Permission denied", private.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn nix_is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("he-lab-qemu-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }
}
