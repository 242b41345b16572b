use crate::talos::effective;
use cniswap_model::{CoreDnsFacts, DnsFacts, TalosFacts, TalosHostDns};
use cniswap_snapshot::Snapshot;
use std::collections::BTreeSet;

pub fn detect(snapshot: &Snapshot, talos: Option<&TalosFacts>) -> DnsFacts {
    let objects = &snapshot.objects;
    let coredns = objects
        .deployments
        .iter()
        .find(|d| {
            d.metadata.namespace() == "kube-system"
                && (d.metadata.name == "coredns"
                    || d.metadata
                        .labels
                        .get("k8s-app")
                        .is_some_and(|v| v == "kube-dns"))
        })
        .map(|d| {
            let nodes: BTreeSet<String> = objects
                .pods
                .iter()
                .filter(|p| {
                    p.metadata.namespace() == "kube-system"
                        && p.metadata
                            .labels
                            .get("k8s-app")
                            .is_some_and(|v| v == "kube-dns")
                })
                .filter(|p| p.status.phase == "Running")
                .filter_map(|p| p.spec.node_name.clone())
                .collect();
            CoreDnsFacts {
                deployment: d.metadata.qualified(),
                replicas: d.spec.replicas.or(d.status.replicas).unwrap_or(0),
                ready: d.status.ready_replicas.unwrap_or(0),
                nodes: nodes.into_iter().collect(),
            }
        });
    let enabled = effective(talos, |c| c.host_dns_enabled);
    let forward = effective(talos, |c| c.forward_kube_dns_to_host);
    let talos_host_dns = (enabled.is_some() || forward.is_some()).then(|| {
        let mut files: Vec<String> = enabled
            .iter()
            .chain(forward.iter())
            .map(|(_, f)| f.clone())
            .collect();
        files.dedup();
        TalosHostDns {
            enabled: enabled.map(|(v, _)| v),
            forward_kube_dns_to_host: forward.map(|(v, _)| v),
            source: files.join(", "),
        }
    });
    DnsFacts {
        coredns,
        talos_host_dns,
    }
}
