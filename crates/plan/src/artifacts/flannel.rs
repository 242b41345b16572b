//! Flannel outside Talos: the upstream manifest pinned to a release, edited to the cluster's
//! network. On Talos the built-in Flannel is switched on with a machine-config patch.

use crate::context::FLANNEL_VERSION;

pub fn manifest_url() -> String {
    format!(
        "https://github.com/flannel-io/flannel/releases/download/{FLANNEL_VERSION}/kube-flannel.yml"
    )
}

/// The network the upstream manifest's net-conf.json carries.
pub const MANIFEST_NETWORK: &str = "10.244.0.0/16";
