//! The engine VM's guest: the OS + engine file tree, and its ext4 disk read and written
//! with e2fsprogs (debugfs), as the VM emulator sees it.

pub mod disk;
pub mod engine_state;
pub mod tree;
