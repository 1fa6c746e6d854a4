//! Least privilege (SPEC 6.6, 9.7): the identities a module run as root acts as (vdsm:kvm on
//! the storage domain, which NFS exports with root_squash; qemu for what the engine VM opens)
//! and the two ways to act as one: a child process started as it, or a file opened as it.
//!
//! A file is opened as another identity on a short-lived thread that switches its own
//! credentials with raw system calls (Linux keeps credentials per thread; the libc wrappers
//! would switch every thread of the process) and ends after the open. The opened file keeps
//! the opener's credentials, as NFS uses them for every later read and write, so the copy's
//! reading, writing and hashing threads use it without ever changing who they are.

use crate::ansible::{take_group, OptionError, OptionSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// vdsm's uid on oVirt hosts.
pub const VDSM_UID: u32 = 36;
/// The kvm group's gid on oVirt hosts (vdsm's primary group, one of qemu's groups).
pub const KVM_GID: u32 = 36;
/// qemu's uid on EL hosts.
pub const QEMU_UID: u32 = 107;
/// qemu's primary group on EL hosts.
pub const QEMU_GID: u32 = 107;
/// Mode of files this process creates as the storage owner (vdsm's own mode for volumes).
pub const STORAGE_FILE_MODE: u32 = 0o660;

/// A user with its primary group and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids (all of them: root's own are dropped).
    pub groups: Vec<u32>,
}

impl Identity {
    /// `uid N, gid N, groups N,M` for messages.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        format!(
            "uid {}, gid {}, groups {}",
            self.uid,
            self.gid,
            groups.join(",")
        )
    }

    /// Switches the calling thread (or the single thread of a child about to exec) to this
    /// identity for good: supplementary groups, then the group, then the user.
    fn become_it(&self) -> std::io::Result<()> {
        let check = |result: libc::c_long| match result {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        };
        // SAFETY: raw credential system calls with a valid group list; they change only the
        // calling thread (which is the only thread in a child between fork and exec).
        unsafe {
            check(libc::syscall(
                libc::SYS_setgroups,
                self.groups.len(),
                self.groups.as_ptr(),
            ))?;
            check(libc::syscall(
                libc::SYS_setresgid,
                self.gid,
                self.gid,
                self.gid,
            ))?;
            check(libc::syscall(
                libc::SYS_setresuid,
                self.uid,
                self.uid,
                self.uid,
            ))
        }
    }

    /// Whether the permission bits of `metadata` give this identity `wanted` (bits of
    /// `r=4, w=2, x=1`), as the kernel decides for a user without privileges.
    pub fn is_allowed(&self, metadata: &Metadata, wanted: u32) -> bool {
        let mode = metadata.mode();
        let bits = if metadata.uid() == self.uid {
            mode >> 6
        } else if metadata.gid() == self.gid || self.groups.contains(&metadata.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & wanted == wanted
    }

    /// The first directory on the way to `path` (ancestors, from the root down) that this
    /// identity cannot search, or `None` when every one lets it through.
    pub fn blocked_on_the_way_to(&self, path: &Path) -> std::io::Result<Option<PathBuf>> {
        let absolute = std::path::absolute(path)?;
        for directory in absolute
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            let metadata = std::fs::metadata(directory)?;
            if !self.is_allowed(&metadata, 0o1) {
                return Ok(Some(directory.to_path_buf()));
            }
        }
        Ok(None)
    }
}

/// How this process reaches a file or runs a tool: as itself, or as another identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// As this process is (not root, or a file that is not on the storage domain).
    #[default]
    Own,
    /// As this identity.
    As(Identity),
}

impl Access {
    /// `identity` when this process runs as root (it must not act as root there), else
    /// `Own` (a process that is not root cannot switch, and needs no lowering).
    pub fn when_root(identity: Identity) -> Self {
        match nix::unistd::geteuid().is_root() {
            true => Self::As(identity),
            false => Self::Own,
        }
    }

    /// The identity acted as, if it is not this process's own.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Self::Own => None,
            Self::As(identity) => Some(identity),
        }
    }

    /// `as uid 36, gid 36, groups 36` or `as this process` for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Own => "as this process".into(),
            Self::As(identity) => format!("as {}", identity.describe()),
        }
    }

    /// Opens `path` with `options` as this access; a file it creates gets mode 0660.
    pub fn open(&self, path: &Path, options: &OpenOptions) -> std::io::Result<File> {
        let Self::As(identity) = self else {
            return options.open(path);
        };
        let mut options = options.clone();
        options.mode(STORAGE_FILE_MODE);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    identity.become_it()?;
                    let existed = path.exists();
                    let file = options.open(path)?;
                    // The umask may have taken bits away from a file created here.
                    if !existed {
                        use std::os::unix::fs::PermissionsExt;
                        file.set_permissions(std::fs::Permissions::from_mode(STORAGE_FILE_MODE))?;
                    }
                    Ok(file)
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the opening thread panicked")))
        })
    }

    /// Opens `path` for reading as this access.
    pub fn open_read(&self, path: &Path) -> std::io::Result<File> {
        self.open(path, OpenOptions::new().read(true))
    }

    /// A command for `program` that runs as this access (groups, gid and uid switched in
    /// the child before exec; `XDG_RUNTIME_DIR`, which belongs to root, removed).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        self.apply(&mut command);
        command
    }

    /// Makes `command` run as this access.
    pub fn apply(&self, command: &mut Command) {
        let Self::As(identity) = self else {
            return;
        };
        let identity = identity.clone();
        // libguestfs > 1.32 uses XDG_RUNTIME_DIR, which belongs to root (BZ1467813).
        command.env_remove("XDG_RUNTIME_DIR");
        // SAFETY: the closure makes only raw credential system calls (async-signal-safe) on
        // memory allocated before the fork.
        unsafe {
            command.pre_exec(move || identity.become_it());
        }
    }
}

/// The ids of the users and groups of this host: who owns the storage domain (vdsm:kvm) and
/// who runs the engine VM (qemu, groups qemu and kvm). Options shared by the modules that
/// touch the storage domain or write what the VM opens.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostIds {
    /// vdsm's uid.
    #[serde(default = "vdsm_uid", deserialize_with = "numeric_id")]
    pub vdsm_uid: u32,
    /// The kvm group's gid.
    #[serde(default = "kvm_gid", deserialize_with = "numeric_id")]
    pub kvm_gid: u32,
    /// qemu's uid.
    #[serde(default = "qemu_uid", deserialize_with = "numeric_id")]
    pub qemu_uid: u32,
    /// qemu's primary gid.
    #[serde(default = "qemu_gid", deserialize_with = "numeric_id")]
    pub qemu_gid: u32,
}

/// A user or group id given as a number or as a numeric string: ansible-core 2.16 templates
/// `module_defaults` values (`"{{ he_vdsm_uid | default(36) | int }}"`) into strings.
fn numeric_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u64),
        Text(String),
    }
    let invalid = |given: String| {
        serde::de::Error::custom(format!(
            "expected a user or group id (0 to {}), got {given}",
            u32::MAX
        ))
    };
    match NumberOrText::deserialize(deserializer)? {
        NumberOrText::Number(number) => {
            u32::try_from(number).map_err(|_| invalid(number.to_string()))
        }
        NumberOrText::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| invalid(format!("'{text}'"))),
    }
}

fn vdsm_uid() -> u32 {
    VDSM_UID
}
fn kvm_gid() -> u32 {
    KVM_GID
}
fn qemu_uid() -> u32 {
    QEMU_UID
}
fn qemu_gid() -> u32 {
    QEMU_GID
}

impl Default for HostIds {
    fn default() -> Self {
        Self {
            vdsm_uid: VDSM_UID,
            kvm_gid: KVM_GID,
            qemu_uid: QEMU_UID,
            qemu_gid: QEMU_GID,
        }
    }
}

impl OptionSet for HostIds {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_group(options)
    }
}

impl HostIds {
    /// vdsm:kvm, the owner of everything on the storage domain.
    pub fn storage_owner(&self) -> Identity {
        Identity {
            uid: self.vdsm_uid,
            gid: self.kvm_gid,
            groups: vec![self.kvm_gid],
        }
    }

    /// The user qemu runs as, with its groups qemu and kvm.
    pub fn vm_user(&self) -> Identity {
        Identity {
            uid: self.qemu_uid,
            gid: self.qemu_gid,
            groups: vec![self.qemu_gid, self.kvm_gid],
        }
    }

    /// How storage-domain volumes are reached: as vdsm:kvm when this process is root.
    pub fn storage_access(&self) -> Access {
        Access::when_root(self.storage_owner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    fn am_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn vdsm() -> Identity {
        HostIds::default().storage_owner()
    }

    #[test]
    fn ids_are_numbers_or_numeric_strings_and_a_bad_one_is_named() {
        let take = |value: serde_json::Value| {
            let serde_json::Value::Object(mut options) = value else {
                unreachable!()
            };
            HostIds::take(&mut options)
        };
        let ids = take(serde_json::json!({"vdsm_uid": "37", "kvm_gid": 38})).unwrap();
        assert_eq!((ids.vdsm_uid, ids.kvm_gid, ids.qemu_uid), (37, 38, 107));
        for bad in [
            serde_json::json!("kvm"),
            serde_json::json!(-1),
            serde_json::json!(1u64 << 40),
        ] {
            let error = take(serde_json::json!({ "kvm_gid": bad })).unwrap_err();
            assert!(error.0.contains("kvm_gid"), "{error}");
        }
    }

    #[test]
    fn permission_bits_are_read_for_owner_group_or_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        let me = Identity {
            uid: metadata.uid(),
            gid: 4242,
            groups: vec![],
        };
        assert!(me.is_allowed(&metadata, 0o6));
        let group_member = Identity {
            uid: 4243,
            gid: 1,
            groups: vec![metadata.gid()],
        };
        assert!(!group_member.is_allowed(&metadata, 0o4));
        let other = Identity {
            uid: 4243,
            gid: 4244,
            groups: vec![],
        };
        assert!(other.is_allowed(&metadata, 0o4) && !other.is_allowed(&metadata, 0o2));
    }

    #[test]
    fn a_closed_directory_on_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        std::fs::create_dir_all(closed.join("inner")).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let qemu = HostIds::default().vm_user();
        let target = closed.join("inner/seed.iso");
        assert_eq!(qemu.blocked_on_the_way_to(&target).unwrap(), Some(closed));
        let open = dir.path().join("open.iso");
        assert_eq!(qemu.blocked_on_the_way_to(&open).unwrap(), None);
    }

    #[test]
    fn files_are_opened_and_created_as_the_identity_only_on_the_opening_thread() {
        if !am_root() {
            return; // switching identity needs root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let access = Access::As(vdsm());
        let created = dir.path().join("created");
        let mut file = access
            .open(&created, OpenOptions::new().write(true).create_new(true))
            .unwrap();
        file.write_all(b"data").unwrap();
        let metadata = std::fs::metadata(&created).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777),
            (36, 36, 0o660)
        );
        // This thread is still root.
        assert!(nix::unistd::geteuid().is_root());
        let private = dir.path().join("private");
        std::fs::write(&private, b"root only").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let refused = access.open_read(&private).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        let mut text = String::new();
        Access::Own
            .open_read(&private)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "root only");
    }

    #[test]
    fn children_run_as_the_identity_with_exactly_its_groups() {
        if !am_root() {
            return;
        }
        let output = Access::As(vdsm())
            .command("sh")
            .args(["-c", "id -u; id -g; id -G"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "36\n36\n36\n");
    }

    #[test]
    fn host_ids_default_to_el_hosts_and_can_be_set() {
        let mut options = Map::new();
        options.insert("qemu_uid".into(), Value::from(1107));
        options.insert("other".into(), Value::from(1));
        let ids = HostIds::take(&mut options).unwrap();
        assert_eq!(ids.vm_user().describe(), "uid 1107, gid 107, groups 107,36");
        assert_eq!(ids.storage_owner().describe(), "uid 36, gid 36, groups 36");
        assert!(options.contains_key("other"));
    }
}
