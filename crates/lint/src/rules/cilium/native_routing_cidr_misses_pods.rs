use crate::rules::prelude::*;
use crate::rules::{cidr_within, cluster_pod_cidrs};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL019",
        name: "native-routing-cidr-misses-pods",
        title: "ipv4NativeRoutingCIDR does not cover the pod CIDR",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `ipv4NativeRoutingCIDR` to a range that contains every pod CIDR (often the pod CIDR itself)",
        docs: include_str!("../../../../../docs/rules/CIL019.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        let native = values.text("routingMode").as_deref() == Some("native")
            || values.text("tunnel").as_deref() == Some("disabled");
        let Some(routing) = values.get("ipv4NativeRoutingCIDR") else {
            continue;
        };
        let Some(routing_text) = routing.scalar_text().filter(|_| native) else {
            continue;
        };
        // The pods' addresses: Cilium's own pool in cluster-pool IPAM, else the cluster's.
        let ipam = values
            .text("ipam.mode")
            .unwrap_or_else(|| "cluster-pool".into());
        let pods: Vec<(String, String)> = if ipam == "cluster-pool" {
            values
                .cluster_pool_cidrs()
                .iter()
                .filter_map(|n| n.scalar_text())
                .map(|c| (c, "the Cilium cluster pool".to_string()))
                .collect()
        } else if ipam == "kubernetes" {
            let views = ctx.views_for(&values.label);
            if views.is_empty() {
                cluster_pod_cidrs(ctx)
            } else {
                views
                    .iter()
                    .flat_map(|v| {
                        let source = format!("Talos podSubnets of {}", v.describe());
                        v.pod_subnets()
                            .value
                            .into_iter()
                            .map(move |c| (c, source.clone()))
                    })
                    .collect()
            }
        } else {
            Vec::new()
        };
        let outside: Vec<String> = pods
            .iter()
            .filter(|(cidr, _)| !cidr.contains(':'))
            .filter(|(cidr, _)| cidr_within(cidr, &routing_text) == Some(false))
            .map(|(cidr, source)| format!("{cidr} ({source})"))
            .collect();
        if outside.is_empty() {
            continue;
        }
        out.push(
            out.finding(format!(
                "native routing with ipv4NativeRoutingCIDR {routing_text}, but the pods get addresses outside it: {}; traffic between pods on different nodes is masqueraded or routed out of the node",
                outside.join(", ")
            ))
            .at(ctx.location(routing))
            .object(values.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_when_the_pool_lies_outside() {
        let values = "routingMode: native\nipv4NativeRoutingCIDR: 10.244.0.0/16\nipam:\n  mode: cluster-pool\n  operator:\n    clusterPoolIPv4PodCIDRList: [10.42.0.0/16]\n";
        let found = fired("CIL019", &[("helm/cilium.yaml", values)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 2);
        assert!(found[0].message.contains("10.42.0.0/16"));
    }

    #[test]
    fn fires_against_talos_pod_subnets_with_kubernetes_ipam() {
        let talos =
            "cluster:\n  network:\n    cni: {name: none}\n    podSubnets: [10.244.0.0/16]\n";
        let values =
            "routingMode: native\nipv4NativeRoutingCIDR: 10.42.0.0/16\nipam: {mode: kubernetes}\n";
        let found = fired(
            "CIL019",
            &[("patch.yaml", talos), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn quiet_when_covered_or_tunnelled() {
        let covered = "routingMode: native\nipv4NativeRoutingCIDR: 10.0.0.0/8\nipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: [10.42.0.0/16]\n";
        assert!(
            fired(
                "CIL019",
                &[("helm/cilium.yaml", covered)],
                Target::default()
            )
            .is_empty()
        );
        let tunnel = "routingMode: tunnel\nipv4NativeRoutingCIDR: 10.244.0.0/16\nipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: [10.42.0.0/16]\n";
        assert!(fired("CIL019", &[("helm/cilium.yaml", tunnel)], Target::default()).is_empty());
    }
}
