//! The hosted-engine configuration volume (`conf_image_UUID`/`conf_volume_UUID` of
//! hosted-engine.conf): a plain tar archive written raw at the start of the volume, holding
//! `version`, `fhanswers.conf`, `hosted-engine.conf`, `broker.conf` and `vm.conf`.
//!
//! Sources: oVirt/ovirt-hosted-engine-ha `lib/heconflib.py` (`_create_temp_archive`: tar with
//! `--record-size=20480`, written with `dd bs=4k` as vdsm; `extractConfFile`: `dd if=<volume> |
//! tar -xOf - <file>` as vdsm) and `env/constants.py.in` (`HEConfFiles`); the 4.2+ ansible
//! deploy writes the same five members (ovirt-ansible-collection
//! `roles/hosted_engine_setup/tasks/create_target_vm/03_hosted_engine_final_tasks.yml`).
//! Read only: nothing here writes the volume.

use crate::privilege::Access;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The answers member (`HEConfFiles.HECONFD_ANSWERFILE`).
pub const ANSWERS_MEMBER: &str = "fhanswers.conf";

/// Largest member read (the whole archive is 20 KiB on real hosts).
const MAX_MEMBER_BYTES: u64 = 1 << 20;

/// A problem reading the configuration volume.
#[derive(Debug, thiserror::Error)]
pub enum ConfVolumeError {
    /// The volume cannot be opened or read.
    #[error("cannot read the hosted-engine configuration volume {path} {who}: {source}")]
    Unreadable {
        path: PathBuf,
        who: String,
        source: std::io::Error,
    },
    /// The volume holds no tar archive with the member.
    #[error("the hosted-engine configuration volume {path} holds no '{member}' (members: {found}); is the configuration on the shared storage complete?")]
    Missing {
        path: PathBuf,
        member: String,
        found: String,
    },
    /// The member is not text or too large.
    #[error("'{member}' on the hosted-engine configuration volume {path} is {why}")]
    Invalid {
        path: PathBuf,
        member: String,
        why: String,
    },
}

/// Reads `member` from the configuration volume at `path`, opened with `access`.
pub fn read_member(path: &Path, access: &Access, member: &str) -> Result<String, ConfVolumeError> {
    let unreadable = |source: std::io::Error| ConfVolumeError::Unreadable {
        path: path.to_path_buf(),
        who: access.describe(),
        source,
    };
    let file = access.open_read(path).map_err(unreadable)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut found = Vec::new();
    // A volume without an archive reads as an empty one (zero blocks) or as a bad header.
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(error) => return Err(unreadable(error)),
    };
    for entry in entries {
        let Ok(mut entry) = entry else { break };
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
            .unwrap_or_default();
        if name != member {
            found.push(name);
            continue;
        }
        let invalid = |why: String| ConfVolumeError::Invalid {
            path: path.to_path_buf(),
            member: member.into(),
            why,
        };
        if entry.size() > MAX_MEMBER_BYTES {
            return Err(invalid(format!("{} bytes, too large", entry.size())));
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(unreadable)?;
        return String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()));
    }
    Err(ConfVolumeError::Missing {
        path: path.to_path_buf(),
        member: member.into(),
        found: match found.is_empty() {
            true => "none".into(),
            false => found.join(", "),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume as heconflib leaves it: a 20480-byte tar record, then the rest of the volume.
    fn volume(members: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, content.as_bytes())
                .unwrap();
        }
        let mut bytes = builder.into_inner().unwrap();
        bytes.resize(1 << 20, 0);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        file
    }

    #[test]
    fn reads_the_answers_member() {
        let file = volume(&[
            ("version", "2.0.4\n"),
            (ANSWERS_MEMBER, "[environment:default]\nA/b=str:c\n"),
            ("hosted-engine.conf", "fqdn=x\n"),
        ]);
        let text = read_member(file.path(), &Access::Own, ANSWERS_MEMBER).unwrap();
        assert_eq!(text, "[environment:default]\nA/b=str:c\n");
    }

    #[test]
    fn names_what_is_there_when_the_answers_are_missing() {
        let file = volume(&[("version", "2.0.4\n"), ("vm.conf", "vmId=x\n")]);
        let error = read_member(file.path(), &Access::Own, ANSWERS_MEMBER)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("holds no 'fhanswers.conf'") && error.contains("version, vm.conf"),
            "{error}"
        );
        let empty = volume(&[]);
        let error = read_member(empty.path(), &Access::Own, ANSWERS_MEMBER)
            .unwrap_err()
            .to_string();
        assert!(error.contains("members: none"), "{error}");
    }
}
