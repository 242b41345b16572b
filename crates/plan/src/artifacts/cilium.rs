//! Cilium Helm values: migration values for the dual-overlay rolling procedure and final
//! values (research/cilium.md), with the Talos settings from the Talos guide, and the
//! CiliumNodeConfig that switches nodes one by one.

use super::{Artifacts, merge};
use crate::context::Cluster;
use cniswap_model::CniKind;
use serde_json::{Value, json};

/// A /16 for the migration pool that overlaps nothing in use (`known::free_pool`); plan()
/// refuses before any step is built when there is none.
pub fn distinct_pool(cluster: &Cluster) -> String {
    crate::known::free_pool(cluster)
        .map(|pool| pool.value)
        .unwrap_or_default()
}

/// A tunnel port no source overlay binds (Flannel 8472 or Talos 4789, Calico VXLAN 4789).
pub const MIGRATION_TUNNEL_PORT: u16 = 8473;

/// The pool and tunnel port of a Cilium that already runs beside the old CNI (a migration that
/// was started and stopped half-way, as in seed 002), when they still keep the overlays apart.
/// Resuming with them leaves the pods Cilium already runs untouched; a new pool or port would
/// cut them off from the nodes that get the new settings first.
pub fn running_migration(cluster: &Cluster) -> Option<(String, u16)> {
    let cilium = cluster
        .facts
        .cnis
        .iter()
        .find(|c| c.kind == CniKind::Cilium && c.running)?;
    let mode = cilium.cilium.as_ref()?;
    let tunnel = mode.routing_mode.as_deref().is_none_or(|m| m == "tunnel")
        && mode.tunnel_protocol.as_deref().is_none_or(|p| p == "vxlan");
    if mode.ipam_mode.as_deref() != Some("cluster-pool") || !tunnel {
        return None;
    }
    let pool = cilium.pod_cidrs.first()?.clone();
    let port = mode.tunnel_port?;
    let pool_net: ipnet::IpNet = pool.parse().ok()?;
    let others = cluster
        .facts
        .cnis
        .iter()
        .filter(|c| c.kind != CniKind::Cilium && c.running);
    for other in others {
        let other_port = other.flannel.as_ref().and_then(|f| f.port).unwrap_or(8472);
        if port == other_port || port == 4789 {
            return None;
        }
        let overlaps = other
            .pod_cidrs
            .iter()
            .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
            .any(|c| c.contains(&pool_net.network()) || pool_net.contains(&c.network()));
        if overlaps {
            return None;
        }
    }
    Some((pool, port))
}

/// The migration's pool and port: the running migration's, or a fresh distinct pool and 8473.
pub fn migration_network(cluster: &Cluster) -> (String, u16) {
    running_migration(cluster).unwrap_or_else(|| (distinct_pool(cluster), MIGRATION_TUNNEL_PORT))
}

fn common(cluster: &Cluster, replace_kube_proxy: bool) -> Value {
    let mut values = json!({
        "operator": {"replicas": cluster.nodes.len().clamp(1, 2)},
        "kubeProxyReplacement": replace_kube_proxy,
    });
    if cluster.talos {
        // Talos: no module loading, cgroup2 already mounted (Cilium's Talos guide).
        merge(
            &mut values,
            &json!({
                "securityContext": {"capabilities": {
                    "ciliumAgent": ["CHOWN", "KILL", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "SYS_ADMIN", "SYS_RESOURCE", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
                    "cleanCiliumState": ["NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"],
                }},
                "cgroup": {"autoMount": {"enabled": false}, "hostRoot": "/sys/fs/cgroup"},
            }),
        );
        if let Some(port) = cluster.kube_prism_port {
            merge(
                &mut values,
                &json!({"k8sServiceHost": "localhost", "k8sServicePort": port}),
            );
        }
    } else if let Some((host, port)) = &cluster.api_endpoint {
        // Without kube-proxy the agent cannot use the kubernetes Service to find the API.
        merge(
            &mut values,
            &json!({"k8sServiceHost": host, "k8sServicePort": port}),
        );
    }
    // BPF host routing cannot reach Talos' DNS forwarder (talos#10002): keep legacy routing.
    merge(&mut values, &json!({"bpf": {"hostLegacyRouting": true}}));
    values
}

/// Values for the rolling migration: a distinct pool and port, no CNI config written until a
/// node is switched, no policy enforcement, no restarts of unmanaged pods.
pub fn migration_values(cluster: &Cluster, user: &[Value], pool: &str) -> Value {
    let mut values = json!({});
    for u in user {
        merge(&mut values, u);
    }
    // kube-proxy stays during the migration: KPR is switched on with the final values.
    merge(&mut values, &common(cluster, false));
    merge(
        &mut values,
        &json!({
            "routingMode": "tunnel",
            "tunnelProtocol": "vxlan",
            "tunnelPort": migration_network(cluster).1,
            "ipam": {"mode": "cluster-pool", "operator": {"clusterPoolIPv4PodCIDRList": [pool]}},
            "cni": {"customConf": true, "uninstall": false},
            "policyEnforcementMode": "never",
            "operator": {"unmanagedPodWatcher": {"restart": false}},
        }),
    );
    values
}

/// Values once Cilium is the only CNI (rolling: keep the pool and port the pods use).
pub fn final_values(
    cluster: &Cluster,
    replace_kube_proxy: bool,
    user: &[Value],
    pool: Option<&str>,
) -> Value {
    let mut values = json!({});
    for u in user {
        merge(&mut values, u);
    }
    merge(&mut values, &common(cluster, replace_kube_proxy));
    let network = match pool {
        Some(pool) => json!({
            "routingMode": "tunnel", "tunnelProtocol": "vxlan", "tunnelPort": migration_network(cluster).1,
            "ipam": {"mode": "cluster-pool", "operator": {"clusterPoolIPv4PodCIDRList": [pool]}},
        }),
        // Cutover and fresh: the node podCIDRs the control plane already hands out.
        None => {
            json!({"routingMode": "tunnel", "tunnelProtocol": "vxlan", "ipam": {"mode": "kubernetes"}})
        }
    };
    merge(&mut values, &network);
    merge(
        &mut values,
        &json!({
            "cni": {"exclusive": true, "customConf": false},
            "policyEnforcementMode": "default",
            "operator": {"unmanagedPodWatcher": {"restart": true}},
        }),
    );
    values
}

pub fn node_config() -> Value {
    json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNodeConfig",
        "metadata": {"namespace": "kube-system", "name": "cilium-default"},
        "spec": {
            "nodeSelector": {"matchLabels": {"io.cilium.migration/cilium-default": "true"}},
            "defaults": {
                "write-cni-conf-when-ready": "/host/etc/cni/net.d/05-cilium.conflist",
                "custom-cni-conf": "false",
                "cni-chaining-mode": "none",
                "cni-exclusive": "true",
            },
        },
    })
}

pub fn write_values(
    artifacts: &mut Artifacts,
    name: &str,
    description: &str,
    values: &Value,
) -> String {
    artifacts.add_yaml(&format!("cilium/{name}"), description, values)
}
