use crate::platform::talos_version_of_os_image;
use cniswap_model::{CniFacts, NodeFacts, NodeRole};
use cniswap_snapshot::Snapshot;
use std::collections::HashMap;

pub fn detect(snapshot: &Snapshot, cnis: &[CniFacts]) -> Vec<NodeFacts> {
    // One pass over pods, however many there are.
    let mut pods_per_node: HashMap<&str, (usize, usize)> = HashMap::new();
    for pod in &snapshot.objects.pods {
        if let Some(node) = pod.spec.node_name.as_deref() {
            let entry = pods_per_node.entry(node).or_default();
            entry.0 += 1;
            if !pod.spec.host_network {
                entry.1 += 1;
            }
        }
    }
    snapshot
        .objects
        .nodes
        .iter()
        .map(|node| {
            let labels = &node.metadata.labels;
            let control_plane = labels.contains_key("node-role.kubernetes.io/control-plane")
                || labels.contains_key("node-role.kubernetes.io/master");
            let info = &node.status.node_info;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let condition = |kind: &str| node.status.conditions.iter().find(|c| c.kind == kind);
            let mut pod_cidrs = node.spec.pod_cidrs.clone();
            if pod_cidrs.is_empty() {
                pod_cidrs.extend(node.spec.pod_cidr.clone());
            }
            let (pods, pod_network_pods) = pods_per_node
                .get(node.metadata.name.as_str())
                .copied()
                .unwrap_or_default();
            NodeFacts {
                name: node.metadata.name.clone(),
                roles: vec![if control_plane {
                    NodeRole::ControlPlane
                } else {
                    NodeRole::Worker
                }],
                zone: labels
                    .get("topology.kubernetes.io/zone")
                    .or_else(|| labels.get("failure-domain.beta.kubernetes.io/zone"))
                    .cloned(),
                internal_ip: node
                    .status
                    .addresses
                    .iter()
                    .find(|a| a.kind == "InternalIP")
                    .map(|a| a.address.clone()),
                kubelet_version: non_empty(&info.kubelet_version),
                os_image: non_empty(&info.os_image),
                talos_version: talos_version_of_os_image(&info.os_image),
                kernel_version: non_empty(&info.kernel_version),
                container_runtime: non_empty(&info.container_runtime_version),
                pod_cidrs,
                ready: condition("Ready").is_some_and(|c| c.status == "True"),
                network_unavailable: condition("NetworkUnavailable")
                    .filter(|c| c.status == "True")
                    .map(|c| {
                        c.reason
                            .clone()
                            .unwrap_or_else(|| "NetworkUnavailable".to_string())
                    }),
                unschedulable: node.spec.unschedulable,
                cni_agents: cnis
                    .iter()
                    .filter(|c| c.active_nodes.iter().any(|n| n == &node.metadata.name))
                    .map(|c| c.kind)
                    .collect(),
                cni_agents_not_ready: cnis
                    .iter()
                    .filter(|c| c.not_ready_nodes.iter().any(|n| n == &node.metadata.name))
                    .map(|c| c.kind)
                    .collect(),
                pods,
                pod_network_pods,
            }
        })
        .collect()
}
