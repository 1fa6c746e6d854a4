//! What engine a guest disk holds: installed version, whether engine-setup completed, and the
//! engine database kept inside the guest (so disk bytes carry the engine's state).

use crate::config::EngineRelease;
use crate::engine::db::EngineDb;
use crate::guest::disk::GuestDisk;
use crate::guest::tree;

/// The engine found on a guest disk.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledEngine {
    /// Full engine version (`3.6.7.5`), from the version marker.
    pub version: String,
    /// The OS release line (`/etc/redhat-release`).
    pub os_release: String,
    /// Whether engine-setup completed on this disk.
    pub set_up: bool,
}

/// Reads the installed engine of `guest`; `None` when no engine is installed.
pub fn installed(guest: &GuestDisk) -> anyhow::Result<Option<InstalledEngine>> {
    let Some(version_line) = guest.read_text(tree::VERSION_FILE)? else {
        return Ok(None);
    };
    let version = version_line
        .trim()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string();
    let os_release = guest
        .read_text("/etc/redhat-release")?
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Some(InstalledEngine {
        version,
        os_release,
        set_up: guest.exists(tree::SETUP_DONE_FILE),
    }))
}

/// The release (`EngineRelease`) among `known` whose version is installed on `guest`.
pub fn release_of<'a>(
    installed: &InstalledEngine,
    known: &'a [&'a EngineRelease],
) -> Option<&'a EngineRelease> {
    known
        .iter()
        .copied()
        .find(|release| release.version == installed.version)
}

/// The engine database stored in the guest; `None` when there is none.
pub fn read_db(guest: &GuestDisk) -> anyhow::Result<Option<EngineDb>> {
    let Some(text) = guest.read_text(tree::ENGINE_DB_FILE)? else {
        return Ok(None);
    };
    let db = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("the engine database in the guest is corrupt: {e}"))?;
    Ok(Some(db))
}

/// Writes the engine database into the guest, unless it already holds exactly this content
/// (so an unchanged engine leaves the disk bytes unchanged).
pub fn write_db(guest: &GuestDisk, db: &EngineDb) -> anyhow::Result<bool> {
    let text = serde_json::to_string_pretty(db)?;
    if guest.read_text(tree::ENGINE_DB_FILE)?.as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    guest.write(tree::ENGINE_DB_FILE, text.as_bytes(), 0o600)?;
    Ok(true)
}
