//! The copy engine: one sequential pass that reads the source in big blocks, skips holes,
//! writes data, turns zero ranges into zeroes on the destination (never leaving old bytes
//! behind), hashes on a second thread and reports progress (progress file every second, run log every 5 s).

use super::digest::{is_zero, Algorithm, Block, ContentHasher, HashWorker, BLOCK_SIZE_BYTES};
use super::progress::Progress;
use crate::ansible::progress::Reporter;
use crate::privilege::Access;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

/// Zero detection granularity inside a block.
const SEGMENT_BYTES: usize = 64 << 10;
/// Zero runs shorter than this inside a data block are written as data when the
/// destination may hold old bytes (one write beats many small fallocate calls).
const MIN_ZERO_RUN_BYTES: u64 = 1 << 20;
/// Data buffers in flight between the reading, writing and hashing threads.
const BUFFERS: usize = 8;
/// Written data is pushed to storage as the copy goes (sync_file_range), keeping at most
/// this much unwritten behind the copy, so the final flush waits for little.
const WRITEBACK_WINDOW_BYTES: u64 = 64 << 20;

/// A failed copy or hash pass, naming the file and offset.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A file could not be opened (`access` says as whom).
    #[error("cannot open {path} {access}: {source}")]
    Open {
        path: PathBuf,
        access: String,
        source: std::io::Error,
    },
    /// Reading the source failed or it ended early.
    #[error("cannot read {path} at offset {offset}: {source}")]
    Read {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
    /// Writing, zeroing or flushing the destination failed.
    #[error("cannot write {path} at offset {offset}: {source}")]
    Write {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
}

/// Where a copy writes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// An existing file or block device at least `length_bytes` long.
    pub path: PathBuf,
    /// Who opens it (vdsm:kvm for a storage-domain volume when run as root).
    pub access: Access,
    /// True when the destination is known to read as zeros (just created sparse): zero
    /// ranges are then skipped instead of zeroed.
    pub known_zero: bool,
    /// Size of the destination; bytes past the copied length up to here are zeroed.
    pub size_bytes: u64,
}

/// What a pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyReport {
    /// Content length copied or hashed.
    pub bytes_total: u64,
    /// Bytes written with write(2) (data, and short zero runs inside data blocks).
    pub bytes_written: u64,
    /// Bytes zeroed on the destination by fallocate (or zero writes where unsupported).
    pub bytes_zeroed: u64,
    /// Hex digest of the content (`None` with [`Algorithm::None`]).
    pub checksum: Option<String>,
    /// Wall time of the pass.
    pub seconds: f64,
}

/// Copies the first `length_bytes` of `source` (opened with `source_access`) onto
/// `destination` (or only hashes them when `destination` is `None`) and returns the digest of
/// that content.
///
/// Three threads overlap: one reads (skipping holes, spotting zero blocks), this one writes,
/// one hashes; buffers go round between them.
pub fn copy(
    source: &Path,
    source_access: &Access,
    length_bytes: u64,
    destination: Option<&Destination>,
    algorithm: Algorithm,
    label: &str,
    progress: &Reporter,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    let input = source_access
        .open_read(source)
        .map_err(|e| open_error(source, source_access, e))?;
    let output = match destination {
        Some(destination) => Some(Writer::open(destination)?),
        None => None,
    };
    let (recycle, returned) = mpsc::channel::<Vec<u8>>();
    let (blocks, received) = mpsc::sync_channel(2);
    let (bytes_written, bytes_zeroed, checksum) = std::thread::scope(|scope| {
        let input = &input;
        scope.spawn(move || read_blocks(input, source, length_bytes, returned, blocks));
        // Everything the reader may wait on lives in this call, so an early error return
        // drops it and the reader stops.
        let progress = Progress::new(progress, label, length_bytes);
        write_blocks(received, output, recycle, algorithm, progress, length_bytes)
    })?;
    Ok(CopyReport {
        bytes_total: length_bytes,
        bytes_written,
        bytes_zeroed,
        checksum,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the reading thread hands on.
enum ReadBlock {
    /// A block inside a hole of the source: not read.
    Hole { offset: u64, length: usize },
    /// A block read into `buffer` (`length` valid bytes); `zero` when all zero.
    Data {
        offset: u64,
        buffer: Vec<u8>,
        length: usize,
        zero: bool,
    },
}

type Blocks = mpsc::SyncSender<Result<ReadBlock, CopyError>>;

/// The reading thread: every block in order, stopping at the first error or when the
/// receiving side is gone.
fn read_blocks(
    input: &File,
    source: &Path,
    length_bytes: u64,
    returned: mpsc::Receiver<Vec<u8>>,
    blocks: Blocks,
) {
    let mut holes = HoleMap::new(input, length_bytes);
    let mut allocated = 0;
    let mut offset = 0u64;
    while offset < length_bytes {
        let length = (length_bytes - offset).min(BLOCK_SIZE_BYTES as u64) as usize;
        let block = if holes.is_hole(offset, length as u64) {
            Ok(ReadBlock::Hole { offset, length })
        } else {
            let mut buffer = match returned.try_recv() {
                Ok(buffer) => buffer,
                Err(_) if allocated < BUFFERS => {
                    allocated += 1;
                    vec![0u8; BLOCK_SIZE_BYTES]
                }
                Err(_) => match returned.recv() {
                    Ok(buffer) => buffer,
                    Err(_) => return,
                },
            };
            match input.read_exact_at(&mut buffer[..length], offset) {
                Ok(()) => {
                    let zero = is_zero(&buffer[..length]);
                    Ok(ReadBlock::Data {
                        offset,
                        buffer,
                        length,
                        zero,
                    })
                }
                Err(error) => Err(CopyError::Read {
                    path: source.to_path_buf(),
                    offset,
                    source: error,
                }),
            }
        };
        let failed = block.is_err();
        if blocks.send(block).is_err() || failed {
            return;
        }
        offset += length as u64;
    }
}

/// The writing side: writes or zeroes each block, feeds the hasher, logs progress; returns
/// bytes written, bytes zeroed and the digest.
fn write_blocks(
    received: mpsc::Receiver<Result<ReadBlock, CopyError>>,
    mut output: Option<Writer>,
    recycle: mpsc::Sender<Vec<u8>>,
    algorithm: Algorithm,
    mut progress: Progress,
    length_bytes: u64,
) -> Result<(u64, u64, Option<String>), CopyError> {
    let worker = match algorithm {
        Algorithm::None => None,
        _ => Some(HashWorker::start(algorithm, recycle.clone())),
    };
    for block in received {
        match block? {
            ReadBlock::Hole { offset, length } => {
                if let Some(output) = output.as_mut() {
                    output.zero(offset, length as u64)?;
                }
                if let Some(worker) = &worker {
                    worker.send(Block::Zeros { length });
                }
                progress.advance(offset + length as u64);
            }
            ReadBlock::Data {
                offset,
                buffer,
                length,
                zero,
            } => {
                if let Some(output) = output.as_mut() {
                    output.block(offset, &buffer[..length], zero)?;
                }
                match &worker {
                    Some(worker) if zero => {
                        worker.send(Block::Zeros { length });
                        let _ = recycle.send(buffer);
                    }
                    Some(worker) => worker.send(Block::Data { buffer, length }),
                    None => {
                        let _ = recycle.send(buffer);
                    }
                }
                progress.advance(offset + length as u64);
            }
        }
    }
    let (bytes_written, bytes_zeroed) = match output {
        Some(output) => output.finish(length_bytes)?,
        None => (0, 0),
    };
    let checksum = worker.and_then(HashWorker::finish);
    progress.done();
    Ok((bytes_written, bytes_zeroed, checksum))
}

/// Digest of the first `length_bytes` of `path` (a re-read: verify, backups, staged files).
pub fn hash(
    path: &Path,
    access: &Access,
    length_bytes: u64,
    algorithm: Algorithm,
    progress: &Reporter,
) -> Result<CopyReport, CopyError> {
    copy(
        path,
        access,
        length_bytes,
        None,
        algorithm,
        "hash",
        progress,
    )
}

/// Makes `[from, to)` of `path` read as zeros and flushes it (the tail past an image that
/// `qemu-img` converted onto a bigger destination). Returns the bytes zeroed.
pub fn zero_range(path: &Path, access: &Access, from: u64, to: u64) -> Result<u64, CopyError> {
    let writer = Writer::open(&Destination {
        path: path.to_path_buf(),
        access: access.clone(),
        known_zero: false,
        size_bytes: to,
    })?;
    Ok(writer.finish(from)?.1)
}

/// A digest of an in-memory buffer computed exactly as [`copy`] would (tests, fixtures).
pub fn hash_bytes(data: &[u8], algorithm: Algorithm) -> Option<String> {
    let mut hasher = ContentHasher::new(algorithm);
    for block in data.chunks(BLOCK_SIZE_BYTES) {
        hasher.block(block);
    }
    hasher.finish()
}

fn open_error(path: &Path, access: &Access, source: std::io::Error) -> CopyError {
    CopyError::Open {
        path: path.to_path_buf(),
        access: access.describe(),
        source,
    }
}

/// Where the source has holes, from SEEK_DATA/SEEK_HOLE (all data where unsupported).
struct HoleMap<'a> {
    file: &'a File,
    length_bytes: u64,
    supported: bool,
    region_is_hole: bool,
    region_end: u64,
}

impl<'a> HoleMap<'a> {
    fn new(file: &'a File, length_bytes: u64) -> Self {
        Self {
            file,
            length_bytes,
            supported: true,
            region_is_hole: false,
            region_end: 0,
        }
    }

    fn seek(&self, offset: u64, whence: libc::c_int) -> Option<u64> {
        // SAFETY: lseek on an open descriptor; the position is not used for reading.
        let result = unsafe { libc::lseek(self.file.as_raw_fd(), offset as libc::off_t, whence) };
        if result >= 0 {
            Some(result as u64)
        } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
            Some(self.length_bytes)
        } else {
            None
        }
    }

    /// True when `[offset, offset + length)` lies entirely in a hole.
    fn is_hole(&mut self, offset: u64, length: u64) -> bool {
        if !self.supported {
            return false;
        }
        if offset >= self.region_end {
            match self.seek(offset, libc::SEEK_DATA) {
                None => {
                    self.supported = false;
                    return false;
                }
                Some(data) if data > offset => {
                    self.region_is_hole = true;
                    self.region_end = data;
                }
                Some(_) => {
                    self.region_is_hole = false;
                    self.region_end = self
                        .seek(offset, libc::SEEK_HOLE)
                        .unwrap_or(self.length_bytes);
                }
            }
        }
        self.region_is_hole && self.region_end >= offset + length
    }
}

#[derive(Clone, Copy, PartialEq)]
enum ZeroMethod {
    ZeroRange,
    PunchHole,
    Write,
}

/// The destination side: data writes, coalesced zero ranges, the zeroed tail.
struct Writer {
    file: File,
    path: PathBuf,
    known_zero: bool,
    size_bytes: u64,
    method: ZeroMethod,
    pending_zero: Option<(u64, u64)>,
    flushed_until: u64,
    bytes_written: u64,
    bytes_zeroed: u64,
}

impl Writer {
    fn open(destination: &Destination) -> Result<Self, CopyError> {
        let file = destination
            .access
            .open(&destination.path, OpenOptions::new().write(true))
            .map_err(|e| open_error(&destination.path, &destination.access, e))?;
        Ok(Self {
            file,
            path: destination.path.clone(),
            known_zero: destination.known_zero,
            size_bytes: destination.size_bytes,
            method: ZeroMethod::ZeroRange,
            pending_zero: None,
            flushed_until: 0,
            bytes_written: 0,
            bytes_zeroed: 0,
        })
    }

    fn write_error(&self, offset: u64, source: std::io::Error) -> CopyError {
        CopyError::Write {
            path: self.path.clone(),
            offset,
            source,
        }
    }

    /// Writes one read block, zeroing its long zero runs instead of writing them.
    fn block(&mut self, offset: u64, data: &[u8], all_zero: bool) -> Result<(), CopyError> {
        if all_zero {
            return self.zero(offset, data.len() as u64);
        }
        let mut position = 0;
        while position < data.len() {
            let mut data_end = run_end(data, position, false);
            // Absorb short zero runs between data into one write, unless holes are free.
            while data_end > position && data_end < data.len() && !self.known_zero {
                let zeros_end = run_end(data, data_end, true);
                let short = ((zeros_end - data_end) as u64) < MIN_ZERO_RUN_BYTES;
                if !short || zeros_end == data.len() {
                    break;
                }
                data_end = run_end(data, zeros_end, false);
            }
            if data_end > position {
                self.flush_zero()?;
                let at = offset + position as u64;
                self.file
                    .write_all_at(&data[position..data_end], at)
                    .map_err(|e| self.write_error(at, e))?;
                self.bytes_written += (data_end - position) as u64;
                self.write_back(at, (data_end - position) as u64);
            }
            let zeros_end = run_end(data, data_end, true);
            if zeros_end > data_end {
                self.zero(offset + data_end as u64, (zeros_end - data_end) as u64)?;
            }
            position = zeros_end;
        }
        Ok(())
    }

    /// Starts writeback of what was written and waits for what is a window behind, so
    /// flushing overlaps copying (a failure here only moves the work to the final flush).
    fn write_back(&mut self, offset: u64, length: u64) {
        let fd = self.file.as_raw_fd();
        let written_until = offset + length;
        // SAFETY: sync_file_range on an open descriptor with valid ranges.
        unsafe {
            libc::sync_file_range(
                fd,
                offset as libc::off64_t,
                length as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        if written_until > self.flushed_until + 2 * WRITEBACK_WINDOW_BYTES {
            let until = written_until - WRITEBACK_WINDOW_BYTES;
            let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            // SAFETY: as above.
            unsafe {
                libc::sync_file_range(
                    fd,
                    self.flushed_until as libc::off64_t,
                    (until - self.flushed_until) as libc::off64_t,
                    flags,
                );
            }
            self.flushed_until = until;
        }
    }

    /// Makes `[offset, offset + length)` read as zeros (coalesced with the previous range).
    fn zero(&mut self, offset: u64, length: u64) -> Result<(), CopyError> {
        if self.known_zero {
            return Ok(());
        }
        match self.pending_zero {
            Some((start, end)) if end == offset => self.pending_zero = Some((start, end + length)),
            _ => {
                self.flush_zero()?;
                self.pending_zero = Some((offset, offset + length));
            }
        }
        Ok(())
    }

    fn flush_zero(&mut self) -> Result<(), CopyError> {
        let Some((start, end)) = self.pending_zero.take() else {
            return Ok(());
        };
        loop {
            let flags = match self.method {
                ZeroMethod::ZeroRange => libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                ZeroMethod::PunchHole => libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                ZeroMethod::Write => return self.write_zeros(start, end),
            };
            // SAFETY: fallocate on an open descriptor with a valid range.
            let result = unsafe {
                libc::fallocate(
                    self.file.as_raw_fd(),
                    flags,
                    start as libc::off_t,
                    (end - start) as libc::off_t,
                )
            };
            if result == 0 {
                self.bytes_zeroed += end - start;
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENODEV) => {
                    self.method = match self.method {
                        ZeroMethod::ZeroRange => ZeroMethod::PunchHole,
                        _ => ZeroMethod::Write,
                    };
                }
                _ => return Err(self.write_error(start, error)),
            }
        }
    }

    fn write_zeros(&mut self, start: u64, end: u64) -> Result<(), CopyError> {
        let zeros = vec![0u8; BLOCK_SIZE_BYTES];
        let mut at = start;
        while at < end {
            let step = (end - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..step], at)
                .map_err(|e| self.write_error(at, e))?;
            at += step as u64;
        }
        self.bytes_zeroed += end - start;
        Ok(())
    }

    /// Zeroes the tail past the content, flushes to stable storage and drops the written
    /// pages from the cache so a verify pass really re-reads the storage.
    fn finish(mut self, length_bytes: u64) -> Result<(u64, u64), CopyError> {
        if self.size_bytes > length_bytes {
            self.zero(length_bytes, self.size_bytes - length_bytes)?;
        }
        self.flush_zero()?;
        self.file
            .sync_data()
            .map_err(|e| self.write_error(length_bytes, e))?;
        // SAFETY: advisory call on an open descriptor; failure only means pages stay cached.
        unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        Ok((self.bytes_written, self.bytes_zeroed))
    }
}

/// End of the run starting at `position` whose segments are (`zero`) zero or not.
fn run_end(data: &[u8], position: usize, zero: bool) -> usize {
    let mut end = position;
    while end < data.len() {
        let segment_end = (end + SEGMENT_BYTES).min(data.len());
        if is_zero(&data[end..segment_end]) != zero {
            break;
        }
        end = segment_end;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn random(length: usize) -> Vec<u8> {
        let mut data = vec![0u8; length];
        rand::thread_rng().fill_bytes(&mut data);
        data
    }

    /// A source with a hole, a zero-filled data range, short zero runs and data.
    fn mixed_source(dir: &Path) -> (PathBuf, Vec<u8>) {
        let block = BLOCK_SIZE_BYTES;
        let mut content = vec![0u8; 3 * block + 200_000];
        content[..block].copy_from_slice(&random(block));
        content[block + 100..block + 200].copy_from_slice(&random(100));
        // [block+200 .. 2*block) zeros written as data below; 2*block..3*block a hole.
        let tail = content.len() - 3 * block;
        content[3 * block..].copy_from_slice(&random(tail));
        content[3 * block + 70_000..3 * block + 70_100].fill(0);
        let path = dir.join("source.raw");
        let file = File::create(&path).unwrap();
        file.set_len(content.len() as u64).unwrap();
        file.write_all_at(&content[..2 * block], 0).unwrap();
        file.write_all_at(&content[3 * block..], 3 * block as u64)
            .unwrap();
        (path, content)
    }

    fn destination(dir: &Path, content: &[u8], known_zero: bool) -> Destination {
        let path = dir.join("dest.raw");
        let size = content.len() as u64 + 5000;
        if known_zero {
            File::create(&path).unwrap().set_len(size).unwrap();
        } else {
            std::fs::write(&path, random(size as usize)).unwrap();
        }
        Destination {
            path,
            access: Access::Own,
            known_zero,
            size_bytes: size,
        }
    }

    #[test]
    fn copies_byte_exactly_over_garbage_and_zeroes_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (source, content) = mixed_source(dir.path());
        let dest = destination(dir.path(), &content, false);
        let report = copy(
            &source,
            &Access::Own,
            content.len() as u64,
            Some(&dest),
            Algorithm::Sha256,
            "t",
            &Reporter::none(),
        )
        .unwrap();
        let written = std::fs::read(&dest.path).unwrap();
        assert_eq!(&written[..content.len()], &content[..]);
        assert!(is_zero(&written[content.len()..]));
        assert_eq!(report.checksum, hash_bytes(&content, Algorithm::Sha256));
        assert!(report.bytes_written < content.len() as u64, "{report:?}");
        assert!(
            report.bytes_zeroed >= BLOCK_SIZE_BYTES as u64 + 5000,
            "{report:?}"
        );
    }

    #[test]
    fn a_fresh_destination_stays_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let (source, content) = mixed_source(dir.path());
        let dest = destination(dir.path(), &content, true);
        let report = copy(
            &source,
            &Access::Own,
            content.len() as u64,
            Some(&dest),
            Algorithm::Blake3,
            "t",
            &Reporter::none(),
        )
        .unwrap();
        assert_eq!(
            &std::fs::read(&dest.path).unwrap()[..content.len()],
            &content[..]
        );
        assert_eq!(report.bytes_zeroed, 0);
        assert_eq!(report.checksum, hash_bytes(&content, Algorithm::Blake3));
    }

    #[test]
    fn hash_matches_the_in_memory_digest_for_every_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let (source, content) = mixed_source(dir.path());
        for algorithm in [
            Algorithm::Blake3,
            Algorithm::Sha256,
            Algorithm::Sha1,
            Algorithm::None,
        ] {
            let report = hash(
                &source,
                &Access::Own,
                content.len() as u64,
                algorithm,
                &Reporter::none(),
            )
            .unwrap();
            assert_eq!(
                report.checksum,
                hash_bytes(&content, algorithm),
                "{algorithm:?}"
            );
            assert_eq!(report.bytes_written, 0);
        }
    }

    #[test]
    fn a_short_source_is_an_error_naming_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, random(1000)).unwrap();
        let error = hash(
            &path,
            &Access::Own,
            5000,
            Algorithm::Sha1,
            &Reporter::none(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("cannot read") && error.contains("offset 0"),
            "{error}"
        );
    }
}
