//! engine-backup archives in the real layout (SPEC 9.3, original-tool.md section 7): a gzip
//! tar of `./version`, `./os_version`, `./config`, `./files` (xz tar of /etc/ovirt-engine),
//! `./db/engine_backup.db` (the engine database; the lab encodes it as JSON),
//! `./db/dwh_backup.db` and `./md5sum`, made with GNU tar as engine-backup does.

use crate::config::EngineRelease;
use crate::engine::db::EngineDb;
use crate::guest::{disk::run, tree};
use anyhow::Context as _;
use md5::{Digest, Md5};
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
}

/// The `./config` engine-backup writes for restore (shell variables it sources).
fn render_config(content: &BackupContent) -> String {
    format!(
        "SCOPE_FILES=1\nSCOPE_ENGINE_DB=1\nSCOPE_DWH_DB={}\nSCOPE_REPORTS_DB=\n\
         ENGINE_DB_USER=engine\nENGINE_DB_DATABASE=engine\nENGINE_DB_HOST=localhost\nENGINE_DB_PORT=5432\n\
         DWH_DB_USER={}\nDWH_DB_DATABASE={}\n\
         DB_DUMP_FORMAT=custom\nDB_DUMP_COMPRESSOR=\nFILES_COMPRESS_FORMAT=xz\nARCHIVE_COMPRESS_FORMAT=gzip\n",
        if content.dwh { "1" } else { "" },
        if content.dwh { "ovirt_engine_history" } else { "" },
        if content.dwh { "ovirt_engine_history" } else { "" },
    )
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
        serde_json::to_string_pretty(content.db)?,
    )?;
    if content.dwh {
        let dwh = serde_json::json!({
            "database": "ovirt_engine_history",
            "format": "custom",
            "engine_version": content.release.version,
            "samples": content.db.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
        });
        std::fs::write(
            staging.join("db/dwh_backup.db"),
            serde_json::to_string_pretty(&dwh)?,
        )?;
    }
    std::fs::write(
        staging.join("version"),
        format!("{}\n", content.release.version),
    )?;
    std::fs::write(
        staging.join("os_version"),
        format!("{}\n", content.release.os_version),
    )?;
    std::fs::write(staging.join("config"), render_config(content))?;
    std::fs::write(staging.join("md5sum"), md5sum_lines(&staging)?)?;
    if let Some(parent) = archive.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut pack = Command::new("tar");
    pack.arg("-C").arg(&staging).arg("-cpSzf").arg(archive);
    fixed(&mut pack);
    pack.arg(".");
    run(pack.env("GZIP", "-n")).context("cannot pack the engine-backup archive (tar -z)")?;
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&files_root);
    Ok(())
}

/// `md5sum` lines for every file under `dir` (relative paths, sorted, `<md5>  <path>`).
pub fn md5sum_lines(dir: &Path) -> anyhow::Result<String> {
    let mut paths = Vec::new();
    collect_files(dir, dir, &mut paths)?;
    paths.sort();
    let mut text = String::new();
    for relative in paths {
        let bytes = std::fs::read(dir.join(&relative))?;
        text.push_str(&format!(
            "{}  {relative}\n",
            hex::encode(Md5::digest(&bytes))
        ));
    }
    Ok(text)
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
