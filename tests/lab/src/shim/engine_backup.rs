//! `engine-backup --mode=backup` on the running engine VM (ovirt-engine
//! `packaging/bin/engine-backup.sh.in`, original-tool.md section 7): the real options, messages
//! and exit codes, and an archive of the engine's current state made by the lab's archive
//! builder (`crate::backup`). Restores happen only at first boot (`vm::engine_backup`).

use crate::backup::{self, ArchiveCompressor, BackupContent};
use crate::config::{EngineRelease, LabConfig};
use crate::engine::db::EngineDb;
use crate::guest::tree;
use crate::shim::ToolOutput;
use crate::state;
use std::path::{Path, PathBuf};

/// The start of engine-backup's usage text (printed on `--help` and on a bad option).
const USAGE: &str = "engine-backup: back up and restore ovirt-engine environment
USAGE:
    engine-backup [--mode=MODE] [--scope=SCOPE] [--file=FILE] [--log=FILE]
 MODE is one of the following:
    backup                          back up system into FILE
    restore                         restore system from FILE
 SCOPE is one of the following:
    all                             If MODE=backup: backup everything below.
                                    If MODE=restore: restore everything found in FILE.
    files                           product files only
    db                              Engine database only
    dwhdb                           Data Warehouse database only
    reportsdb                       Reports database only
 --file=FILE                        file to use during backup or restore
 --log=FILE                         log file to use during backup or restore
 --archive-compressor=COMPRESSOR
    Use COMPRESSOR to compress the backup file, can be one of:
    gzip
    bzip2
    xz
    None
";

/// The options of one run.
#[derive(Debug, Default)]
struct Options {
    mode: Option<String>,
    scopes: Vec<String>,
    file: Option<PathBuf>,
    log: Option<PathBuf>,
    compressor: ArchiveCompressor,
}

/// engine-backup's `die`: `FATAL: ...` on stderr, exit 1.
fn die(message: impl AsRef<str>) -> ToolOutput {
    ToolOutput::fail(1, format!("FATAL: {}\n", message.as_ref()))
}

/// Parses the arguments as `parseArgs` does; Err is what the tool prints and its exit code.
fn parse(args: &[String]) -> Result<Options, ToolOutput> {
    let mut options = Options::default();
    for arg in args {
        let (name, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        match name {
            "--mode" if ["backup", "restore"].contains(&value) => options.mode = Some(value.into()),
            "--mode" => return Err(die("invalid mode")),
            "--scope" if ["all", "files", "db", "dwhdb", "reportsdb"].contains(&value) => {
                options.scopes.push(value.into())
            }
            "--scope" => return Err(die(format!("invalid scope '{value}'"))),
            "--file" => options.file = Some(value.into()),
            "--log" => options.log = Some(value.into()),
            "--archive-compressor" => {
                options.compressor = ArchiveCompressor::parse(value)
                    .ok_or_else(|| die(format!("invalid compressor '{value}'")))?
            }
            "--fast-backup" | "--fast-restore" => options.compressor = ArchiveCompressor::Gzip,
            "--help" => return Err(ToolOutput::ok(USAGE)),
            _ => {
                return Err(ToolOutput {
                    stdout: USAGE.into(),
                    code: 1,
                    ..Default::default()
                })
            }
        }
    }
    if options.scopes.is_empty() {
        options.scopes.push("all".into());
    }
    // verifyArgs
    if options.mode.is_none() {
        return Err(die("--mode=<backup|restore> is missing"));
    }
    if options
        .file
        .as_deref()
        .is_none_or(|f| f.as_os_str().is_empty())
    {
        return Err(die("--file is missing"));
    }
    if options
        .log
        .as_deref()
        .is_none_or(|f| f.as_os_str().is_empty())
    {
        return Err(die("--log is missing"));
    }
    Ok(options)
}

/// Runs `engine-backup ARGS` on the engine VM.
pub fn run(config: &LabConfig, args: &[String]) -> ToolOutput {
    let options = match parse(args) {
        Ok(options) => options,
        Err(output) => return output,
    };
    let vm = state::vm(config);
    if options.mode.as_deref() == Some("restore") {
        return match vm.engine_running {
            true => die("Engine service is active - can not restore backup"),
            false => die("this engine VM restores a backup only at its first boot (cloud-init)"),
        };
    }
    if options.scopes.iter().any(|scope| scope != "all") {
        return die("the lab's engine-backup backs up --scope=all only");
    }
    let (file, log) = (
        options.file.clone().unwrap_or_default(),
        options.log.clone().unwrap_or_default(),
    );
    let release = vm.engine_version.as_deref().and_then(|version| {
        [&config.old_engine, &config.new_engine]
            .into_iter()
            .find(|release| release.version == version)
    });
    let mut out = format!(
        "Start of engine-backup with mode 'backup'\nscope: all\narchive file: {}\nlog file: {}\nBacking up:\n",
        file.display(),
        log.display()
    );
    let result = match (vm.status.as_str(), release) {
        ("Up", Some(release)) => back_up(config, release, &options, &file, &mut out),
        _ => Err("Database engine backup failed".to_string()),
    };
    let _ = append_log(&log, &out, result.as_ref().err());
    match result {
        Ok(()) => ToolOutput::ok(out + "Done.\n"),
        Err(message) => ToolOutput {
            stdout: out,
            ..die(message)
        },
    }
}

/// Writes the archive of the engine as it is now (database, files, DWH), mode 0600.
fn back_up(
    config: &LabConfig,
    release: &EngineRelease,
    options: &Options,
    file: &Path,
    out: &mut String,
) -> Result<(), String> {
    let db = EngineDb::load(config).map_err(|_| "Database engine backup failed".to_string())?;
    let files = tree::engine_config_files(config);
    out.push_str("- Files\n- Engine database 'engine'\n- DWH database 'ovirt_engine_history'\n");
    let content = BackupContent {
        release,
        db: &db,
        files: &files,
        dwh: true,
        compressor: options.compressor,
    };
    let work = config
        .state_dir()
        .join(format!("engine-backup.{}", std::process::id()));
    out.push_str(&format!("Packing into file '{}'\n", file.display()));
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let written = backup::write(&content, file, &work, now_s);
    let _ = std::fs::remove_dir_all(&work);
    written.map_err(|error| format!("Cannot create '{}': {error:#}", file.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| format!("Cannot create '{}': {error}", file.display()))
}

/// Appends the run's output (and its error) to the `--log` file.
fn append_log(log: &Path, out: &str, error: Option<&String>) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    file.write_all(out.as_bytes())?;
    if let Some(error) = error {
        writeln!(file, "FATAL: {error}")?;
    }
    Ok(())
}
