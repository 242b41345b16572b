use crate::rules::prelude::*;
use crate::rules::{cidr_within, cluster_pod_cidrs};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL010",
        name: "ippool-outside-pod-subnets",
        title: "Calico pool outside the cluster pod CIDR",
        severity: Severity::Warning,
        inputs: &[Input::Calico],
        fix: "make the Calico pool a subset of the cluster pod CIDR (or change podSubnets / --cluster-cidr to match)",
        docs: include_str!("../../../../../docs/rules/CAL010.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let cluster = cluster_pod_cidrs(ctx);
    if cluster.is_empty() {
        return;
    }
    for node in ctx.calico.pool_cidrs() {
        let Some(pool) = node.scalar_text() else {
            continue;
        };
        let inside = cluster
            .iter()
            .any(|(c, _)| cidr_within(&pool, c) == Some(true));
        let comparable = cluster.iter().any(|(c, _)| cidr_within(&pool, c).is_some());
        if !inside && comparable {
            let list: Vec<String> = cluster
                .iter()
                .map(|(c, s)| format!("{c} from {s}"))
                .collect();
            out.push(
                out.finding(format!(
                    "Calico pool {pool} is not inside the cluster pod CIDR ({}): kube-proxy and other components treat those pod IPs as external (masquerade, policy)",
                    list.join(", ")
                ))
                .at(ctx.location(node)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n";

    fn install(cidr: &str) -> String {
        format!(
            "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools:\n      - cidr: {cidr}\n"
        )
    }

    #[test]
    fn fires_on_foreign_pool() {
        let found = fired(
            "CAL010",
            &[("patch.yaml", TALOS), ("i.yaml", &install("10.52.0.0/16"))],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 8);
    }

    #[test]
    fn quiet_on_subset() {
        assert!(
            fired(
                "CAL010",
                &[("patch.yaml", TALOS), ("i.yaml", &install("10.244.0.0/17"))],
                Target::default()
            )
            .is_empty()
        );
    }
}
