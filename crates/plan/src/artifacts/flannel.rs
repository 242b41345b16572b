//! Flannel outside Talos: the upstream manifest pinned to a release, plus its network config
//! for this cluster. On Talos the built-in Flannel is switched on with a machine-config patch.

use crate::context::FLANNEL_VERSION;
use serde_json::{Value, json};

pub fn manifest_url() -> String {
    format!(
        "https://github.com/flannel-io/flannel/releases/download/{FLANNEL_VERSION}/kube-flannel.yml"
    )
}

/// `kube-flannel-cfg` with the cluster's pod CIDR (FLN002) and a VXLAN port (NOD008).
pub fn config_map(network: &str, port: u16) -> Value {
    let net_conf = format!(
        "{{\n  \"Network\": \"{network}\",\n  \"EnableNFTables\": false,\n  \"Backend\": {{\n    \"Type\": \"vxlan\",\n    \"Port\": {port}\n  }}\n}}\n"
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel", "labels": {"app": "flannel", "tier": "node"}},
        "data": {
            "cni-conf.json": "{\n  \"name\": \"cbr0\",\n  \"cniVersion\": \"0.3.1\",\n  \"plugins\": [\n    {\"type\": \"flannel\", \"delegate\": {\"hairpinMode\": true, \"isDefaultGateway\": true}},\n    {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}\n  ]\n}\n",
            "net-conf.json": net_conf,
        },
    })
}
