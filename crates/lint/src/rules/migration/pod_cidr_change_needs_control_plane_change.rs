use crate::rules::prelude::*;
use crate::rules::{cidr_within, cluster_pod_cidrs};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG010",
        name: "pod-cidr-change-needs-control-plane-change",
        title: "target expects a pod CIDR the control plane does not hand out",
        severity: Severity::Warning,
        inputs: &[Input::Facts, Input::Target],
        fix: "keep the cluster's pod CIDR for the target, or plan the change: --cluster-cidr on every control plane and node podCIDRs (immutable: nodes must re-register)",
        docs: include_str!("../../../../../docs/rules/MIG010.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let cluster = cluster_pod_cidrs(ctx);
    let node_cidrs: Vec<&str> = ctx
        .facts
        .nodes
        .iter()
        .flat_map(|n| n.pod_cidrs.iter().map(String::as_str))
        .collect();
    // The range the target would use with node-podCIDR IPAM.
    let intended: Vec<(String, Option<cniswap_model::Location>, String)> = match ctx.target.cni {
        Some(CniKind::Flannel) => ctx
            .flannel
            .iter()
            .filter_map(|f| Some((f.network.clone()?, f.network_at.clone(), f.label.clone())))
            .collect(),
        Some(CniKind::Cilium) => ctx
            .cilium
            .iter()
            .filter(|v| v.text("ipam.mode").as_deref() == Some("kubernetes"))
            .flat_map(|v| {
                v.cluster_pool_cidrs()
                    .into_iter()
                    .filter_map(|n| Some((n.scalar_text()?, ctx.location(n), v.label.clone())))
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => Vec::new(),
    };
    for (cidr, at, label) in intended {
        let outside: Vec<&str> = node_cidrs
            .iter()
            .copied()
            .filter(|n| cidr_within(n, &cidr) == Some(false))
            .collect();
        let differs = !cluster.is_empty() && !cluster.iter().any(|(c, _)| *c == cidr);
        if outside.is_empty() && !differs {
            continue;
        }
        out.push(
            out.finding(format!(
                "{label} expects pods in {cidr}, but the target allocates from node podCIDRs{}{}",
                if outside.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} outside it, e.g. {})",
                        count(outside.len(), "node podCIDR lies", "node podCIDRs lie"),
                        outside[0]
                    )
                },
                if differs {
                    format!(
                        "; kube-controller-manager hands out {}",
                        cluster
                            .iter()
                            .map(|c| c.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                }
            ))
            .at(at)
            .object(label),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn cm(network: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: '{{\"Network\": \"{network}\", \"Backend\": {{\"Type\": \"vxlan\"}}}}'\n"
        )
    }

    #[test]
    fn fires_on_new_flannel_network() {
        let dump = cluster(
            2,
            &[("calico-system/calico-node", "quay.io/calico/node:v3.29.1")],
            "",
        );
        assert_eq!(
            fired(
                "MIG010",
                &[
                    ("cluster/all.yaml", &dump),
                    ("flannel.yaml", &cm("10.50.0.0/16"))
                ],
                to(CniKind::Flannel)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_matching_network() {
        let dump = cluster(
            2,
            &[("calico-system/calico-node", "quay.io/calico/node:v3.29.1")],
            "",
        );
        assert!(
            fired(
                "MIG010",
                &[
                    ("cluster/all.yaml", &dump),
                    ("flannel.yaml", &cm("10.244.0.0/16"))
                ],
                to(CniKind::Flannel)
            )
            .is_empty()
        );
    }
}
