//! MIG: cluster and migration, over cluster facts.

pub mod bare_pods;
pub mod cni_specific_policies;
pub mod coredns_not_spread;
pub mod multiple_cnis_active;
pub mod network_policies_change_meaning;
pub mod outage_exceeds_token_lifetime;
pub mod pdb_blocks_drain;
pub mod pod_cidr_change_needs_control_plane_change;
pub mod single_node_cluster;
pub mod stale_cni_resources;
pub mod storage_on_pod_network;
pub mod upgrade_in_flight;
pub mod webhook_fails_closed_on_pod_network;

/// "a, b, c and 4 more" for long lists in messages.
pub(crate) fn some_of(items: &[String], limit: usize) -> String {
    let shown: Vec<&str> = items.iter().take(limit).map(String::as_str).collect();
    match items.len().saturating_sub(limit) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
