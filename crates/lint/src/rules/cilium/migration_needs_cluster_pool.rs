use super::for_rolling_migration;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL008",
        name: "migration-needs-cluster-pool",
        title: "rolling migration needs cluster-pool IPAM",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `ipam.mode: cluster-pool` with a distinct `clusterPoolIPv4PodCIDRList` for the migration",
        docs: include_str!("../../../../../docs/rules/CIL008.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for_rolling_migration(ctx, out, |values, reason, out| {
        let mode = values
            .text("ipam.mode")
            .unwrap_or_else(|| "cluster-pool".into());
        if mode != "cluster-pool" {
            out.push(
                out.finding(format!(
                    "ipam.mode is `{mode}` {reason}: node podCIDRs are still used by the old CNI, so Cilium must allocate from its own pool"
                ))
                .at(ctx.location_or_file(values.get("ipam.mode"), values.anchor()))
                .object(values.label.clone()),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    #[test]
    fn fires_on_kubernetes_ipam() {
        assert_eq!(
            fired(
                "CIL008",
                &[(
                    "helm/cilium.yaml",
                    "ipam:\n  mode: kubernetes\ncni: {customConf: true}\n"
                )],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_cluster_pool_or_no_migration() {
        assert!(
            fired(
                "CIL008",
                &[(
                    "helm/cilium.yaml",
                    "ipam:\n  mode: cluster-pool\ncni: {customConf: true}\n"
                )],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
        assert!(
            fired(
                "CIL008",
                &[(
                    "helm/cilium.yaml",
                    "ipam:\n  mode: kubernetes\ncni: {customConf: true}\n"
                )],
                crate::Target::default()
            )
            .is_empty()
        );
    }
}
