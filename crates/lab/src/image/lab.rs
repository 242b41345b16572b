//! The lab's images, built into the cache and named `cniswap.lab/<name>:<version>`.
//!
//! | image | contents | entrypoint |
//! |---|---|---|
//! | pause | our static pause (`cniswap-lab-pause`) at /pause | /pause |
//! | busybox | Debian's busybox-static with its applet links, /tmp | (cmd sh) |
//! | coredns | /coredns | /coredns |
//! | flannel | /opt/bin/flanneld, the CNI plugin at /flannel, iptables (nft + legacy), busybox | /opt/bin/flanneld |
//! | kube-proxy | /usr/local/bin/kube-proxy, iptables (nft + legacy), conntrack, ipset | /usr/local/bin/kube-proxy |
//! | cniswap | /usr/local/bin/cniswap (static), iptables (nft + legacy), nft, ipset, ip, tc, bridge | cniswap |

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::host::{add_busybox, add_iptables, busybox_path, busybox_version, find_tool};
use super::rust::{StaticBuild, build_static};
use super::{ImageError, Layer, hex};
use super::{RunConfig, write_archive};
use crate::components::Components;

/// The registry part of every lab image reference. Nothing is ever pulled from it: the images
/// are imported, and pods use `imagePullPolicy: Never` or `IfNotPresent`.
pub const REGISTRY: &str = "cniswap.lab";

/// An image archive ready for `ctr -n k8s.io images import`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    /// Short name: `pause`, `busybox`, ...
    pub name: String,
    /// `cniswap.lab/<name>:<version>`.
    pub reference: String,
    /// The OCI archive.
    pub archive: PathBuf,
    /// `sha256:...` of the manifest (what `ctr images ls` shows).
    pub manifest_digest: String,
    /// Archive size in bytes.
    pub size: u64,
}

pub(super) fn config(entrypoint: &[&str], cmd: &[&str]) -> RunConfig {
    RunConfig {
        entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..RunConfig::default()
    }
}

/// Writes the image into `<cache>/images/<name>/<tag>-<key>.tar` unless it is already there;
/// `<key>` hashes the reference, the run config and every byte of the layer.
fn cached(
    cache_root: &Path,
    name: &str,
    tag: &str,
    layer: &Layer,
    run: &RunConfig,
) -> Result<Image, ImageError> {
    cached_as(
        cache_root,
        name,
        &format!("{REGISTRY}/{name}:{tag}"),
        layer,
        run,
    )
}

/// [`cached`] under any reference (`reference`'s tag names the archive).
pub(super) fn cached_as(
    cache_root: &Path,
    name: &str,
    reference: &str,
    layer: &Layer,
    run: &RunConfig,
) -> Result<Image, ImageError> {
    let reference = reference.to_string();
    let tag = reference.rsplit(':').next().unwrap_or("latest").to_string();
    let mut hash = Sha256::new();
    hash.update(reference.as_bytes());
    hash.update(format!("{run:?}").as_bytes());
    hash.update(layer.input_digest()?.as_bytes());
    let key = &hex(&hash.finalize())[..12];
    let dir = cache_root.join("images").join(name);
    let archive = dir.join(format!("{tag}-{key}.tar"));
    let record = dir.join(format!("{tag}-{key}.json"));
    let read_record = || -> Option<Image> {
        let image: Image = serde_json::from_slice(&fs::read(&record).ok()?).ok()?;
        (archive.is_file() && image.archive == archive).then_some(image)
    };
    if let Some(image) = read_record() {
        return Ok(image);
    }
    fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| ImageError::io(&lock_path, e))?;
    lock.lock().map_err(|e| ImageError::io(&lock_path, e))?;
    if let Some(image) = read_record() {
        return Ok(image);
    }
    let info = write_archive(&reference, &[layer], run, &archive)?;
    let image = Image {
        name: name.to_string(),
        reference,
        archive: archive.clone(),
        manifest_digest: info.manifest_digest,
        size: info.size,
    };
    let tmp = record.with_extension(format!("json.tmp-{}", std::process::id()));
    let json = serde_json::to_vec_pretty(&image).map_err(|e| ImageError::Spec {
        message: e.to_string(),
    })?;
    fs::write(&tmp, json).map_err(|e| ImageError::io(&tmp, e))?;
    fs::rename(&tmp, &record).map_err(|e| ImageError::io(&record, e))?;
    Ok(image)
}

/// The pause image: our own static pause program (crates/lab-pause),
/// built with cargo for the static target on first use.
pub fn pause(cache_root: &Path) -> Result<Image, ImageError> {
    let binary = build_static(&StaticBuild {
        package: "cniswap-lab-pause".into(),
        bin: "cniswap-lab-pause".into(),
        profile: "release".into(),
    })?;
    let mut layer = Layer::new();
    layer.host_binary(&binary, "/pause")?;
    cached(
        cache_root,
        "pause",
        env!("CARGO_PKG_VERSION"),
        &layer,
        &config(&["/pause"], &[]),
    )
}

/// Debian's busybox-static with every applet linked, tagged with busybox's version.
pub fn busybox(cache_root: &Path) -> Result<Image, ImageError> {
    let busybox = busybox_path()?;
    let version = busybox_version(&busybox)?;
    let mut layer = Layer::new();
    add_busybox(&mut layer, &busybox)?;
    cached(
        cache_root,
        "busybox",
        &version,
        &layer,
        &config(&[], &["sh"]),
    )
}

/// CoreDNS at /coredns, as upstream's image has it (kubeadm's Deployment passes
/// `-conf /etc/coredns/Corefile`).
pub fn coredns(cache_root: &Path, components: &Components) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    layer.host_binary(&components.coredns.path, "/coredns")?;
    layer.dir("/tmp", 0o1777)?;
    cached(
        cache_root,
        "coredns",
        components.coredns.version,
        &layer,
        &config(&["/coredns"], &[]),
    )
}

/// Flannel: flanneld at /opt/bin/flanneld (upstream's path), the CNI plugin at /flannel (where
/// upstream's flannel-cni-plugin image has it, for an init container running
/// `cp -f /flannel /opt/cni/bin/flannel`), busybox for `cp` and a shell, and the iptables tools
/// flanneld runs.
pub fn flannel(cache_root: &Path, components: &Components) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    add_busybox(&mut layer, &busybox_path()?)?;
    layer.host_binary(&components.flanneld.path, "/opt/bin/flanneld")?;
    layer.host_binary(&components.flannel_cni.path, "/flannel")?;
    add_iptables(&mut layer)?;
    layer.dir("/run/flannel", 0o755)?;
    layer.dir("/etc/kube-flannel", 0o755)?;
    cached(
        cache_root,
        "flannel",
        components.flanneld.version,
        &layer,
        &config(&["/opt/bin/flanneld"], &[]),
    )
}

/// kube-proxy at /usr/local/bin/kube-proxy (kubeadm's DaemonSet runs that path) with
/// iptables (nft and legacy), conntrack and ipset.
pub fn kube_proxy(cache_root: &Path, components: &Components) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    layer.host_binary(&components.kube_proxy.path, "/usr/local/bin/kube-proxy")?;
    add_iptables(&mut layer)?;
    layer.host_binary(&find_tool("conntrack", "conntrack")?, "/usr/sbin/conntrack")?;
    layer.host_binary(&find_tool("ipset", "ipset")?, "/usr/sbin/ipset")?;
    layer.dir("/tmp", 0o1777)?;
    layer.dir("/var/lib/kube-proxy", 0o755)?;
    cached(
        cache_root,
        "kube-proxy",
        components.kube_proxy.version,
        &layer,
        &config(&["/usr/local/bin/kube-proxy"], &[]),
    )
}

/// The cniswap image: `binary` (a static build of the cniswap CLI, see [`super::build_static`])
/// at /usr/local/bin/cniswap, entrypoint `cniswap`, tagged with the version the binary reports.
/// Written to `out` (not cached: the binary changes with every build).
pub fn cniswap(binary: &Path, out: &Path) -> Result<Image, ImageError> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| ImageError::io(binary, e))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let version = text
        .split_whitespace()
        .nth(1)
        .filter(|v| output.status.success() && v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or_else(|| ImageError::Command {
            what: format!("{} --version", binary.display()),
            message: "expected \"cniswap X.Y.Z\"".into(),
            output: text.clone() + &String::from_utf8_lossy(&output.stderr),
            hint: "pass the cniswap binary (target/.../cniswap)".into(),
        })?
        .to_string();
    let mut layer = Layer::new();
    layer.host_binary(binary, "/usr/local/bin/cniswap")?;
    // The node agent reads and cleans the node with these (without them its inventory saw no
    // links, routes or firewall: seen on the lab, Flannel's chains stayed on a "clean" node).
    cniswap_oci::tools::add_node_tools(&mut layer)?;
    layer.dir("/tmp", 0o1777)?;
    let reference = format!("{REGISTRY}/cniswap:{version}");
    let info = write_archive(&reference, &[&layer], &config(&["cniswap"], &[]), out)?;
    Ok(Image {
        name: "cniswap".into(),
        reference,
        archive: out.to_path_buf(),
        manifest_digest: info.manifest_digest,
        size: info.size,
    })
}

/// Every lab image except cniswap's (pause, busybox, coredns, flannel, kube-proxy), reporting
/// each one through `progress`.
pub fn all(
    cache_root: &Path,
    components: &Components,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Image>, ImageError> {
    progress("image pause: building the static pause binary (cargo) and its image");
    let mut images = vec![pause(cache_root)?];
    progress("image busybox");
    images.push(busybox(cache_root)?);
    progress("image coredns");
    images.push(coredns(cache_root, components)?);
    progress("image flannel");
    images.push(flannel(cache_root, components)?);
    progress("image kube-proxy");
    images.push(kube_proxy(cache_root, components)?);
    Ok(images)
}
