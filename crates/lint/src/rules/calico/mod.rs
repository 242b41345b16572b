//! CAL: Calico.

pub mod autodetection_picks_cilium_host;
pub mod bpf_dataplane_with_kube_proxy;
pub mod bpf_requires_vxlan;
pub mod bpf_with_ipvs_kube_proxy;
pub mod bpf_without_services_endpoint;
pub mod ippool_cidr_defaulted;
pub mod ippool_outside_pod_subnets;
pub mod talos_bpf_cgroup_path;
pub mod talos_volume_plugin_path;
pub mod unknown_installation_field;
pub mod vxlan_port_collides_with_flannel;

use crate::context::Context;

/// kube-proxy is (or will be) deployed: facts show it, or a Talos config renders it.
pub(crate) fn kube_proxy_runs(ctx: &Context) -> Option<String> {
    if ctx.has_cluster() && ctx.facts.kube_proxy.present {
        return Some("kube-proxy runs in the cluster".into());
    }
    crate::rules::talos::control_plane_views(&ctx.talos)
        .find(|v| {
            let proxy = v.proxy_disabled();
            !proxy.value && (proxy.node.is_some() || v.complete())
        })
        .map(|v| format!("{} deploys kube-proxy", v.describe()))
}
