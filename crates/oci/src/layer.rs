//! A filesystem layer: directories, files (from the host or in memory) and symlinks, written as a
//! deterministic tar (sorted paths, owner 0:0, mtime 0), so the same inputs give the same digest.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ImageError;
use super::closure::shared_library_closure;

/// What is at one path of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir {
        mode: u32,
    },
    /// Contents of a host file (symlinks already resolved).
    Host {
        source: PathBuf,
        mode: u32,
    },
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

/// A layer under construction. Paths are absolute image paths (`/usr/sbin/iptables`); missing
/// parent directories are added with mode 0755.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

/// `/usr//sbin/` -> `usr/sbin`; rejects `..` and empty paths.
fn normalize(path: &str) -> Result<String, ImageError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return Err(ImageError::BadPath {
            path: path.to_string(),
        });
    }
    Ok(parts.join("/"))
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), ImageError> {
        let key = normalize(path)?;
        let mut parent = String::new();
        for part in key
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            match self.entries.get(&parent) {
                None => {
                    self.entries
                        .insert(parent.clone(), Entry::Dir { mode: 0o755 });
                }
                Some(Entry::Dir { .. }) => {}
                Some(other) => {
                    return Err(ImageError::Conflict {
                        path: format!("/{parent}"),
                        existing: describe(other),
                        new: "a directory (parent of /".to_string() + &key + ")",
                    });
                }
            }
        }
        match self.entries.get(&key) {
            Some(existing) if *existing == entry => Ok(()),
            // An explicit directory mode wins over an implied parent.
            Some(Entry::Dir { .. }) if matches!(entry, Entry::Dir { .. }) => {
                self.entries.insert(key, entry);
                Ok(())
            }
            Some(existing) => Err(ImageError::Conflict {
                path: format!("/{key}"),
                existing: describe(existing),
                new: describe(&entry),
            }),
            None => {
                self.entries.insert(key, entry);
                Ok(())
            }
        }
    }

    /// A directory with `mode` (e.g. 0o1777 for /tmp).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, ImageError> {
        self.insert(path, Entry::Dir { mode })?;
        Ok(self)
    }

    /// A file with the given contents.
    pub fn bytes(
        &mut self,
        path: &str,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<&mut Self, ImageError> {
        self.insert(
            path,
            Entry::Bytes {
                data: data.into(),
                mode,
            },
        )?;
        Ok(self)
    }

    /// A symlink at `path` pointing to `target` (stored as given).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, ImageError> {
        self.insert(
            path,
            Entry::Symlink {
                target: target.to_string(),
            },
        )?;
        Ok(self)
    }

    /// The contents of host file `host` (symlinks followed) at `path`, with the host's mode.
    pub fn host_file(&mut self, host: &Path, path: &str) -> Result<&mut Self, ImageError> {
        let source = fs::canonicalize(host).map_err(|e| ImageError::io(host, e))?;
        let meta = fs::metadata(&source).map_err(|e| ImageError::io(&source, e))?;
        if !meta.is_file() {
            return Err(ImageError::BadPath {
                path: format!("{} is not a regular file", host.display()),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        self.insert(path, Entry::Host { source, mode })?;
        Ok(self)
    }

    /// A host executable at `path` plus every shared library it loads (and the dynamic loader),
    /// each at the path the host's loader resolves it to. A static binary brings nothing else.
    pub fn host_binary(&mut self, host: &Path, path: &str) -> Result<&mut Self, ImageError> {
        self.host_file(host, path)?;
        self.host_closure(host)
    }

    /// The shared libraries of host file `host` (an executable or a library), at their host paths.
    pub fn host_closure(&mut self, host: &Path) -> Result<&mut Self, ImageError> {
        for library in shared_library_closure(host)? {
            // A library found through an RPATH of $ORIGIN/../lib is reported as
            // `<bin dir>/../lib/...`: the same place, written without `..`.
            let at = without_dot_dot(&library.to_string_lossy());
            self.host_file(&library, &at)?;
        }
        Ok(self)
    }

    /// Every regular file of host directory `dir` (not recursive) with its closure, at the same
    /// path: plugin directories that programs dlopen from, like iptables' extensions.
    pub fn host_plugin_dir(&mut self, dir: &Path) -> Result<&mut Self, ImageError> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| ImageError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let at = file.to_string_lossy().into_owned();
            self.host_file(&file, &at)?;
            self.host_closure(&file)?;
        }
        Ok(self)
    }

    /// Host directory `host` with everything under it (files with their modes, directories,
    /// symlinks as they are), at `path`: source trees such as Cilium's `bpf/`.
    pub fn host_tree(&mut self, host: &Path, path: &str) -> Result<&mut Self, ImageError> {
        let meta = fs::symlink_metadata(host).map_err(|e| ImageError::io(host, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(host).map_err(|e| ImageError::io(host, e))?;
            return self.symlink(path, &target.to_string_lossy());
        }
        if meta.is_file() {
            return self.host_file(host, path);
        }
        self.dir(path, meta.permissions().mode() & 0o7777)?;
        let mut names: Vec<_> = fs::read_dir(host)
            .map_err(|e| ImageError::io(host, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let child = format!("{}/{}", path.trim_end_matches('/'), name.to_string_lossy());
            self.host_tree(&host.join(&name), &child)?;
        }
        Ok(self)
    }

    /// Whether `path` is in the layer.
    pub fn contains(&self, path: &str) -> bool {
        normalize(path).is_ok_and(|k| self.entries.contains_key(&k))
    }

    /// Image paths in the layer, in tar order.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.keys().map(|k| format!("/{k}"))
    }

    /// A digest of everything the tar will contain (paths, modes, contents, link targets),
    /// cheaper than writing it: the cache key of an image.
    pub fn input_digest(&self) -> Result<String, ImageError> {
        let mut hash = Sha256::new();
        for (path, entry) in &self.entries {
            hash.update(path.as_bytes());
            hash.update([0]);
            match entry {
                Entry::Dir { mode } => hash.update(format!("dir {mode:o}\0").as_bytes()),
                Entry::Symlink { target } => hash.update(format!("symlink {target}\0").as_bytes()),
                Entry::Bytes { data, mode } => {
                    hash.update(format!("file {mode:o} {}\0", data.len()).as_bytes());
                    hash.update(data);
                }
                Entry::Host { source, mode } => {
                    let mut file = File::open(source).map_err(|e| ImageError::io(source, e))?;
                    let len = file
                        .metadata()
                        .map_err(|e| ImageError::io(source, e))?
                        .len();
                    hash.update(format!("file {mode:o} {len}\0").as_bytes());
                    let mut buf = vec![0u8; 1 << 16];
                    loop {
                        let n = file.read(&mut buf).map_err(|e| ImageError::io(source, e))?;
                        if n == 0 {
                            break;
                        }
                        hash.update(&buf[..n]);
                    }
                }
            }
        }
        Ok(super::hex(&hash.finalize()))
    }

    /// Writes the layer as an uncompressed tar.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W, ImageError> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            let io_err = |e: io::Error| ImageError::io(Path::new(&format!("/{path}")), e);
            match entry {
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{path}/"), io::empty())
                        .map_err(io_err)?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    tar.append_link(&mut header, path, target).map_err(io_err)?;
                }
                Entry::Bytes { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, path, data.as_slice())
                        .map_err(io_err)?;
                }
                Entry::Host { source, mode } => {
                    let file = File::open(source).map_err(|e| ImageError::io(source, e))?;
                    let len = file
                        .metadata()
                        .map_err(|e| ImageError::io(source, e))?
                        .len();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(len);
                    tar.append_data(&mut header, path, file).map_err(io_err)?;
                }
            }
        }
        tar.into_inner()
            .map_err(|e| ImageError::io(Path::new("<layer tar>"), e))
    }
}

/// `path` with `.` and `..` components resolved lexically.
fn without_dot_dot(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Dir { mode } => format!("a directory (mode {mode:o})"),
        Entry::Host { source, .. } => format!("host file {}", source.display()),
        Entry::Bytes { data, .. } => format!("a generated file of {} bytes", data.len()),
        Entry::Symlink { target } => format!("a symlink to {target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(layer: &Layer) -> Vec<(String, tar::EntryType, u32, u64)> {
        let bytes = layer.write_tar(Vec::new()).expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mode().expect("mode"),
                    h.mtime().expect("mtime"),
                )
            })
            .collect()
    }

    #[test]
    fn rpath_library_paths_lose_their_dot_dot() {
        assert_eq!(
            without_dot_dot("/usr/lib/llvm-19/bin/../lib/libclang-cpp.so.19.1"),
            "/usr/lib/llvm-19/lib/libclang-cpp.so.19.1"
        );
        assert_eq!(without_dot_dot("/lib/./x.so"), "/lib/x.so");
    }

    #[test]
    fn parents_are_implied_and_entries_sorted() {
        let mut layer = Layer::new();
        layer.bytes("/usr/sbin/tool", "x", 0o755).expect("file");
        layer.symlink("/bin/sh", "/bin/busybox").expect("link");
        layer.dir("/tmp", 0o1777).expect("dir");
        let entries = list(&layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/sh",
                "tmp/",
                "usr/",
                "usr/sbin/",
                "usr/sbin/tool"
            ]
        );
        assert_eq!(entries[2].2, 0o1777);
        assert!(entries.iter().all(|e| e.3 == 0), "mtimes are fixed");
        assert_eq!(entries[1].1, tar::EntryType::Symlink);
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_digest() {
        let build = |order: &[&str]| {
            let mut layer = Layer::new();
            for p in order {
                layer.bytes(p, p.as_bytes(), 0o644).expect("file");
            }
            layer
        };
        let a = build(&["/a/x", "/b/y", "/a/z"]);
        let b = build(&["/b/y", "/a/z", "/a/x"]);
        assert_eq!(
            a.write_tar(Vec::new()).expect("tar"),
            b.write_tar(Vec::new()).expect("tar")
        );
        assert_eq!(
            a.input_digest().expect("digest"),
            b.input_digest().expect("digest")
        );
        let c = build(&["/a/x", "/b/y"]);
        assert_ne!(
            a.input_digest().expect("digest"),
            c.input_digest().expect("digest")
        );
    }

    #[test]
    fn conflicting_entries_are_refused_with_both_sides_named() {
        let mut layer = Layer::new();
        layer.bytes("/bin/sh", "one", 0o755).expect("file");
        let err = layer.symlink("/bin/sh", "busybox").unwrap_err().to_string();
        assert!(
            err.contains("/bin/sh") && err.contains("symlink to busybox"),
            "{err}"
        );
        let err = layer
            .bytes("/bin/sh/x", "two", 0o644)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/bin/sh"), "{err}");
        assert!(layer.bytes("/../etc/passwd", "", 0o644).is_err());
        // Adding the same thing twice is fine (two binaries share libc).
        layer
            .bytes("/bin/sh", "one", 0o755)
            .expect("same entry again");
    }

    #[test]
    fn host_binary_brings_its_libraries_and_loader() {
        let mut layer = Layer::new();
        let ls = ["/usr/bin/ls", "/bin/ls"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("ls");
        layer.host_binary(ls, "/bin/ls").expect("closure");
        let paths: Vec<String> = layer.paths().collect();
        assert!(paths.iter().any(|p| p.ends_with("/libc.so.6")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("ld-linux")), "{paths:?}");
    }
}
