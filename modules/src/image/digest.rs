//! Content digests of disk images: `blake3` (block digest, zero blocks free), `sha256`, `sha1`.
//!
//! `sha256` and `sha1` are the plain digests of the content, equal to `sha256sum`/`sha1sum`
//! of a raw image. `blake3` is a block digest so that zero ranges cost nothing to hash:
//! the content is cut into [`BLOCK_SIZE_BYTES`] blocks (the last one may be shorter), each
//! block is hashed with BLAKE3, and the result is the BLAKE3 of the concatenated block
//! hashes followed by the content length as 8 little-endian bytes. An all-zero block's hash
//! is computed once, so holes and zero ranges are not hashed again.

use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use std::sync::mpsc;
use std::thread;

/// Digest blocks (and copy buffers) are this long.
pub const BLOCK_SIZE_BYTES: usize = 4 << 20;

static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

/// Which digest to compute over the copied content.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// BLAKE3 block digest (the default: fastest, zero blocks free).
    #[default]
    Blake3,
    /// Plain SHA-256 of the content.
    Sha256,
    /// Plain SHA-1 of the content.
    Sha1,
    /// No digest.
    None,
}

impl Algorithm {
    /// The name used in options and records.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Blake3 => "blake3",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
            Algorithm::None => "none",
        }
    }
}

/// An incremental content digest fed block by block.
pub enum ContentHasher {
    /// See the module docs.
    Blake3 {
        /// Hasher over the block hashes.
        outer: Box<blake3::Hasher>,
        /// Hash of a full all-zero block.
        zero_block: blake3::Hash,
        /// Content bytes seen.
        length_bytes: u64,
    },
    /// Plain SHA-256.
    Sha256(sha2::Sha256),
    /// Plain SHA-1.
    Sha1(sha1::Sha1),
    /// Nothing.
    None,
}

impl ContentHasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Blake3 => ContentHasher::Blake3 {
                outer: Box::new(blake3::Hasher::new()),
                zero_block: blake3::hash(&vec![0; BLOCK_SIZE_BYTES]),
                length_bytes: 0,
            },
            Algorithm::Sha256 => ContentHasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha1 => ContentHasher::Sha1(sha1::Sha1::new()),
            Algorithm::None => ContentHasher::None,
        }
    }

    /// Adds one block of content. Every block but the last must be [`BLOCK_SIZE_BYTES`] long.
    pub fn block(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Blake3 {
                outer,
                length_bytes,
                ..
            } => {
                outer.update(blake3::hash(data).as_bytes());
                *length_bytes += data.len() as u64;
            }
            ContentHasher::Sha256(hasher) => hasher.update(data),
            ContentHasher::Sha1(hasher) => hasher.update(data),
            ContentHasher::None => {}
        }
    }

    /// Adds one block of `length` zero bytes (same rule on lengths as [`Self::block`]).
    pub fn zero_block(&mut self, length: usize) {
        match self {
            ContentHasher::Blake3 {
                outer,
                zero_block,
                length_bytes,
            } => {
                let hash = if length == BLOCK_SIZE_BYTES {
                    *zero_block
                } else {
                    blake3::hash(&vec![0; length])
                };
                outer.update(hash.as_bytes());
                *length_bytes += length as u64;
            }
            ContentHasher::Sha256(hasher) => feed_zeros(length, |zeros| hasher.update(zeros)),
            ContentHasher::Sha1(hasher) => feed_zeros(length, |zeros| hasher.update(zeros)),
            ContentHasher::None => {}
        }
    }

    /// The hex digest (`None` for [`Algorithm::None`]).
    pub fn finish(self) -> Option<String> {
        match self {
            ContentHasher::Blake3 {
                mut outer,
                length_bytes,
                ..
            } => {
                outer.update(&length_bytes.to_le_bytes());
                Some(outer.finalize().to_hex().to_string())
            }
            ContentHasher::Sha256(hasher) => Some(hex::encode(hasher.finalize())),
            ContentHasher::Sha1(hasher) => Some(hex::encode(hasher.finalize())),
            ContentHasher::None => None,
        }
    }
}

/// Calls `update` with slices of zeros adding up to `length` bytes.
fn feed_zeros(length: usize, mut update: impl FnMut(&[u8])) {
    let mut left = length;
    while left > 0 {
        let step = left.min(ZEROS.len());
        update(&ZEROS[..step]);
        left -= step;
    }
}

/// One block for the hashing thread; data buffers come back through the return channel.
pub enum Block {
    /// Content bytes (`length` valid bytes at the start of the buffer).
    Data { buffer: Vec<u8>, length: usize },
    /// `length` zero bytes.
    Zeros { length: usize },
}

/// A [`ContentHasher`] running on its own thread, fed through a channel so hashing overlaps
/// reading and writing.
pub struct HashWorker {
    blocks: mpsc::SyncSender<Block>,
    thread: thread::JoinHandle<Option<String>>,
}

impl HashWorker {
    /// Starts the thread; hashed data buffers are sent back on `recycle` for reuse.
    pub fn start(algorithm: Algorithm, recycle: mpsc::Sender<Vec<u8>>) -> Self {
        let (blocks, received) = mpsc::sync_channel::<Block>(4);
        let thread = thread::spawn(move || {
            let mut hasher = ContentHasher::new(algorithm);
            for block in received {
                match block {
                    Block::Data { buffer, length } => {
                        hasher.block(&buffer[..length]);
                        let _ = recycle.send(buffer);
                    }
                    Block::Zeros { length } => hasher.zero_block(length),
                }
            }
            hasher.finish()
        });
        Self { blocks, thread }
    }

    /// Queues one block (blocks while the queue is full).
    pub fn send(&self, block: Block) {
        // The worker only stops when the sender is dropped, so sending cannot fail.
        let _ = self.blocks.send(block);
    }

    /// Waits for every queued block and returns the hex digest.
    pub fn finish(self) -> Option<String> {
        drop(self.blocks);
        self.thread.join().unwrap_or(None)
    }
}

/// True when every byte of `data` is zero (compares 16 bytes at a time).
pub fn is_zero(data: &[u8]) -> bool {
    // SAFETY: u128 has no invalid bit patterns; align_to only reinterprets aligned bytes.
    let (head, middle, tail) = unsafe { data.align_to::<u128>() };
    head.iter().all(|&b| b == 0) && middle.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(algorithm: Algorithm, blocks: &[Option<&[u8]>]) -> Option<String> {
        let mut hasher = ContentHasher::new(algorithm);
        for block in blocks {
            match block {
                Some(data) => hasher.block(data),
                None => hasher.zero_block(BLOCK_SIZE_BYTES),
            }
        }
        hasher.finish()
    }

    #[test]
    fn sha256_and_sha1_are_the_plain_digests() {
        // Known values: sha256("abc"), sha1("abc").
        assert_eq!(
            digest(Algorithm::Sha256, &[Some(b"abc")]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest(Algorithm::Sha1, &[Some(b"abc")]).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn zero_blocks_hash_like_zero_data() {
        let zeros = vec![0u8; BLOCK_SIZE_BYTES];
        for algorithm in [Algorithm::Blake3, Algorithm::Sha256, Algorithm::Sha1] {
            assert_eq!(
                digest(algorithm, &[None, Some(b"tail")]),
                digest(algorithm, &[Some(&zeros), Some(b"tail")]),
                "{algorithm:?}"
            );
        }
        let mut short = ContentHasher::new(Algorithm::Blake3);
        short.zero_block(10);
        assert_eq!(short.finish(), digest(Algorithm::Blake3, &[Some(&[0; 10])]));
    }

    #[test]
    fn blake3_block_digest_depends_on_content_and_length() {
        let a = digest(Algorithm::Blake3, &[Some(b"abc")]).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(Some(a.clone()), digest(Algorithm::Blake3, &[Some(b"abd")]));
        assert_ne!(
            digest(Algorithm::Blake3, &[Some(&[0; 10])]),
            digest(Algorithm::Blake3, &[Some(&[0; 11])])
        );
        assert_eq!(digest(Algorithm::None, &[Some(b"abc")]), None);
    }

    #[test]
    fn worker_thread_gives_the_same_digest_and_returns_buffers() {
        let (recycle, returned) = mpsc::channel();
        let worker = HashWorker::start(Algorithm::Sha256, recycle);
        let mut buffer = vec![0u8; 8];
        buffer[..3].copy_from_slice(b"abc");
        worker.send(Block::Data { buffer, length: 3 });
        assert_eq!(
            worker.finish().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(returned.recv().unwrap().len(), 8);
    }

    #[test]
    fn zero_detection() {
        let mut data = vec![0u8; 4099];
        assert!(is_zero(&data));
        for position in [0, 1, 17, 4098] {
            data[position] = 1;
            assert!(!is_zero(&data), "{position}");
            data[position] = 0;
        }
        assert!(is_zero(&[]));
    }
}
