use cniswap_snapshot::objects::{Pod, Workload};
use std::collections::BTreeSet;

/// Value of `--flag=value` or `--flag value` in a command line.
pub fn flag_value<'a>(args: impl IntoIterator<Item = &'a str>, flag: &str) -> Option<String> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix(flag) {
            if let Some(value) = value.strip_prefix('=') {
                return Some(value.to_string());
            }
            if value.is_empty() {
                return args.next().map(str::to_string);
            }
        }
    }
    None
}

/// Pods owned by a DaemonSet (through its ownerReference).
pub fn daemonset_pods<'a>(pods: &'a [Pod], ds: &'a Workload) -> impl Iterator<Item = &'a Pod> + 'a {
    pods.iter().filter(move |p| {
        p.metadata.namespace == ds.metadata.namespace
            && p.metadata
                .owner_references
                .iter()
                .any(|o| o.kind == "DaemonSet" && o.name == ds.metadata.name)
    })
}

/// Nodes where a ready pod of the DaemonSet runs.
pub fn active_nodes(pods: &[Pod], ds: &Workload) -> Vec<String> {
    daemonset_pods(pods, ds)
        .filter(|p| p.status.phase == "Running" && p.is_ready())
        .filter_map(|p| p.spec.node_name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Nodes with a pod of the DaemonSet that is not running and ready.
pub fn not_ready_nodes(pods: &[Pod], ds: &Workload) -> Vec<String> {
    let ready = active_nodes(pods, ds);
    daemonset_pods(pods, ds)
        .filter_map(|p| p.spec.node_name.clone())
        .filter(|n| !ready.contains(n))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub fn is_helm_managed(w: &Workload) -> bool {
    w.metadata
        .labels
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|v| v == "Helm")
        || w.metadata
            .annotations
            .contains_key("meta.helm.sh/release-name")
}
