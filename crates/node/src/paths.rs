//! Paths the node agent reads, moves and restores, kept where they belong.
//!
//! The agent runs as root. Directories taken from configs on the node (containerd's
//! `conf_dir`/`bin_dir`) are resolved like the host would resolve them, but inside `--root`
//! (`..` stops at the root, a symbolic link is followed within it); paths in a backup manifest
//! are untrusted input: relative, without `..`, and never through a symbolic link, checked
//! before anything is touched. Files are read only when they are regular files (a FIFO would
//! block the agent forever).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Files the agent reads (configs, `comm`, `subnet.env`) are small; anything larger is not
/// one of them.
const MAX_READ: u64 = 4 << 20;

/// Reads a text file if it is a regular file (opened without blocking, checked on the open
/// file); `None` for anything else, a missing file, or a file over 4 MiB.
pub fn read_regular(path: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.file_type().is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_READ + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= MAX_READ).then_some(text)
}

/// What a path is when it is not a regular file, for an inventory's `why`.
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() || ft.is_dir() || ft.is_symlink() {
        None
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("a device")
    }
}

/// Resolves `path` (from a config on the node, absolute or not) the way the host would, but
/// inside `root`: `..` never leaves the root and symbolic links are followed within it. Returns
/// the resolved path relative to the root, with no symbolic link in it.
pub fn confine(root: &Path, path: &str) -> Result<String, String> {
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(&candidate).map_err(|e| e.to_string())?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(part),
        }
    }
    Ok(resolved.join("/"))
}

/// `path` normalised without the filesystem: `.` dropped, `..` removing a component but never
/// going above the root.
pub fn lexical(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in components(path) {
        match part.as_str() {
            "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out.join("/")
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A path from a backup manifest: relative, normal components only (no `..`, `.`, empty or
/// absolute parts).
pub fn safe_relative(path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if path.starts_with('/') {
        return Err("is absolute".into());
    }
    let relative = Path::new(path);
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("has a `{part}` component"));
        }
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("is not a plain relative path".into());
    }
    Ok(relative.to_path_buf())
}

/// Checks that no existing component of `base/relative` (the last one included unless
/// `last_may_be_link`) is a symbolic link, and that every existing parent is a directory.
pub fn no_links_below(base: &Path, relative: &Path, last_may_be_link: bool) -> Result<(), String> {
    let parts: Vec<_> = relative.components().collect();
    let mut current = base.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        current.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&current) {
            Err(_) => return Ok(()),
            Ok(meta) if meta.file_type().is_symlink() => {
                if last && last_may_be_link {
                    return Ok(());
                }
                return Err(format!(
                    "{} is a symbolic link: cniswap never writes or moves through one",
                    current.display()
                ));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(format!("{} is not a directory", current.display()));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Whether a directory (relative to the root) is a CNI plugin or config directory: one with a
/// `cni` component (`opt/cni/bin`, `usr/libexec/cni`, `etc/cni/net.d`, k3s's
/// `.../agent/etc/cni/net.d`), or the binary directory k3s and RKE2 unpack their bundled
/// plugins into (`var/lib/rancher/<k3s|rke2>/data/<version>/bin`). `usr/bin` is not.
pub fn is_cni_dir(relative: &str) -> bool {
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    if parts.contains(&"cni") {
        return true;
    }
    matches!(
        parts.as_slice(),
        ["var", "lib", "rancher", "k3s" | "rke2", "data", _, "bin"]
    )
}

/// Whether a plugin directory is the one k3s or RKE2 unpack their bundled plugins into: its
/// files are the distribution's (links to its multi-call binary), never a CNI's to remove.
pub fn is_distribution_bin_dir(relative: &str) -> bool {
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    matches!(
        parts.as_slice(),
        ["var", "lib", "rancher", "k3s" | "rke2", "data", _, "bin"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dirs_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(confine(r, "/opt/cni/bin").unwrap(), "opt/cni/bin");
        assert_eq!(
            confine(r, "/opt/cni/../../../../usr/bin").unwrap(),
            "usr/bin"
        );
        assert_eq!(confine(r, "../../etc").unwrap(), "etc");
        std::fs::create_dir_all(r.join("opt/cni")).unwrap();
        // An absolute link resolves against the root, not the agent's own filesystem.
        std::os::unix::fs::symlink("/usr/bin", r.join("opt/cni/bin")).unwrap();
        assert_eq!(confine(r, "/opt/cni/bin").unwrap(), "usr/bin");
        std::os::unix::fs::symlink("../../../../../../tmp", r.join("opt/up")).unwrap();
        assert_eq!(confine(r, "/opt/up/x").unwrap(), "tmp/x");
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(confine(r, "/loop/x").is_err());
    }

    #[test]
    fn backup_paths_are_plain_relative_paths() {
        assert!(safe_relative("etc/cni/net.d/10-flannel.conflist").is_ok());
        for bad in [
            "../X/evil.conf",
            "../../victim.txt",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "./a",
            "",
            "a/\0",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_in_the_way_are_found() {
        let base = tempfile::tempdir().unwrap();
        let b = base.path();
        std::fs::create_dir_all(b.join("etc/cni")).unwrap();
        std::os::unix::fs::symlink("/tmp", b.join("etc/cni/net.d")).unwrap();
        assert!(no_links_below(b, Path::new("etc/cni/net.d/x.conf"), false).is_err());
        assert!(no_links_below(b, Path::new("etc/cni/net.d"), true).is_ok());
        assert!(no_links_below(b, Path::new("etc/cni/new/x"), false).is_ok());
    }

    #[test]
    fn cni_dirs() {
        for dir in [
            "opt/cni/bin",
            "usr/libexec/cni",
            "etc/cni/net.d",
            "var/lib/rancher/k3s/data/current/bin",
        ] {
            assert!(is_cni_dir(dir), "{dir}");
        }
        for dir in ["usr/bin", "bin", "usr/local/bin", "etc", ""] {
            assert!(!is_cni_dir(dir), "{dir}");
        }
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("10-evil.conflist");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let start = std::time::Instant::now();
        assert_eq!(read_regular(&fifo), None);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(not_regular(&fifo), Some("a FIFO"));
        std::fs::write(dir.path().join("a"), "x").unwrap();
        assert_eq!(read_regular(&dir.path().join("a")).as_deref(), Some("x"));
    }
}
