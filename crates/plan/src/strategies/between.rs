//! What a rolling plan checks between one node and the next, beyond the network: storage
//! that lost the node's replicas has healed. The node loop calls [`Builder::between_nodes`]
//! after a node is switched and before the next one is drained.

use super::Builder;
use crate::context::PlanNode;
use crate::model::Probe;
use crate::ops::{self, S};
use crate::storage::Storage;

impl Builder<'_> {
    /// Checks to pass after `node` is back and before the next node is drained: every
    /// replicated storage system of the cluster is healthy again. Empty when the cluster runs
    /// none.
    pub fn between_nodes(&self, node: &PlanNode) -> Vec<S> {
        self.cluster
            .storage
            .iter()
            .map(|storage| {
                let (probe, what) = match storage {
                    // Detached volumes read `unknown`; attached ones `healthy` once every
                    // replica is rebuilt.
                    Storage::Longhorn { namespace } => (
                        Probe::FieldIn {
                            resource: "volumes.longhorn.io".into(),
                            namespace: Some(namespace.clone()),
                            field: ".status.robustness".into(),
                            allowed: vec!["healthy".into(), "unknown".into()],
                        },
                        "every Longhorn volume is healthy (or detached)",
                    ),
                    Storage::RookCeph { .. } => (
                        Probe::FieldIn {
                            resource: "cephclusters.ceph.rook.io".into(),
                            namespace: None,
                            field: ".status.ceph.health".into(),
                            allowed: vec!["HEALTH_OK".into()],
                        },
                        "every CephCluster reports HEALTH_OK",
                    ),
                };
                ops::verify(
                    "storage healed",
                    vec![probe],
                    format!(
                        "Wait until {what} after {}, before the next node is drained: a second drain while replicas rebuild can take the last healthy copy.",
                        node.name
                    ),
                    what,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test

    use crate::context::{Cluster, PlanOptions, StrategyChoice};
    use crate::model::{Action, Probe};
    use cniswap_model::CniKind;

    fn snapshot(workloads: &str) -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
        let nodes = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n0\nspec:\n  podCIDR: 10.244.0.0/24\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  podCIDR: 10.244.1.0/24\n---\n";
        std::fs::write(
            dir.path().join("cluster/all.yaml"),
            format!("{nodes}{workloads}"),
        )
        .unwrap();
        let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
        (dir, snapshot)
    }

    fn workload(kind: &str, namespace: &str, name: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: c\n        image: i\n---\n"
        )
    }

    fn checks(workloads: &str) -> Vec<Probe> {
        let (_dir, snapshot) = snapshot(workloads);
        let facts = cniswap_facts::detect(&snapshot);
        let cluster = Cluster::new(&snapshot, &facts, CniKind::Cilium);
        let options = PlanOptions {
            target: CniKind::Cilium,
            strategy: StrategyChoice::Rolling,
            kube_proxy: None,
            install: None,
            values: Vec::new(),
            batch_size: 1,
            agent_image: None,
            pod_cidr: None,
            api_endpoint: None,
            local: Default::default(),
            reboot: Default::default(),
            helper_image: None,
        };
        let builder = super::Builder::new(&cluster, &options, false);
        builder
            .between_nodes(&cluster.nodes[0])
            .into_iter()
            .flat_map(|s| match s.action {
                Action::Verify { probes, .. } => probes,
                other => panic!("not a check: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn storage_is_awaited_between_nodes_only_where_it_runs() {
        assert!(checks("").is_empty(), "no storage, no wait");
        let longhorn = checks(&workload("DaemonSet", "storage", "longhorn-manager"));
        assert!(
            matches!(&longhorn[..], [Probe::FieldIn { resource, namespace: Some(ns), field, allowed }]
                if resource == "volumes.longhorn.io" && ns == "storage" && field == ".status.robustness" && allowed.contains(&"healthy".to_string()) && !allowed.contains(&"degraded".to_string())),
            "{longhorn:?}"
        );
        let both = checks(&format!(
            "{}{}",
            workload("DaemonSet", "longhorn-system", "longhorn-manager"),
            workload("Deployment", "rook-ceph", "rook-ceph-operator")
        ));
        assert_eq!(both.len(), 2);
        assert!(
            matches!(&both[1], Probe::FieldIn { resource, namespace: None, allowed, .. }
                if resource == "cephclusters.ceph.rook.io" && allowed == &["HEALTH_OK".to_string()]),
            "{both:?}"
        );
    }
}
