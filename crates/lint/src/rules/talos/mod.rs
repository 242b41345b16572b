//! TAL: Talos machine config and Omni.

pub mod cni_manifest_url_not_pinned;
pub mod cni_urls_require_custom;
pub mod flannel_daemonset_survives_cni_change;
pub mod flannel_document_still_present;
pub mod flannel_settings_without_flannel;
pub mod host_dns_forwarding_vs_bpf_host_routing;
pub mod kube_proxy_daemonset_survives_disable;
pub mod kube_proxy_kept_alongside_replacement;
pub mod kube_proxy_removed_without_replacement;
pub mod kubeprism_not_enabled;
pub mod kubespan_overlay_mtu;
pub mod kubespan_with_bpf_host_routing;
pub mod legacy_and_document_config_conflict;
pub mod omni_patch_deleted_by_template_sync;
pub mod omni_patch_forbidden_field;
pub mod omni_patch_missing_cluster_label;
pub mod pod_cidr_overlaps_service_cidr;
pub mod unknown_talos_key;
pub mod upgrade_k8s_reverts_cni;

use crate::input::talos::TalosView;

/// Views that decide cluster-wide bootstrap manifests: control planes, or views without a role.
/// (Talos applies kube-flannel and kube-proxy from control-plane configs only.)
pub(crate) fn control_plane_views(views: &[TalosView]) -> impl Iterator<Item = &TalosView> {
    views
        .iter()
        .filter(|v| v.role.as_deref().is_none_or(|r| r != "worker"))
}
