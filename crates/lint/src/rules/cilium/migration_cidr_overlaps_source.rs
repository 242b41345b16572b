use super::for_rolling_migration;
use crate::rules::prelude::*;
use crate::rules::{cidrs_overlap, cluster_pod_cidrs};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL007",
        name: "migration-cidr-overlaps-source",
        title: "migration pool overlaps the old pod CIDR",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "use a distinct range for `ipam.operator.clusterPoolIPv4PodCIDRList`, e.g. `[10.245.0.0/16]`",
        docs: include_str!("../../../../../docs/rules/CIL007.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    // The old CNI's range: the cluster pod CIDR and the running source CNIs' pools.
    let mut source: Vec<String> = cluster_pod_cidrs(ctx).into_iter().map(|(c, _)| c).collect();
    for cni in ctx
        .facts
        .cnis
        .iter()
        .filter(|c| c.running && c.kind != CniKind::Cilium)
    {
        source.extend(cni.pod_cidrs.iter().cloned());
    }
    source.sort();
    source.dedup();
    if source.is_empty() {
        return;
    }
    for_rolling_migration(ctx, out, |values, reason, out| {
        let pools = values.cluster_pool_cidrs();
        let written: Vec<(String, Option<&Node>)> = if pools.is_empty() {
            // Chart default.
            vec![("10.0.0.0/8".into(), None)]
        } else {
            pools
                .iter()
                .filter_map(|n| Some((n.scalar_text()?, Some(*n))))
                .collect()
        };
        for (pool, node) in written {
            if let Some(old) = source.iter().find(|s| cidrs_overlap(&pool, s)) {
                let what = if node.is_some() {
                    "cluster-pool"
                } else {
                    "the default cluster-pool"
                };
                out.push(
                    out.finding(format!(
                        "{what} {pool} overlaps the current pod CIDR {old} {reason}: the dual overlay needs separate ranges so the routing table can tell old and new pods apart"
                    ))
                    .at(ctx.location_or_file(node, values.anchor()))
                    .object(values.label.clone()),
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    const TALOS: &str = "cluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n";

    #[test]
    fn fires_on_overlap_and_default_pool() {
        let values = "ipam:\n  mode: cluster-pool\n  operator:\n    clusterPoolIPv4PodCIDRList: [10.244.0.0/17]\n";
        assert_eq!(
            fired(
                "CIL007",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
        let default = "ipam:\n  mode: cluster-pool\ncni:\n  customConf: true\n";
        assert_eq!(
            fired(
                "CIL007",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", default)],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_distinct_pool() {
        let values = "ipam:\n  mode: cluster-pool\n  operator:\n    clusterPoolIPv4PodCIDRList: [\"10.245.0.0/16\"]\n";
        assert!(
            fired(
                "CIL007",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
