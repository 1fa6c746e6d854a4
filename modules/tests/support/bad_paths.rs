//! Paths that a path option must refuse, made once for the path-option tests of every module.

use std::path::{Path, PathBuf};

/// A missing path, a looping symbolic link (open fails with ELOOP, for root too), a directory
/// and a regular file, all in one directory.
pub struct BadPaths {
    pub missing: PathBuf,
    pub looping: PathBuf,
    pub directory: PathBuf,
    pub file: PathBuf,
}

impl BadPaths {
    /// Makes them in `dir` (`missing`, `loop` <-> `loop.other`, `a-dir/`, `a-file`).
    pub fn in_dir(dir: &Path) -> Self {
        let looping = dir.join("loop");
        let other = dir.join("loop.other");
        std::os::unix::fs::symlink(&other, &looping).unwrap();
        std::os::unix::fs::symlink(&looping, &other).unwrap();
        let directory = dir.join("a-dir");
        std::fs::create_dir(&directory).unwrap();
        let file = dir.join("a-file");
        std::fs::write(&file, "x").unwrap();
        BadPaths {
            missing: dir.join("missing"),
            looping,
            directory,
            file,
        }
    }

    /// The three paths an option naming a file to read must refuse, each with the reason the
    /// system gives: missing, a looping link, a directory.
    pub fn unreadable_files(&self) -> [(&Path, &'static str); 3] {
        [
            (&self.missing, "No such file"),
            (&self.looping, "Too many levels of symbolic links"),
            (&self.directory, "Is a directory"),
        ]
    }
}
