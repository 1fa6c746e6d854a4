//! The destination's size: how big it is, whether the image fits, how far to extend it.

use super::progress::human_bytes;
use crate::privilege::Access;
use std::io::{Seek, SeekFrom};
use std::path::Path;

const GIB: u64 = 1 << 30;

/// The image does not fit the destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error on volume size: the selected image (size {image}) doesn't fit the target volume (size {target}); set extend: true to extend the volume to {extend_to}", image = human_exact(*.image_bytes), target = human_exact(*.target_bytes), extend_to = human_exact(extend_size_bytes(*.image_bytes)))]
pub struct TooSmall {
    /// Virtual size of the image.
    pub image_bytes: u64,
    /// Size of the destination.
    pub target_bytes: u64,
}

/// What to do about the destination's size before copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizePlan {
    /// The image fits as is.
    Fits,
    /// Extend the destination to this many bytes first.
    Extend {
        /// New size of the destination.
        to_bytes: u64,
    },
}

/// Decides whether an image of `image_bytes` can go onto a target of `target_bytes`.
pub fn plan(image_bytes: u64, target_bytes: u64, extend: bool) -> Result<SizePlan, TooSmall> {
    if image_bytes <= target_bytes {
        Ok(SizePlan::Fits)
    } else if extend {
        Ok(SizePlan::Extend {
            to_bytes: extend_size_bytes(image_bytes),
        })
    } else {
        Err(TooSmall {
            image_bytes,
            target_bytes,
        })
    }
}

/// The size a volume is extended to: the image size rounded up to whole GiB, as the
/// original tool did (original-tool §2, `IMAGE_SIZE_GB * 1024**3`).
pub fn extend_size_bytes(image_bytes: u64) -> u64 {
    image_bytes.div_ceil(GIB) * GIB
}

/// Size of a file or block device in bytes (opened with `access`).
pub fn size_of(path: &Path, access: &Access) -> std::io::Result<u64> {
    let mut file = access.open_read(path)?;
    // Block devices report 0 in metadata; seeking to the end works for both.
    file.seek(SeekFrom::End(0))
}

fn human_exact(bytes: u64) -> String {
    format!("{bytes} bytes, {}", human_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_extends_or_refuses_with_the_original_message() {
        assert_eq!(plan(10, 10, false), Ok(SizePlan::Fits));
        assert_eq!(
            plan(GIB + 1, GIB, true),
            Ok(SizePlan::Extend { to_bytes: 2 * GIB })
        );
        let error = plan(3 * GIB, 2 * GIB, false).unwrap_err().to_string();
        assert!(
            error.starts_with("Error on volume size: the selected image (size 3221225472 bytes, 3.0 GiB) doesn't fit the target volume (size 2147483648 bytes, 2.0 GiB)"),
            "{error}"
        );
        assert!(error.contains("extend: true"), "{error}");
    }

    #[test]
    fn extend_rounds_up_to_gib() {
        assert_eq!(extend_size_bytes(GIB), GIB);
        assert_eq!(extend_size_bytes(1), GIB);
        assert_eq!(extend_size_bytes(50 * GIB + 512), 51 * GIB);
    }

    #[test]
    fn size_of_a_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(12345)
            .unwrap();
        assert_eq!(size_of(&path, &Access::Own).unwrap(), 12345);
    }
}
