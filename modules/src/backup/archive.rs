//! The whole check: the file is read once; decompression and the archive hash run on this
//! thread, the outer tar walk (with every member's MD5) on a second, `./files` on a third.

use super::error::BackupError;
use super::files::{self, FilesFacts};
use super::manifest::{parse_md5sum, parse_version};
use super::stream::{channel, ChannelReader, ChannelWriter, Compression, HashingReader};
use super::walk::{walk, Source, Walked};
use super::Limits;
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read};
use std::path::Path;

/// Members every engine-backup archive has (SPEC 9.3).
const REQUIRED: [&str; 5] = [
    "files",
    "version",
    "md5sum",
    "db/engine_backup.db",
    "config",
];
const DWH_DUMP: &str = "db/dwh_backup.db";
const REPORTS_DUMP: &str = "db/reports_backup.db";
/// Small text members kept in memory, and their largest accepted size.
const TEXT_MEMBERS: [&str; 3] = ["version", "os_version", "md5sum"];
const MAX_TEXT_BYTES: u64 = 4 * 1024 * 1024;
const OUTER: &str = "backup archive";
const CHANNEL_CHUNKS: usize = 8;

/// What a valid backup holds: the `backup` return value of he_inject_backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFacts {
    /// `./version`: the engine version that made the backup.
    pub engine_version: String,
    /// `./os_version` (`centos7`), when present.
    pub os_version: Option<String>,
    /// A DWH database dump is present (restore with `--provision-dwh-db`).
    pub dwh: bool,
    /// A Reports database dump is present (restore with `--provision-reports-db`).
    pub reports: bool,
    /// Newest member modification time (RFC 3339, UTC), else the file's.
    pub created: String,
    /// SHA-256 of the archive file.
    pub sha256: String,
    /// Archive size.
    pub size_bytes: u64,
    /// Compression of the archive.
    pub compression: Compression,
    /// Compression of `./files`.
    pub files_compression: Compression,
    /// Regular files inside `./files`.
    pub files_count: usize,
    /// Regular-file members, normalised (`db/engine_backup.db`), in archive order.
    pub members: Vec<String>,
    /// AAA authz extension names configured in `./files`.
    pub aaa: Vec<String>,
}

/// Validates the engine-backup archive at `path` in one read.
pub fn validate(path: &Path, limits: &Limits) -> Result<BackupFacts, BackupError> {
    let unreadable = |error| BackupError::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let file_mtime_s = file.metadata().and_then(|m| m.modified()).ok();
    let mut archive = HashingReader::<_, Sha256>::new(file);
    let outer_limits = limits.clone();
    let (compression, outer) = pipeline(
        &Source {
            what: OUTER,
            allow_absolute_symlinks: false,
            limits,
        },
        |writer| {
            let compression = Compression::decode(&mut archive, writer)?;
            archive.drain()?;
            Ok(compression)
        },
        move |reader| read_outer(reader, &outer_limits),
    )?;
    let missing_members: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|m| !outer.md5.contains_key(*m))
        .collect();
    if !missing_members.is_empty() {
        return Err(missing(&missing_members));
    }
    check_md5sum(&outer)?;
    let (files_compression, files) = outer.files.ok_or_else(|| missing(&["files"]))?;
    let version_text = outer.texts.get("version").map(String::as_str).unwrap_or("");
    let engine_version =
        parse_version(version_text).ok_or_else(|| BackupError::BadVersion(version_text.into()))?;
    let created_s = match outer.walked.newest_mtime_s {
        0 => file_mtime_s
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
        newest => newest,
    };
    Ok(BackupFacts {
        engine_version,
        os_version: outer.texts.get("os_version").map(|t| t.trim().to_string()),
        dwh: outer.md5.contains_key(DWH_DUMP),
        reports: outer.md5.contains_key(REPORTS_DUMP),
        created: rfc3339(created_s),
        sha256: hex::encode(archive.digest.finalize()),
        size_bytes: archive.bytes,
        compression,
        files_compression,
        files_count: files.file_count,
        members: outer.walked.files,
        aaa: files.aaa,
    })
}

/// What the walk over the archive collected.
struct Outer {
    walked: Walked,
    md5: BTreeMap<String, String>,
    texts: BTreeMap<String, String>,
    files: Option<(Compression, FilesFacts)>,
}

fn read_outer(reader: ChannelReader, limits: &Limits) -> Result<Outer, BackupError> {
    let source = Source {
        what: OUTER,
        allow_absolute_symlinks: false,
        limits,
    };
    let (mut md5, mut texts, mut files) = (BTreeMap::new(), BTreeMap::new(), None);
    let walked = walk(&source, reader, |name, data| {
        let mut member = HashingReader::<_, Md5>::new(data);
        let broken =
            |e: io::Error| super::walk::truncated(&source, format!("member {name:?}: {e}"));
        if name == "files" {
            let inner_limits = limits.clone();
            let inner = Source {
                what: "member ./files",
                allow_absolute_symlinks: true,
                limits,
            };
            files = Some(pipeline(
                &inner,
                |writer| Compression::decode(&mut member, writer),
                move |reader| files::inspect(reader, &inner_limits),
            )?);
        } else if TEXT_MEMBERS.contains(&name) {
            let mut text = Vec::new();
            (&mut member)
                .take(MAX_TEXT_BYTES + 1)
                .read_to_end(&mut text)
                .map_err(broken)?;
            if text.len() as u64 > MAX_TEXT_BYTES {
                return Err(BackupError::Checksum(format!(
                    "member ./{name} is larger than {MAX_TEXT_BYTES} bytes"
                )));
            }
            texts.insert(
                name.to_string(),
                String::from_utf8_lossy(&text).into_owned(),
            );
        }
        member.drain().map_err(broken)?;
        md5.insert(name.to_string(), hex::encode(member.digest.finalize()));
        Ok(())
    })?;
    Ok(Outer {
        walked,
        md5,
        texts,
        files,
    })
}

/// Every member but `./md5sum` itself is listed with its MD5, and every listed one matches.
fn check_md5sum(outer: &Outer) -> Result<(), BackupError> {
    let listed = parse_md5sum(outer.texts.get("md5sum").map(String::as_str).unwrap_or(""))
        .map_err(BackupError::Checksum)?;
    for line in &listed {
        match outer.md5.get(&line.member) {
            None => {
                return Err(BackupError::Checksum(format!(
                    "./md5sum lists {:?} but the archive has no such member",
                    line.member
                )))
            }
            Some(actual) if *actual != line.md5 => {
                return Err(BackupError::Checksum(format!(
                    "MD5 mismatch for member ./{}: ./md5sum says {}, content is {actual} (corrupt or altered backup)",
                    line.member, line.md5
                )))
            }
            Some(_) => {}
        }
    }
    let unlisted = outer
        .md5
        .keys()
        .find(|m| *m != "md5sum" && !listed.iter().any(|l| &l.member == *m));
    match unlisted {
        Some(member) => Err(BackupError::Checksum(format!(
            "member ./{member} is not listed in ./md5sum, so it cannot be verified"
        ))),
        None => Ok(()),
    }
}

/// Runs `consume` on a new thread over what `produce` writes into the pipe. A producer
/// failure (decoder: corrupt or cut stream) is the root cause and wins over the consumer's.
fn pipeline<T: Send + 'static>(
    source: &Source,
    produce: impl FnOnce(&mut BufWriter<ChannelWriter>) -> io::Result<Compression>,
    consume: impl FnOnce(ChannelReader) -> Result<T, BackupError> + Send + 'static,
) -> Result<(Compression, T), BackupError> {
    let (mut writer, reader) = channel(CHANNEL_CHUNKS);
    let consumer = std::thread::spawn(move || consume(reader));
    let produced = produce(&mut writer);
    drop(writer);
    let consumed = consumer.join().unwrap_or_else(|_| {
        Err(super::walk::not_an_archive(
            source,
            "the archive reader stopped unexpectedly",
        ))
    });
    match produced {
        Ok(compression) => consumed.map(|facts| (compression, facts)),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => match consumed {
            Err(consumer_error) => Err(consumer_error),
            Ok(_) => Err(super::walk::not_an_archive(source, &error.to_string())),
        },
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(super::walk::truncated(
            source,
            format!("the compressed stream ends early ({error})"),
        )),
        Err(error) => Err(super::walk::not_an_archive(source, &error.to_string())),
    }
}

fn missing(members: &[&str]) -> BackupError {
    BackupError::MissingMembers(
        members
            .iter()
            .map(|m| format!("./{m}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn rfc3339(epoch_s: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_s as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
