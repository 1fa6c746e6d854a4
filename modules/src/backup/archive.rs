//! The whole check: the file is read once; decompression and the archive hash run on this
//! thread, the outer tar walk (with every member's SHA-256 and MD5) on a second, `./files`
//! on a third.

use super::error::BackupError;
use super::files::{self, FilesFacts};
use super::manifest::parse_checksums;
use super::policy::{self, EngineVersion, Hasher, AVAILABLE_HASHERS};
use super::stream::{channel, ChannelReader, ChannelWriter, Compression, HashingReader};
use super::walk::{walk, Source, Walked};
use super::Limits;
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read};
use std::path::Path;

/// Members every engine-backup archive has (SPEC 9.3), besides its checksum file.
const REQUIRED: [&str; 4] = ["files", "version", "db/engine_backup.db", "config"];
const DWH_DUMP: &str = "db/dwh_backup.db";
const REPORTS_DUMP: &str = "db/reports_backup.db";
/// Small text members kept in memory, and their largest accepted size.
const TEXT_MEMBERS: [&str; 4] = ["version", "os_version", "sha256sum", "md5sum"];
const MAX_TEXT_BYTES: u64 = 4 * 1024 * 1024;
const OUTER: &str = "backup archive";
const CHANNEL_CHUNKS: usize = 8;

/// What a valid backup holds: the `backup` return value of he_inject_backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFacts {
    /// `./version`: the engine version that made the backup.
    pub engine_version: String,
    /// The checksum file engine-backup verifies the archive with (`sha256sum` from 4.3.3.2
    /// on, `md5sum` before).
    pub checksum_file: Hasher,
    /// Every checksum file present, each checked against every member.
    pub checksum_files: Vec<Hasher>,
    /// `./os_version` (`centos7`), when present.
    pub os_version: Option<String>,
    /// A DWH database dump is present (restore with `--provision-dwh-db`).
    pub dwh: bool,
    /// A Reports database dump is present (restore with `--provision-reports-db`).
    pub reports: bool,
    /// Newest member modification time (RFC 3339, UTC), else the file's.
    pub created: String,
    /// The same time in seconds since the epoch.
    pub created_s: u64,
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
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(unreadable(io::Error::other("it is not a regular file")));
    }
    let file_mtime_s = metadata.modified().ok();
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
    let mut missing_members: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|m| !outer.digests.contains_key(*m))
        .collect();
    let hashers: Vec<Hasher> = AVAILABLE_HASHERS
        .into_iter()
        .filter(|h| outer.digests.contains_key(h.member()))
        .collect();
    if hashers.is_empty() {
        missing_members.push("sha256sum or ./md5sum");
    }
    if !missing_members.is_empty() {
        return Err(missing(&missing_members));
    }
    for hasher in &hashers {
        check_checksums(&outer, *hasher)?;
    }
    let (files_compression, files) = outer.files.ok_or_else(|| missing(&["files"]))?;
    let version_text = outer.texts.get("version").map(String::as_str).unwrap_or("");
    let engine_version = EngineVersion::parse(version_text.lines().next().unwrap_or(""))
        .ok_or_else(|| BackupError::BadVersion(version_text.into()))?;
    let created_s = match outer.walked.newest_mtime_s {
        0 => file_mtime_s
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
        newest => newest,
    };
    Ok(BackupFacts {
        engine_version: engine_version.to_string(),
        checksum_file: hashers[0],
        checksum_files: hashers,
        os_version: outer.texts.get("os_version").map(|t| t.trim().to_string()),
        dwh: outer.digests.contains_key(DWH_DUMP),
        reports: outer.digests.contains_key(REPORTS_DUMP),
        created: rfc3339(created_s),
        created_s,
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
    digests: BTreeMap<String, Digests>,
    texts: BTreeMap<String, String>,
    files: Option<(Compression, FilesFacts)>,
}

fn read_outer(reader: ChannelReader, limits: &Limits) -> Result<Outer, BackupError> {
    let source = Source {
        what: OUTER,
        allow_absolute_symlinks: false,
        limits,
    };
    let (mut digests, mut texts, mut files) = (BTreeMap::new(), BTreeMap::new(), None);
    let walked = walk(&source, reader, |name, data| {
        let mut member = HashingReader::<_, Sha256>::new(HashingReader::<_, Md5>::new(data));
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
        let HashingReader { digest, inner, .. } = member;
        let sha256 = hex::encode(digest.finalize());
        let md5 = hex::encode(inner.digest.finalize());
        digests.insert(name.to_string(), Digests { sha256, md5 });
        Ok(())
    })?;
    Ok(Outer {
        walked,
        digests,
        texts,
        files,
    })
}

/// A member's digests, for whichever checksum file the archive has.
struct Digests {
    sha256: String,
    md5: String,
}

impl Digests {
    fn of(&self, hasher: Hasher) -> &str {
        match hasher {
            Hasher::Sha256sum => &self.sha256,
            Hasher::Md5sum => &self.md5,
        }
    }
}

/// Every member but the checksum files is listed in the checksum file of `hasher`, and every
/// listed one matches (`<hasher> -c`, as engine-backup verifies).
fn check_checksums(outer: &Outer, hasher: Hasher) -> Result<(), BackupError> {
    let file = hasher.member();
    let text = outer.texts.get(file).map(String::as_str).unwrap_or("");
    let listed = parse_checksums(hasher, text).map_err(BackupError::Checksum)?;
    for line in &listed {
        match outer.digests.get(&line.member).map(|d| d.of(hasher)) {
            None => {
                return Err(BackupError::Checksum(format!(
                    "./{file} lists {:?} but the archive has no such member",
                    line.member
                )))
            }
            Some(actual) if actual != line.digest => {
                return Err(BackupError::Checksum(format!(
                    "{file} mismatch for member ./{}: ./{file} says {}, content is {actual} (corrupt or altered backup)",
                    line.member, line.digest
                )))
            }
            Some(_) => {}
        }
    }
    let is_checksum_file = |m: &str| AVAILABLE_HASHERS.iter().any(|h| h.member() == m);
    let unlisted = outer
        .digests
        .keys()
        .find(|m| !is_checksum_file(m) && !listed.iter().any(|l| &l.member == *m));
    match unlisted {
        Some(member) => Err(BackupError::Checksum(format!(
            "member ./{member} is not listed in ./{file}, so it cannot be verified"
        ))),
        None => Ok(()),
    }
}

/// Whether engine-backup of `target_version` restores the backup `facts` describe.
pub fn check_restorable(facts: &BackupFacts, target_version: &str) -> Result<(), BackupError> {
    let not_restorable = |reason: String| BackupError::NotRestorable {
        backup: facts.engine_version.clone(),
        target: target_version.to_string(),
        reason,
    };
    let target = EngineVersion::parse(target_version)
        .ok_or_else(|| not_restorable("the target version is not an engine version".into()))?;
    let backup = EngineVersion::parse(&facts.engine_version)
        .ok_or_else(|| BackupError::BadVersion(facts.engine_version.clone()))?;
    policy::check_restorable(&backup, &target, &facts.checksum_files)
        .map_err(|refusal| not_restorable(refusal.to_string()))
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
