//! engine-backup archives as engine-backup of the backed-up engine's version writes them
//! (SPEC 9.3, original-tool.md section 7, tests/fixtures/engine-backup): a gzip tar of
//! `./version`, `./os_version` (`centos6`), `./config` (`*_DUMP_FORMAT`/`*_DUMP_COMPRESSOR`),
//! `./files` (xz tar of /etc/ovirt-engine), `./db/engine_backup.db` and `./db/dwh_backup.db`
//! (PostgreSQL custom-format dumps, see `pgdump`) and the version's checksum file
//! (`./md5sum`, from 4.3.3.2 on `./sha256sum`), made with GNU tar as engine-backup does.

use crate::config::EngineRelease;
use crate::engine::db::EngineDb;
use crate::guest::{disk::run, tree};
use crate::{pgdump, profile};
use anyhow::Context as _;
use std::path::Path;
use std::process::Command;

/// What goes into one backup.
pub struct BackupContent<'a> {
    /// The engine that made the backup.
    pub release: &'a EngineRelease,
    /// The engine database at backup time.
    pub db: &'a EngineDb,
    /// Files of `/etc/ovirt-engine` (guest paths).
    pub files: &'a tree::Tree,
    /// Whether the engine had a DWH database (adds `./db/dwh_backup.db`).
    pub dwh: bool,
    /// How the archive is compressed (`--archive-compressor`).
    pub compressor: ArchiveCompressor,
}

/// engine-backup's `--archive-compressor` (gzip unless told otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveCompressor {
    /// `gzip` (tar `-z`), the default.
    #[default]
    Gzip,
    /// `bzip2` (tar `-j`).
    Bzip2,
    /// `xz` (tar `-J`).
    Xz,
    /// `None`: a plain tar.
    None,
}

impl ArchiveCompressor {
    /// The compressor engine-backup names `name`, as its `compressor_to_tar_option` knows them.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gzip" => Some(Self::Gzip),
            "bzip2" => Some(Self::Bzip2),
            "xz" => Some(Self::Xz),
            "None" => Some(Self::None),
            _ => None,
        }
    }

    /// tar's option letter for it.
    fn tar_option(self) -> &'static str {
        match self {
            Self::Gzip => "z",
            Self::Bzip2 => "j",
            Self::Xz => "J",
            Self::None => "",
        }
    }
}

/// The `./config` engine-backup writes for restore: the dump format and compressor of each
/// database it knows (its defaults: custom format, no compressor).
fn render_config(release: &EngineRelease) -> String {
    profile::config_databases(&release.version)
        .iter()
        .map(|db| format!("{db}_DUMP_COMPRESSOR=\n{db}_DUMP_FORMAT=custom\n"))
        .collect()
}

/// Writes an engine-backup archive to `archive`, using `work` as scratch; `mtime` fixes the
/// members' times so the same content gives the same bytes.
pub fn write(
    content: &BackupContent,
    archive: &Path,
    work: &Path,
    mtime: u64,
) -> anyhow::Result<()> {
    let staging = work.join("backup-tar");
    let files_root = work.join("backup-files");
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&files_root);
    std::fs::create_dir_all(staging.join("db"))?;
    tree::write_tree(content.files, &files_root)?;
    let fixed = |command: &mut Command| {
        command
            .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
            .arg(format!("--mtime=@{mtime}"));
    };
    let mut files = Command::new("tar");
    files
        .arg("-C")
        .arg(&files_root)
        .arg("-cpSJf")
        .arg(staging.join("files"));
    fixed(&mut files);
    files.arg("etc");
    run(&mut files).context("cannot pack ./files (tar -J)")?;
    std::fs::write(
        staging.join("db/engine_backup.db"),
        pgdump::engine_dump(content.db)?,
    )?;
    if content.dwh {
        std::fs::write(staging.join("db/dwh_backup.db"), pgdump::DWH_DUMP)?;
    }
    std::fs::write(
        staging.join("version"),
        format!("{}\n", content.release.version),
    )?;
    std::fs::write(
        staging.join("os_version"),
        format!("{}\n", content.release.os_version),
    )?;
    std::fs::write(staging.join("config"), render_config(content.release))?;
    let hasher = profile::checksum_file(&content.release.version);
    let sums = checksum_lines(hasher, &staging)?;
    std::fs::write(staging.join(hasher), sums)?;
    if let Some(parent) = archive.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut pack = Command::new("tar");
    pack.arg("-C")
        .arg(&staging)
        .arg(format!("-cpS{}f", content.compressor.tar_option()))
        .arg(archive);
    fixed(&mut pack);
    pack.arg(".");
    run(pack.env("GZIP", "-n")).context("cannot pack the engine-backup archive (tar)")?;
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&files_root);
    Ok(())
}

/// `<hasher>` lines for every file under `dir` (relative paths, `<checksum>  <path>`), made
/// by the real tool as engine-backup's createhash does.
pub fn checksum_lines(hasher: &str, dir: &Path) -> anyhow::Result<String> {
    let mut paths = Vec::new();
    collect_files(dir, dir, &mut paths)?;
    paths.sort();
    let output = run(Command::new(hasher).current_dir(dir).args(&paths))
        .with_context(|| format!("cannot run {hasher}"))?;
    Ok(String::from_utf8(output.stdout)?)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root)?.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
