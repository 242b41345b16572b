//! CIL: Cilium values.

pub mod cluster_pool_overlaps_node_network;
pub mod cni_exclusive_disabled;
pub mod dual_stack_without_ipv6;
pub mod kpr_without_api_endpoint;
pub mod kube_proxy_replacement_legacy_value;
pub mod l2_announcement_interface_pattern;
pub mod leaving_cilium_keeps_config;
pub mod migration_cidr_overlaps_source;
pub mod migration_needs_cluster_pool;
pub mod migration_needs_host_legacy_routing;
pub mod migration_policy_enforcement;
pub mod migration_unmanaged_pod_watcher;
pub mod migration_values_left_behind;
pub mod migration_writes_cni_config;
pub mod native_routing_cidr_misses_pods;
pub mod operator_replicas_exceed_nodes;
pub mod talos_capabilities;
pub mod talos_cgroup_automount;
pub mod tunnel_port_collides_with_source;
pub mod unknown_or_removed_value;
pub mod values_sources_disagree;

use crate::context::Context;
use crate::input::cilium::CiliumValues;
use crate::rule::Emitter;
use cniswap_model::CniKind;

/// For the rolling-migration rules (CIL007-CIL012): runs `check` on every values source
/// when a rolling migration to Cilium is planned, with the phrase that explains why.
pub(crate) fn for_rolling_migration(
    ctx: &Context,
    out: &mut Emitter,
    check: impl Fn(&CiliumValues, &str, &mut Emitter),
) {
    if !ctx.rolling_to(CniKind::Cilium) {
        return;
    }
    let reason = ctx.rolling_reason();
    // The final values describe the cluster after the migration, when these settings are
    // undone on purpose.
    for values in ctx
        .cilium
        .iter()
        .filter(|v| !v.from_cluster && !v.after_migration)
    {
        check(values, reason, out);
    }
}

/// For the rolling-migration rules that need one boolean value (CIL009, CIL011, CIL012):
/// reports when `path` is not `wanted`, explaining `consequence`.
pub(crate) fn require_for_rolling_migration(
    ctx: &Context,
    out: &mut Emitter,
    path: &str,
    wanted: bool,
    consequence: &str,
) {
    for_rolling_migration(ctx, out, |values, reason, out| {
        if values.bool(path) != Some(wanted) {
            out.push(
                out.finding(format!("{path} is not {wanted} {reason}: {consequence}"))
                    .at(ctx.location_or_file(values.get(path), values.anchor()))
                    .object(values.label.clone()),
            );
        }
    });
}
