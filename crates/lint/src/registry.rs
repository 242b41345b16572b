//! Every rule, in catalogue order.

use crate::rule::Rule;
use crate::rules::{calico, cilium, flannel, migration, node, talos};

pub static RULES: &[&Rule] = &[
    &talos::flannel_document_still_present::RULE,
    &talos::flannel_daemonset_survives_cni_change::RULE,
    &talos::kube_proxy_daemonset_survives_disable::RULE,
    &talos::kube_proxy_removed_without_replacement::RULE,
    &talos::kube_proxy_kept_alongside_replacement::RULE,
    &talos::kubeprism_not_enabled::RULE,
    &talos::host_dns_forwarding_vs_bpf_host_routing::RULE,
    &talos::cni_manifest_url_not_pinned::RULE,
    &talos::cni_urls_require_custom::RULE,
    &talos::flannel_settings_without_flannel::RULE,
    &talos::legacy_and_document_config_conflict::RULE,
    &talos::pod_cidr_overlaps_service_cidr::RULE,
    &talos::upgrade_k8s_reverts_cni::RULE,
    &talos::omni_patch_deleted_by_template_sync::RULE,
    &talos::omni_patch_forbidden_field::RULE,
    &talos::omni_patch_missing_cluster_label::RULE,
    &talos::unknown_talos_key::RULE,
    &talos::kubespan_overlay_mtu::RULE,
    &talos::kubespan_with_bpf_host_routing::RULE,
    &cilium::cni_exclusive_disabled::RULE,
    &cilium::kube_proxy_replacement_legacy_value::RULE,
    &cilium::talos_capabilities::RULE,
    &cilium::talos_cgroup_automount::RULE,
    &cilium::kpr_without_api_endpoint::RULE,
    &cilium::tunnel_port_collides_with_source::RULE,
    &cilium::migration_cidr_overlaps_source::RULE,
    &cilium::migration_needs_cluster_pool::RULE,
    &cilium::migration_needs_host_legacy_routing::RULE,
    &cilium::migration_policy_enforcement::RULE,
    &cilium::migration_unmanaged_pod_watcher::RULE,
    &cilium::migration_writes_cni_config::RULE,
    &cilium::migration_values_left_behind::RULE,
    &cilium::l2_announcement_interface_pattern::RULE,
    &cilium::leaving_cilium_keeps_config::RULE,
    &cilium::operator_replicas_exceed_nodes::RULE,
    &cilium::unknown_or_removed_value::RULE,
    &cilium::values_sources_disagree::RULE,
    &cilium::native_routing_cidr_misses_pods::RULE,
    &cilium::cluster_pool_overlaps_node_network::RULE,
    &cilium::dual_stack_without_ipv6::RULE,
    &calico::bpf_dataplane_with_kube_proxy::RULE,
    &calico::bpf_without_services_endpoint::RULE,
    &calico::autodetection_picks_cilium_host::RULE,
    &calico::ippool_cidr_defaulted::RULE,
    &calico::talos_volume_plugin_path::RULE,
    &calico::talos_bpf_cgroup_path::RULE,
    &calico::bpf_requires_vxlan::RULE,
    &calico::vxlan_port_collides_with_flannel::RULE,
    &calico::bpf_with_ipvs_kube_proxy::RULE,
    &calico::ippool_outside_pod_subnets::RULE,
    &calico::unknown_installation_field::RULE,
    &flannel::vtep_reuse_prerequisites::RULE,
    &flannel::flannel_network_mismatch::RULE,
    &migration::multiple_cnis_active::RULE,
    &migration::bare_pods::RULE,
    &migration::pdb_blocks_drain::RULE,
    &migration::storage_on_pod_network::RULE,
    &migration::webhook_fails_closed_on_pod_network::RULE,
    &migration::network_policies_change_meaning::RULE,
    &migration::cni_specific_policies::RULE,
    &migration::single_node_cluster::RULE,
    &migration::outage_exceeds_token_lifetime::RULE,
    &migration::pod_cidr_change_needs_control_plane_change::RULE,
    &migration::stale_cni_resources::RULE,
    &migration::upgrade_in_flight::RULE,
    &migration::coredns_not_spread::RULE,
    &node::first_config_not_expected_cni::RULE,
    &node::first_config_invalid::RULE,
    &node::plugin_binary_missing::RULE,
    &node::flannel_subnet_env_missing::RULE,
    &node::leftover_cni_state::RULE,
    &node::leftover_masquerade_breaks_policy::RULE,
    &node::cilium_backup_configs::RULE,
    &node::overlay_port_in_use::RULE,
];

/// Looks a rule up by ID (case-insensitive) or by name.
pub fn find_rule(key: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.meta.id.eq_ignore_ascii_case(key) || r.meta.name == key)
}

#[cfg(test)]
mod tests {
    use super::RULES;

    /// docs/rules/README.md is the catalogue the README links to: it lists every rule with its
    /// page, name, default severity and title.
    #[test]
    fn the_docs_index_lists_every_rule() {
        let index = include_str!("../../../docs/rules/README.md");
        for rule in RULES {
            let row = format!(
                "| [{id}]({id}.md) | `{}` | {} | {} |",
                rule.meta.name,
                rule.meta.severity,
                rule.meta.title.replace('|', "\\|"),
                id = rule.meta.id,
            );
            assert!(
                index.contains(&row),
                "docs/rules/README.md lacks or differs: {row}"
            );
        }
        assert_eq!(index.matches("| [").count(), RULES.len());
    }
}
