//! Container images without a registry: OCI archives written here and imported with
//! `ctr -n k8s.io images import FILE`.
//!
//! [`Layer`] collects files (host binaries with their shared-library closure, generated files,
//! symlinks, directories), [`write_archive`] writes a deterministic OCI image archive, and the
//! functions below build the lab's images into the cache (`<cache>/images/<name>/`), keyed by a
//! digest of everything that goes into them, with references `cniswap.lab/<name>:<version>`.

pub mod cni;
mod host;
mod lab;
mod rust;

pub use cniswap_oci::{
    ArchiveInfo, ImageError, Layer, LddLine, RunConfig, hex, parse_ldd, read_archive,
    shared_library_closure, write_archive,
};
pub use lab::{
    Image, REGISTRY, all as lab_images, busybox, cniswap, coredns, flannel, kube_proxy, pause,
};
pub use rust::{StaticBuild, build_static, workspace_root};
