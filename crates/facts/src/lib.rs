//! Facts detection: Snapshot -> Facts.
//!
//! Each module derives one group of facts and records its evidence. Detection never guesses:
//! a value that the snapshot does not contain stays `None`.

mod cidrs;
mod cni;
mod dns;
mod kube_proxy;
mod nodes;
mod platform;
mod talos;
mod util;
mod workloads;

use cniswap_model::{Facts, InputFacts};
use cniswap_snapshot::Snapshot;

/// Derives every fact the snapshot supports.
pub fn detect(snapshot: &Snapshot) -> Facts {
    let talos = talos::detect(snapshot);
    let platform = platform::detect(snapshot, talos.as_ref());
    let cnis = cni::detect(snapshot, &platform, talos.as_ref());
    let mut nodes = nodes::detect(snapshot, &cnis);
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let kube_proxy = kube_proxy::detect(snapshot, &platform, talos.as_ref(), &cnis);
    let cidrs = cidrs::detect(snapshot, talos.as_ref(), &cnis);
    let dns = dns::detect(snapshot, talos.as_ref());
    let workloads = workloads::detect(snapshot, &cnis);
    let kubernetes = platform::kubernetes_versions(&nodes);
    Facts {
        platform,
        kubernetes,
        nodes,
        cnis,
        kube_proxy,
        cidrs,
        dns,
        talos,
        workloads,
        inputs: InputFacts {
            source: snapshot.source.clone(),
            files_read: snapshot.files_read,
            objects: snapshot.objects.len(),
            skipped: snapshot.skipped.clone(),
            unread: snapshot.unread.clone(),
        },
    }
}
