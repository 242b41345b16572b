//! OCI images written without a container daemon: [`Layer`] collects files (host binaries with
//! their shared-library closure, generated files, symlinks, directories) as a deterministic tar,
//! [`build`] turns layers and a run configuration into blobs, a manifest and an index, and
//! [`write_archive`] / [`write_layout`] store them as an OCI image archive (`ctr images import`,
//! `podman load`) or an OCI image layout directory (`skopeo copy oci:DIR ...`). Used by the lab
//! for its images and by `cniswap image` for the image users run.

mod archive;
mod closure;
mod layer;
pub mod tools;

use std::path::{Path, PathBuf};

pub use archive::{
    ArchiveInfo, Blob, BuiltImage, RunConfig, build, read_archive, write_archive, write_layout,
};
pub use closure::{LddLine, parse_ldd, shared_library_closure};
pub use layer::Layer;

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
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
