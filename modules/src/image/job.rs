//! One `he_image_copy` run: resolve source and destination, stage an OVA, check sizes and
//! the engine-disk guard (the plan, all that check mode does), then extend, copy, verify
//! and record a verified backup of the engine disk.

use super::copy::{self, Destination};
use super::digest::Algorithm;
use super::endpoint::{is_same, Host, Source, Target};
use super::ova::{self, OvaReport};
use super::progress;
use super::qcow2::{self, Format};
use super::safety::{self, BackupRecord, Endpoint, FileIdentity, FinishedWrite};
use super::target::{self, SizePlan};
use crate::host::Volume;
use crate::privilege::Access;
use anyhow::{bail, Context as _};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where the image comes from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A raw or qcow2 image file or block device.
    Path(PathBuf),
    /// A vdsm volume.
    Volume(Volume),
    /// An appliance OVA, with its expected SHA-1.
    Ova { path: PathBuf, sha1: Option<String> },
}

/// Where the image goes.
#[derive(Debug, Clone)]
pub enum DestinationSpec {
    /// A file (created when missing) or block device.
    Path(PathBuf),
    /// A RAW vdsm volume.
    Volume(Volume),
}

/// Everything the module was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// Source.
    pub source: SourceSpec,
    /// Destination; `None` only to stage an OVA.
    pub destination: Option<DestinationSpec>,
    /// Directory for the unpacked and converted OVA disk.
    pub stage_dir: Option<PathBuf>,
    /// Digest of the written content.
    pub algorithm: Algorithm,
    /// Re-read the destination and compare.
    pub verify: bool,
    /// Extend a too small destination.
    pub extend: bool,
    /// Proof of a verified backup, needed to write the engine disk.
    pub backup_checksum: Option<String>,
    /// Where backup records live.
    pub state_dir: PathBuf,
    /// Longest wait for vdsm's extend task.
    pub extend_timeout_s: u64,
}

/// What was (or, in check mode, would be) done: the module's return keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Digest of the written content.
    pub checksum: Option<String>,
    /// Its algorithm.
    pub checksum_algorithm: &'static str,
    /// Image size.
    pub bytes_total: u64,
    /// Bytes written with write(2).
    pub bytes_written: u64,
    /// Bytes zeroed on the destination.
    pub bytes_zeroed: u64,
    /// Seconds the run took.
    pub seconds: f64,
    /// The staged raw image (OVA sources).
    pub staged: Option<PathBuf>,
    /// OVA and OVF facts (OVA sources).
    pub ovf: Option<OvaReport>,
    /// Source path.
    pub source_path: Option<PathBuf>,
    /// Destination path.
    pub dest_path: Option<PathBuf>,
    /// Size of the destination before the copy.
    pub dest_size_bytes: u64,
    /// New destination size when it is (or would be) extended.
    pub extended_to_bytes: Option<u64>,
    /// True when the destination was re-read and matched.
    pub verified: bool,
    /// Why the engine disk may be written: `backed_up`, `restore`, `resume`, `rewrite`
    /// (`needs_backup` in check mode without `backup_checksum`).
    pub engine_disk_write: Option<&'static str>,
    /// The backup record written (copies of the engine disk with verify).
    pub backup_record: Option<PathBuf>,
    /// Warnings for the operator.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Report {
    /// One line for the operator: what was (or would be) copied or staged.
    pub fn summary(&self, check_mode: bool) -> String {
        let size = progress::human_bytes(self.bytes_total);
        let source = self
            .source_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match (&self.dest_path, check_mode) {
            (Some(dest), true) => format!("would copy {size} from {source} to {}", dest.display()),
            (Some(dest), false) => format!(
                "copied {size} from {source} to {} in {:.1} s",
                dest.display(),
                self.seconds
            ),
            (None, true) => format!("would stage {size} from {source}"),
            (None, false) => format!("staged {size} as {source}"),
        }
    }
}

/// Plans and, unless `check_mode`, performs the copy.
pub fn run(request: &Request, host: &Host, check_mode: bool) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    let mut report = Report {
        checksum_algorithm: request.algorithm.name(),
        ..Report::default()
    };
    let engine_disk = host
        .engine_disk()
        .context("cannot resolve the engine disk")?;
    let source = resolve_source(request, host, check_mode, &mut report)?;
    report.source_path = Some(source.endpoint.path.clone());
    report.bytes_total = source.size_bytes;
    let Some(destination) = &request.destination else {
        if !check_mode {
            let hashed = copy::hash(
                &source.endpoint.path,
                &host.access(&source.endpoint),
                source.size_bytes,
                request.algorithm,
            )?;
            report.checksum = hashed.checksum;
        }
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };
    let target = match destination {
        DestinationSpec::Path(path) => Target::from_path(path)?,
        DestinationSpec::Volume(volume) => Target::from_volume(host, volume)?,
    };
    report.dest_path = Some(target.endpoint.path.clone());
    report.dest_size_bytes = target.size_bytes;
    if target.exists && is_same(&source.endpoint, &target.endpoint) {
        bail!(
            "source and destination are the same image ({})",
            target.endpoint.path.display()
        );
    }
    let size_plan = match target.exists {
        false => SizePlan::Fits,
        true => target::plan(source.size_bytes, target.size_bytes, request.extend)?,
    };
    if let SizePlan::Extend { to_bytes } = size_plan {
        if target.endpoint.volume.is_none() && !target.regular_file {
            bail!(
                "{}: the destination block device cannot be extended",
                target::plan(source.size_bytes, target.size_bytes, false).unwrap_err()
            );
        }
        report.extended_to_bytes = Some(to_bytes);
    }
    let writes_engine_disk = engine_disk
        .as_ref()
        .is_some_and(|disk| is_same(&target.endpoint, disk));
    if let (true, Some(disk)) = (writes_engine_disk, &engine_disk) {
        if check_mode && request.backup_checksum.is_none() {
            // A check-mode playbook run has made no backup yet: report, do not fail.
            report.warnings.push(format!(
                "check mode: writing the engine disk {} needs backup_checksum of a verified backup; a real run without it is refused",
                disk.path.display()
            ));
            report.engine_disk_write = Some("needs_backup");
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        let allowed = safety::authorize(
            &request.state_dir,
            request.backup_checksum.as_deref(),
            disk,
            &source.endpoint.path,
            |endpoint| Ok(host.resolve(endpoint)?),
            |endpoint| host.access(endpoint),
        )?;
        report.engine_disk_write = Some(allowed.name());
        tracing::info!("engine disk write allowed: {allowed:?}");
    }
    if check_mode {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let reads_engine_disk = engine_disk
        .as_ref()
        .is_some_and(|disk| is_same(&source.endpoint, disk));
    let identity_before = FileIdentity::of(&source.endpoint.path).ok();
    let mut apply = || -> anyhow::Result<()> {
        let destination_size =
            prepare_target(request, host, &target, source.size_bytes, size_plan)?;
        let guard = match (writes_engine_disk, &request.backup_checksum) {
            (true, Some(checksum)) => Some(safety::normalized(checksum)),
            _ => None,
        };
        if let Some(checksum) = &guard {
            safety::begin_write(&request.state_dir, checksum, &source.endpoint.path)?;
        }
        write(
            request,
            host,
            &source,
            &target,
            destination_size,
            &mut report,
        )?;
        if let Some(checksum) = &guard {
            let finished = FinishedWrite {
                algorithm: request.algorithm,
                checksum: report.checksum.clone(),
                length_bytes: source.size_bytes,
                identity: FileIdentity::of(&target.endpoint.path)?,
            };
            safety::finish_write(
                &request.state_dir,
                checksum,
                &source.endpoint.path,
                finished,
            )?;
        }
        if reads_engine_disk {
            record_backup(request, &source, &target, identity_before, &mut report)?;
        }
        Ok(())
    };
    // From here on the destination may have changed: say so when failing.
    apply().map_err(|error| crate::ansible::Failure {
        msg: format!("{error:#}"),
        changed: true,
        data: Default::default(),
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn resolve_source(
    request: &Request,
    host: &Host,
    check_mode: bool,
    report: &mut Report,
) -> anyhow::Result<Source> {
    match &request.source {
        SourceSpec::Path(path) => Ok(Source::from_path(path)?),
        SourceSpec::Volume(volume) => Ok(Source::from_volume(host, volume)?),
        SourceSpec::Ova { path, sha1 } => {
            let stage_dir = match (check_mode, &request.stage_dir) {
                (true, _) => None,
                (false, Some(dir)) => Some(dir.as_path()),
                (false, None) => bail!("option 'stage_dir' is required with an OVA source"),
            };
            let ova = ova::read(path, sha1.as_deref(), stage_dir)?;
            tracing::info!(
                "read OVA {} (SHA-1 {}): disk {} of {} bytes, virtual size {} bytes",
                path.display(),
                ova.sha1,
                ova.disk_member,
                ova.disk_member_bytes,
                ova.disk_virtual_size_bytes
            );
            report.warnings.extend(ova.warnings.iter().cloned());
            let size_bytes = ova.disk_virtual_size_bytes;
            let staged_path = match &ova.staged_disk {
                Some(qcow2_path) => Some(convert_staged(path, qcow2_path)?),
                None => None,
            };
            report.staged = staged_path.clone();
            report.ovf = Some(ova);
            Ok(Source {
                endpoint: Endpoint {
                    volume: None,
                    path: staged_path.unwrap_or_else(|| path.clone()),
                },
                format: Format::Raw,
                size_bytes,
            })
        }
    }
}

/// Converts the staged qcow2 to `<stage_dir>/<ova name>.raw` and removes the qcow2.
fn convert_staged(ova_path: &Path, qcow2_path: &Path) -> anyhow::Result<PathBuf> {
    let stem = ova_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "appliance".into());
    let dir = qcow2_path.parent().unwrap_or(Path::new("."));
    let raw = dir.join(format!("{stem}.raw"));
    let partial = dir.join(format!("{stem}.raw.part"));
    // Flushed before it is renamed into place: a staged image is complete or absent.
    let converted =
        qcow2::convert_to_raw(qcow2_path, &partial, false, &Access::Own).and_then(|()| {
            std::fs::File::open(&partial)
                .and_then(|file| file.sync_all())
                .and_then(|()| std::fs::rename(&partial, &raw))
                .and_then(|()| std::fs::File::open(dir)?.sync_all())
                .map_err(|e| qcow2::ImageError::Unreadable {
                    path: raw.display().to_string(),
                    source: e,
                })
        });
    let _ = std::fs::remove_file(qcow2_path);
    if converted.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    converted?;
    tracing::info!("staged {} as {}", ova_path.display(), raw.display());
    Ok(raw)
}

/// Extends or creates the destination; returns its size for the copy.
fn prepare_target(
    request: &Request,
    host: &Host,
    target: &Target,
    image_bytes: u64,
    plan: SizePlan,
) -> anyhow::Result<u64> {
    let path = &target.endpoint.path;
    if !target.exists {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create destination {}", path.display()))?;
        file.set_len(image_bytes)?;
        return Ok(image_bytes);
    }
    let SizePlan::Extend { to_bytes } = plan else {
        return Ok(target.size_bytes);
    };
    match &target.endpoint.volume {
        Some(volume) => {
            tracing::info!("extending volume {} to {to_bytes} bytes", volume.volume_id);
            host.extend(volume, to_bytes, request.extend_timeout_s)
                .context("Failed extending the destination volume")?;
            let now = host.volume_info(volume)?.capacity_bytes;
            if now < image_bytes {
                bail!(
                    "volume {} is still {now} bytes after extendSize",
                    volume.volume_id
                );
            }
            Ok(now)
        }
        None => {
            let file = std::fs::OpenOptions::new().write(true).open(path)?;
            file.set_len(to_bytes)
                .with_context(|| format!("cannot extend {}", path.display()))?;
            Ok(to_bytes)
        }
    }
}

fn write(
    request: &Request,
    host: &Host,
    source: &Source,
    target: &Target,
    destination_size: u64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let path = &target.endpoint.path;
    let source_access = host.access(&source.endpoint);
    let target_access = host.access(&target.endpoint);
    let label = format!(
        "copy {} -> {}",
        source.endpoint.path.display(),
        path.display()
    );
    match source.format {
        Format::Raw => {
            let destination = Destination {
                path: path.clone(),
                access: target_access.clone(),
                known_zero: !target.exists,
                size_bytes: destination_size,
            };
            let copied = copy::copy(
                &source.endpoint.path,
                &source_access,
                source.size_bytes,
                Some(&destination),
                request.algorithm,
                &label,
            )?;
            report.bytes_written = copied.bytes_written;
            report.bytes_zeroed = copied.bytes_zeroed;
            report.checksum = copied.checksum;
        }
        Format::Qcow2 => {
            tracing::info!("{label}: qemu-img convert (qcow2 source)");
            // qemu-img reads the source as the destination's owner: a qcow2 image written onto
            // a volume must be readable by vdsm:kvm (the original chowned it so, §2).
            qcow2::convert_to_raw(&source.endpoint.path, path, true, &target_access)?;
            report.bytes_written = source.size_bytes;
            report.bytes_zeroed =
                copy::zero_range(path, &target_access, source.size_bytes, destination_size)?;
            report.checksum =
                copy::hash(path, &target_access, source.size_bytes, request.algorithm)?.checksum;
            report.verified = request.verify;
        }
    }
    if request.verify && source.format == Format::Raw {
        let reread = copy::hash(path, &target_access, source.size_bytes, request.algorithm)?;
        if reread.checksum != report.checksum {
            bail!(
                "verify failed: {} reads back as {} but {} was written",
                path.display(),
                reread.checksum.unwrap_or_default(),
                report.checksum.clone().unwrap_or_default()
            );
        }
        report.verified = true;
    }
    Ok(())
}

/// After a verified copy of the engine disk, keeps the proof the guard asks for.
fn record_backup(
    request: &Request,
    source: &Source,
    target: &Target,
    identity_before: Option<FileIdentity>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(checksum) = report.checksum.clone().filter(|_| report.verified) else {
        report.warnings.push("the engine disk was copied without verify: no backup record was kept, so this copy cannot authorise writing the engine disk".into());
        return Ok(());
    };
    let identity = FileIdentity::of(&source.endpoint.path)?;
    if identity_before != Some(identity) {
        bail!(
            "the engine disk {} changed while it was copied: is the engine VM down?",
            source.endpoint.path.display()
        );
    }
    let record = BackupRecord {
        source: source.endpoint.clone(),
        source_identity: identity,
        backup: target.endpoint.clone(),
        algorithm: request.algorithm,
        checksum,
        size_bytes: source.size_bytes,
        created_epoch_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    report.backup_record = Some(safety::save(&request.state_dir, &record)?);
    Ok(())
}
