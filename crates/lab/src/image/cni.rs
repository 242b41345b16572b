//! Images of the CNIs a plan can install (Cilium, Calico), named as a registry mirror would
//! hold them: `lab.cniswap.local/<upstream repository>:<upstream tag>`, so that a plan made with
//! `--image-registry lab.cniswap.local` finds them as a firewalled user's mirror would.
//!
//! | image | contents |
//! |---|---|
//! | cilium/cilium | cilium-agent, cilium-dbg, cilium-health-responder, /opt/cni/bin/cilium-cni, /cni/loopback, the chart's scripts, the datapath sources at /var/lib/cilium/bpf, clang-19 as clang, iptables (both), ipset, ip, bash, busybox |
//! | cilium/operator-generic | cilium-operator-generic |
//! | calico/node | /bin/calico-node, a start script in place of runit, iptables (both), ipset, conntrack, busybox |
//! | calico/cni | /opt/cni/bin: install, calico, calico-ipam, portmap, bandwidth, loopback, host-local |
//! | calico/kube-controllers | kube-controllers, check-status |
//! | calico/flannel-migration-controller | the same plus kubectl (the controller runs it) |

use std::path::Path;

use super::RunConfig;
use super::host::{add_busybox, add_iptables, busybox_path, find_tool};
use super::lab::{Image, cached_as, config};
use super::{ImageError, Layer};
use crate::components::{CALICO_VERSION, CILIUM_VERSION, CniComponents};

/// The registry host every CNI image is named under (never contacted: images are imported).
pub const MIRROR: &str = "lab.cniswap.local";

/// Where Debian's clang-19 is (the agent compiles its datapath with it at run time; Debian's
/// default clang 14 is older than Cilium's minimum, 18.1).
const CLANG: &str = "/usr/lib/llvm-19/bin/clang";
/// Reference CNI plugins from Debian's containernetworking-plugins.
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// `lab.cniswap.local/<repository>:<tag>`.
pub fn mirrored(repository: &str, tag: &str) -> String {
    format!("{MIRROR}/{repository}:{tag}")
}

/// Tools a CNI's node pod runs besides its own binaries.
fn node_tools(layer: &mut Layer) -> Result<(), ImageError> {
    add_busybox(layer, &busybox_path()?)?;
    add_iptables(layer)?;
    layer.host_binary(&find_tool("ipset", "ipset")?, "/usr/sbin/ipset")?;
    Ok(())
}

/// Cilium's agent image (the chart runs every agent container and init container from it).
pub fn cilium(cache_root: &Path, cni: &CniComponents) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    node_tools(&mut layer)?;
    // The chart's scripts are bash scripts; the agent execs iproute2's ip, not busybox's.
    layer.host_binary(&find_tool("bash", "bash")?, "/bin/bash")?;
    layer.host_binary(&find_tool("ip", "iproute2")?, "/usr/sbin/ip")?;
    let clang = Path::new(CLANG);
    if !clang.is_file() {
        return Err(ImageError::MissingHostTool {
            name: "clang (19)".into(),
            package: "clang-19".into(),
            searched: CLANG.into(),
        });
    }
    // At its own path, where its RPATH ($ORIGIN/../lib) finds libclang-cpp; on PATH by a link.
    layer.host_binary(clang, CLANG)?;
    layer.symlink("/usr/local/bin/clang", CLANG)?;
    for (binary, at) in [
        (&cni.cilium_agent, "/usr/bin/cilium-agent"),
        (&cni.cilium_dbg, "/usr/bin/cilium-dbg"),
        (
            &cni.cilium_health_responder,
            "/usr/bin/cilium-health-responder",
        ),
        (&cni.cilium_cni, "/opt/cni/bin/cilium-cni"),
    ] {
        layer.host_binary(&binary.path, at)?;
    }
    layer.host_file(
        &Path::new(REFERENCE_PLUGINS).join("loopback"),
        "/cni/loopback",
    )?;
    let module = &cni.cilium_module;
    for (file, at) in [
        ("plugins/cilium-cni/install-plugin.sh", "/install-plugin.sh"),
        ("plugins/cilium-cni/cni-uninstall.sh", "/cni-uninstall.sh"),
        ("images/cilium/init-container.sh", "/init-container.sh"),
    ] {
        // Executable: the module cache keeps them read-only and without the exec bit.
        let path = module.join(file);
        let script = std::fs::read(&path).map_err(|e| ImageError::Io { path, source: e })?;
        layer.bytes(at, script, 0o755)?;
    }
    layer.host_tree(&module.join("bpf"), "/var/lib/cilium/bpf")?;
    layer.dir("/var/run/cilium", 0o755)?;
    cached_as(
        cache_root,
        "cilium",
        &mirrored("cilium/cilium", CILIUM_VERSION),
        &layer,
        &config(&[], &["cilium-agent"]),
    )
}

/// Cilium's operator for any cloud ("generic").
pub fn cilium_operator(cache_root: &Path, cni: &CniComponents) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    layer.host_binary(
        &cni.cilium_operator.path,
        "/usr/bin/cilium-operator-generic",
    )?;
    layer.dir("/tmp", 0o1777)?;
    cached_as(
        cache_root,
        "cilium-operator",
        &mirrored("cilium/operator-generic", CILIUM_VERSION),
        &layer,
        &config(&[], &["cilium-operator-generic"]),
    )
}

/// What the upstream calico/node image's runit services do in VXLAN mode (no BIRD, no confd):
/// start-up, then tunnel addresses, address monitoring, status reports and the CNI token
/// watcher beside Felix. A helper that dies is restarted; Felix exiting ends the container, and
/// the kubelet restarts it.
const CALICO_NODE_START: &str = r#"#!/bin/sh
set -e
export FELIX_FELIXHOSTNAME="${FELIX_FELIXHOSTNAME:-$NODENAME}"
/bin/calico-node -startup
keep() { while true; do /bin/calico-node "$@" || true; sleep 2; done; }
keep -allocate-tunnel-addrs &
keep -monitor-addresses &
keep -status-reporter &
keep -monitor-token &
exec /bin/calico-node -felix
"#;

/// Calico's node image.
pub fn calico_node(cache_root: &Path, cni: &CniComponents) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    node_tools(&mut layer)?;
    layer.host_binary(&find_tool("conntrack", "conntrack")?, "/usr/sbin/conntrack")?;
    layer.host_binary(&cni.calico_node.path, "/bin/calico-node")?;
    layer.bytes("/usr/local/bin/start-calico-node", CALICO_NODE_START, 0o755)?;
    for dir in ["/var/run/calico", "/var/lib/calico", "/etc/calico"] {
        layer.dir(dir, 0o755)?;
    }
    cached_as(
        cache_root,
        "calico-node",
        &mirrored("calico/node", CALICO_VERSION),
        &layer,
        &config(&["/usr/local/bin/start-calico-node"], &[]),
    )
}

/// Calico's CNI image: `install` copies everything in its /opt/cni/bin to the node.
pub fn calico_cni(cache_root: &Path, cni: &CniComponents) -> Result<Image, ImageError> {
    let mut layer = Layer::new();
    layer.host_binary(&cni.calico_install.path, "/opt/cni/bin/install")?;
    // calico-ipam is the same program; it dispatches on its name.
    layer.host_binary(&cni.calico_cni.path, "/opt/cni/bin/calico")?;
    layer.host_binary(&cni.calico_cni.path, "/opt/cni/bin/calico-ipam")?;
    for plugin in ["portmap", "bandwidth", "loopback", "host-local"] {
        layer.host_binary(
            &Path::new(REFERENCE_PLUGINS).join(plugin),
            &format!("/opt/cni/bin/{plugin}"),
        )?;
    }
    layer.dir("/tmp", 0o1777)?;
    cached_as(
        cache_root,
        "calico-cni",
        &mirrored("calico/cni", CALICO_VERSION),
        &layer,
        &config(&["/opt/cni/bin/install"], &[]),
    )
}

fn kube_controllers_layer(cni: &CniComponents) -> Result<Layer, ImageError> {
    let mut layer = Layer::new();
    layer.host_binary(
        &cni.calico_kube_controllers.path,
        "/usr/bin/kube-controllers",
    )?;
    layer.host_binary(&cni.calico_check_status.path, "/usr/bin/check-status")?;
    // kube-controllers writes its status here for check-status.
    layer.dir("/status", 0o777)?;
    layer.dir("/tmp", 0o1777)?;
    Ok(layer)
}

fn kube_controllers_config() -> RunConfig {
    config(&["/usr/bin/kube-controllers"], &[])
}

/// Calico's kube-controllers.
pub fn calico_kube_controllers(
    cache_root: &Path,
    cni: &CniComponents,
) -> Result<Image, ImageError> {
    cached_as(
        cache_root,
        "calico-kube-controllers",
        &mirrored("calico/kube-controllers", CALICO_VERSION),
        &kube_controllers_layer(cni)?,
        &kube_controllers_config(),
    )
}

/// Calico's Flannel migration controller: kube-controllers run with
/// `ENABLED_CONTROLLERS=flannelmigration`, which cordons, drains and labels nodes with kubectl.
pub fn calico_flannel_migration(
    cache_root: &Path,
    cni: &CniComponents,
) -> Result<Image, ImageError> {
    let mut layer = kube_controllers_layer(cni)?;
    // The kubectl Calico's own image carries (1.29): the controller uses flags newer ones lack.
    layer.host_binary(&cni.calico_kubectl.path, "/usr/bin/kubectl")?;
    cached_as(
        cache_root,
        "calico-flannel-migration-controller",
        &mirrored("calico/flannel-migration-controller", CALICO_VERSION),
        &layer,
        &kube_controllers_config(),
    )
}

/// Every CNI image, reporting each through `progress`.
pub fn all(
    cache_root: &Path,
    cni: &CniComponents,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Image>, ImageError> {
    progress("image cilium (with clang-19 and the datapath sources)");
    let mut images = vec![cilium(cache_root, cni)?];
    progress("image cilium operator-generic");
    images.push(cilium_operator(cache_root, cni)?);
    progress("images calico node, cni, kube-controllers, flannel-migration-controller");
    images.push(calico_node(cache_root, cni)?);
    images.push(calico_cni(cache_root, cni)?);
    images.push(calico_kube_controllers(cache_root, cni)?);
    images.push(calico_flannel_migration(cache_root, cni)?);
    Ok(images)
}
