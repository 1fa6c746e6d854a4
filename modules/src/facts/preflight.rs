//! Preflight (SPEC 6.6): before the engine VM is stopped, every tool of the downtime is there
//! and works, the storage domain can be reached as its owner, the new image fits the engine
//! disk (or the storage domain has room to extend it), and qemu can reach the cloud-init ISO.
//! Each check names what is missing and where it was looked for; all run, none changes
//! anything, so check mode runs them as they are.

use crate::host::command;
use crate::image::target::extend_size_bytes;
use crate::privilege::{Access, Identity};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One check's outcome: what was found, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was checked (`qemu-img`, `guestfish launch`, `engine disk access`, ...).
    pub name: String,
    /// True when it passed.
    pub ok: bool,
    /// What was found (path, version, seconds) or what is wrong and where it was looked for.
    pub detail: String,
}

impl Check {
    fn passed(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    fn failed(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// A program that is on none of the directories of PATH.
#[derive(Debug, thiserror::Error)]
#[error("{program} is not installed: not found on PATH ({})", searched_text(.searched))]
pub struct NotOnPath {
    /// The program looked for.
    pub program: String,
    /// The directories searched, in PATH order.
    pub searched: Vec<PathBuf>,
}

fn searched_text(searched: &[PathBuf]) -> String {
    match searched.is_empty() {
        true => "PATH is empty".to_string(),
        false => (searched.iter())
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// `program` found in the directories of `path_variable` (PATH), or an error naming them.
pub fn find_on_path(program: &str, path_variable: Option<OsString>) -> Result<PathBuf, NotOnPath> {
    let directories: Vec<PathBuf> = path_variable
        .as_ref()
        .map(|value| std::env::split_paths(value).collect())
        .unwrap_or_default();
    directories
        .iter()
        .map(|directory| directory.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| NotOnPath {
            program: program.to_string(),
            searched: directories.clone(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A tool on PATH that runs (`args` print its version) as `access`.
pub fn tool(name: &str, program: &str, args: &[&str], access: &Access) -> Check {
    let path = match find_on_path(program, std::env::var_os("PATH")) {
        Ok(path) => path,
        Err(missing) => return Check::failed(name, missing.to_string()),
    };
    match command::run_as(access, program, args) {
        Ok(output) => {
            let text = format!("{}{}", output.stdout, output.stderr);
            let version = text.lines().next().unwrap_or("").trim().to_string();
            Check::passed(name, format!("{} ({version})", path.display()))
        }
        Err(error) => Check::failed(
            name,
            format!(
                "{} does not run {}: {error}",
                path.display(),
                access.describe()
            ),
        ),
    }
}

/// The first ISO writer on PATH (xorriso, else genisoimage), run for its version.
pub fn iso_tool() -> Check {
    let name = "ISO tool";
    let found = ["xorriso", "genisoimage"]
        .into_iter()
        .find(|program| find_on_path(program, std::env::var_os("PATH")).is_ok());
    match found {
        Some(program) => tool(name, program, &["-version"], &Access::Own),
        None => Check::failed(
            name,
            format!(
                "neither xorriso nor genisoimage is installed: {}",
                find_on_path("xorriso", std::env::var_os("PATH")).unwrap_err()
            ),
        ),
    }
}

/// Launches the libguestfs appliance as `access` (direct backend unless LIBGUESTFS_BACKEND
/// says otherwise), as he_inject_backup will, on an empty disk; returns how long it took.
pub fn guestfish_launch(access: &Access) -> (Check, Option<f64>) {
    let name = "guestfish launch";
    let path = match find_on_path("guestfish", std::env::var_os("PATH")) {
        Ok(path) => path,
        Err(missing) => return (Check::failed(name, missing.to_string()), None),
    };
    let started = Instant::now();
    let mut command = access.command("guestfish");
    command.args(["--ro", "-a", "/dev/null", "run"]);
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        command.env("LIBGUESTFS_BACKEND", "direct");
    }
    let result = command.stdin(std::process::Stdio::null()).output();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(output) if output.status.success() => (
            Check::passed(
                name,
                format!(
                    "{} launched its appliance {} in {seconds:.1} s",
                    path.display(),
                    access.describe()
                ),
            ),
            Some(seconds),
        ),
        Ok(output) => (
            Check::failed(
                name,
                format!(
                    "`{} --ro -a /dev/null run` {} failed with {}: {} (run libguestfs-test-tool to diagnose)",
                    path.display(),
                    access.describe(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ),
            Some(seconds),
        ),
        Err(error) => (
            Check::failed(name, format!("cannot run {}: {error}", path.display())),
            None,
        ),
    }
}

/// The engine disk volume opens for reading and writing as `access` (nothing is written).
pub fn volume_access(name: &str, path: &Path, access: &Access) -> Check {
    let options = std::fs::OpenOptions::new().read(true).write(true).clone();
    match access.open(path, &options) {
        Ok(_) => Check::passed(
            name,
            format!("{} opens {}", path.display(), access.describe()),
        ),
        Err(error) => Check::failed(
            name,
            format!(
                "{} does not open for reading and writing {}: {error}",
                path.display(),
                access.describe()
            ),
        ),
    }
}

/// qemu can reach `iso` (every existing directory on the way lets it through; a missing
/// parent will be created for it by he_cloudinit, but its own parent must exist).
pub fn iso_reachable(iso: &Path, qemu: &Identity) -> Check {
    let name = "cloud-init ISO directory";
    match std::fs::metadata(iso) {
        Ok(metadata) if !metadata.is_file() => {
            let problem = "exists and is not a regular file";
            return Check::failed(
                name,
                format!("option 'cloudinit_iso': {} {problem}", iso.display()),
            );
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Check::failed(
                name,
                format!(
                    "option 'cloudinit_iso': {} cannot be inspected: {e}",
                    iso.display()
                ),
            );
        }
        _ => {}
    }
    let parent = iso.parent().unwrap_or(Path::new("/"));
    let probe = match parent.exists() {
        true => iso.to_path_buf(),
        false => parent.to_path_buf(),
    };
    if !probe.parent().is_some_and(Path::exists) {
        return Check::failed(
            name,
            format!(
                "{} does not exist",
                parent.parent().unwrap_or(parent).display()
            ),
        );
    }
    match qemu.blocked_on_the_way_to(&probe) {
        Ok(None) => Check::passed(
            name,
            format!("qemu ({}) can reach {}", qemu.describe(), iso.display()),
        ),
        Ok(Some(directory)) => Check::failed(
            name,
            format!(
                "qemu ({}) cannot enter {} on the way to {}",
                qemu.describe(),
                directory.display(),
                iso.display()
            ),
        ),
        Err(error) => Check::failed(name, format!("cannot inspect {}: {error}", iso.display())),
    }
}

/// The space side of the plan: the new image against the engine disk, and the storage
/// domain's room for the extension (and for a backup disk still to be created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpacePlan {
    /// Virtual size of the new engine image.
    pub image_bytes: u64,
    /// The engine disk's capacity now.
    pub engine_disk_bytes: u64,
    /// Size the engine disk is extended to, when it must be.
    pub extend_to_bytes: Option<u64>,
    /// Bytes the storage domain must still give: the extension plus the reserve.
    pub needed_bytes: u64,
    /// The storage domain's free bytes, when known.
    pub free_bytes: Option<u64>,
}

/// Why the new image does not fit: the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    /// The engine disk is too small and the task forbids extending it.
    #[error("the new image ({image_bytes} bytes) does not fit the engine disk ({engine_disk_bytes} bytes) and extending it is not allowed")]
    ExtendNotAllowed {
        image_bytes: u64,
        engine_disk_bytes: u64,
    },
    /// The storage domain lacks room for the extension and the backup disk.
    #[error("the storage domain has {free_bytes} bytes free but the upgrade needs {needed_bytes} (engine disk extension {} + backup disk {reserve_bytes}): extend the storage domain by {} bytes", .needed_bytes - .reserve_bytes, .needed_bytes - .free_bytes)]
    DomainTooSmall {
        free_bytes: u64,
        needed_bytes: u64,
        reserve_bytes: u64,
    },
}

/// Decides the space side; `Err` says what does not fit and what to do.
pub fn plan_space(
    image_bytes: u64,
    engine_disk_bytes: u64,
    extend: bool,
    free_bytes: Option<u64>,
    reserve_bytes: u64,
) -> Result<SpacePlan, SpaceError> {
    let extend_to_bytes = (image_bytes > engine_disk_bytes).then(|| extend_size_bytes(image_bytes));
    if extend_to_bytes.is_some() && !extend {
        return Err(SpaceError::ExtendNotAllowed {
            image_bytes,
            engine_disk_bytes,
        });
    }
    let needed_bytes = extend_to_bytes.map_or(0, |to| to - engine_disk_bytes) + reserve_bytes;
    if let Some(free) = free_bytes {
        if needed_bytes > free {
            return Err(SpaceError::DomainTooSmall {
                free_bytes: free,
                needed_bytes,
                reserve_bytes,
            });
        }
    }
    Ok(SpacePlan {
        image_bytes,
        engine_disk_bytes,
        extend_to_bytes,
        needed_bytes,
        free_bytes,
    })
}

/// The failure message of failed checks, one line each; `None` when all passed.
pub fn failures(checks: &[Check]) -> Option<String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    (!failed.is_empty()).then(|| {
        format!(
            "preflight failed, nothing was stopped or changed:\n{}",
            failed.join("\n")
        )
    })
}

/// Writes each check's verdict to the run log.
pub fn log(checks: &[Check]) {
    for check in checks {
        let verdict = if check.ok { "ok" } else { "FAILED" };
        tracing::info!("{}: {verdict} ({})", check.name, check.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// (image, engine disk, extend, free, reserve) and what comes out: Ok((extend to, needed))
    /// or Err(a part of the message).
    type SpaceCase = (
        u64,
        u64,
        bool,
        Option<u64>,
        u64,
        Result<(Option<u64>, u64), &'static str>,
    );

    #[test]
    fn space_is_planned_as_a_table() {
        let cases: &[SpaceCase] = &[
            (GIB, 2 * GIB, false, None, 0, Ok((None, 0))),
            (GIB + 1, GIB, true, Some(GIB), 0, Ok((Some(2 * GIB), GIB))),
            (
                GIB + 1,
                GIB,
                false,
                Some(10 * GIB),
                0,
                Err("extending it is not allowed"),
            ),
            (
                GIB + 1,
                GIB,
                true,
                Some(GIB - 1),
                0,
                Err("extend the storage domain by 1 bytes"),
            ),
            (GIB, GIB, true, Some(GIB), GIB, Ok((None, GIB))),
            (GIB, GIB, true, Some(GIB), GIB + 5, Err("backup disk")),
        ];
        for (image, disk, extend, free, reserve, expected) in cases {
            let planned = plan_space(*image, *disk, *extend, *free, *reserve);
            match (planned, expected) {
                (Ok(plan), Ok((to, needed))) => {
                    assert_eq!((plan.extend_to_bytes, plan.needed_bytes), (*to, *needed))
                }
                (Err(error), Err(part)) => {
                    let message = error.to_string();
                    assert!(message.contains(part), "{message}")
                }
                (other, _) => panic!("{image} {disk} {extend} {free:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_tool_names_the_directories_searched() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([dir.path(), Path::new("/nonexistent")]).unwrap();
        let missing = find_on_path("guestfish", Some(path))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("guestfish is not installed"), "{missing}");
        assert!(
            missing.contains(&format!("{}:/nonexistent", dir.path().display())),
            "{missing}"
        );
        assert!(find_on_path("sh", std::env::var_os("PATH")).is_ok());
    }

    #[test]
    fn failures_list_every_failed_check() {
        let checks = [
            Check::passed("qemu-img", "/usr/bin/qemu-img"),
            Check::failed("guestfish launch", "no appliance"),
            Check::failed("ISO tool", "missing"),
        ];
        let message = failures(&checks).unwrap();
        assert!(message.ends_with("guestfish launch: no appliance\nISO tool: missing"));
        assert_eq!(failures(&checks[..1]), None);
    }

    /// A cloud-init ISO path that is a directory or a looping link is named; a missing one in
    /// an existing directory is fine (he_cloudinit writes it).
    #[test]
    fn a_cloudinit_iso_of_the_wrong_type_or_looping_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (looping, other) = (dir.path().join("loop"), dir.path().join("loop.other"));
        std::os::unix::fs::symlink(&other, &looping).unwrap();
        std::os::unix::fs::symlink(&looping, &other).unwrap();
        let me = Identity {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            groups: Vec::new(),
        };
        for (iso, problem) in [
            (dir.path().to_path_buf(), "exists and is not a regular file"),
            (
                looping,
                "cannot be inspected: Too many levels of symbolic links",
            ),
        ] {
            let check = iso_reachable(&iso, &me);
            assert!(!check.ok);
            let expected = format!("option 'cloudinit_iso': {} {problem}", iso.display());
            assert!(check.detail.starts_with(&expected), "{}", check.detail);
        }
        assert!(iso_reachable(&dir.path().join("seed.iso"), &me).ok);
        let missing = dir.path().join("missing").join("deeper").join("seed.iso");
        assert!(!iso_reachable(&missing, &me).ok);
    }
}
