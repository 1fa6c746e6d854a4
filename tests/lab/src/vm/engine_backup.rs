//! `engine-backup --mode=restore` inside the guest, as the real script does it
//! (original-tool.md section 7): unpack with GNU tar, `<hasher> -c` with the first checksum
//! file the installed version knows, required members, the version rules, DWH provisioning,
//! then the files and the database (read from the dump with the real `pg_restore`).

use crate::guest::disk::run as run_tool;
use crate::guest::engine_state;
use crate::vm::GuestSession;
use crate::{pgdump, profile};
use std::path::Path;
use std::process::Command;

/// Members engine-backup requires in every archive, besides its checksum file.
const REQUIRED_MEMBERS: &[&str] = &["version", "config", "files", "db/engine_backup.db"];

/// The restore options that matter.
#[derive(Debug, Default)]
struct Options {
    mode: Option<String>,
    file: Option<String>,
    provision_db: bool,
    provision_dwh_db: bool,
}

/// Runs `engine-backup ARGS` in the guest; returns its exit status.
pub fn run(
    session: &GuestSession,
    args: &[String],
    out: &mut dyn FnMut(&str),
    err: &mut dyn FnMut(&str),
) -> i32 {
    let mut options = Options::default();
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        match name {
            "--mode" => options.mode = value,
            "--file" => options.file = value,
            "--provision-db" => options.provision_db = true,
            "--provision-dwh-db" => options.provision_dwh_db = true,
            "--log"
            | "--restore-permissions"
            | "--provision-reports-db"
            | "--change-db-credentials" => {}
            _ if name.starts_with("--") => {}
            _ => {
                err(&format!("FATAL: Invalid option '{arg}'"));
                return 1;
            }
        }
    }
    if options.mode.as_deref() != Some("restore") {
        err("FATAL: --mode=restore is the only mode this appliance runs at first boot");
        return 1;
    }
    let Some(file) = options.file.clone() else {
        err("FATAL: --file is missing");
        return 1;
    };
    match restore(session, &options, &file, out) {
        Ok(()) => 0,
        Err(message) => {
            err(&format!("FATAL: {message}"));
            1
        }
    }
}

/// The restore proper; the error is engine-backup's FATAL message.
fn restore(
    session: &GuestSession,
    options: &Options,
    file: &str,
    out: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let work = tempdir().map_err(|e| format!("cannot create temporary directory: {e}"))?;
    let result = restore_in(session, options, file, out, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn restore_in(
    session: &GuestSession,
    options: &Options,
    file: &str,
    out: &mut dyn FnMut(&str),
    work: &Path,
) -> Result<(), String> {
    out("Preparing to restore:");
    let archive = work.join("archive");
    let found = session
        .disk
        .dump(file, &archive)
        .map_err(|e| format!("Backup file '{file}' cannot be read: {e}"))?;
    if !found {
        return Err(format!("Backup file '{file}' not found"));
    }
    out(&format!("- Unpacking file '{file}'"));
    let unpacked = work.join("tar");
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    run_tool(
        Command::new("tar")
            .arg("-C")
            .arg(&unpacked)
            .arg("-pSsxf")
            .arg(&archive),
    )
    .map_err(|e| format!("Failed to unpack '{file}': {e}"))?;
    let installed = engine_state::installed(&session.disk)
        .map_err(|e| e.to_string())?
        .ok_or("engine is not installed on this machine")?;
    // verifyhash: the first checksum file of AVAILABLE_HASHERS found; 4.0 knows only md5sum.
    let hasher = profile::restore_checksum_files(&installed.version)
        .iter()
        .find(|hasher| unpacked.join(hasher).is_file())
        .ok_or("No supported hash file found")?;
    run_tool(
        Command::new(hasher)
            .current_dir(&unpacked)
            .args(["-c", hasher, "--status"]),
    )
    .map_err(|_| "Checksum verification failed".to_string())?;
    for member in REQUIRED_MEMBERS {
        if !unpacked.join(member).is_file() {
            return Err(format!(
                "Invalid backup file '{file}': './{member}' is missing"
            ));
        }
    }
    let backup_version = read_trimmed(&unpacked.join("version"));
    if let Some(refusal) = profile::restore_refusal(&backup_version, &installed.version) {
        return Err(refusal);
    }
    let files = unpacked.join("files");
    let listing = run_tool(Command::new("tar").arg("-tf").arg(&files))
        .map_err(|e| format!("Files archive './files' cannot be read: {e}"))?;
    let dwh = unpacked.join("db/dwh_backup.db").is_file();
    if dwh && !options.provision_dwh_db {
        return Err(
            "Can't connect to database 'ovirt_engine_history'. Please see '/usr/bin/engine-backup --help'."
                .into(),
        );
    }
    if !options.provision_db {
        // Without provisioning, the appliance has no engine database to restore into.
        return Err(
            "Can't connect to database 'engine'. Please see '/usr/bin/engine-backup --help'."
                .into(),
        );
    }
    let dump = pgdump::read_engine_state(&unpacked.join("db/engine_backup.db"))
        .map_err(|e| format!("Errors while restoring database engine: {e}"))?;
    if dwh {
        pgdump::check_dump(&unpacked.join("db/dwh_backup.db"))
            .map_err(|e| format!("Errors while restoring database ovirt_engine_history: {e}"))?;
    }
    out("Restoring:");
    out("- Files");
    restore_files(
        session,
        &files,
        &String::from_utf8_lossy(&listing.stdout),
        work,
    )?;
    if options.provision_db {
        out("Provisioning PostgreSQL users/databases:");
        out("- user 'engine', database 'engine'");
        if dwh {
            out("- user 'ovirt_engine_history', database 'ovirt_engine_history'");
        }
    }
    out("Restoring:");
    out("- Engine database 'engine'");
    session.pause(150);
    if session.config.fault("restore_fail") {
        return Err("Errors while restoring database engine".into());
    }
    out("  - Cleaning up temporary tables in engine database 'engine'");
    out("  - Resetting DwhCurrentlyRunning in dwh_history_timekeeping in engine database");
    out("------------------------------------------------------------------------------");
    out("Please note:");
    out("");
    out("The engine database was backed up at a time before this restore.");
    out("");
    out("Objects that were added, removed or changed after this date, such as virtual");
    out("machines, disks, etc., are missing in the engine, and will probably require");
    out("recovery or recreation.");
    out("------------------------------------------------------------------------------");
    if dwh {
        out("- DWH database 'ovirt_engine_history'");
    }
    engine_state::write_db(&session.disk, &dump)
        .map_err(|e| format!("Errors while restoring database engine: {e}"))?;
    out("You should now run engine-setup.");
    out("Done.");
    Ok(())
}

/// Extracts `./files` and writes each file into the guest.
fn restore_files(
    session: &GuestSession,
    files: &Path,
    listing: &str,
    work: &Path,
) -> Result<(), String> {
    let root = work.join("files");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    run_tool(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-xf")
            .arg(files),
    )
    .map_err(|e| format!("Failed to restore files: {e}"))?;
    for member in listing.lines().filter(|m| !m.ends_with('/')) {
        let relative = member.trim_start_matches("./");
        let host = root.join(relative);
        if !host.is_file() {
            continue;
        }
        let content = std::fs::read(&host).map_err(|e| e.to_string())?;
        session
            .disk
            .write(&format!("/{relative}"), &content, 0o644)
            .map_err(|e| format!("Failed to restore files: {e}"))?;
    }
    Ok(())
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A fresh temporary directory.
pub fn tempdir() -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "he-lab-vm-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
