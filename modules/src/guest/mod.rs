//! Files into a guest disk with guestfish: the root filesystem is found by inspection
//! (`-i`: whole-disk filesystems, partitions, LVM), the commands go in on stdin, and what
//! was written is read back as a SHA-256.
//!
//! guestfish runs as the disk's owner (vdsm:kvm when run as root: SPEC 9.7, NFS root_squash)
//! with the direct backend, as the original did, unless LIBGUESTFS_BACKEND says otherwise
//! (LIBGUESTFS_* is inherited). The file to upload is opened by this process and streamed to
//! guestfish through a pipe that the disk's owner may open: that user need not read it.

use crate::ansible::progress::Reporter;
use crate::privilege::Access;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const PREVIOUS: &str = "he-previous-checksum";
const WRITTEN: &str = "he-written-checksum";

/// One file to place into a guest disk.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The disk image (a file or a prepared volume path).
    pub disk: PathBuf,
    /// The disk's format, given so guestfish never probes it.
    pub disk_format: DiskFormat,
    /// The host file to upload.
    pub source: PathBuf,
    /// Absolute path inside the guest.
    pub dest: String,
    /// Who runs guestfish (the disk's owner).
    pub access: Access,
}

/// The format of a guest disk (`disk_format` option).
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// A raw image (file or block volume).
    #[default]
    Raw,
    /// A qcow2 image.
    Qcow2,
}

impl DiskFormat {
    /// The name guestfish's `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// What guestfish found and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// SHA-256 of the file at `dest` before the upload, if there was one.
    pub previous_sha256: Option<String>,
    /// SHA-256 of `dest` read back after the upload.
    pub sha256: String,
}

impl Uploaded {
    /// Fails unless what was read back of `upload` has the SHA-256 `expected`.
    pub fn check(&self, upload: &Upload, expected: &str) -> Result<(), GuestError> {
        if self.sha256 == expected {
            return Ok(());
        }
        Err(GuestError::Corrupt {
            dest: upload.dest.clone(),
            disk: upload.disk.clone(),
            read_back: self.sha256.clone(),
            expected: expected.to_string(),
        })
    }
}

/// A guestfish problem.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A path that cannot be given to guestfish safely.
    #[error("{what} {path:?} cannot be used: {reason}")]
    BadPath {
        /// Which path (`dest`, `backup`, `disk`).
        what: &'static str,
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// guestfish could not start.
    #[error("cannot run guestfish: {0} (is libguestfs installed and on PATH?)")]
    NotRunnable(std::io::Error),
    /// The file to upload could not be opened or streamed.
    #[error("cannot stream {path} to guestfish: {source}")]
    Source {
        /// The host file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// guestfish ran and failed.
    #[error("guestfish on {disk} failed with exit code {code}: {stderr}")]
    Failed {
        /// The disk.
        disk: PathBuf,
        /// Exit code.
        code: i32,
        /// What it printed on stderr.
        stderr: String,
    },
    /// What was read back is not what was meant to be uploaded.
    #[error("read-back checksum of {dest} in {disk} is {read_back}, the validated backup's is {expected}: the upload is corrupt, run the task again")]
    Corrupt {
        /// The guest path.
        dest: String,
        /// The disk.
        disk: PathBuf,
        /// SHA-256 read back.
        read_back: String,
        /// SHA-256 of the source.
        expected: String,
    },
    /// guestfish succeeded but did not print the read-back checksum.
    #[error("guestfish printed no read-back checksum of {dest}: {stdout:?}")]
    NoChecksum {
        /// The guest path.
        dest: String,
        /// What it printed.
        stdout: String,
    },
}

/// The guestfish script: checksum before, upload from `source` (a local path as guestfish
/// reads it), mode 0600, checksum after.
pub fn script(upload: &Upload, source: &str) -> Result<String, GuestError> {
    let dest = guest_path(&upload.dest)?;
    let source = quoted("backup", source)?;
    let parent = match dest.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    };
    Ok(format!(
        "echo {PREVIOUS}\n-checksum sha256 \"{dest}\"\nmkdir-p \"{parent}\"\n\
         upload {source} \"{dest}\"\nchmod 0600 \"{dest}\"\necho {WRITTEN}\n\
         checksum sha256 \"{dest}\"\n"
    ))
}

/// Checks what [`upload`] would give guestfish (check mode): the guest path and the disk.
pub fn check(upload: &Upload) -> Result<(), GuestError> {
    guest_path(&upload.dest)?;
    quoted("disk", &upload.disk.to_string_lossy()).map(|_| ())
}

/// Writes the script to guestfish's stdin. A guestfish that exited before reading it is not
/// an error here: its exit status and stderr, read next, say why it stopped.
fn feed_script(stdin: &mut impl Write, script: &str) -> Result<(), GuestError> {
    match stdin.write_all(script.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            tracing::warn!("guestfish did not read its script: {error}");
            Ok(())
        }
        other => other.map_err(GuestError::NotRunnable),
    }
}

/// Uploads `upload.source` to `upload.dest` in the guest's root filesystem.
pub fn upload(upload: &Upload, progress: &Reporter) -> Result<Uploaded, GuestError> {
    let source_error = |source| GuestError::Source {
        path: upload.source.clone(),
        source,
    };
    let mut backup = std::fs::File::open(&upload.source).map_err(source_error)?;
    let (reader, writer) = readable_pipe(&upload.access).map_err(source_error)?;
    let fd = reader.as_raw_fd();
    let script = script(upload, &format!("/dev/fd/{fd}"))?;
    let disk = quoted("disk", &upload.disk.to_string_lossy())?;
    let format = format!("--format={}", upload.disk_format.name());
    let mut command = upload.access.command("guestfish");
    command
        .args(["--rw", &format, "-a"])
        .arg(&upload.disk)
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        command.env("LIBGUESTFS_BACKEND", "direct");
    }
    // SAFETY: one fcntl on an inherited descriptor: it stays open across exec.
    unsafe {
        command.pre_exec(move || match libc::fcntl(fd, libc::F_SETFD, 0) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    tracing::info!(
        "guestfish --rw {format} -a {disk} -i {}, script:\n{script}",
        upload.access.describe()
    );
    progress.report(&format!(
        "guestfish: uploading {} to {} in the engine disk and reading it back",
        upload.source.display(),
        upload.dest
    ));
    let mut child = command.spawn().map_err(GuestError::NotRunnable)?;
    drop(reader);
    let output = std::thread::scope(|scope| {
        let streaming = scope.spawn(move || {
            let mut writer = std::fs::File::from(writer);
            std::io::copy(&mut backup, &mut writer)
        });
        let fed = match child.stdin.take() {
            Some(mut stdin) => feed_script(&mut stdin, &script),
            None => Ok(()),
        };
        let output = child.wait_with_output().map_err(GuestError::NotRunnable);
        fed?;
        match streaming.join() {
            Ok(Err(error)) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                tracing::warn!("streaming {} stopped: {error}", upload.source.display());
            }
            _ => {}
        }
        output
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    tracing::info!(
        "guestfish exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    if !output.status.success() {
        return Err(GuestError::Failed {
            disk: upload.disk.clone(),
            code: output.status.code().unwrap_or(-1),
            stderr: stderr.trim().to_string(),
        });
    }
    parse_checksums(&stdout).ok_or(GuestError::NoChecksum {
        dest: upload.dest.clone(),
        stdout,
    })
}

/// A pipe whose reading end `access` may open again as `/dev/fd/N` (guestfish does): the
/// kernel checks a pipe's owner like a file's, so it is given to that identity.
fn readable_pipe(access: &Access) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    if let Some(identity) = access.identity() {
        // SAFETY: fchown on a descriptor this function owns.
        if unsafe { libc::fchown(reader.as_raw_fd(), identity.uid, identity.gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((reader, writer))
}

fn parse_checksums(stdout: &str) -> Option<Uploaded> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let after = |marker: &str| {
        let index = lines.iter().position(|l| *l == marker)?;
        lines
            .get(index + 1)
            .filter(|l| is_sha256(l))
            .map(|l| l.to_string())
    };
    Some(Uploaded {
        previous_sha256: after(PREVIOUS),
        sha256: after(WRITTEN)?,
    })
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An absolute guest path without `..`, quotes or control characters.
fn guest_path(path: &str) -> Result<&str, GuestError> {
    let bad = |reason| GuestError::BadPath {
        what: "dest",
        path: path.to_string(),
        reason,
    };
    if !path.starts_with('/') || path.ends_with('/') {
        return Err(bad("it must be an absolute file path inside the guest"));
    }
    if path.split('/').any(|part| part == ".." || part == ".") {
        return Err(bad("it must not contain `.` or `..` components"));
    }
    quoted("dest", path).map(|_| path)
}

/// A path in guestfish double quotes; refused when it holds quotes, backslashes or controls.
fn quoted(what: &'static str, path: &str) -> Result<String, GuestError> {
    if path
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(GuestError::BadPath {
            what,
            path: path.to_string(),
            reason: "quotes, backslashes and control characters are not supported",
        });
    }
    Ok(format!("\"{path}\""))
}

/// Whether `path` is a disk image file or block device (clear errors before guestfish starts).
pub fn check_disk(path: &Path) -> Result<(), GuestError> {
    use std::os::unix::fs::FileTypeExt;
    let reason = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() || metadata.file_type().is_block_device() => {
            return Ok(())
        }
        Ok(_) => "it is a directory or a special file, not a disk image",
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => "no such disk image",
        Err(_) => "it cannot be read (a looping link or no permission)",
    };
    Err(GuestError::BadPath {
        what: "disk",
        path: path.display().to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guestfish_gone_before_its_script_is_left_to_its_exit_status() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        drop(reader);
        feed_script(&mut writer, "run\n").unwrap();
    }

    fn upload_to(dest: &str) -> Upload {
        Upload {
            disk: "/d.img".into(),
            disk_format: DiskFormat::Raw,
            source: "/var/tmp/engine backup.tar.gz".into(),
            dest: dest.into(),
            access: Access::Own,
        }
    }

    #[test]
    fn script_uploads_then_reads_back() {
        let text = script(
            &upload_to("/root/engine_backup.tar.gz"),
            "/var/tmp/engine backup.tar.gz",
        )
        .unwrap();
        assert!(
            text.contains("-checksum sha256 \"/root/engine_backup.tar.gz\"\n"),
            "{text}"
        );
        assert!(text.contains("mkdir-p \"/root\"\n"), "{text}");
        assert!(text
            .contains("upload \"/var/tmp/engine backup.tar.gz\" \"/root/engine_backup.tar.gz\"\n"));
        assert!(text.ends_with("chmod 0600 \"/root/engine_backup.tar.gz\"\necho he-written-checksum\nchecksum sha256 \"/root/engine_backup.tar.gz\"\n"));
        assert!(script(&upload_to("/x"), "/dev/fd/5")
            .unwrap()
            .contains("mkdir-p \"/\"\n"));
    }

    #[test]
    fn refuses_unsafe_guest_paths() {
        for dest in [
            "root/x",
            "/root/",
            "/root/../etc/x",
            "/root/a\"b",
            "/root/a\nb",
        ] {
            assert!(script(&upload_to(dest), "/dev/fd/5").is_err(), "{dest:?}");
        }
    }

    #[test]
    fn parses_recorded_guestfish_output() {
        let sum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let fresh = format!("{PREVIOUS}\n{WRITTEN}\n{sum}\n");
        assert_eq!(
            parse_checksums(&fresh),
            Some(Uploaded {
                previous_sha256: None,
                sha256: sum.into()
            })
        );
        let again = format!("{PREVIOUS}\n{sum}\n{WRITTEN}\n{sum}\n");
        assert_eq!(
            parse_checksums(&again).unwrap().previous_sha256.as_deref(),
            Some(sum)
        );
        assert_eq!(parse_checksums(&format!("{PREVIOUS}\n{WRITTEN}\n")), None);
    }
}
