//! The hosted-engine file storage domain as vdsm lays it out: volumes with `.meta` and
//! `.lease` files under `images/<image>/` (host-formats.md section 3).

use crate::config::LabConfig;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// vdsm's blank UUID (parent of a base volume, blank pool).
pub const BLANK_UUID: &str = "00000000-0000-0000-0000-000000000000";
/// vdsm's uid and the kvm group: every file and directory vdsm makes on a storage domain is
/// theirs (host-formats.md section 3).
pub const VDSM_UID: u32 = 36;
/// The kvm group's gid.
pub const KVM_GID: u32 = 36;
/// Mode of the files vdsm makes on a storage domain.
pub const FILE_MODE: u32 = 0o660;
/// Mode of the directories vdsm makes on a storage domain.
pub const DIR_MODE: u32 = 0o755;
/// The longest volume description vdsm keeps (`constants.py` `DESCRIPTION_SIZE`).
pub const DESCRIPTION_MAX_CHARS: usize = 210;

/// Gives `path` to vdsm:kvm with vdsm's mode for it (0755 directories, 0660 files), as the
/// NFS server holds what vdsm wrote; links are given without following them.
pub fn give_to_vdsm(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    if metadata.is_symlink() {
        std::os::unix::fs::lchown(path, Some(VDSM_UID), Some(KVM_GID))
            .with_context(|| format!("cannot give {} to vdsm", path.display()))?;
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(VDSM_UID), Some(KVM_GID))
        .with_context(|| format!("cannot give {} to vdsm", path.display()))?;
    let mode = match metadata.is_dir() {
        true => DIR_MODE,
        false => FILE_MODE,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// [`give_to_vdsm`] for `dir` and everything under it.
pub fn give_tree_to_vdsm(dir: &Path) -> anyhow::Result<()> {
    give_to_vdsm(dir)?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            give_tree_to_vdsm(&entry?.path())?;
        }
    }
    Ok(())
}

/// One volume found on the storage domain with its parsed `.meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Image (disk) id.
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
    /// Path of the volume file.
    pub path: PathBuf,
    /// `.meta` keys and values (up to `EOF`).
    pub meta: BTreeMap<String, String>,
}

impl VolumeInfo {
    /// Virtual size in bytes: `CAP` (V5) or `SIZE` sectors (V3/V4).
    pub fn capacity_bytes(&self) -> u64 {
        capacity_of(&self.meta)
    }

    /// The `DESCRIPTION` value (engine JSON or free text).
    pub fn description(&self) -> &str {
        self.meta
            .get("DESCRIPTION")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Virtual size in bytes from `.meta` keys: `CAP`, else `SIZE` * 512.
pub fn capacity_of(meta: &BTreeMap<String, String>) -> u64 {
    if let Some(capacity) = meta.get("CAP").and_then(|v| v.parse::<u64>().ok()) {
        return capacity;
    }
    meta.get("SIZE")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512)
}

/// The storage domain format version from `dom_md/metadata` (`VERSION=`), 5 when unknown.
pub fn domain_version(config: &LabConfig) -> u32 {
    std::fs::read_to_string(config.sd_dir().join("dom_md/metadata"))
        .ok()
        .and_then(|text| parse_meta(&text).get("VERSION")?.parse().ok())
        .unwrap_or(5)
}

/// Parses vdsm `KEY=value` metadata up to the `EOF` line.
pub fn parse_meta(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .take_while(|line| !line.starts_with("EOF"))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Renders metadata as vdsm writes it: keys sorted, `KEY=value` lines, then `EOF`.
pub fn format_meta(meta: &BTreeMap<String, String>) -> String {
    let mut text: String = meta.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    text.push_str("EOF\n");
    text
}

/// Path of the `.meta` file next to a volume.
pub fn meta_path(volume_path: &Path) -> PathBuf {
    let mut name = volume_path.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

/// Metadata vdsm writes for a new leaf volume on a domain of `version` (V5: `CAP`/`SEQ`,
/// older: `SIZE` in sectors and `MTIME`; `GEN` from V4 on).
#[allow(clippy::too_many_arguments)]
pub fn volume_meta(
    version: u32,
    sd_id: &str,
    image_id: &str,
    capacity_bytes: u64,
    description: &str,
    disk_type: &str,
    format: &str,
    preallocated: bool,
    ctime: u64,
) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        meta.insert(key.to_string(), value);
    };
    put("CTIME", ctime.to_string());
    // vdsm truncates descriptions to 210 characters (host-formats.md section 3).
    put(
        "DESCRIPTION",
        description.chars().take(DESCRIPTION_MAX_CHARS).collect(),
    );
    put("DISKTYPE", disk_type.to_string());
    put("DOMAIN", sd_id.to_string());
    put("FORMAT", format.to_string());
    put("IMAGE", image_id.to_string());
    put("LEGALITY", "LEGAL".into());
    put("PUUID", BLANK_UUID.into());
    let allocation = if preallocated {
        "PREALLOCATED"
    } else {
        "SPARSE"
    };
    put("TYPE", allocation.into());
    put("VOLTYPE", "LEAF".into());
    if version >= 4 {
        put("GEN", "0".into());
    }
    if version >= 5 {
        put("CAP", capacity_bytes.to_string());
        put("SEQ", "0".into());
    } else {
        put("MTIME", "0".into());
        put("SIZE", capacity_bytes.div_ceil(512).to_string());
    }
    meta
}

/// Creates `images/<image>/<volume>` (raw, `capacity_bytes`; allocated when `preallocated`),
/// its `.meta` (with `description_json` as DESCRIPTION, `disk_type` e.g. `DATA`/`HEVD`) and
/// an empty `.lease`. Returns the volume path.
pub fn create_volume(
    config: &LabConfig,
    image_id: &str,
    volume_id: &str,
    capacity_bytes: u64,
    description_json: &str,
    disk_type: &str,
    preallocated: bool,
) -> anyhow::Result<PathBuf> {
    let ctime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    create_volume_at(
        config,
        image_id,
        volume_id,
        capacity_bytes,
        description_json,
        disk_type,
        preallocated,
        ctime,
    )
}

/// [`create_volume`] with a given creation time (`CTIME`), for reproducible labs.
#[allow(clippy::too_many_arguments)]
pub fn create_volume_at(
    config: &LabConfig,
    image_id: &str,
    volume_id: &str,
    capacity_bytes: u64,
    description_json: &str,
    disk_type: &str,
    preallocated: bool,
    ctime: u64,
) -> anyhow::Result<PathBuf> {
    let path = config.volume_path(image_id, volume_id);
    let image_dir = path.parent().expect("volume path has an image directory");
    std::fs::create_dir_all(image_dir)
        .with_context(|| format!("cannot create image directory {}", image_dir.display()))?;
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create volume {}", path.display()))?;
    file.set_len(capacity_bytes)
        .with_context(|| format!("cannot size volume {}", path.display()))?;
    if preallocated && capacity_bytes > 0 {
        allocate(&file, capacity_bytes)
            .with_context(|| format!("cannot preallocate volume {}", path.display()))?;
    }
    let meta = volume_meta(
        domain_version(config),
        &config.sd_id,
        image_id,
        capacity_bytes,
        description_json,
        disk_type,
        "RAW",
        preallocated,
        ctime,
    );
    write_meta(&path, &meta)?;
    let lease = image_dir.join(format!("{volume_id}.lease"));
    std::fs::write(&lease, b"").with_context(|| format!("cannot create {}", lease.display()))?;
    for made in [image_dir, &path, &meta_path(&path), &lease] {
        give_to_vdsm(made)?;
    }
    Ok(path)
}

/// Writes the `.meta` of the volume at `volume_path`.
pub fn write_meta(volume_path: &Path, meta: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let path = meta_path(volume_path);
    std::fs::write(&path, format_meta(meta))
        .with_context(|| format!("cannot write volume metadata {}", path.display()))
}

/// Allocates the file's blocks as vdsm's preallocation does (posix_fallocate).
fn allocate(file: &std::fs::File, length: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: the descriptor is owned by `file` and valid for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length as libc::off_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Removes image `image_id` with all its volumes (no error when it does not exist).
pub fn remove_image(config: &LabConfig, image_id: &str) -> anyhow::Result<()> {
    let dir = config.sd_dir().join("images").join(image_id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove image {}", dir.display()))?;
    }
    Ok(())
}

/// Image ids present on the domain, sorted.
pub fn list_images(config: &LabConfig) -> Vec<String> {
    let mut images: Vec<String> = std::fs::read_dir(config.sd_dir().join("images"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    images.sort();
    images
}

/// Volume ids of image `image_id` (files with a `.meta`), sorted.
pub fn list_image_volumes(config: &LabConfig, image_id: &str) -> Vec<String> {
    let dir = config.sd_dir().join("images").join(image_id);
    let mut volumes: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".meta").map(str::to_string)
                })
                .filter(|volume| dir.join(volume).exists())
                .collect()
        })
        .unwrap_or_default();
    volumes.sort();
    volumes
}

/// Reads one volume's metadata; `None` when the volume or its `.meta` is missing.
pub fn volume_info(config: &LabConfig, image_id: &str, volume_id: &str) -> Option<VolumeInfo> {
    let path = config.volume_path(image_id, volume_id);
    let text = std::fs::read_to_string(meta_path(&path)).ok()?;
    if !path.exists() {
        return None;
    }
    Some(VolumeInfo {
        image_id: image_id.to_string(),
        volume_id: volume_id.to_string(),
        path,
        meta: parse_meta(&text),
    })
}

/// Every volume on the hosted-engine storage domain, sorted by image then volume id.
pub fn list_volumes(config: &LabConfig) -> Vec<VolumeInfo> {
    list_images(config)
        .iter()
        .flat_map(|image| {
            list_image_volumes(config, image)
                .into_iter()
                .filter_map(move |volume| volume_info(config, image, &volume))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_meta_is_sorted_and_ends_with_eof() {
        let meta = volume_meta(
            5,
            "sd",
            "img",
            1 << 20,
            "{}",
            "DATA",
            "RAW",
            true,
            1700000000,
        );
        let text = format_meta(&meta);
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(text.ends_with("VOLTYPE=LEAF\nEOF\n"));
        assert!(text.contains("CAP=1048576\n") && text.contains("SEQ=0\n"));
        assert!(!text.contains("SIZE="));
    }

    #[test]
    fn v3_meta_counts_sectors() {
        let meta = volume_meta(3, "sd", "img", 1 << 20, "{}", "2", "RAW", false, 1);
        assert_eq!(meta.get("SIZE").map(String::as_str), Some("2048"));
        assert_eq!(meta.get("MTIME").map(String::as_str), Some("0"));
        assert!(!meta.contains_key("CAP") && !meta.contains_key("GEN"));
        assert_eq!(capacity_of(&meta), 1 << 20);
    }
}
