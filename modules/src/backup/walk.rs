//! One streaming walk over a tar stream with the safety rules every member must pass.

use super::error::BackupError;
use super::member;
use super::Limits;
use std::io::{self, Read};
use tar::EntryType;

/// What a walk saw.
#[derive(Debug, Default)]
pub struct Walked {
    /// Regular-file members, normalised, in archive order.
    pub files: Vec<String>,
    /// Newest member modification time (seconds since the epoch).
    pub newest_mtime_s: u64,
}

/// Where the tar stream comes from: `what` names it in errors; `allow_absolute_symlinks` is
/// true for `./files`, which engine-backup restores onto `/`.
pub struct Source<'a> {
    /// `backup archive` or `member ./files`.
    pub what: &'a str,
    /// Whether symbolic links may point to absolute paths.
    pub allow_absolute_symlinks: bool,
    /// Size and count limits.
    pub limits: &'a Limits,
}

/// Walks every member of the tar stream `reader`, refusing unsafe ones, and hands each
/// regular file to `on_file(name, data)`, which must read it to the end.
pub fn walk<R: Read>(
    source: &Source,
    reader: R,
    mut on_file: impl FnMut(&str, &mut dyn Read) -> Result<(), BackupError>,
) -> Result<Walked, BackupError> {
    let mut archive = tar::Archive::new(Counting {
        inner: reader,
        position: 0,
    });
    let mut walked = Walked::default();
    let (mut members, mut total_bytes, mut end_of_last) = (0u64, 0u64, 0u64);
    let entries = archive
        .entries()
        .map_err(|e| read_error(source, members, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(source, members, &e))?;
        members += 1;
        let raw_name = entry.path_bytes().into_owned();
        let unsafe_member = |reason: member::Unsafe| BackupError::UnsafeMember {
            what: source.what.to_string(),
            member: String::from_utf8_lossy(&raw_name).into_owned(),
            reason: reason.to_string(),
        };
        let name = member::normalize(&raw_name).map_err(unsafe_member)?;
        let size_bytes = entry.size();
        total_bytes += size_bytes;
        check_limits(source, members, size_bytes, total_bytes, &name)?;
        // Where this member's data ends in the stream: its stored size, which is smaller
        // than `size()` for GNU sparse members (engine-backup runs `tar -S`).
        let stored_bytes = entry.header().entry_size().unwrap_or(size_bytes);
        end_of_last = entry.raw_file_position() + stored_bytes.div_ceil(512) * 512;
        walked.newest_mtime_s = walked
            .newest_mtime_s
            .max(entry.header().mtime().unwrap_or(0));
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        match entry.header().entry_type() {
            EntryType::Directory | EntryType::XGlobalHeader => {}
            EntryType::Symlink => {
                member::check_symlink(&name, &link, source.allow_absolute_symlinks)
                    .map_err(unsafe_member)?
            }
            EntryType::Link => member::check_hardlink(&link).map_err(unsafe_member)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut counted = Counting {
                    inner: &mut entry,
                    position: 0,
                };
                on_file(&name, &mut counted)?;
                io::copy(&mut counted, &mut io::sink())
                    .map_err(|e| read_error(source, members, &e))?;
                if counted.position < size_bytes {
                    return Err(truncated(source, format!("it ends inside member {name:?}")));
                }
                walked.files.push(name);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_member(member::Unsafe::Device))
            }
            other => {
                return Err(unsafe_member(member::Unsafe::UnsupportedType {
                    kind: format!("{other:?}"),
                }))
            }
        }
    }
    let mut rest = archive.into_inner();
    if rest.position < end_of_last + 512 {
        if members == 0 {
            return Err(not_an_archive(source, "no tar member found"));
        }
        return Err(truncated(
            source,
            "no end-of-archive marker after the last member".into(),
        ));
    }
    // Read to the end so the decoder below checks its trailer (gzip CRC) and the archive
    // hash covers every byte; what follows the end marker counts against the total limit.
    let trailing =
        io::copy(&mut rest, &mut io::sink()).map_err(|e| read_error(source, members, &e))?;
    check_limits(
        source,
        members,
        0,
        total_bytes + trailing,
        "(data after the end marker)",
    )?;
    Ok(walked)
}

fn check_limits(
    source: &Source,
    members: u64,
    size: u64,
    total: u64,
    name: &str,
) -> Result<(), BackupError> {
    let limits = source.limits;
    let too_large = |option, limit, detail| BackupError::TooLarge {
        what: source.what.to_string(),
        option,
        limit,
        detail,
    };
    if members > limits.max_members {
        return Err(too_large(
            "max_members",
            limits.max_members,
            format!("more than {} members", limits.max_members),
        ));
    }
    if size > limits.max_member_bytes {
        return Err(too_large(
            "max_member_bytes",
            limits.max_member_bytes,
            format!("member {name:?} has {size} bytes"),
        ));
    }
    if total > limits.max_total_bytes {
        return Err(too_large(
            "max_total_bytes",
            limits.max_total_bytes,
            format!("{total} bytes up to member {name:?}"),
        ));
    }
    Ok(())
}

/// Maps a read error: an early end is truncation, anything else a damaged archive.
fn read_error(source: &Source, members: u64, error: &io::Error) -> BackupError {
    let early_end = error.kind() == io::ErrorKind::UnexpectedEof
        || error.to_string().contains("failed to read entire block");
    match (members, early_end) {
        (0, _) => not_an_archive(source, &error.to_string()),
        (_, true) => truncated(
            source,
            format!("it ends early after {members} member(s): {error}"),
        ),
        (_, false) => not_an_archive(source, &error.to_string()),
    }
}

pub(super) fn truncated(source: &Source, detail: String) -> BackupError {
    BackupError::Truncated {
        what: source.what.to_string(),
        detail,
    }
}

pub(super) fn not_an_archive(source: &Source, detail: &str) -> BackupError {
    BackupError::NotAnArchive {
        what: source.what.to_string(),
        detail: detail.to_string(),
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    position: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.position += count as u64;
        Ok(count)
    }
}
