//! Where the images are: paths and vdsm volumes resolved to paths (`Image prepare`), their
//! format and size, and the engine disk named by hosted-engine.conf.

use super::qcow2::{self, Format, ImageError};
use super::safety::{Endpoint, FileIdentity};
use super::target;
use crate::host::he_conf::{HeConfError, DEFAULT_HE_CONF};
use crate::host::vdsm::{Vdsm, VdsmError, VolumeInfo};
use crate::host::{HeConf, Volume, BLANK_UUID};
use crate::privilege::Access;
use std::path::{Path, PathBuf};

/// A source or destination that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// hosted-engine.conf is missing or incomplete.
    #[error(transparent)]
    HeConf(#[from] HeConfError),
    /// vdsm refused or failed.
    #[error(transparent)]
    Vdsm(#[from] VdsmError),
    /// The image could not be inspected.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A path could not be inspected.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The endpoint exists but cannot be used this way.
    #[error("{0}")]
    Unusable(String),
}

/// The host: its vdsm, the pool id for vdsm and the engine disk, from hosted-engine.conf,
/// and who reaches the storage domain's volumes.
pub struct Host {
    vdsm: Vdsm,
    sp_id: String,
    engine_volume: Option<Volume>,
    storage: Access,
}

impl Host {
    /// Reads `he_conf` (the default path when `None`); volumes are resolved through `vdsm` and
    /// reached with `storage`.
    /// A missing default file means this host runs no hosted engine, so there is no engine
    /// disk: the returned warning says so.
    pub fn load(
        he_conf: Option<&Path>,
        vdsm: Vdsm,
        storage: Access,
    ) -> Result<(Self, Option<String>), EndpointError> {
        let path = he_conf.unwrap_or(Path::new(DEFAULT_HE_CONF));
        if he_conf.is_none() && !path.exists() {
            let host = Self {
                vdsm,
                sp_id: BLANK_UUID.to_string(),
                engine_volume: None,
                storage,
            };
            let warning = format!(
                "{DEFAULT_HE_CONF} does not exist: no hosted-engine disk to protect on this host"
            );
            return Ok((host, Some(warning)));
        }
        let conf = HeConf::load(path)?;
        Ok((
            Self {
                vdsm,
                sp_id: conf.sp_id().to_string(),
                engine_volume: Some(conf.engine_disk()?),
                storage,
            },
            None,
        ))
    }

    /// Who opens `endpoint`: the storage owner for a volume, this process for a path.
    pub fn access(&self, endpoint: &Endpoint) -> Access {
        match endpoint.volume {
            Some(_) => self.storage.clone(),
            None => Access::Own,
        }
    }

    /// The volume's path, from vdsm `Image.prepare`.
    pub fn prepare(&self, volume: &Volume) -> Result<PathBuf, EndpointError> {
        Ok(self.vdsm.prepare_image(&self.sp_id, volume)?)
    }

    /// vdsm `Volume.getInfo`.
    pub fn volume_info(&self, volume: &Volume) -> Result<VolumeInfo, EndpointError> {
        Ok(self.vdsm.volume_info(&self.sp_id, volume)?)
    }

    /// vdsm `Volume.setDescription` in the pool the volume's domain is attached to (the verb
    /// needs the connected pool, which hosted-engine.conf names blank), then read back: vdsm
    /// truncates without a word, so what it kept is compared.
    pub fn set_description(&self, volume: &Volume, description: &str) -> Result<(), EndpointError> {
        let sp_id = self.connected_pool(volume)?;
        self.vdsm
            .set_volume_description(&sp_id, volume, description)?;
        let kept = self.volume_info(volume)?.description;
        if kept != description {
            return Err(EndpointError::Unusable(format!(
                "vdsm kept the description of volume {} as {kept:?}, not as written",
                volume.volume_id
            )));
        }
        Ok(())
    }

    /// vdsm `Volume.extendSize` in the volume's connected pool (an SPM verb, like
    /// setDescription), and wait for the task.
    pub fn extend(
        &self,
        volume: &Volume,
        size_bytes: u64,
        timeout_s: u64,
    ) -> Result<(), EndpointError> {
        let timeout = std::time::Duration::from_secs(timeout_s);
        let sp_id = self.connected_pool(volume)?;
        Ok(self
            .vdsm
            .extend_volume(&sp_id, volume, size_bytes, timeout)?)
    }

    /// The pool the volume's domain is attached to, for the verbs that vdsm runs on the SPM's
    /// connected pool (hosted-engine.conf names the pool blank; `HSM.getPool` refuses that
    /// with 309); the configured one when the domain reports none.
    fn connected_pool(&self, volume: &Volume) -> Result<String, EndpointError> {
        let pool = self.vdsm.storage_domain_pool(&volume.sd_id)?;
        Ok(pool.unwrap_or_else(|| self.sp_id.clone()))
    }

    /// The engine disk and its path, when this host has one.
    pub fn engine_disk(&self) -> Result<Option<Endpoint>, EndpointError> {
        match &self.engine_volume {
            None => Ok(None),
            Some(volume) => Ok(Some(Endpoint {
                volume: Some(volume.clone()),
                path: self.prepare(volume)?,
            })),
        }
    }

    /// A recorded endpoint's current path (volumes are prepared again).
    pub fn resolve(&self, endpoint: &Endpoint) -> Result<PathBuf, EndpointError> {
        match &endpoint.volume {
            Some(volume) => self.prepare(volume),
            None => Ok(endpoint.path.clone()),
        }
    }
}

/// True when `endpoint` is `disk` (same volume ids, or the same file).
pub fn is_same(endpoint: &Endpoint, disk: &Endpoint) -> bool {
    if let (Some(a), Some(b)) = (&endpoint.volume, &disk.volume) {
        if a == b {
            return true;
        }
    }
    match (
        FileIdentity::of(&endpoint.path),
        FileIdentity::of(&disk.path),
    ) {
        (Ok(a), Ok(b)) => a.same_file(&b),
        _ => false,
    }
}

/// An image to read.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where it is.
    pub endpoint: Endpoint,
    /// Raw or qcow2.
    pub format: Format,
    /// Bytes of disk content (the virtual size for qcow2).
    pub size_bytes: u64,
}

impl Source {
    /// A source image at `path`.
    pub fn from_path(path: &Path) -> Result<Self, EndpointError> {
        Self::at(
            Endpoint {
                volume: None,
                path: path.to_path_buf(),
            },
            &Access::Own,
        )
    }

    /// A source volume, resolved with vdsm.
    pub fn from_volume(host: &Host, volume: &Volume) -> Result<Self, EndpointError> {
        let path = host.prepare(volume)?;
        let endpoint = Endpoint {
            volume: Some(volume.clone()),
            path,
        };
        let access = host.access(&endpoint);
        Self::at(endpoint, &access)
    }

    fn at(endpoint: Endpoint, access: &Access) -> Result<Self, EndpointError> {
        let format = qcow2::detect(&endpoint.path, access)?;
        let size_bytes = match format {
            Format::Qcow2 => qcow2::info(&endpoint.path, access)?.virtual_size_bytes,
            Format::Raw => size(&endpoint.path, access)?,
        };
        Ok(Self {
            endpoint,
            format,
            size_bytes,
        })
    }
}

/// Where an image is written.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where it is.
    pub endpoint: Endpoint,
    /// Its size now (0 when it does not exist yet).
    pub size_bytes: u64,
    /// False for a path that will be created.
    pub exists: bool,
    /// True for a regular file (a path target can then be extended by truncation).
    pub regular_file: bool,
}

impl Target {
    /// A destination path (created when missing).
    pub fn from_path(path: &Path) -> Result<Self, EndpointError> {
        let endpoint = Endpoint {
            volume: None,
            path: path.to_path_buf(),
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                endpoint,
                size_bytes: 0,
                exists: false,
                regular_file: true,
            }),
            Err(source) => Err(io("cannot inspect destination", path, source)),
            Ok(metadata) if metadata.is_dir() => Err(EndpointError::Unusable(format!(
                "option 'dest': {} is a directory",
                path.display()
            ))),
            Ok(metadata) => Ok(Self {
                size_bytes: size(path, &Access::Own)?,
                endpoint,
                exists: true,
                regular_file: metadata.is_file(),
            }),
        }
    }

    /// A destination volume: must be RAW; its size is vdsm's capacity.
    pub fn from_volume(host: &Host, volume: &Volume) -> Result<Self, EndpointError> {
        let info = host.volume_info(volume)?;
        if info.format != "RAW" {
            return Err(EndpointError::Unusable(format!(
                "option 'dest_volume': volume {} is {} (only RAW volumes can be written)",
                volume.volume_id, info.format
            )));
        }
        let path = host.prepare(volume)?;
        let regular_file = std::fs::metadata(&path)
            .map_err(|e| io("cannot inspect destination", &path, e))?
            .is_file();
        Ok(Self {
            endpoint: Endpoint {
                volume: Some(volume.clone()),
                path,
            },
            size_bytes: info.capacity_bytes,
            exists: true,
            regular_file,
        })
    }
}

fn size(path: &Path, access: &Access) -> Result<u64, EndpointError> {
    target::size_of(path, access).map_err(|e| io("cannot read the size of", path, e))
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> EndpointError {
    EndpointError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::vdsm::session::Endpoint as VdsmEndpoint;
    use crate::host::vdsm::tls::PkiFiles;

    /// A vdsm client these tests never reach.
    fn unreachable_vdsm() -> Vdsm {
        Vdsm::new(VdsmEndpoint {
            address: "localhost:1".into(),
            pki: PkiFiles::in_dir(Path::new("/nonexistent")),
            timeout: std::time::Duration::from_secs(1),
        })
    }

    #[test]
    fn a_missing_default_he_conf_means_no_engine_disk() {
        if Path::new(DEFAULT_HE_CONF).exists() {
            return; // a real hosted-engine host: nothing to prove here
        }
        let (host, warning) = Host::load(None, unreachable_vdsm(), Access::Own).unwrap();
        assert!(host.engine_disk().unwrap().is_none());
        assert!(warning.unwrap().contains("no hosted-engine disk"));
    }

    #[test]
    fn an_explicit_missing_he_conf_is_an_error() {
        let error = Host::load(
            Some(Path::new("/nonexistent/he.conf")),
            unreachable_vdsm(),
            Access::Own,
        )
        .err()
        .unwrap();
        assert!(
            error.to_string().contains("/nonexistent/he.conf"),
            "{error}"
        );
    }

    #[test]
    fn sources_and_targets_from_paths() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("a.raw");
        std::fs::File::create(&raw).unwrap().set_len(4096).unwrap();
        let source = Source::from_path(&raw).unwrap();
        assert_eq!((source.format, source.size_bytes), (Format::Raw, 4096));
        let missing = Target::from_path(&dir.path().join("new.raw")).unwrap();
        assert!(!missing.exists);
        let existing = Target::from_path(&raw).unwrap();
        assert!(existing.exists && existing.regular_file && existing.size_bytes == 4096);
        assert!(is_same(&source.endpoint, &existing.endpoint));
        assert!(!is_same(&source.endpoint, &missing.endpoint));
        assert!(Target::from_path(dir.path()).is_err());
    }
}
