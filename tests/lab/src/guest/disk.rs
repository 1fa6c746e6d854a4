//! A guest disk image (raw, MBR, ext4 root on partition 1): built with sfdisk + `mke2fs -d`,
//! read and written with debugfs at the partition's offset.

use anyhow::Context as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where partition 1 starts in images the lab builds (1 MiB, as real appliances).
pub const PARTITION_OFFSET_BYTES: u64 = 1 << 20;

/// Builds a raw disk of `size_bytes` at `image`: one MBR partition from 1 MiB to the end, an
/// ext4 filesystem with the contents of `tree_dir`. `fs_uuid` and `fake_time` make it
/// reproducible (same inputs, same bytes).
pub fn build_image(
    tree_dir: &Path,
    image: &Path,
    size_bytes: u64,
    fs_uuid: &str,
    fake_time: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        size_bytes >= 8 << 20,
        "disk size {size_bytes} is too small: at least 8 MiB is needed for an ext4 root"
    );
    if image.exists() {
        std::fs::remove_file(image)
            .with_context(|| format!("cannot replace {}", image.display()))?;
    }
    std::fs::File::create(image)
        .and_then(|file| file.set_len(size_bytes))
        .with_context(|| format!("cannot create disk image {}", image.display()))?;
    run_with_input(
        Command::new("sfdisk").arg("-q").arg(image),
        "label: dos\nlabel-id: 0x4c616231\nstart=2048, type=83, bootable\n",
    )
    .context("cannot partition the disk (sfdisk)")?;
    let fs_kib = (size_bytes - PARTITION_OFFSET_BYTES) / 1024;
    run(Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", fake_time.to_string())
        .args(["-q", "-F", "-t", "ext4", "-L", "root", "-U", fs_uuid, "-E"])
        .arg(format!(
            "offset={PARTITION_OFFSET_BYTES},hash_seed={fs_uuid},root_owner=0:0"
        ))
        .arg("-d")
        .arg(tree_dir)
        .arg(image)
        .arg(format!("{fs_kib}k")))
    .context("cannot make the ext4 root filesystem (mke2fs -d)")?;
    fix_times(tree_dir, image, fake_time).context("cannot set the guest file times (debugfs)")?;
    Ok(())
}

/// Gives every inode of the new filesystem the same atime/mtime/ctime (mke2fs -d copies the
/// host's, which differ from run to run), so the image depends only on its inputs.
fn fix_times(tree_dir: &Path, image: &Path, fake_time: u64) -> anyhow::Result<()> {
    let mut paths = vec!["/".to_string(), "/lost+found".to_string()];
    let mut pending = vec![tree_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            paths.push(format!("/{}", path.strip_prefix(tree_dir)?.display()));
        }
    }
    paths.sort();
    let mut commands = String::new();
    for path in &paths {
        for field in ["atime", "mtime", "ctime"] {
            commands.push_str(&format!("sif \"{path}\" {field} @{fake_time}\n"));
        }
    }
    run_with_input(
        Command::new("debugfs")
            .env("E2FSPROGS_FAKE_TIME", fake_time.to_string())
            .arg("-w")
            .arg("-f")
            .arg("-")
            .arg(format!(
                "{}?offset={PARTITION_OFFSET_BYTES}",
                image.display()
            )),
        &commands,
    )?;
    Ok(())
}

/// The root filesystem of a guest disk image, accessed with debugfs.
#[derive(Debug, Clone)]
pub struct GuestDisk {
    image: PathBuf,
    offset_bytes: u64,
}

impl GuestDisk {
    /// Opens the raw image `image`, locating partition 1 from its MBR.
    pub fn open(image: &Path) -> anyhow::Result<GuestDisk> {
        let mut file = std::fs::File::open(image)
            .with_context(|| format!("cannot open guest disk {}", image.display()))?;
        let mut mbr = [0u8; 512];
        file.read_exact(&mut mbr)
            .with_context(|| format!("guest disk {} has no boot sector", image.display()))?;
        let offset_bytes = if mbr[510..512] == [0x55, 0xaa] {
            let start = u32::from_le_bytes([mbr[454], mbr[455], mbr[456], mbr[457]]);
            u64::from(start) * 512
        } else {
            0
        };
        let mut magic = [0u8; 2];
        file.seek(SeekFrom::Start(offset_bytes + 1024 + 56))?;
        file.read_exact(&mut magic).ok();
        anyhow::ensure!(
            magic == [0x53, 0xef],
            "no ext4 filesystem found on {} (partition 1 at byte {offset_bytes}): the disk does not boot",
            image.display()
        );
        Ok(GuestDisk {
            image: image.to_path_buf(),
            offset_bytes,
        })
    }

    /// The device argument debugfs understands for a filesystem at an offset.
    fn device(&self) -> String {
        format!("{}?offset={}", self.image.display(), self.offset_bytes)
    }

    /// Runs debugfs commands (read-only unless `write`); fails on any error line.
    fn debugfs(&self, commands: &[String], write: bool) -> anyhow::Result<Output> {
        let mut command = Command::new("debugfs");
        if write {
            command.arg("-w");
        }
        command.arg("-f").arg("-").arg(self.device());
        let output = run_with_input(&mut command, &(commands.join("\n") + "\n"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with("debugfs ") && !line.trim().is_empty())
            .collect();
        anyhow::ensure!(
            errors.is_empty(),
            "debugfs on {} failed: {}",
            self.image.display(),
            errors.join("; ")
        );
        Ok(output)
    }

    /// Whether `path` exists in the guest.
    pub fn exists(&self, path: &str) -> bool {
        self.debugfs(&[format!("stat \"{path}\"")], false).is_ok()
    }

    /// Reads guest file `path`; `None` when it does not exist.
    pub fn read(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.exists(path) {
            return Ok(None);
        }
        let scratch = scratch_path("read");
        self.debugfs(
            &[format!("dump \"{path}\" \"{}\"", scratch.display())],
            false,
        )?;
        let bytes = std::fs::read(&scratch)
            .with_context(|| format!("cannot read {path} dumped from the guest"))?;
        let _ = std::fs::remove_file(&scratch);
        Ok(Some(bytes))
    }

    /// Reads guest file `path` as text; `None` when it does not exist.
    pub fn read_text(&self, path: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .read(path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Copies guest file `path` to host file `dest`; false when it does not exist.
    pub fn dump(&self, path: &str, dest: &Path) -> anyhow::Result<bool> {
        if !self.exists(path) {
            return Ok(false);
        }
        self.debugfs(&[format!("dump \"{path}\" \"{}\"", dest.display())], false)?;
        Ok(true)
    }

    /// Writes `content` to guest file `path` (replacing it, creating parent directories).
    pub fn write(&self, path: &str, content: &[u8], mode: u32) -> anyhow::Result<()> {
        let scratch = scratch_path("write");
        std::fs::write(&scratch, content)?;
        let mut commands = Vec::new();
        let mut parent = String::new();
        let components: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for component in &components[..components.len().saturating_sub(1)] {
            parent = format!("{parent}/{component}");
            if !self.exists(&parent) {
                commands.push(format!("mkdir \"{parent}\""));
            }
        }
        if self.exists(path) {
            commands.push(format!("rm \"{path}\""));
        }
        commands.push(format!("write \"{}\" \"{path}\"", scratch.display()));
        commands.push(format!("sif \"{path}\" mode 0{:o}", 0o100000 | mode));
        let result = self.debugfs(&commands, true);
        let _ = std::fs::remove_file(&scratch);
        result
            .map(|_| ())
            .with_context(|| format!("cannot write {path} into the guest"))
    }

    /// Removes guest file `path` if it exists.
    pub fn remove(&self, path: &str) -> anyhow::Result<()> {
        if self.exists(path) {
            self.debugfs(&[format!("rm \"{path}\"")], true)?;
        }
        Ok(())
    }
}

/// A unique temporary host path for debugfs transfers.
fn scratch_path(purpose: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "he-lab-guest-{purpose}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ))
}

/// Runs a command; fails with its stderr when it exits non-zero.
pub fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    anyhow::ensure!(
        output.status.success(),
        "{:?} failed ({}): {}",
        command.get_program(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output)
}

/// Runs a command with `input` on stdin; fails with its stderr when it exits non-zero.
pub fn run_with_input(command: &mut Command, input: &str) -> anyhow::Result<Output> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "{:?} failed ({}): {}",
        command.get_program(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output)
}
