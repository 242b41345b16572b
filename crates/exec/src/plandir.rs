//! The plan directory through a directory handle. Someone who can write the directory may plant
//! symbolic links in it (at `journal.jsonl`, `backups/`, a backup file); every file apply reads
//! or writes is therefore opened from the directory's handle one component at a time, never
//! following a link, files it creates are created new (`O_EXCL`), and whole files are written
//! to a new temporary file and renamed into place. Paths come from plan.yaml, so they are
//! checked first: relative, without `..`.

use cniswap_config::limits::Budget;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file that cannot be used, with the file, why, and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    pub path: PathBuf,
    pub message: String,
    pub help: String,
}

impl FileError {
    pub fn new(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        FileError {
            path: path.into(),
            message: message.into(),
            help: help.into(),
        }
    }
}

/// Who may read what cniswap writes: `Private` (0600 files, 0700 directories) for the
/// journal and backups, which hold what the cluster held; `Shared` (0644, 0755) otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Private,
    Shared,
}

impl Access {
    fn file(self) -> Mode {
        Mode::from_raw_mode(match self {
            Access::Private => 0o600,
            Access::Shared => 0o644,
        })
    }
    fn dir(self) -> Mode {
        Mode::from_raw_mode(match self {
            Access::Private => 0o700,
            Access::Shared => 0o755,
        })
    }
}

/// What is at a path, without following a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    File {
        len: u64,
    },
    Dir,
    /// Not a regular file or directory: what it is.
    Other(&'static str),
}

/// Checks a path plan.yaml gives for a file of the plan directory: relative, inside it.
/// `field` names where it came from (`artifacts[2].path`, `step b-1 backup`).
pub fn check_relative(field: &str, path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if path.contains('\0') {
        return Err(format!("{field}: the path contains a NUL byte"));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!(
            "{field}: {path} is an absolute path; a plan's files stay inside its directory"
        ));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "{field}: {path} leads out of the plan directory (`..`)"
        ));
    }
    Ok(())
}

fn what(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

const LINK_HELP: &str = "cniswap never follows links in a plan directory (someone who can write it could point them at any file you can write); remove the link and check who else can write the directory";

/// An open plan directory.
#[derive(Debug, Clone)]
pub struct PlanDir {
    path: PathBuf,
    fd: Arc<OwnedFd>,
    /// Said once to the operator: the directory is another user's, or writable by its group.
    pub warnings: Vec<String>,
}

static TEMP: AtomicU64 = AtomicU64::new(0);

impl PlanDir {
    /// Opens the directory (a link in the path the user gave is the user's choice) and refuses
    /// one that every user may write: anyone could change the plan or plant links in it.
    pub fn open(path: &Path) -> Result<PlanDir, FileError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            FileError::new(
                path,
                format!(
                    "cannot open the plan directory: {}",
                    std::io::Error::from(e)
                ),
                "give the directory `cniswap plan --out-dir DIR` wrote (it holds plan.yaml)",
            )
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(path, e))?;
        let mode = stat.st_mode & 0o7777;
        if mode & 0o002 != 0 {
            return Err(FileError::new(
                path,
                format!(
                    "the plan directory is writable by every user (mode {mode:o}): anyone on this machine could change the plan or its journal"
                ),
                format!("make it yours alone: `chmod 700 {}`", path.display()),
            ));
        }
        let mut warnings = Vec::new();
        let me = rustix::process::geteuid().as_raw();
        if stat.st_uid != me {
            warnings.push(format!(
                "the plan directory {} belongs to uid {}, not to you (uid {me}): its owner can change the plan; cniswap follows no link in it and checks the journal's signatures",
                path.display(),
                stat.st_uid
            ));
        }
        if mode & 0o020 != 0 {
            warnings.push(format!(
                "the plan directory {} is writable by its group (mode {mode:o}); `chmod g-w` keeps it yours",
                path.display()
            ));
        }
        Ok(PlanDir {
            path: path.to_path_buf(),
            fd: Arc::new(fd),
            warnings,
        })
    }

    /// Opens a directory that output files are written into (verify's reports, a `--junit`
    /// file's directory): the same no-link, create-new writes, without the plan directory's
    /// checks of who may write it (a shared /tmp is a fine place for a report).
    pub fn open_for_output(path: &Path) -> Result<PlanDir, FileError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(path, e))?;
        Ok(PlanDir {
            path: path.to_path_buf(),
            fd: Arc::new(fd),
            warnings: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` under the directory, for messages and for tools that take a path.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The directory that holds `rel` and the last component's name, opened one component at
    /// a time without following links; `create` makes missing directories (with that access,
    /// and narrows existing ones to it when it is private).
    fn parent(&self, rel: &str, create: Option<Access>) -> Result<(OwnedFd, String), FileError> {
        check_relative("path", rel).map_err(|m| {
            FileError::new(self.join(rel), m, "make the plan again with `cniswap plan`")
        })?;
        let parts: Vec<String> = Path::new(rel)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(FileError::new(
                self.join(rel),
                "names no file",
                "make the plan again with `cniswap plan`",
            ));
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = rustix::fs::openat(&*self.fd, ".", flags, Mode::empty())
            .map_err(|e| io_error(&self.path, e))?;
        let mut walked = PathBuf::new();
        for part in dirs {
            walked.push(part);
            let opened = match rustix::fs::openat(&dir, part.as_str(), flags, Mode::empty()) {
                Err(Errno::NOENT) if create.is_some() => {
                    let access = create.unwrap_or(Access::Shared);
                    match rustix::fs::mkdirat(&dir, part.as_str(), access.dir()) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_error(&self.path.join(&walked), e)),
                    }
                    rustix::fs::openat(&dir, part.as_str(), flags, Mode::empty())
                }
                other => other,
            };
            let next = opened.map_err(|e| self.open_error(&dir, part, &walked, e))?;
            if create == Some(Access::Private) {
                narrow(&next, &self.path.join(&walked))?;
            }
            dir = next;
        }
        Ok((dir, name.clone()))
    }

    /// Why `name` in `dir` did not open: a link (refused), or the system's reason.
    fn open_error(&self, dir: &OwnedFd, name: &str, rel: &Path, e: Errno) -> FileError {
        let path = self.path.join(rel);
        if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::MLINK)
            && let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        {
            let kind = FileType::from_raw_mode(stat.st_mode);
            if kind == FileType::Symlink {
                return FileError::new(path, "is a symbolic link: refused", LINK_HELP);
            }
            return FileError::new(
                path,
                format!("is {}, where cniswap expected something else", what(kind)),
                "move it away; cniswap writes only its own files into the plan directory",
            );
        }
        io_error(&path, e)
    }

    /// What is at `rel` (a link is an error, never followed).
    pub fn entry(&self, rel: &str) -> Result<Entry, FileError> {
        let (dir, name) = match self.parent(rel, None) {
            Ok(p) => p,
            Err(e) if e.message.contains("No such file") => return Ok(Entry::Missing),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(Entry::Missing),
            Err(e) => Err(io_error(&self.join(rel), e)),
            Ok(stat) => Ok(match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Entry::File {
                    len: u64::try_from(stat.st_size).unwrap_or(0),
                },
                FileType::Directory => Entry::Dir,
                FileType::Symlink => {
                    return Err(FileError::new(
                        self.join(rel),
                        "is a symbolic link: refused",
                        LINK_HELP,
                    ));
                }
                other => Entry::Other(what(other)),
            }),
        }
    }

    /// Reads `rel` whole by the snapshot reader's rules (a regular file within `budget`),
    /// never through a link; `None` when it does not exist.
    pub fn read(&self, rel: &str, budget: Budget) -> Result<Option<Vec<u8>>, FileError> {
        let Some(file) = self.open_read(rel)? else {
            return Ok(None);
        };
        cniswap_snapshot::read_regular(&self.join(rel), file, budget)
            .map(Some)
            .map_err(|e| FileError::new(self.join(rel), e.message.clone(), e.help.clone()))
    }

    fn open_read(&self, rel: &str) -> Result<Option<File>, FileError> {
        let (dir, name) = match self.parent(rel, None) {
            Ok(p) => p,
            Err(e) if e.message.contains("No such file") => return Ok(None),
            Err(e) => return Err(e),
        };
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        match rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.open_error(&dir, &name, Path::new(rel), e)),
        }
    }

    /// Names in the directory `rel` (not followed if it is a link), sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, FileError> {
        let (dir, name) = self.parent(rel.trim_end_matches('/'), None)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty())
            .map_err(|e| self.open_error(&dir, &name, Path::new(rel), e))?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd).map_err(|e| io_error(&self.join(rel), e))? {
            let entry = entry.map_err(|e| io_error(&self.join(rel), e))?;
            let n = entry.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates the directory `rel` (and its parents) if missing.
    pub fn mkdir(&self, rel: &str, access: Access) -> Result<(), FileError> {
        let (dir, name) = self.parent(rel.trim_end_matches('/'), Some(access))?;
        match rustix::fs::mkdirat(&dir, name.as_str(), access.dir()) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_error(&self.join(rel), e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty())
            .map_err(|e| self.open_error(&dir, &name, Path::new(rel), e))?;
        if access == Access::Private {
            narrow(&fd, &self.join(rel))?;
        }
        Ok(())
    }

    /// Creates the directory `rel` fresh (an existing one, or a link, is an error).
    pub fn mkdir_new(&self, rel: &str, access: Access) -> Result<(), FileError> {
        let (dir, name) = self.parent(rel, Some(access))?;
        rustix::fs::mkdirat(&dir, name.as_str(), access.dir())
            .map_err(|e| io_error(&self.join(rel), e))
    }

    /// Removes the directory tree `rel` (links in it are removed, never followed).
    pub fn remove_tree(&self, rel: &str) -> Result<(), FileError> {
        match self.entry(rel)? {
            Entry::Missing => Ok(()),
            Entry::Dir => {
                for name in self.list(rel)? {
                    let child = format!("{}/{name}", rel.trim_end_matches('/'));
                    match self.entry(&child) {
                        Ok(Entry::Dir) => self.remove_tree(&child)?,
                        _ => self.remove(&child)?,
                    }
                }
                let (dir, name) = self.parent(rel.trim_end_matches('/'), None)?;
                rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::REMOVEDIR)
                    .map_err(|e| io_error(&self.join(rel), e))
            }
            _ => self.remove(rel),
        }
    }

    /// Creates `rel` new (`O_EXCL`, never through a link), with a number added to the name if
    /// it exists; returns the file and the name used.
    pub fn create_new(&self, rel: &str, access: Access) -> Result<(File, String), FileError> {
        let (dir, name) = self.parent(rel, Some(access))?;
        let prefix = rel.strip_suffix(name.as_str()).unwrap_or_default();
        for n in 0..100u32 {
            let candidate = if n == 0 {
                name.clone()
            } else {
                format!("{name}.{n}")
            };
            match create_excl(&dir, &candidate, access) {
                Ok(file) => return Ok((file, format!("{prefix}{candidate}"))),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(self.open_error(&dir, &candidate, Path::new(rel), e)),
            }
        }
        Err(FileError::new(
            self.join(rel),
            "a hundred files of this name exist already",
            "move the old ones away",
        ))
    }

    /// Writes `bytes` to `rel` whole: a new temporary file beside it, synced, renamed into
    /// place, the directory synced. With `replace` false an existing file is kept and an
    /// error says so (a backup is never written over).
    pub fn write(
        &self,
        rel: &str,
        bytes: &[u8],
        access: Access,
        replace: bool,
    ) -> Result<(), FileError> {
        self.write_from(rel, &mut &bytes[..], access, replace)
    }

    /// [`PlanDir::write`] of what `from` yields (a tool's output file, copied in).
    pub fn write_from(
        &self,
        rel: &str,
        from: &mut dyn std::io::Read,
        access: Access,
        replace: bool,
    ) -> Result<(), FileError> {
        let (dir, name) = self.parent(rel, Some(access))?;
        let tmp = format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let mut file = create_excl(&dir, &tmp, access)
            .map_err(|e| self.open_error(&dir, &tmp, Path::new(rel), e))?;
        let written = std::io::copy(from, &mut file).and_then(|_| file.sync_all());
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            return Err(FileError::new(
                self.join(rel),
                format!("cannot write: {e}"),
                "check the disk",
            ));
        }
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        // A rename replaces a planted link itself; it never writes through it.
        if let Err(e) = rustix::fs::renameat_with(&dir, tmp.as_str(), &dir, name.as_str(), flags) {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            if e == Errno::EXIST {
                return Err(FileError::new(
                    self.join(rel),
                    "exists already: kept, not written over",
                    "it holds what was saved first; move it away only if you know it is not needed",
                ));
            }
            return Err(io_error(&self.join(rel), e));
        }
        rustix::fs::fsync(&dir).map_err(|e| io_error(&self.join(rel), e))
    }

    /// Opens `rel` for appending, creating it owner-only, never through a link; refuses what is
    /// not a regular file. Returns the file and whether it was created.
    pub fn open_append(&self, rel: &str) -> Result<(File, bool), FileError> {
        let (dir, name) = self.parent(rel, Some(Access::Private))?;
        let flags = OFlags::RDWR
            | OFlags::APPEND
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let (fd, created) = match create_excl_fd(&dir, &name, flags, Access::Private) {
            Ok(fd) => (fd, true),
            Err(Errno::EXIST) => (
                rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty())
                    .map_err(|e| self.open_error(&dir, &name, Path::new(rel), e))?,
                false,
            ),
            Err(e) => return Err(self.open_error(&dir, &name, Path::new(rel), e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(&self.join(rel), e))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(FileError::new(
                self.join(rel),
                format!("{}: only regular files are read", what(kind)),
                "move it away; cniswap writes its journal itself",
            ));
        }
        if created {
            rustix::fs::fsync(&dir).map_err(|e| io_error(&self.join(rel), e))?;
        }
        Ok((File::from(fd), created))
    }

    /// Removes the file `rel` (not through a link); a missing file is fine.
    pub fn remove(&self, rel: &str) -> Result<(), FileError> {
        let (dir, name) = self.parent(rel, None)?;
        match rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_error(&self.join(rel), e)),
        }
    }

    /// Renames `from` to `to` inside the directory (neither through a link), replacing `to`.
    pub fn rename(&self, from: &str, to: &str, access: Access) -> Result<(), FileError> {
        let (a, an) = self.parent(from, None)?;
        let (b, bn) = self.parent(to, Some(access))?;
        rustix::fs::renameat(&a, an.as_str(), &b, bn.as_str())
            .map_err(|e| io_error(&self.join(to), e))?;
        rustix::fs::fsync(&b).map_err(|e| io_error(&self.join(to), e))
    }
}

fn create_excl(dir: &OwnedFd, name: &str, access: Access) -> Result<File, Errno> {
    create_excl_fd(
        dir,
        name,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        access,
    )
    .map(File::from)
}

fn create_excl_fd(
    dir: &OwnedFd,
    name: &str,
    flags: OFlags,
    access: Access,
) -> Result<OwnedFd, Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        flags | OFlags::CREATE | OFlags::EXCL,
        access.file(),
    )?;
    // The umask may have taken bits away; a private file gets exactly its mode.
    if access == Access::Private {
        rustix::fs::fchmod(&fd, access.file())?;
    }
    Ok(fd)
}

/// Makes a directory of ours owner-only (a backups/ directory made by an older cniswap).
fn narrow(fd: &OwnedFd, path: &Path) -> Result<(), FileError> {
    let stat = rustix::fs::fstat(fd).map_err(|e| io_error(path, e))?;
    if stat.st_mode & 0o077 != 0 && stat.st_uid == rustix::process::geteuid().as_raw() {
        rustix::fs::fchmod(fd, Access::Private.dir()).map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

fn io_error(path: &Path, e: Errno) -> FileError {
    FileError::new(
        path,
        std::io::Error::from(e).to_string(),
        "check that the plan directory exists and is writable",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn dir() -> (tempfile::TempDir, PlanDir) {
        let t = tempfile::tempdir().unwrap();
        let d = PlanDir::open(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn paths_out_of_the_directory_are_refused_naming_the_field() {
        assert!(check_relative("artifacts[0].path", "artifacts/a.yaml").is_ok());
        let abs = check_relative("artifacts[0].path", "/etc/shadow").unwrap_err();
        assert!(
            abs.contains("artifacts[0].path") && abs.contains("absolute"),
            "{abs}"
        );
        let up = check_relative("backup", "backups/../../x").unwrap_err();
        assert!(up.contains("`..`"), "{up}");
        assert!(check_relative("backup", "").is_err());
    }

    #[test]
    fn links_are_never_followed() {
        let (t, d) = dir();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "precious").unwrap();
        symlink(&target, t.path().join("journal.jsonl")).unwrap();
        let err = d.open_append("journal.jsonl").unwrap_err();
        assert!(err.message.contains("symbolic link"), "{err}");
        symlink(outside.path(), t.path().join("backups")).unwrap();
        let err = d
            .write("backups/objects.yaml", b"x", Access::Private, false)
            .unwrap_err();
        assert!(err.message.contains("symbolic link"), "{err}");
        let err = d
            .read("journal.jsonl", cniswap_config::limits::MAX_FILE_BYTES)
            .unwrap_err();
        assert!(err.message.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // A dangling link's target is not created either.
        symlink(outside.path().join("new"), t.path().join("tail")).unwrap();
        assert!(
            d.create_new("tail", Access::Private).is_err() || !outside.path().join("new").exists()
        );
        assert!(!outside.path().join("new").exists());
    }

    #[test]
    fn private_files_and_directories_are_owner_only() {
        let (t, d) = dir();
        std::fs::create_dir(t.path().join("backups")).unwrap();
        std::fs::set_permissions(
            t.path().join("backups"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        d.write("backups/a.yaml", b"one", Access::Private, false)
            .unwrap();
        let mode = |p: &str| {
            std::fs::metadata(t.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("backups"), 0o700);
        assert_eq!(mode("backups/a.yaml"), 0o600);
        let err = d
            .write("backups/a.yaml", b"two", Access::Private, false)
            .unwrap_err();
        assert!(err.message.contains("kept"), "{err}");
        assert_eq!(
            std::fs::read(t.path().join("backups/a.yaml")).unwrap(),
            b"one"
        );
        let names = d.list("backups/").unwrap();
        assert_eq!(names, vec!["a.yaml"], "no temporary file left");
    }

    #[test]
    fn a_world_writable_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = PlanDir::open(t.path()).unwrap_err();
        assert!(err.message.contains("every user"), "{err}");
    }

    #[test]
    fn fifos_devices_and_oversized_files_are_refused_fast() {
        let (t, d) = dir();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.path().join("plan.yaml"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = d
            .read("plan.yaml", cniswap_config::limits::MAX_FILE_BYTES)
            .unwrap_err();
        assert!(err.message.contains("FIFO"), "{err}");
        let big = File::create(t.path().join("big")).unwrap();
        big.set_len(3 << 30).unwrap();
        let err = d
            .read("big", cniswap_config::limits::MAX_FILE_BYTES)
            .unwrap_err();
        assert!(err.message.contains("CNISWAP_MAX_FILE_BYTES"), "{err}");
    }
}
