//! The storage domain's NFS mount with `root_squash`: a passthrough FUSE filesystem over the
//! export directory, mounted by the daemon at the domain's mount point. Root is squashed to
//! nobody (65534:65534, no supplementary groups, so only the "other" bits apply); every other
//! caller is checked with its own uid, gid and groups against each file's mode, and what a
//! caller creates is owned by it, as an NFS server exporting with root_squash does.

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo,
    MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What root becomes on a root_squash export.
pub const NOBODY: u32 = 65534;

/// Attributes and entries are never cached: the lab changes the export behind the mount.
const NO_CACHE: Duration = Duration::ZERO;

/// The caller of one request, after squashing.
struct Caller {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Caller {
    fn of(request: &Request) -> Self {
        if request.uid() == 0 {
            return Caller {
                uid: NOBODY,
                gid: NOBODY,
                groups: Vec::new(),
            };
        }
        Caller {
            uid: request.uid(),
            gid: request.gid(),
            groups: supplementary_groups(request.pid()),
        }
    }

    /// Whether the mode of `metadata` grants every bit of `wanted` (r=4, w=2, x=1).
    fn may(&self, metadata: &Metadata, wanted: u32) -> bool {
        let mode = metadata.mode();
        let bits = if self.uid == metadata.uid() {
            mode >> 6
        } else if self.gid == metadata.gid() || self.groups.contains(&metadata.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & wanted == wanted
    }
}

/// The `Groups:` of `/proc/PID/status` (empty when the process is gone).
fn supplementary_groups(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|gid| gid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The passthrough filesystem: inode numbers are the export's, the root's is 1.
pub struct SquashingFs {
    export: PathBuf,
    export_ino: u64,
    paths: Mutex<HashMap<u64, PathBuf>>,
    files: Mutex<HashMap<u64, File>>,
    next_handle: AtomicU64,
}

type Outcome<T> = Result<T, Errno>;

fn errno(error: std::io::Error) -> Errno {
    Errno::from(error)
}

/// Answers a call that makes an entry (mkdir, symlink, ...): its attributes, or the error.
fn reply_entry(reply: ReplyEntry, made: Outcome<(FileAttr, Metadata)>) {
    match made {
        Ok((attr, _)) => reply.entry(&NO_CACHE, &attr, Generation(0)),
        Err(error) => reply.error(error),
    }
}

/// Answers a call that gives nothing back (unlink, rename, fsync, ...): done, or the error.
fn reply_empty(reply: ReplyEmpty, done: Outcome<()>) {
    match done {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(error),
    }
}

impl SquashingFs {
    /// A filesystem that serves `export`.
    pub fn new(export: &Path) -> std::io::Result<Self> {
        let export_ino = std::fs::metadata(export)?.ino();
        Ok(SquashingFs {
            export: export.to_path_buf(),
            export_ino,
            paths: Mutex::new(HashMap::from([(1, export.to_path_buf())])),
            files: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        })
    }

    fn ino_of(&self, metadata: &Metadata) -> u64 {
        match metadata.ino() {
            ino if ino == self.export_ino => 1,
            1 => self.export_ino,
            ino => ino,
        }
    }

    fn path(&self, ino: INodeNo) -> Outcome<PathBuf> {
        let paths = self.paths.lock().expect("paths lock");
        paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn attr(&self, path: &Path) -> Outcome<(FileAttr, Metadata)> {
        let metadata = std::fs::symlink_metadata(path).map_err(errno)?;
        let ino = self.ino_of(&metadata);
        self.paths
            .lock()
            .expect("paths lock")
            .insert(ino, path.to_path_buf());
        Ok((to_attr(ino, &metadata), metadata))
    }

    /// The export path of `name` in directory `parent`, after checking that `caller` may
    /// search `parent` and, when `modify`, change it.
    fn child(
        &self,
        caller: &Caller,
        parent: INodeNo,
        name: &OsStr,
        modify: bool,
    ) -> Outcome<PathBuf> {
        let dir = self.path(parent)?;
        let metadata = std::fs::metadata(&dir).map_err(errno)?;
        let wanted = if modify { 3 } else { 1 };
        if !caller.may(&metadata, wanted) {
            return Err(Errno::EACCES);
        }
        Ok(dir.join(name))
    }

    /// Gives what `caller` created to it (the group of a setgid directory wins).
    fn own(&self, caller: &Caller, path: &Path) -> Outcome<()> {
        let parent_gid = path
            .parent()
            .and_then(|parent| std::fs::metadata(parent).ok())
            .filter(|parent| parent.mode() & 0o2000 != 0)
            .map(|parent| parent.gid());
        std::os::unix::fs::lchown(
            path,
            Some(caller.uid),
            Some(parent_gid.unwrap_or(caller.gid)),
        )
        .map_err(errno)
    }

    fn keep_file(&self, file: File) -> FileHandle {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.files.lock().expect("files lock").insert(handle, file);
        FileHandle(handle)
    }

    fn with_file<T>(
        &self,
        fh: FileHandle,
        use_file: impl FnOnce(&File) -> Outcome<T>,
    ) -> Outcome<T> {
        let files = self.files.lock().expect("files lock");
        let file = files.get(&fh.0).ok_or(Errno::EBADF)?;
        use_file(file)
    }

    fn do_setattr(
        &self,
        caller: &Caller,
        ino: INodeNo,
        change: &AttrChange,
        fh: Option<FileHandle>,
    ) -> Outcome<FileAttr> {
        let path = self.path(ino)?;
        let metadata = std::fs::symlink_metadata(&path).map_err(errno)?;
        let owner = caller.uid == metadata.uid();
        if let Some(mode) = change.mode {
            if !owner {
                return Err(Errno::EPERM);
            }
            std::fs::set_permissions(
                &path,
                std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
            )
            .map_err(errno)?;
        }
        if change.uid.is_some_and(|uid| uid != metadata.uid()) {
            return Err(Errno::EPERM);
        }
        if let Some(gid) = change.gid.filter(|gid| *gid != metadata.gid()) {
            if !owner || !(caller.gid == gid || caller.groups.contains(&gid)) {
                return Err(Errno::EPERM);
            }
            std::os::unix::fs::lchown(&path, None, Some(gid)).map_err(errno)?;
        }
        if let Some(size) = change.size {
            if fh.is_none() && !caller.may(&metadata, 2) {
                return Err(Errno::EACCES);
            }
            let file = OpenOptions::new().write(true).open(&path).map_err(errno)?;
            file.set_len(size).map_err(errno)?;
        }
        if change.atime.is_some() || change.mtime.is_some() {
            if !owner && !caller.may(&metadata, 2) {
                return Err(Errno::EPERM);
            }
            let file = File::open(&path).map_err(errno)?;
            let mut times = std::fs::FileTimes::new();
            if let Some(atime) = change.atime {
                times = times.set_accessed(instant(atime));
            }
            if let Some(mtime) = change.mtime {
                times = times.set_modified(instant(mtime));
            }
            file.set_times(times).map_err(errno)?;
        }
        Ok(self.attr(&path)?.0)
    }
}

/// The changes one `setattr` asks for.
struct AttrChange {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

fn instant(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn to_attr(ino: u64, metadata: &Metadata) -> FileAttr {
    let time = |seconds: i64, nanos: i64| {
        UNIX_EPOCH + Duration::new(seconds.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
    };
    FileAttr {
        ino: INodeNo(ino),
        size: metadata.size(),
        blocks: metadata.blocks(),
        atime: time(metadata.atime(), metadata.atime_nsec()),
        mtime: time(metadata.mtime(), metadata.mtime_nsec()),
        ctime: time(metadata.ctime(), metadata.ctime_nsec()),
        crtime: time(metadata.ctime(), metadata.ctime_nsec()),
        kind: file_type(metadata.file_type()),
        perm: (metadata.mode() & 0o7777) as u16,
        nlink: metadata.nlink() as u32,
        uid: metadata.uid(),
        gid: metadata.gid(),
        rdev: metadata.rdev() as u32,
        blksize: metadata.blksize() as u32,
        flags: 0,
    }
}

fn file_type(kind: std::fs::FileType) -> FileType {
    if kind.is_dir() {
        FileType::Directory
    } else if kind.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

/// The permission bits an open with `flags` needs.
fn open_bits(flags: i32) -> u32 {
    let access = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => 2,
        libc::O_RDWR => 6,
        _ => 4,
    };
    if flags & libc::O_TRUNC != 0 {
        access | 2
    } else {
        access
    }
}

/// Opens the export's file for `flags` (the caller was checked already).
fn open_export(path: &Path, flags: i32, create_mode: Option<u32>) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY => options.write(true),
        libc::O_RDWR => options.read(true).write(true),
        _ => options.read(true),
    };
    options.truncate(flags & libc::O_TRUNC != 0);
    if let Some(mode) = create_mode {
        options.create(true).mode(mode);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        }
    }
    options.open(path)
}

impl fuser::Filesystem for SquashingFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(
            reply,
            self.child(&Caller::of(req), parent, name, false)
                .and_then(|path| self.attr(&path)),
        );
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path(ino).and_then(|path| self.attr(&path)) {
            Ok((attr, _)) => reply.attr(&NO_CACHE, &attr),
            Err(error) => reply.error(error),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.do_setattr(&Caller::of(req), ino, &change, fh) {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(error) => reply.error(error),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .path(ino)
            .and_then(|path| std::fs::read_link(path).map_err(errno))
        {
            Ok(target) => reply.data(target.as_os_str().as_bytes()),
            Err(error) => reply.error(error),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let caller = Caller::of(req);
        let made = self.child(&caller, parent, name, true).and_then(|path| {
            std::fs::create_dir(&path).map_err(errno)?;
            std::fs::set_permissions(
                &path,
                std::os::unix::fs::PermissionsExt::from_mode(mode & !umask & 0o7777),
            )
            .map_err(errno)?;
            self.own(&caller, &path)?;
            self.attr(&path)
        });
        reply_entry(reply, made);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            reply,
            self.child(&Caller::of(req), parent, name, true)
                .and_then(|path| std::fs::remove_file(path).map_err(errno)),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            reply,
            self.child(&Caller::of(req), parent, name, true)
                .and_then(|path| std::fs::remove_dir(path).map_err(errno)),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let caller = Caller::of(req);
        let made = self
            .child(&caller, parent, link_name, true)
            .and_then(|path| {
                std::os::unix::fs::symlink(target, &path).map_err(errno)?;
                self.own(&caller, &path)?;
                self.attr(&path)
            });
        reply_entry(reply, made);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL);
        }
        let caller = Caller::of(req);
        let renamed = self.child(&caller, parent, name, true).and_then(|from| {
            let to = self.child(&caller, newparent, newname, true)?;
            std::fs::rename(&from, &to).map_err(errno)?;
            let mut paths = self.paths.lock().expect("paths lock");
            for path in paths.values_mut() {
                if let Ok(rest) = path.strip_prefix(&from) {
                    *path = to.join(rest);
                }
            }
            Ok(())
        });
        reply_empty(reply, renamed);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let caller = Caller::of(req);
        let opened = self.path(ino).and_then(|path| {
            let metadata = std::fs::metadata(&path).map_err(errno)?;
            if !caller.may(&metadata, open_bits(flags.0)) {
                return Err(Errno::EACCES);
            }
            open_export(&path, flags.0, None).map_err(errno)
        });
        match opened {
            Ok(file) => reply.opened(self.keep_file(file), FopenFlags::empty()),
            Err(error) => reply.error(error),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let read = self.with_file(fh, |file| {
            let mut buffer = vec![0; size as usize];
            let mut filled = 0;
            while filled < buffer.len() {
                match file.read_at(&mut buffer[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(count) => filled += count,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(errno(error)),
                }
            }
            buffer.truncate(filled);
            Ok(buffer)
        });
        match read {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(error),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with_file(fh, |file| file.write_all_at(data, offset).map_err(errno)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(error) => reply.error(error),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().expect("files lock").remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(
            reply,
            self.with_file(fh, |file| file.sync_all().map_err(errno)),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let caller = Caller::of(req);
        let allowed = self.path(ino).and_then(|path| {
            let metadata = std::fs::metadata(path).map_err(errno)?;
            match caller.may(&metadata, 4) {
                true => Ok(()),
                false => Err(Errno::EACCES),
            }
        });
        match allowed {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(error) => reply.error(error),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.path(ino).and_then(|path| {
            let mut entries = vec![
                (ino.0, FileType::Directory, OsStr::new(".").to_owned()),
                (ino.0, FileType::Directory, OsStr::new("..").to_owned()),
            ];
            for entry in std::fs::read_dir(&path).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                let metadata = entry.metadata().map_err(errno)?;
                entries.push((
                    self.ino_of(&metadata),
                    file_type(metadata.file_type()),
                    entry.file_name(),
                ));
            }
            Ok(entries)
        });
        match listed {
            Ok(entries) => {
                for (index, (entry_ino, kind, name)) in
                    entries.iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(*entry_ino), index as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(error) => reply.error(error),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let Ok(path) = CString::new(self.export.as_os_str().as_bytes()) else {
            return reply.error(Errno::EINVAL);
        };
        // SAFETY: statvfs fills the zeroed struct for a valid NUL-terminated path.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return reply.error(errno(std::io::Error::last_os_error()));
        }
        reply.statfs(
            stat.f_blocks,
            stat.f_bfree,
            stat.f_bavail,
            stat.f_files,
            stat.f_ffree,
            stat.f_bsize as u32,
            stat.f_namemax as u32,
            stat.f_frsize as u32,
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let caller = Caller::of(req);
        let allowed = self.path(ino).and_then(|path| {
            let metadata = std::fs::metadata(path).map_err(errno)?;
            match caller.may(&metadata, (mask.bits() & 7) as u32) {
                true => Ok(()),
                false => Err(Errno::EACCES),
            }
        });
        reply_empty(reply, allowed);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let caller = Caller::of(req);
        let created = self.child(&caller, parent, name, true).and_then(|path| {
            let existed = path.exists();
            if existed {
                let metadata = std::fs::metadata(&path).map_err(errno)?;
                if !caller.may(&metadata, open_bits(flags)) {
                    return Err(Errno::EACCES);
                }
            }
            let mode = mode & !umask & 0o7777;
            let file = open_export(&path, flags, Some(mode)).map_err(errno)?;
            if !existed {
                // The caller's umask applies, not the server's.
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(errno)?;
                self.own(&caller, &path)?;
            }
            Ok((self.attr(&path)?.0, file))
        });
        match created {
            Ok((attr, file)) => reply.created(
                &NO_CACHE,
                &attr,
                Generation(0),
                self.keep_file(file),
                FopenFlags::empty(),
            ),
            Err(error) => reply.error(error),
        }
    }
}

/// The mount, for as long as it is held; dropping it unmounts.
pub struct NfsMount {
    session: fuser::BackgroundSession,
}

impl NfsMount {
    /// Mounts `export` at `mount_point` for every user (`allow_other`), replacing a mount that a
    /// crashed daemon left there.
    pub fn mount(remote: &str, export: &Path, mount_point: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        detach(mount_point);
        std::fs::create_dir_all(mount_point)
            .with_context(|| format!("cannot create mount point {}", mount_point.display()))?;
        let filesystem = SquashingFs::new(export)
            .with_context(|| format!("cannot serve export {}", export.display()))?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName(remote.to_string()),
            MountOption::Subtype("he-lab-nfs".into()),
            MountOption::NoSuid,
            MountOption::NoDev,
        ];
        config.acl = fuser::SessionACL::All;
        config.n_threads = Some(2);
        let session = fuser::spawn_mount(filesystem, mount_point, &config).with_context(|| {
            format!(
                "cannot mount the storage domain at {}",
                mount_point.display()
            )
        })?;
        Ok(NfsMount { session })
    }

    /// Unmounts and waits for the filesystem's threads.
    pub fn unmount(self) -> anyhow::Result<()> {
        self.session
            .umount_and_join()
            .map_err(|error| anyhow::anyhow!("cannot unmount the storage domain: {error}"))
    }
}

/// Lazily detaches whatever is mounted at `mount_point` (a dead mount of a crashed daemon
/// answers every access with ENOTCONN); nothing mounted is fine.
pub fn detach(mount_point: &Path) {
    let Ok(path) = CString::new(mount_point.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: umount2 with a valid NUL-terminated path; failure (nothing mounted) is ignored.
    unsafe {
        libc::umount2(path.as_ptr(), libc::MNT_DETACH);
    }
}

/// [`detach`] for every mount point in `mounts` (a host's `/rhev/data-center/mnt`).
pub fn detach_all(mounts: &Path) {
    for entry in std::fs::read_dir(mounts).into_iter().flatten().flatten() {
        detach(&entry.path());
    }
}
