//! Flannel outside Talos: the upstream manifest pinned to a release, edited to the cluster's
//! network by generated kustomize patches. On Talos the built-in Flannel is switched on with a machine-config patch.

use crate::context::FLANNEL_VERSION;

pub fn manifest_url() -> String {
    format!(
        "https://github.com/flannel-io/flannel/releases/download/{FLANNEL_VERSION}/kube-flannel.yml"
    )
}

/// A kustomize patch of the manifest's ConfigMap: net-conf.json with the cluster's network.
pub fn net_conf_patch(network: &str) -> serde_json::Value {
    let net_conf = serde_json::json!({
        "Network": network,
        "EnableNFTables": false,
        "Backend": {"Type": "vxlan"},
    });
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
        "data": {"net-conf.json": net_conf.to_string()},
    })
}

/// A kustomize patch of the manifest's DaemonSet: run only on nodes labelled `key=value`.
pub fn node_selector_patch(key: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
        "spec": {"template": {"spec": {"nodeSelector": {key: value}}}},
    })
}
