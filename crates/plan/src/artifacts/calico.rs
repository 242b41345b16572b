//! Calico through the Tigera operator: chart values with the Installation, and for eBPF the
//! services-endpoint ConfigMap and FelixConfiguration (research/calico.md).

use super::merge;
use crate::context::Cluster;
use serde_json::{Value, json};

/// tigera-operator chart values (`installation:` is the Installation spec).
pub fn operator_values(cluster: &Cluster, pool: &str, bpf: bool, user: &[Value]) -> Value {
    let mut installation = json!({
        "cni": {"type": "Calico"},
        "calicoNetwork": {
            "bgp": "Disabled",
            "ipPools": [{"cidr": pool, "encapsulation": "VXLAN", "natOutgoing": "Enabled"}],
            // Never pick cilium_host or another CNI's device (cilium#31273).
            "nodeAddressAutodetectionV4": {"kubernetes": "NodeInternalIP"},
            "linuxDataplane": if bpf { "BPF" } else { "Iptables" },
        },
    });
    if bpf {
        merge(
            &mut installation,
            &json!({"calicoNetwork": {"kubeProxyManagement": "Enabled", "bpfNetworkBootstrap": "Disabled"}}),
        );
    }
    if cluster.talos {
        merge(
            &mut installation,
            &json!({"kubeletVolumePluginPath": "None"}),
        );
    }
    // k3s and RKE2 need forwarding on in the pods' namespaces (Calico's k3s quickstart sets
    // it in the Installation; RKE2's own Calico chart does the same).
    if matches!(
        cluster.facts.platform.kind,
        cniswap_model::PlatformKind::K3s | cniswap_model::PlatformKind::Rke2
    ) {
        merge(
            &mut installation,
            &json!({"calicoNetwork": {"containerIPForwarding": "Enabled"}}),
        );
    }
    let mut values = json!({"installation": installation});
    for u in user {
        merge(&mut values, u);
    }
    values
}

/// Where Felix and the operator reach the API without kube-proxy.
pub fn services_endpoint(cluster: &Cluster) -> Value {
    let (host, port) = match (cluster.kube_prism_port, &cluster.api_endpoint) {
        (Some(port), _) if cluster.talos => ("localhost".to_string(), port.to_string()),
        (_, Some((host, port))) => (host.clone(), port.to_string()),
        _ => ("<api-server-host>".to_string(), "6443".to_string()),
    };
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubernetes-services-endpoint", "namespace": "tigera-operator"},
        "data": {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
    })
}

pub fn felix_configuration() -> Value {
    json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "FelixConfiguration",
        "metadata": {"name": "default"},
        "spec": {"cgroupV2Path": "/sys/fs/cgroup"},
    })
}

/// A kustomize patch of calico.yaml's calico-node DaemonSet: the IP pool calico-node creates
/// at its first start carries the cluster's pod CIDR, VXLAN always, no IP-in-IP (the manifest
/// leaves CALICO_IPV4POOL_CIDR commented out, and then picks 192.168.0.0/16).
pub fn manifest_pool_patch(pod_cidr: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "calico-node", "namespace": "kube-system"},
        "spec": {"template": {"spec": {"containers": [{
            "name": "calico-node",
            "env": [
                {"name": "CALICO_IPV4POOL_CIDR", "value": pod_cidr},
                {"name": "CALICO_IPV4POOL_VXLAN", "value": "Always"},
                {"name": "CALICO_IPV4POOL_IPIP", "value": "Never"},
            ],
        }]}}},
    })
}
