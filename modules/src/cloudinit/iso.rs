//! The ISO 9660 image (volume id `cidata`, Joliet + Rock Ridge) written by xorriso or
//! genisoimage from a private directory, and read back through its Joliet tree.

use super::error::{io, SeedError};
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, FileTimes};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

const SECTOR: usize = 2048;
const MAX_READ_BACK_BYTES: usize = 16 * 1024 * 1024;

/// The program that writes the ISO.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IsoTool {
    /// xorriso in mkisofs mode, with fixed dates: byte-identical output for identical input.
    Xorriso,
    /// genisoimage (what the original used): its volume dates make every image differ.
    Genisoimage,
}

impl IsoTool {
    /// The tool's program name.
    pub fn program(self) -> &'static str {
        match self {
            Self::Xorriso => "xorriso",
            Self::Genisoimage => "genisoimage",
        }
    }

    /// xorriso when on PATH, else genisoimage.
    pub fn detect() -> Self {
        let on_path = |name: &str| {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
            })
        };
        match on_path("xorriso") {
            true => Self::Xorriso,
            false => Self::Genisoimage,
        }
    }
}

/// A directory only this process can enter, removed (with its content) when dropped.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates `.he_cloudinit-<pid>-<n>` in `parent` with mode 0700.
    pub fn new(parent: &Path) -> Result<Self, SeedError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(".he_cloudinit-{}-{stamp}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io("create the private directory", &path))?;
        Ok(Self(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `files` (name, content) at the root of a new ISO `dir/seed.iso` and returns it.
pub fn build(
    tool: IsoTool,
    dir: &PrivateDir,
    files: &[(&str, &str)],
) -> Result<PathBuf, SeedError> {
    let source = dir.path().join("seed");
    DirBuilder::new()
        .mode(0o700)
        .create(&source)
        .map_err(io("create", &source))?;
    let mut paths = Vec::new();
    for (name, content) in files {
        let path = source.join(name);
        fs::write(&path, content).map_err(io("write", &path))?;
        let epoch = FileTimes::new()
            .set_accessed(UNIX_EPOCH)
            .set_modified(UNIX_EPOCH);
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_times(epoch))
            .map_err(io("date", &path))?;
        paths.push(path);
    }
    let output = dir.path().join("seed.iso");
    let mut command = Command::new(tool.program());
    if tool == IsoTool::Xorriso {
        command.args(["-as", "mkisofs"]);
    }
    command.arg("-output").arg(&output);
    command.args([
        "-volid",
        "cidata",
        "-joliet",
        "-rock",
        "-input-charset",
        "utf-8",
        "-quiet",
    ]);
    if tool == IsoTool::Xorriso {
        // Fixed dates everywhere (volume, files, root directory) make the image reproducible.
        command.env("SOURCE_DATE_EPOCH", "0");
        command.args([
            "--modification-date=1970010100000000",
            "--set_all_file_dates",
            "1970010100000000",
        ]);
    }
    command.args(&paths);
    if tool == IsoTool::Xorriso {
        command.args([
            "--",
            "-alter_date_r",
            "a",
            "=0",
            "/",
            "--",
            "-alter_date_r",
            "c",
            "=0",
            "/",
            "--",
        ]);
    }
    tracing::info!("writing the seed ISO: {command:?}");
    let result = command.output().map_err(|error| SeedError::Tool {
        tool: tool.program(),
        detail: format!("cannot run it: {error} (is it installed and on PATH?)"),
    })?;
    if !result.status.success() {
        return Err(SeedError::Tool {
            tool: tool.program(),
            detail: format!(
                "{}: {}",
                result.status,
                String::from_utf8_lossy(&result.stderr).trim()
            ),
        });
    }
    Ok(output)
}

/// The regular files at the root of an ISO's Joliet tree (names as written), or None when
/// the image has no readable Joliet tree.
pub fn read_root_files(image: &[u8]) -> Option<BTreeMap<String, Vec<u8>>> {
    let joliet = (16..64)
        .map(|n| image.get(n * SECTOR..(n + 1) * SECTOR))
        .find_map(|sector| {
            let sector = sector?;
            let is_joliet = sector[0] == 2 && &sector[1..6] == b"CD001" && sector[88..90] == *b"%/";
            is_joliet.then_some(sector)
        })?;
    let (root_extent, root_size) = extent(&joliet[156..])?;
    let directory = image.get(root_extent..root_extent.checked_add(root_size)?)?;
    let mut files = BTreeMap::new();
    let mut offset = 0;
    while offset < directory.len() {
        let length = usize::from(directory[offset]);
        if length == 0 {
            offset = (offset / SECTOR + 1) * SECTOR;
            continue;
        }
        let record = directory.get(offset..offset + length)?;
        offset += length;
        let name_length = usize::from(*record.get(32)?);
        let is_directory = record.get(25)? & 2 != 0;
        if is_directory || name_length < 2 {
            continue;
        }
        let units: Vec<u16> = record
            .get(33..33 + name_length)?
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16_lossy(&units);
        let name = name.strip_suffix(";1").unwrap_or(&name).to_string();
        let (start, size) = extent(record)?;
        if size > MAX_READ_BACK_BYTES {
            return None;
        }
        files.insert(name, image.get(start..start.checked_add(size)?)?.to_vec());
    }
    Some(files)
}

/// (byte offset, size) of a directory record's extent.
fn extent(record: &[u8]) -> Option<(usize, usize)> {
    let lba = u32::from_le_bytes(record.get(2..6)?.try_into().ok()?) as usize;
    let size = u32::from_le_bytes(record.get(10..14)?.try_into().ok()?) as usize;
    Some((lba.checked_mul(SECTOR)?, size))
}
