//! Appliance OVAs: one streaming read of a plain or gzip tar that computes the SHA-1 of the
//! whole file, parses the OVF (`master/vms/*/*.ovf`) and extracts the disk member
//! (`images/<fileRef>`) into the stage directory in the same pass (host-formats §6). The disk
//! is read as the OVF's `ovf:volume-format` declares it: `COW` is qcow2, `RAW` raw bytes.

use super::progress::Progress;
use super::qcow2;
use crate::ansible::progress::Reporter;
use crate::privilege::Access;
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Largest OVF accepted (real ones are a few KiB).
const MAX_OVF_BYTES: u64 = 16 << 20;
/// Defaults when the OVF leaves them out (the appliance build's `-m 16384 -c 4`).
const DEFAULT_CPUS: u64 = 4;
const DEFAULT_MEMORY_MB: u64 = 16384;
const DEFAULT_DISK_ALIAS: &str = "virtio-disk0";

/// What is wrong with an OVF description (the OVA error adds which archive and member).
#[derive(Debug, thiserror::Error)]
pub enum OvfError {
    /// The member is not UTF-8 text or could not be read.
    #[error("{0}")]
    Read(#[source] io::Error),
    /// The XML is not well-formed.
    #[error("{source} at byte {position}")]
    Xml {
        source: quick_xml::Error,
        position: u64,
    },
    /// An attribute of the Disk element is malformed.
    #[error("{0}")]
    Attribute(#[from] quick_xml::events::attributes::AttrError),
    /// A text or attribute value has a bad escape.
    #[error("{0}")]
    Unescape(#[source] quick_xml::Error),
    /// The text holds no element at all.
    #[error("no XML elements")]
    Empty,
    /// The disk section has no Disk.
    #[error("no Disk element in the disk section")]
    NoDisk,
    /// The Disk's volume format is another one than RAW or COW.
    #[error("Disk ovf:volume-format '{0}' is neither RAW nor COW")]
    UnknownVolumeFormat(String),
    /// The Disk does not say its volume format.
    #[error("the Disk element has no ovf:volume-format (RAW or COW)")]
    NoVolumeFormat,
    /// The Disk does not name its image.
    #[error("the Disk element has no ovf:fileRef")]
    NoFileRef,
    /// The Disk's image path would leave the images directory.
    #[error("ovf:fileRef '{0}' is not a relative image path")]
    FileRefNotRelative(String),
    /// The Disk's size (GiB) is not a number.
    #[error("Disk ovf:size '{0}' is not a number")]
    DiskSizeNotANumber(String),
    /// A CPU or memory item lacks a field it needs.
    #[error("item without {0}")]
    ItemWithout(&'static str),
    /// A CPU or memory item field is not a number.
    #[error("{key} '{value}' is not a number")]
    ItemNotANumber { key: &'static str, value: String },
    /// The memory item is counted in another unit than MegaBytes.
    #[error("Unsupported unit type {0:?} for memory (expected MegaBytes)")]
    MemoryUnit(String),
}

/// A bad or unreadable OVA.
#[derive(Debug, thiserror::Error)]
pub enum OvaError {
    /// The stage directory is missing, unusable or not a directory.
    #[error("stage directory {path} {reason}")]
    StageDir { path: PathBuf, reason: String },
    /// Reading the OVA (or writing the staged disk) failed.
    #[error("cannot read OVA {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The file is not a (gzip) tar archive, or it is truncated.
    #[error("OVA {path} is not a readable tar or tar.gz archive: {reason}")]
    NotTar { path: PathBuf, reason: String },
    /// The SHA-1 does not match.
    #[error("OVA {path} is corrupted: SHA-1 {actual} does not match the expected {expected}")]
    Sha1Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// No OVF member.
    #[error("OVA {path} has no OVF description (master/vms/*/*.ovf)")]
    NoOvf { path: PathBuf },
    /// The OVF is not well-formed or lacks what is needed.
    #[error("OVA {path}: malformed OVF {member}: {reason}")]
    MalformedOvf {
        path: PathBuf,
        member: String,
        reason: OvfError,
    },
    /// The disk member the OVF names is not in the archive.
    #[error("OVA {path} has no disk member {member} (named by the OVF fileRef)")]
    MissingDisk { path: PathBuf, member: String },
    /// The disk member's own magic disagrees with the OVF's `ovf:volume-format`.
    #[error("OVA {path}: the OVF declares disk member {member} ovf:volume-format=\"{declared}\" but the member {found}")]
    DiskFormatMismatch {
        path: PathBuf,
        member: String,
        declared: VolumeFormat,
        found: &'static str,
    },
    /// The staged disk could not be made the raw image the copy reads.
    #[error("cannot stage the disk of OVA {path} as raw image {staged}: {source}")]
    Staging {
        path: PathBuf,
        staged: PathBuf,
        source: Box<qcow2::ImageError>,
    },
}

/// `Disk@ovf:volume-format`: how the disk member is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VolumeFormat {
    /// Raw bytes (`RAW`).
    #[serde(rename = "RAW")]
    Raw,
    /// qcow2 (`COW`).
    #[serde(rename = "COW")]
    Cow,
}

impl std::fmt::Display for VolumeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Raw => "RAW",
            Self::Cow => "COW",
        })
    }
}

/// What the OVF says about the appliance VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ovf {
    /// `Disk@ovf:size` (GiB, rounded up by the builder); 0 when absent.
    pub disk_size_gib: u64,
    /// `Disk@ovf:fileRef` (`<image>/<volume>`).
    pub file_ref: String,
    /// `Disk@ovf:disk-alias`, or the default.
    pub disk_alias: String,
    /// `Disk@ovf:volume-format`.
    pub volume_format: VolumeFormat,
    /// `num_of_sockets * cpu_per_socket`.
    pub cpus: u64,
    /// Memory in MiB (`VirtualQuantity` in `MegaBytes`).
    pub memory_mb: u64,
}

/// What one read of an OVA found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvaReport {
    /// SHA-1 of the whole OVA file.
    pub sha1: String,
    /// The OVF facts.
    pub ovf: Ovf,
    /// The OVF member.
    pub ovf_member: String,
    /// The disk member (`images/<fileRef>`).
    pub disk_member: String,
    /// Its size in the archive.
    pub disk_member_bytes: u64,
    /// Virtual size: from its qcow2 header (COW), its size (RAW).
    pub disk_virtual_size_bytes: u64,
    /// Where it was extracted, as the OVF declares it, when a stage directory was given.
    #[serde(skip)]
    pub staged_disk: Option<PathBuf>,
    /// Defaults used for missing OVF fields.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A file reader that hashes every byte it hands out and reports how far it got.
struct Sha1Reader {
    file: File,
    hasher: Sha1,
    read_bytes: u64,
    progress: Progress,
}

impl Read for Sha1Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.read_bytes += read as u64;
        self.progress.advance(self.read_bytes);
        Ok(read)
    }
}

struct Candidate {
    member: String,
    size_bytes: u64,
    /// From the qcow2 header, when the member starts with the qcow2 magic.
    qcow2_virtual_size_bytes: Option<u64>,
    qcow2_magic: bool,
    staged: Option<PathBuf>,
}

/// Reads `path` once: SHA-1 (checked against `expected_sha1` when given), OVF, and the disk
/// members under `images/`, extracted into `stage_dir` when given. On any error nothing
/// staged is left behind.
pub fn read(
    path: &Path,
    expected_sha1: Option<&str>,
    stage_dir: Option<&Path>,
    progress: &Reporter,
) -> Result<OvaReport, OvaError> {
    let mut candidates = Vec::new();
    let result = read_into(path, expected_sha1, stage_dir, progress, &mut candidates);
    let keep = result.as_ref().ok().and_then(|r| r.staged_disk.clone());
    for staged in candidates.iter().filter_map(|c| c.staged.as_ref()) {
        if Some(staged) != keep.as_ref() {
            let _ = std::fs::remove_file(staged);
        }
    }
    result
}

fn read_into(
    path: &Path,
    expected_sha1: Option<&str>,
    stage_dir: Option<&Path>,
    progress: &Reporter,
    candidates: &mut Vec<Candidate>,
) -> Result<OvaReport, OvaError> {
    let io_error = |source| OvaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_tar = |error: io::Error| OvaError::NotTar {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    if let Some(dir) = stage_dir {
        check_stage_dir(dir)?;
    }
    let file = File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(OvaError::NotTar {
            path: path.to_path_buf(),
            reason: "it is not a regular file".into(),
        });
    }
    let total_bytes = metadata.len();
    let mut buffered = BufReader::with_capacity(
        1 << 20,
        Sha1Reader {
            file,
            hasher: Sha1::new(),
            read_bytes: 0,
            progress: Progress::new(progress, format!("read {}", path.display()), total_bytes),
        },
    );
    let gzip = buffered
        .fill_buf()
        .map_err(io_error)?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(&mut buffered))
    } else {
        Box::new(&mut buffered)
    };
    let mut archive = tar::Archive::new(stream);
    let mut ovf: Option<(String, String)> = None;
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let member = entry
            .path()
            .map_err(not_tar)?
            .to_string_lossy()
            .into_owned();
        let member = member.trim_start_matches("./").to_string();
        let regular = entry.header().entry_type().is_file();
        if regular && ovf.is_none() && member.starts_with("master") && member.ends_with(".ovf") {
            let mut xml = String::new();
            (&mut entry)
                .take(MAX_OVF_BYTES)
                .read_to_string(&mut xml)
                .map_err(|e| OvaError::MalformedOvf {
                    path: path.to_path_buf(),
                    member: member.clone(),
                    reason: OvfError::Read(e),
                })?;
            ovf = Some((member, xml));
        } else if regular && member.starts_with("images/") && !member.ends_with(".meta") {
            candidates.push(take_disk(path, &member, &mut entry, stage_dir)?);
        }
    }
    drop(archive);
    // Hash the rest (tar padding) so the SHA-1 covers the whole file.
    io::copy(&mut buffered, &mut io::sink()).map_err(io_error)?;
    let reader = buffered.into_inner();
    reader.progress.done();
    let sha1 = hex::encode(reader.hasher.finalize());
    if let Some(expected) = expected_sha1 {
        if !expected.trim().eq_ignore_ascii_case(&sha1) {
            return Err(OvaError::Sha1Mismatch {
                path: path.to_path_buf(),
                expected: expected.trim().to_ascii_lowercase(),
                actual: sha1,
            });
        }
    }
    let (ovf_member, xml) = ovf.ok_or_else(|| OvaError::NoOvf {
        path: path.to_path_buf(),
    })?;
    let (ovf, warnings) = parse_ovf(&xml).map_err(|reason| OvaError::MalformedOvf {
        path: path.to_path_buf(),
        member: ovf_member.clone(),
        reason,
    })?;
    let disk_member = format!("images/{}", ovf.file_ref.trim_start_matches('/'));
    let disk = candidates
        .iter()
        .find(|c| c.member == disk_member)
        .ok_or_else(|| OvaError::MissingDisk {
            path: path.to_path_buf(),
            member: disk_member.clone(),
        })?;
    let mismatch = |found| OvaError::DiskFormatMismatch {
        path: path.to_path_buf(),
        member: disk_member.clone(),
        declared: ovf.volume_format,
        found,
    };
    let virtual_size = match (ovf.volume_format, disk.qcow2_magic) {
        (VolumeFormat::Cow, false) => return Err(mismatch("has no qcow2 magic")),
        (VolumeFormat::Cow, true) => disk
            .qcow2_virtual_size_bytes
            .ok_or_else(|| mismatch("has a qcow2 magic but no readable qcow2 header"))?,
        (VolumeFormat::Raw, true) => return Err(mismatch("is a qcow2 image (qcow2 magic)")),
        (VolumeFormat::Raw, false) => disk.size_bytes,
    };
    Ok(OvaReport {
        sha1,
        ovf,
        ovf_member,
        disk_member_bytes: disk.size_bytes,
        disk_virtual_size_bytes: virtual_size,
        staged_disk: disk.staged.clone(),
        disk_member,
        warnings,
    })
}

/// The stage directory must exist and be a directory before anything is read or written.
fn check_stage_dir(dir: &Path) -> Result<(), OvaError> {
    let reason = match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_string(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            "does not exist (create it first)".to_string()
        }
        Err(error) => format!("cannot be used: {error}"),
    };
    Err(OvaError::StageDir {
        path: dir.to_path_buf(),
        reason,
    })
}

/// Reads one `images/` member: its first bytes (qcow2 magic and header), and all of it into
/// the stage directory.
fn take_disk(
    path: &Path,
    member: &str,
    entry: &mut impl Read,
    stage_dir: Option<&Path>,
) -> Result<Candidate, OvaError> {
    let io_error = |source| OvaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_tar = |error: io::Error| OvaError::NotTar {
        path: path.to_path_buf(),
        reason: format!("member {member}: {error}"),
    };
    let mut header = Vec::with_capacity(512);
    entry.take(512).read_to_end(&mut header).map_err(not_tar)?;
    let mut candidate = Candidate {
        member: member.to_string(),
        size_bytes: header.len() as u64,
        qcow2_virtual_size_bytes: qcow2::header_virtual_size(&header),
        qcow2_magic: header.starts_with(qcow2::MAGIC),
        staged: None,
    };
    let mut out = match stage_dir {
        Some(dir) => {
            // A flat name from the member path, so no archive path can point outside `dir`.
            let name: String = member
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let staged = dir.join(format!("{name}.part"));
            candidate.staged = Some(staged.clone());
            let mut file = File::create(&staged).map_err(io_error)?;
            file.write_all(&header).map_err(io_error)?;
            Some(file)
        }
        None => None,
    };
    match stream_member(entry, out.as_mut(), &not_tar, &io_error) {
        Ok(bytes) => candidate.size_bytes += bytes,
        Err(error) => {
            if let Some(staged) = &candidate.staged {
                let _ = std::fs::remove_file(staged);
            }
            return Err(error);
        }
    }
    Ok(candidate)
}

/// Copies the rest of a member to `out` (or nowhere); returns the bytes read.
fn stream_member(
    entry: &mut impl Read,
    mut out: Option<&mut File>,
    not_tar: &impl Fn(io::Error) -> OvaError,
    io_error: &impl Fn(io::Error) -> OvaError,
) -> Result<u64, OvaError> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let read = match entry.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(not_tar(e)),
        };
        if let Some(file) = out.as_mut() {
            file.write_all(&buffer[..read]).map_err(io_error)?;
        }
        total += read as u64;
    }
}

/// Makes the staged disk of `report` the raw image `<stage_dir>/<ova name>.raw`: a COW disk
/// is converted (`qemu-img convert`), a RAW one is already that image and only renamed.
/// The image is flushed before it gets its name, so a staged image is complete or absent.
pub fn stage_as_raw(
    ova_path: &Path,
    report: &OvaReport,
    progress: &Reporter,
) -> Result<Option<PathBuf>, OvaError> {
    let Some(member_file) = &report.staged_disk else {
        return Ok(None);
    };
    let stem = ova_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "appliance".into());
    let dir = member_file.parent().unwrap_or(Path::new("."));
    let raw = dir.join(format!("{stem}.raw"));
    let partial = match report.ovf.volume_format {
        VolumeFormat::Raw => member_file.clone(),
        VolumeFormat::Cow => dir.join(format!("{stem}.raw.part")),
    };
    let flush_and_name = || {
        File::open(&partial)
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, &raw))
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|source| qcow2::ImageError::Unreadable {
                path: raw.display().to_string(),
                source,
            })
    };
    let staged = match report.ovf.volume_format {
        VolumeFormat::Raw => flush_and_name(),
        VolumeFormat::Cow => {
            qcow2::convert_to_raw(member_file, &partial, false, &Access::Own, progress)
                .and_then(|()| flush_and_name())
        }
    };
    let _ = std::fs::remove_file(member_file);
    if let Err(source) = staged {
        let _ = std::fs::remove_file(&partial);
        return Err(OvaError::Staging {
            path: ova_path.to_path_buf(),
            staged: raw,
            source: Box::new(source),
        });
    }
    tracing::info!(
        "staged {} as {} ({} disk{})",
        ova_path.display(),
        raw.display(),
        report.ovf.volume_format,
        match report.ovf.volume_format {
            VolumeFormat::Raw => ", no conversion",
            VolumeFormat::Cow => " converted",
        }
    );
    Ok(Some(raw))
}

/// Parses the OVF XML: the first `Disk` of the disk section and the CPU and memory items.
/// Returns the facts and warnings for every default used.
pub fn parse_ovf(xml: &str) -> Result<(Ovf, Vec<String>), OvfError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut warnings = Vec::new();
    let mut disk: Option<DiskAttributes> = None;
    let mut item: Option<std::collections::HashMap<String, String>> = None;
    let mut field: Option<String> = None;
    let mut cpus = None;
    let mut memory_mb = None;
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(|source| OvfError::Xml {
            source,
            position: reader.buffer_position(),
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                saw_root = true;
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "Disk" && disk.is_none() {
                    let mut attributes = DiskAttributes::default();
                    for attribute in e.attributes() {
                        let attribute = attribute?;
                        let value = Some(
                            attribute
                                .unescape_value()
                                .map_err(OvfError::Unescape)?
                                .into_owned(),
                        );
                        match attribute.key.local_name().as_ref() {
                            b"size" => attributes.size = value,
                            b"fileRef" => attributes.file_ref = value,
                            b"disk-alias" => attributes.alias = value,
                            b"volume-format" => attributes.volume_format = value,
                            _ => {}
                        }
                    }
                    disk = Some(attributes);
                } else if name == "Item" {
                    item = Some(Default::default());
                } else if item.is_some() {
                    field = Some(name);
                }
            }
            Event::Text(text) => {
                if let (Some(item), Some(field)) = (item.as_mut(), field.as_ref()) {
                    let text = text.unescape().map_err(OvfError::Unescape)?;
                    item.insert(field.clone(), text.trim().to_string());
                }
            }
            Event::End(e) => {
                field = None;
                if e.local_name().as_ref() == b"Item" {
                    if let Some(fields) = item.take() {
                        read_item(&fields, &mut cpus, &mut memory_mb)?;
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(OvfError::Empty);
    }
    let DiskAttributes {
        size,
        file_ref,
        alias,
        volume_format,
    } = disk.ok_or(OvfError::NoDisk)?;
    let volume_format = match volume_format.as_deref() {
        Some("RAW") => VolumeFormat::Raw,
        Some("COW") => VolumeFormat::Cow,
        Some(other) => return Err(OvfError::UnknownVolumeFormat(other.to_string())),
        None => return Err(OvfError::NoVolumeFormat),
    };
    let file_ref = file_ref
        .filter(|f| !f.is_empty())
        .ok_or(OvfError::NoFileRef)?;
    if file_ref
        .split('/')
        .any(|part| part == ".." || part.is_empty())
    {
        return Err(OvfError::FileRefNotRelative(file_ref));
    }
    let disk_size_gib = match size {
        Some(size) => size
            .parse::<f64>()
            .map(|gib| gib.ceil() as u64)
            .map_err(|_| OvfError::DiskSizeNotANumber(size.clone()))?,
        None => {
            warnings.push("the OVF Disk has no ovf:size; using the qcow2 virtual size".into());
            0
        }
    };
    let disk_alias = alias.filter(|a| !a.is_empty()).unwrap_or_else(|| {
        warnings.push(format!(
            "the OVF Disk has no ovf:disk-alias (image description); using '{DEFAULT_DISK_ALIAS}'"
        ));
        DEFAULT_DISK_ALIAS.to_string()
    });
    let cpus = cpus.unwrap_or_else(|| {
        warnings.push(format!(
            "the OVF has no CPU item; using {DEFAULT_CPUS} CPUs"
        ));
        DEFAULT_CPUS
    });
    let memory_mb = memory_mb.unwrap_or_else(|| {
        warnings.push(format!(
            "the OVF has no memory item; using {DEFAULT_MEMORY_MB} MB"
        ));
        DEFAULT_MEMORY_MB
    });
    Ok((
        Ovf {
            disk_size_gib,
            file_ref,
            disk_alias,
            volume_format,
            cpus,
            memory_mb,
        },
        warnings,
    ))
}

/// The attributes read from the first `Disk` element.
#[derive(Default)]
struct DiskAttributes {
    size: Option<String>,
    file_ref: Option<String>,
    alias: Option<String>,
    volume_format: Option<String>,
}

/// One `Item` of the virtual hardware section: ResourceType 3 = CPU, 4 = memory.
fn read_item(
    fields: &std::collections::HashMap<String, String>,
    cpus: &mut Option<u64>,
    memory_mb: &mut Option<u64>,
) -> Result<(), OvfError> {
    let number = |key: &'static str| -> Result<u64, OvfError> {
        let value = fields.get(key).ok_or(OvfError::ItemWithout(key))?;
        value.parse().map_err(|_| OvfError::ItemNotANumber {
            key,
            value: value.clone(),
        })
    };
    match fields.get("ResourceType").map(String::as_str) {
        Some("3") if cpus.is_none() => {
            *cpus = Some(number("num_of_sockets")? * number("cpu_per_socket")?);
        }
        Some("4") if memory_mb.is_none() => {
            let units = fields.get("AllocationUnits").map(String::as_str);
            if units != Some("MegaBytes") {
                return Err(OvfError::MemoryUnit(units.unwrap_or("").to_string()));
            }
            *memory_mb = Some(number("VirtualQuantity")?);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OVF imagefactory writes (host-formats §6), trimmed to the parts read.
    pub const OVF: &str = r#"<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="0.9"><References><File ovf:href="IMG/VOL" ovf:id="VOL" ovf:size="53687091200" ovf:description="TPL"/></References><Section xsi:type="ovf:NetworkSection_Type"><Info>List of Networks</Info></Section><Section xsi:type="ovf:DiskSection_Type"><Disk ovf:diskId="VOL" ovf:size="50" ovf:vm_snapshot_id="S" ovf:actual_size="50" ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse" ovf:parentRef="" ovf:fileRef="IMG/VOL" ovf:volume-type="Sparse" ovf:volume-format="COW" ovf:disk-interface="VirtIO" ovf:disk-type="System" ovf:boot="true" ovf:wipe-after-delete="false"/></Section><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="out"><Name>TPL</Name><Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>4 CPU, 16384 Memory</Info><System><vssd:VirtualSystemType>RHEVM 4.6.0.163</vssd:VirtualSystemType></System><Item><rasd:Caption>4 virtual CPU</rasd:Caption><rasd:Description>Number of virtual CPU</rasd:Description><rasd:InstanceId>1</rasd:InstanceId><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>2</rasd:num_of_sockets><rasd:cpu_per_socket>2</rasd:cpu_per_socket></Item><Item><rasd:Caption>16384 MB of memory</rasd:Caption><rasd:Description>Memory Size</rasd:Description><rasd:InstanceId>2</rasd:InstanceId><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>16384</rasd:VirtualQuantity></Item><Item><rasd:Caption>Drive 1</rasd:Caption><rasd:InstanceId>VOL</rasd:InstanceId><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>IMG/VOL</rasd:HostResource></Item></Section></Content></ovf:Envelope>"#;

    /// A tar (gzip when asked) with `members` in order.
    fn archive(dir: &Path, gzip: bool, members: &[(&str, &[u8])]) -> (PathBuf, String) {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        let mut bytes = builder.into_inner().unwrap();
        if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&bytes).unwrap();
            bytes = encoder.finish().unwrap();
        }
        let path = dir.join(if gzip { "a.ova" } else { "plain.ova" });
        std::fs::write(&path, &bytes).unwrap();
        (path, hex::encode(Sha1::digest(&bytes)))
    }

    fn qcow2_member(virtual_size: u64) -> Vec<u8> {
        let mut data = vec![0u8; 70_000];
        data[..4].copy_from_slice(qcow2::MAGIC);
        data[24..32].copy_from_slice(&virtual_size.to_be_bytes());
        data[69_999] = 9;
        data
    }

    #[test]
    fn one_read_checks_sha1_parses_the_ovf_and_stages_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let disk = qcow2_member(5 << 30);
        // The disk before the OVF, a .meta and another image: order does not matter.
        let (path, sha1) = archive(
            dir.path(),
            true,
            &[
                ("./images/IMG/VOL", &disk),
                ("images/IMG/VOL.meta", b"FORMAT=COW\nEOF\n"),
                ("images/OTHER/X", b"not this one"),
                ("master/vms/TPL/TPL.ovf", OVF.as_bytes()),
            ],
        );
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let report = read(
            &path,
            Some(&sha1.to_uppercase()),
            Some(&stage),
            &Reporter::none(),
        )
        .unwrap();
        assert_eq!(report.sha1, sha1);
        assert_eq!(report.disk_member, "images/IMG/VOL");
        assert_eq!(report.disk_member_bytes, disk.len() as u64);
        assert_eq!(report.disk_virtual_size_bytes, 5 << 30);
        assert_eq!(report.ovf.cpus, 4);
        let staged = report.staged_disk.unwrap();
        assert_eq!(std::fs::read(&staged).unwrap(), disk);
        assert_eq!(
            std::fs::read_dir(&stage).unwrap().count(),
            1,
            "other members removed"
        );
    }

    #[test]
    fn a_plain_tar_in_check_mode_stages_nothing_and_a_wrong_sha1_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let disk = qcow2_member(1 << 30);
        let (path, sha1) = archive(
            dir.path(),
            false,
            &[
                ("master/vms/T/T.ovf", OVF.as_bytes()),
                ("images/IMG/VOL", &disk),
            ],
        );
        let report = read(&path, None, None, &Reporter::none()).unwrap();
        assert_eq!((report.sha1.clone(), report.staged_disk), (sha1, None));
        let error = read(&path, Some(&"0".repeat(40)), None, &Reporter::none())
            .unwrap_err()
            .to_string();
        assert!(error.contains("is corrupted: SHA-1"), "{error}");
    }

    #[test]
    fn parses_the_imagefactory_ovf() {
        let (ovf, warnings) = parse_ovf(OVF).unwrap();
        assert_eq!(
            ovf,
            Ovf {
                disk_size_gib: 50,
                file_ref: "IMG/VOL".into(),
                disk_alias: DEFAULT_DISK_ALIAS.into(),
                volume_format: VolumeFormat::Cow,
                cpus: 4,
                memory_mb: 16384,
            }
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("disk-alias"));
    }

    #[test]
    fn reads_the_engine_style_disk_alias_and_warns_on_missing_items() {
        let xml = r#"<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/"><Section><Disk ovf:size="60" ovf:fileRef="a/b" ovf:disk-alias="virtio-disk0" ovf:volume-format="RAW"></Disk></Section></ovf:Envelope>"#;
        let (ovf, warnings) = parse_ovf(xml).unwrap();
        assert_eq!(ovf.disk_alias, "virtio-disk0");
        assert_eq!(ovf.volume_format, VolumeFormat::Raw);
        assert_eq!((ovf.cpus, ovf.memory_mb), (DEFAULT_CPUS, DEFAULT_MEMORY_MB));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn rejects_malformed_or_incomplete_ovf() {
        assert!(parse_ovf("<a><b></a>")
            .unwrap_err()
            .to_string()
            .contains("at byte"));
        assert!(parse_ovf("")
            .unwrap_err()
            .to_string()
            .contains("no XML elements"));
        assert!(parse_ovf("<Envelope/>")
            .unwrap_err()
            .to_string()
            .contains("no Disk"));
        let no_ref = OVF.replace("ovf:fileRef=\"IMG/VOL\"", "");
        assert!(parse_ovf(&no_ref)
            .unwrap_err()
            .to_string()
            .contains("no ovf:fileRef"));
        let escape = OVF.replace("ovf:fileRef=\"IMG/VOL\"", "ovf:fileRef=\"../etc\"");
        assert!(parse_ovf(&escape)
            .unwrap_err()
            .to_string()
            .contains("not a relative image path"));
        let no_format = OVF.replace(" ovf:volume-format=\"COW\"", "");
        assert!(parse_ovf(&no_format)
            .unwrap_err()
            .to_string()
            .contains("no ovf:volume-format (RAW or COW)"));
        let other = OVF.replace("ovf:volume-format=\"COW\"", "ovf:volume-format=\"VMDK\"");
        assert!(parse_ovf(&other)
            .unwrap_err()
            .to_string()
            .contains("'VMDK' is neither RAW nor COW"));
        let units = OVF.replace("MegaBytes", "GigaBytes");
        assert!(parse_ovf(&units)
            .unwrap_err()
            .to_string()
            .contains("Unsupported unit type"));
    }

    /// The OVF with `ovf:volume-format="RAW"`, as the engine writes it for a raw disk.
    fn raw_ovf() -> String {
        OVF.replace("ovf:volume-format=\"COW\"", "ovf:volume-format=\"RAW\"")
    }

    #[test]
    fn a_raw_disk_is_read_as_raw_and_staged_without_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let disk: Vec<u8> = (0..3 * 65536u32).map(|i| (i % 251) as u8).collect();
        let ovf = raw_ovf();
        let (path, _) = archive(
            dir.path(),
            true,
            &[
                ("master/vms/TPL/TPL.ovf", ovf.as_bytes()),
                ("images/IMG/VOL", &disk),
            ],
        );
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let report = read(&path, None, Some(&stage), &Reporter::none()).unwrap();
        assert_eq!(report.ovf.volume_format, VolumeFormat::Raw);
        assert_eq!(report.disk_virtual_size_bytes, disk.len() as u64);
        // The member extracted is the image: renamed, not converted (same inode).
        use std::os::unix::fs::MetadataExt;
        let member_inode = std::fs::metadata(report.staged_disk.as_ref().unwrap())
            .unwrap()
            .ino();
        let staged = stage_as_raw(&path, &report, &Reporter::none())
            .unwrap()
            .unwrap();
        assert_eq!(staged, stage.join("a.raw"));
        assert_eq!(std::fs::metadata(&staged).unwrap().ino(), member_inode);
        assert_eq!(std::fs::read(&staged).unwrap(), disk);
        assert_eq!(std::fs::read_dir(&stage).unwrap().count(), 1);
    }

    #[test]
    fn the_disk_magic_must_agree_with_the_declared_volume_format() {
        let dir = tempfile::tempdir().unwrap();
        let qcow2 = qcow2_member(1 << 30);
        let ovf = raw_ovf();
        let (path, _) = archive(
            dir.path(),
            false,
            &[
                ("master/vms/T/T.ovf", ovf.as_bytes()),
                ("images/IMG/VOL", &qcow2),
            ],
        );
        let error = read(&path, None, None, &Reporter::none())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("declares disk member images/IMG/VOL ovf:volume-format=\"RAW\" but the member is a qcow2 image"),
            "{error}"
        );
        let (path, _) = archive(
            dir.path(),
            false,
            &[
                ("master/vms/T/T.ovf", OVF.as_bytes()),
                ("images/IMG/VOL", &[7u8; 4096]),
            ],
        );
        let error = read(&path, None, None, &Reporter::none())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ovf:volume-format=\"COW\" but the member has no qcow2 magic"),
            "{error}"
        );
    }
}
