//! A backup disk made the original tool's way (`hosted-engine --upgrade-appliance`, oVirt
//! 4.0/4.1; original-tool.md sections 2 and 6): a raw preallocated disk created through the
//! engine with alias `virtio-disk0` and the label `hosted-engine-backup-YYYYmmddHHMMSS` as
//! description (which the engine writes as the volume's JSON description), holding a copy
//! of the engine disk (`qemu-img convert -n -O raw` as vdsm:kvm, engine VM down). It carries
//! no proof of a verified copy.

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::engine::volumes;
use crate::{state, storage};
use anyhow::Context as _;
use serde::Serialize;

/// The alias the original tool gave its backup disk.
const ORIGINAL_ALIAS: &str = "virtio-disk0";

/// The disk made.
#[derive(Debug, Clone, Serialize)]
pub struct OriginalBackup {
    /// `hosted-engine-backup-YYYYmmddHHMMSS` (UTC).
    pub name: String,
    /// Image (disk) id.
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
}

/// Copies the engine disk (the engine VM down) onto a new backup disk of the original tool.
pub fn create(config: &LabConfig) -> anyhow::Result<OriginalBackup> {
    anyhow::ensure!(
        !state::vm(config).exists(),
        "the engine VM must be down to copy its disk (hosted-engine --vm-poweroff)"
    );
    let now = time::OffsetDateTime::now_utc();
    let stamp = now.format(time::macros::format_description!(
        "[year][month][day][hour][minute][second]"
    ))?;
    let name = format!("hosted-engine-backup-{stamp}");
    let image_id = derived_uuid(config.seed, &format!("image/{name}"));
    let volume_id = derived_uuid(config.seed, &format!("volume/{name}"));
    let engine = storage::volume_info(config, &config.engine_image_id, &config.engine_volume_id)
        .context("the engine disk volume is missing")?;
    let capacity = engine.capacity_bytes();
    let path = volumes::create(
        config,
        &image_id,
        &volume_id,
        capacity,
        ORIGINAL_ALIAS,
        &name,
        true,
    )?;
    let mut source = std::fs::File::open(&engine.path)
        .with_context(|| format!("cannot read {}", engine.path.display()))?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::copy(&mut source, &mut target)
        .with_context(|| format!("cannot copy the engine disk to {}", path.display()))?;
    target.sync_all()?;
    Ok(OriginalBackup {
        name,
        image_id,
        volume_id,
    })
}
