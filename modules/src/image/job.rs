//! One `he_image_copy` run: plan (resolve source and destination, stage an OVA, check
//! sizes), decide (the engine-disk guard), which is all that check mode does; then apply
//! (extend, copy, verify, record a verified backup of the engine disk on this host and in
//! the backup volume's metadata) and report. Without a destination, the source is only
//! hashed (staged first when it is an OVA).

use super::copy::{self, Destination};
use super::digest::Algorithm;
use super::endpoint::{is_same, Host, Source, Target};
use super::ova::{self, OvaReport};
use super::progress;
use super::proof::VerifiedProof;
use super::qcow2::{self, Format};
use super::safety::{self, Allowed, BackupRecord, Endpoint, FileIdentity, FinishedWrite, Proof};
use super::target::{self, SizePlan};
use crate::ansible::progress::Reporter;
use crate::engine::backup_disks;
use crate::host::Volume;
use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

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
    /// The source is a backup disk without a record: `backup_checksum` is the operator's
    /// word for its content (re-hashed before anything is written); only a restore.
    pub unrecorded_backup: bool,
    /// Where backup records live.
    pub state_dir: PathBuf,
    /// Longest wait for vdsm's extend task.
    pub extend_timeout_s: u64,
    /// Where long passes (reads, copies, hashes) show how far they are.
    pub progress: Reporter,
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
    /// Why the engine disk may be written (when it is the destination).
    pub engine_disk_write: Option<EngineDiskWrite>,
    /// The backup record written (copies of the engine disk with verify).
    pub backup_record: Option<PathBuf>,
    /// The proof of that verified backup kept in the backup volume's metadata.
    pub backup_proof: Option<VerifiedProof>,
    /// Warnings for the operator.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Report {
    /// The module's return keys.
    pub fn return_values(&self) -> Map<String, Value> {
        json!(self).as_object().cloned().unwrap_or_default()
    }

    /// The destination before and after: path, size and what it holds.
    pub fn diff(&self) -> (Value, Value) {
        let before = json!({"dest": self.dest_path, "size_bytes": self.dest_size_bytes});
        let after = json!({
            "dest": self.dest_path.as_ref().or(self.staged.as_ref()),
            "size_bytes": self
                .extended_to_bytes
                .unwrap_or(self.dest_size_bytes.max(self.bytes_total)),
            "content": self.source_path,
        });
        (before, after)
    }

    /// Whether anything was (or would be) written: only hashing a source changes nothing.
    pub fn changed(&self) -> bool {
        self.dest_path.is_some() || self.ovf.is_some()
    }

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
            (None, true) if self.ovf.is_some() => format!("would stage {size} from {source}"),
            (None, false) if self.ovf.is_some() => format!("staged {size} as {source}"),
            (None, true) => format!("would hash {size} of {source}"),
            (None, false) => format!("hashed {size} of {source}"),
        }
    }
}

/// Why the engine disk may be written, as the playbook reads it (`engine_disk_write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineDiskWrite {
    /// It still equals its verified backup.
    BackedUp,
    /// The copy restores the verified backup.
    Restore,
    /// A write under the backup was interrupted: it is redone.
    Resume,
    /// It still holds what a finished write under the backup left.
    Rewrite,
    /// Check mode without `backup_checksum`: a real run would be refused.
    NeedsBackup,
}

impl From<&Allowed> for EngineDiskWrite {
    fn from(allowed: &Allowed) -> Self {
        match allowed {
            Allowed::BackedUp { .. } => Self::BackedUp,
            Allowed::Restore { .. } => Self::Restore,
            Allowed::Resume { .. } => Self::Resume,
            Allowed::Rewrite { .. } => Self::Rewrite,
        }
    }
}

/// What a run will do, resolved and checked before anything is written.
struct Plan {
    source: Source,
    /// What reading the source (an OVA) found: staged image, OVF facts, warnings.
    staged: Option<PathBuf>,
    ovf: Option<OvaReport>,
    warnings: Vec<String>,
    /// `None`: only stage (and hash) an OVA.
    copy: Option<CopyPlan>,
}

/// The copy onto a destination.
struct CopyPlan {
    target: Target,
    size: SizePlan,
    engine_disk: EngineDiskRole,
}

/// The engine disk's part in a copy.
enum EngineDiskRole {
    /// Neither side is the engine disk.
    Neither,
    /// The destination is the engine disk: the guard decides.
    Destination(Endpoint),
    /// The source is the engine disk: a verified copy is recorded as its backup.
    Source,
}

/// What applying the plan did.
#[derive(Default)]
struct Applied {
    checksum: Option<String>,
    bytes_written: u64,
    bytes_zeroed: u64,
    verified: bool,
    backup_record: Option<PathBuf>,
    backup_proof: Option<VerifiedProof>,
    warnings: Vec<String>,
}

/// Plans, decides and, unless `check_mode`, applies the copy; then reports.
pub fn run(request: &Request, host: &Host, check_mode: bool) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    let plan = plan(request, host, check_mode)?;
    let engine_disk_write = decide(&plan, request, host, check_mode)?;
    let applied = match (check_mode, &plan.copy) {
        (true, _) => Applied::default(),
        (false, None) => hash_staged(&plan.source, request, host)?,
        (false, Some(copy_plan)) => {
            apply(&plan.source, copy_plan, request, host, engine_disk_write).map_err(|error| {
                crate::ansible::Failure {
                    // The destination may have changed: say so when failing.
                    msg: format!("{error:#}"),
                    changed: true,
                    data: Default::default(),
                }
            })?
        }
    };
    Ok(report(request, plan, engine_disk_write, applied, started))
}

/// Resolves both sides (staging an OVA in a real run) and checks that the copy can be done.
fn plan(request: &Request, host: &Host, check_mode: bool) -> anyhow::Result<Plan> {
    let engine_disk = host
        .engine_disk()
        .context("cannot resolve the engine disk")?;
    let mut plan = resolve_source(request, host, check_mode)?;
    let Some(destination) = &request.destination else {
        return Ok(plan);
    };
    let source = &plan.source;
    let target = match destination {
        DestinationSpec::Path(path) => Target::from_path(path)?,
        DestinationSpec::Volume(volume) => Target::from_volume(host, volume)?,
    };
    if target.exists && is_same(&source.endpoint, &target.endpoint) {
        bail!(
            "source and destination are the same image ({})",
            target.endpoint.path.display()
        );
    }
    let size = match target.exists {
        false => SizePlan::Fits,
        true => target::plan(source.size_bytes, target.size_bytes, request.extend)?,
    };
    if let SizePlan::Extend { .. } = size {
        if target.endpoint.volume.is_none() && !target.regular_file {
            bail!(
                "{}: the destination block device cannot be extended",
                target::plan(source.size_bytes, target.size_bytes, false).unwrap_err()
            );
        }
    }
    let engine_disk = match engine_disk {
        Some(disk) if is_same(&target.endpoint, &disk) => EngineDiskRole::Destination(disk),
        Some(disk) if is_same(&source.endpoint, &disk) => EngineDiskRole::Source,
        _ => EngineDiskRole::Neither,
    };
    plan.copy = Some(CopyPlan {
        target,
        size,
        engine_disk,
    });
    Ok(plan)
}

/// The engine-disk guard: whether (and why) the engine disk may be written.
fn decide(
    plan: &Plan,
    request: &Request,
    host: &Host,
    check_mode: bool,
) -> anyhow::Result<Option<EngineDiskWrite>> {
    let Some(CopyPlan {
        engine_disk: EngineDiskRole::Destination(disk),
        ..
    }) = &plan.copy
    else {
        if request.unrecorded_backup {
            bail!("option 'unrecorded_backup' restores a backup disk onto the engine disk: give the engine disk as 'dest_volume'");
        }
        return Ok(None);
    };
    if check_mode && request.backup_checksum.is_none() {
        // A check-mode playbook run has made no backup yet: report, do not fail.
        return Ok(Some(EngineDiskWrite::NeedsBackup));
    }
    let other_proofs = other_proofs(&plan.source, request, host, disk)?;
    let allowed = safety::authorize(
        &request.state_dir,
        request.backup_checksum.as_deref(),
        disk,
        &plan.source.endpoint.path,
        &other_proofs,
        |endpoint| Ok(host.resolve(endpoint)?),
        |endpoint| host.access(endpoint),
        &request.progress,
    )?;
    tracing::info!("engine disk write allowed: {allowed:?}");
    Ok(Some(EngineDiskWrite::from(&allowed)))
}

/// The proofs of a backup volume being restored that were not made on this host: the one in
/// its metadata, and with `unrecorded_backup` the operator's checksum. Its source is the
/// engine disk of the volume's domain (one hosted engine per storage domain).
fn other_proofs(
    source: &Source,
    request: &Request,
    host: &Host,
    engine_disk: &Endpoint,
) -> anyhow::Result<Vec<(Proof, BackupRecord)>> {
    let on_engine_domain = |volume: &&Volume| {
        (engine_disk.volume.as_ref()).is_some_and(|engine| engine.sd_id == volume.sd_id)
    };
    let Some(volume) = source.endpoint.volume.as_ref().filter(on_engine_domain) else {
        if request.unrecorded_backup {
            bail!("option 'unrecorded_backup' restores a backup disk: give it as 'src_volume', on the engine disk's storage domain");
        }
        return Ok(Vec::new());
    };
    let info = host.volume_info(volume)?;
    let record = |algorithm, checksum: &str, size_bytes| BackupRecord {
        source: engine_disk.clone(),
        source_identity: FileIdentity::UNKNOWN,
        backup: source.endpoint.clone(),
        algorithm,
        checksum: safety::normalized(checksum),
        size_bytes,
        created_epoch_s: info.created_epoch_s,
    };
    let mut proofs = Vec::new();
    if let Some(proof) = VerifiedProof::read(&info.description) {
        let recorded = record(proof.algorithm, &proof.checksum, proof.size_bytes);
        proofs.push((Proof::VolumeMetadata, recorded));
    }
    if request.unrecorded_backup {
        if backup_disks::label_of_description(&info.description).is_none() {
            bail!(
                "option 'unrecorded_backup': volume {} is not a backup disk (its description {:?} names no {}...)",
                volume.volume_id,
                info.description,
                backup_disks::BACKUP_PREFIX
            );
        }
        let given = request.backup_checksum.as_deref().unwrap_or_default();
        let operators = record(request.algorithm, given, source.size_bytes);
        proofs.push((Proof::Operator, operators));
    }
    Ok(proofs)
}

/// The checksum of a staged image (an OVA staged without destination).
fn hash_staged(source: &Source, request: &Request, host: &Host) -> anyhow::Result<Applied> {
    let hashed = copy::hash(
        &source.endpoint.path,
        &host.access(&source.endpoint),
        source.size_bytes,
        request.algorithm,
        &request.progress,
    )?;
    Ok(Applied {
        checksum: hashed.checksum,
        ..Applied::default()
    })
}

/// Extends or creates the destination, copies, verifies and records the write or backup.
fn apply(
    source: &Source,
    copy_plan: &CopyPlan,
    request: &Request,
    host: &Host,
    engine_disk_write: Option<EngineDiskWrite>,
) -> anyhow::Result<Applied> {
    let identity_before = FileIdentity::of(&source.endpoint.path).ok();
    let destination_size = prepare_target(
        request,
        host,
        &copy_plan.target,
        source.size_bytes,
        copy_plan.size,
    )?;
    let guard = match (engine_disk_write, &request.backup_checksum) {
        (Some(_), Some(checksum)) => Some(safety::normalized(checksum)),
        _ => None,
    };
    if let Some(checksum) = &guard {
        safety::begin_write(&request.state_dir, checksum, &source.endpoint.path)?;
    }
    let mut applied = write(request, host, source, &copy_plan.target, destination_size)?;
    if let Some(checksum) = &guard {
        let finished = FinishedWrite {
            algorithm: request.algorithm,
            checksum: applied.checksum.clone(),
            length_bytes: source.size_bytes,
            identity: FileIdentity::of(&copy_plan.target.endpoint.path)?,
        };
        safety::finish_write(
            &request.state_dir,
            checksum,
            &source.endpoint.path,
            finished,
        )?;
    }
    if let EngineDiskRole::Source = copy_plan.engine_disk {
        record_backup(
            request,
            host,
            source,
            &copy_plan.target,
            identity_before,
            &mut applied,
        )?;
    }
    Ok(applied)
}

/// The module's return keys.
fn report(
    request: &Request,
    plan: Plan,
    engine_disk_write: Option<EngineDiskWrite>,
    applied: Applied,
    started: std::time::Instant,
) -> Report {
    let mut warnings = plan.warnings;
    if let (Some(EngineDiskWrite::NeedsBackup), Some(copy_plan)) = (engine_disk_write, &plan.copy) {
        if let EngineDiskRole::Destination(disk) = &copy_plan.engine_disk {
            warnings.push(format!(
                "check mode: writing the engine disk {} needs backup_checksum of a verified backup; a real run without it is refused",
                disk.path.display()
            ));
        }
    }
    warnings.extend(applied.warnings);
    let target = plan.copy.as_ref().map(|copy_plan| &copy_plan.target);
    Report {
        checksum: applied.checksum,
        checksum_algorithm: request.algorithm.name(),
        bytes_total: plan.source.size_bytes,
        bytes_written: applied.bytes_written,
        bytes_zeroed: applied.bytes_zeroed,
        seconds: started.elapsed().as_secs_f64(),
        staged: plan.staged,
        ovf: plan.ovf,
        source_path: Some(plan.source.endpoint.path),
        dest_path: target.map(|target| target.endpoint.path.clone()),
        dest_size_bytes: target.map_or(0, |target| target.size_bytes),
        extended_to_bytes: match plan.copy.as_ref().map(|copy_plan| copy_plan.size) {
            Some(SizePlan::Extend { to_bytes }) => Some(to_bytes),
            _ => None,
        },
        verified: applied.verified,
        engine_disk_write,
        backup_record: applied.backup_record,
        backup_proof: applied.backup_proof,
        warnings,
    }
}

/// The source; an OVA is read (and, in a real run, staged as a raw image).
fn resolve_source(request: &Request, host: &Host, check_mode: bool) -> anyhow::Result<Plan> {
    let plain = |source| Plan {
        source,
        staged: None,
        ovf: None,
        warnings: Vec::new(),
        copy: None,
    };
    match &request.source {
        SourceSpec::Path(path) => Ok(plain(Source::from_path(path)?)),
        SourceSpec::Volume(volume) => Ok(plain(Source::from_volume(host, volume)?)),
        SourceSpec::Ova { path, sha1 } => {
            let stage_dir = match (check_mode, &request.stage_dir) {
                (true, _) => None,
                (false, Some(dir)) => Some(dir.as_path()),
                (false, None) => bail!("option 'stage_dir' is required with an OVA source"),
            };
            let ova = ova::read(path, sha1.as_deref(), stage_dir, &request.progress)?;
            tracing::info!(
                "read OVA {} (SHA-1 {}): disk {} of {} bytes, virtual size {} bytes",
                path.display(),
                ova.sha1,
                ova.disk_member,
                ova.disk_member_bytes,
                ova.disk_virtual_size_bytes
            );
            let staged = ova::stage_as_raw(path, &ova, &request.progress)?;
            Ok(Plan {
                source: Source {
                    endpoint: Endpoint {
                        volume: None,
                        path: staged.clone().unwrap_or_else(|| path.clone()),
                    },
                    format: Format::Raw,
                    size_bytes: ova.disk_virtual_size_bytes,
                },
                staged,
                warnings: ova.warnings.clone(),
                ovf: Some(ova),
                copy: None,
            })
        }
    }
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

/// Copies (or converts a qcow2 source) onto the destination and verifies it.
fn write(
    request: &Request,
    host: &Host,
    source: &Source,
    target: &Target,
    destination_size: u64,
) -> anyhow::Result<Applied> {
    let path = &target.endpoint.path;
    let source_access = host.access(&source.endpoint);
    let target_access = host.access(&target.endpoint);
    let label = format!(
        "copy {} -> {}",
        source.endpoint.path.display(),
        path.display()
    );
    let mut applied = Applied::default();
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
                &request.progress,
            )?;
            applied.bytes_written = copied.bytes_written;
            applied.bytes_zeroed = copied.bytes_zeroed;
            applied.checksum = copied.checksum;
        }
        Format::Qcow2 => {
            tracing::info!("{label}: qemu-img convert (qcow2 source)");
            // qemu-img reads the source as the destination's owner: a qcow2 image written onto
            // a volume must be readable by vdsm:kvm (the original chowned it so, §2).
            qcow2::convert_to_raw(
                &source.endpoint.path,
                path,
                true,
                &target_access,
                &request.progress,
            )?;
            applied.bytes_written = source.size_bytes;
            applied.bytes_zeroed =
                copy::zero_range(path, &target_access, source.size_bytes, destination_size)?;
            let hashed = copy::hash(
                path,
                &target_access,
                source.size_bytes,
                request.algorithm,
                &request.progress,
            )?;
            applied.checksum = hashed.checksum;
            applied.verified = request.verify;
        }
    }
    if request.verify && source.format == Format::Raw {
        let reread = copy::hash(
            path,
            &target_access,
            source.size_bytes,
            request.algorithm,
            &request.progress,
        )?;
        if reread.checksum != applied.checksum {
            bail!(
                "verify failed: {} reads back as {} but {} was written",
                path.display(),
                reread.checksum.unwrap_or_default(),
                applied.checksum.clone().unwrap_or_default()
            );
        }
        applied.verified = true;
    }
    Ok(applied)
}

/// After a verified copy of the engine disk, keeps the proof the guard asks for: on this host,
/// and in the backup volume's metadata for every host of the site.
fn record_backup(
    request: &Request,
    host: &Host,
    source: &Source,
    target: &Target,
    identity_before: Option<FileIdentity>,
    applied: &mut Applied,
) -> anyhow::Result<()> {
    let Some(checksum) = applied.checksum.clone().filter(|_| applied.verified) else {
        applied.warnings.push("the engine disk was copied without verify: no backup record was kept, so this copy cannot authorise writing the engine disk".into());
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
    applied.backup_record = Some(safety::save(&request.state_dir, &record)?);
    if let Some(volume) = &target.endpoint.volume {
        let proof = VerifiedProof {
            algorithm: record.algorithm,
            checksum: record.checksum.clone(),
            size_bytes: record.size_bytes,
        };
        match keep_proof(host, volume, &proof) {
            Ok(()) => applied.backup_proof = Some(proof),
            Err(error) => applied.warnings.push(format!(
                "the proof of the verified backup could not be kept in the metadata of volume {}: {error:#}; a rollback from another host, or after {} is lost, needs he_backup_checksum={}",
                volume.volume_id,
                request.state_dir.display(),
                record.checksum
            )),
        }
    }
    Ok(())
}

/// Adds `proof` to the volume's description (vdsm `Volume.setDescription`, read back).
fn keep_proof(host: &Host, volume: &Volume, proof: &VerifiedProof) -> anyhow::Result<()> {
    let description = host.volume_info(volume)?.description;
    let described = proof.added_to(&description)?;
    host.set_description(volume, &described)?;
    tracing::info!(
        "kept the proof of the verified backup in volume {}",
        volume.volume_id
    );
    Ok(())
}
