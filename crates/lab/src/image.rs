//! Container images without a registry: OCI archives written here and imported with
//! `ctr -n k8s.io images import FILE`.
//!
//! [`Layer`] collects files (host binaries with their shared-library closure, generated files,
//! symlinks, directories), [`write_archive`] writes a deterministic OCI image archive, and the
//! functions below build the lab's images into the cache (`<cache>/images/<name>/`), keyed by a
//! digest of everything that goes into them, with references `cniswap.lab/<name>:<version>`.

mod archive;
mod closure;
pub mod cni;
mod host;
mod lab;
mod layer;
mod rust;

use std::path::{Path, PathBuf};

pub use archive::{ArchiveInfo, RunConfig, read_archive, write_archive};
pub use closure::{LddLine, parse_ldd, shared_library_closure};
pub use lab::{
    Image, REGISTRY, all as lab_images, busybox, cniswap, coredns, flannel, kube_proxy, pause,
};
pub use layer::Layer;
pub use rust::{StaticBuild, build_static, workspace_root};

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: needs shared library {library}, which the host's loader cannot find; install the Debian package that ships it", binary.display())]
    MissingLibrary { binary: PathBuf, library: String },
    #[error("ldd {}: {message}", binary.display())]
    Ldd { binary: PathBuf, message: String },
    #[error("bad image path {path:?}: paths are absolute, without `..`")]
    BadPath { path: String },
    #[error("{path} is already {existing} in the layer, cannot also be {new}")]
    Conflict {
        path: String,
        existing: String,
        new: String,
    },
    #[error(
        "host tool {name} not found in {searched}; install Debian package {package} (scripts/test.sh does)"
    )]
    MissingHostTool {
        name: String,
        package: String,
        searched: String,
    },
    #[error("{what}: {message}\n{output}\nhelp: {hint}")]
    Command {
        what: String,
        message: String,
        output: String,
        hint: String,
    },
    #[error("OCI {message}")]
    Spec { message: String },
}

impl ImageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
