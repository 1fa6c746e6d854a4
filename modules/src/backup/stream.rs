//! Byte plumbing for the one-pass check: compression by magic bytes, hashing and counting
//! readers, and a bounded channel that lets a decoder feed a tar reader on another thread.

use sha2::Digest;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// How a tar stream is compressed (engine-backup: `--archive-compressor`, `--files-compressor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `gzip` (engine-backup's default for the archive).
    Gzip,
    /// `xz` (engine-backup's default for `./files`).
    Xz,
    /// `bzip2`.
    Bzip2,
    /// No compression.
    None,
}

impl Compression {
    /// Recognises the compression from the first bytes of a stream.
    pub fn detect(magic: &[u8]) -> Self {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Self::Xz
        } else if magic.starts_with(b"BZh") {
            Self::Bzip2
        } else {
            Self::None
        }
    }

    /// Decompresses all of `input` into `output`, detecting the format from its first bytes.
    pub fn decode<R: Read, W: Write>(input: R, output: &mut W) -> io::Result<Self> {
        let mut input = BufReader::with_capacity(256 * 1024, input);
        let compression = Self::detect(input.fill_buf()?);
        match compression {
            Self::Gzip => io::copy(&mut flate2::read::GzDecoder::new(input), output)?,
            Self::Bzip2 => io::copy(&mut bzip2::read::BzDecoder::new(input), output)?,
            Self::None => io::copy(&mut input, output)?,
            Self::Xz => {
                lzma_rs::xz_decompress(&mut input, output).map_err(|error| match error {
                    lzma_rs::error::Error::IoError(io) => io,
                    other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
                })?;
                0
            }
        };
        output.flush()?;
        Ok(compression)
    }
}

/// Feeds every byte read through a digest.
pub struct HashingReader<R, D> {
    /// The reader hashed.
    pub inner: R,
    /// The digest of everything read so far.
    pub digest: D,
    /// Bytes read so far.
    pub bytes: u64,
}

impl<R: Read, D: Digest> HashingReader<R, D> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            digest: D::new(),
            bytes: 0,
        }
    }

    /// Reads the rest of `inner` into the digest.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl<R: Read, D: Digest> Read for HashingReader<R, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.digest.update(&buf[..count]);
        self.bytes += count as u64;
        Ok(count)
    }
}

/// The writing end of a bounded byte channel (see [`channel`]).
pub struct ChannelWriter(SyncSender<Vec<u8>>);

/// The reading end of a bounded byte channel; end of data when the writer is dropped.
pub struct ChannelReader {
    receiver: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    offset: usize,
}

/// A byte pipe between two threads holding at most `chunks` buffered writes.
pub fn channel(chunks: usize) -> (io::BufWriter<ChannelWriter>, ChannelReader) {
    let (sender, receiver) = sync_channel(chunks);
    let reader = ChannelReader {
        receiver,
        chunk: Vec::new(),
        offset: 0,
    };
    (
        io::BufWriter::with_capacity(256 * 1024, ChannelWriter(sender)),
        reader,
    )
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.offset = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let count = buf.len().min(self.chunk.len() - self.offset);
        buf[..count].copy_from_slice(&self.chunk[self.offset..self.offset + count]);
        self.offset += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression_by_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"\xfd7zXZ\0\0"), Compression::Xz);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"./files\0"), Compression::None);
    }

    #[test]
    fn decodes_xz_and_gzip() {
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &b"hello xz"[..], &mut xz).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            Compression::decode(&xz[..], &mut out).unwrap(),
            Compression::Xz
        );
        assert_eq!(out, b"hello xz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello gz").unwrap();
        let gz = gz.finish().unwrap();
        out.clear();
        assert_eq!(
            Compression::decode(&gz[..], &mut out).unwrap(),
            Compression::Gzip
        );
        assert_eq!(out, b"hello gz");
        let cut = &gz[..gz.len() - 6];
        let error = Compression::decode(cut, &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }

    #[test]
    fn channel_carries_bytes_across_threads() {
        let (mut writer, mut reader) = channel(2);
        let producer = std::thread::spawn(move || {
            for i in 0..100u8 {
                writer.write_all(&[i; 1000]).unwrap();
            }
        });
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        producer.join().unwrap();
        assert_eq!(all.len(), 100_000);
        assert_eq!(all[99_999], 99);
    }
}
