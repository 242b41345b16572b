//! The lab: a real Kubernetes cluster on one machine, for every test that touches a cluster.
//!
//! Upstream components are built from pinned Go modules (`lab/components/`), images are written
//! locally as OCI archives and imported without a registry, and every process, mount, network
//! namespace and cgroup the lab makes is written down as it is made (`DIR/lab.json`), so that
//! `down` removes it all, also from another process or after a crash, and checks that nothing
//! is left.
//!
//! A lab has a control plane on the host (etcd, kube-apiserver, controller-manager, scheduler),
//! optionally kwok for simulated nodes, and real nodes: each a network namespace joined to the
//! lab's bridge plus a private mount namespace running its own containerd and kubelet, with
//! Flannel (VXLAN, the `kube-flannel` DaemonSet as Talos deploys it), kube-proxy (iptables) and
//! CoreDNS installed as a kubeadm cluster has them.

pub mod cni;
pub mod components;
pub mod control_plane;
pub mod dataplane;
pub mod error;
pub mod image;
pub mod kwok;
pub mod manifests;
pub mod network;
pub mod node;
pub mod pki;
pub mod process;
pub mod state;
pub mod status;

mod cluster;
mod down;
mod install;
mod up;

pub use cluster::Cluster;
pub use down::{Leftovers, down, sweep_stale};
pub use error::{LabError, Result};
pub use state::{NodeRecord, State};
pub use status::Status;
pub use up::{Lab, Options, bin_dir, host_tool};

/// kubectl of the lab's Kubernetes release (built with the other components, cached), for
/// tests that go through it (`kubectl cniswap`) and benchmarks that compare with it.
pub fn kubectl() -> Result<std::path::PathBuf> {
    let components = components::ensure(&components::default_cache(), &mut |_| {})?;
    Ok(components.kubectl.path)
}

/// The Service network and the addresses kubeadm would give the API and DNS Services.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const API_SERVICE_IP: &str = "10.96.0.1";
pub const DNS_SERVICE_IP: &str = "10.96.0.10";
/// Flannel's default network, as Talos and kubeadm clusters with Flannel use it.
pub const POD_CIDR: &str = "10.244.0.0/16";
/// For clusters larger than a /16 of /24s allows (kwok benchmarks).
pub const LARGE_POD_CIDR: &str = "10.64.0.0/12";
/// Where labs register themselves, so that a new lab can find and sweep stale ones.
pub const REGISTRY: &str = "/run/cniswap-lab";
