//! Replicated storage the cluster runs, from the workloads that run it: a node's drain takes
//! its replicas away, so the next node waits until the storage has healed (Longhorn volumes
//! `robustness: healthy`, Rook/Ceph `HEALTH_OK`), or a second drain can take the last
//! healthy copy.

use cniswap_snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// Longhorn's manager runs in `namespace`.
    Longhorn { namespace: String },
    /// Rook's operator runs in `namespace` (its CephClusters may live elsewhere).
    RookCeph { namespace: String },
}

/// The replicated storage systems whose workloads the snapshot holds.
pub fn detect(snapshot: &Snapshot) -> Vec<Storage> {
    let mut out = Vec::new();
    let workloads = snapshot
        .objects
        .daemonsets
        .iter()
        .chain(&snapshot.objects.deployments);
    for w in workloads {
        let namespace = w.metadata.namespace().to_string();
        let found = match w.metadata.name.as_str() {
            "longhorn-manager" => Storage::Longhorn { namespace },
            "rook-ceph-operator" => Storage::RookCeph { namespace },
            _ => continue,
        };
        if !out.contains(&found) {
            out.push(found);
        }
    }
    out
}
