use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG013",
        name: "coredns-not-spread",
        title: "CoreDNS not spread over nodes",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "run 2+ CoreDNS replicas on different nodes (topologySpreadConstraints or anti-affinity) before the migration",
        docs: include_str!("../../../../../docs/rules/MIG013.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.facts.nodes.len() < 2 {
        return;
    }
    let Some(dns) = &ctx.facts.dns.coredns else {
        return;
    };
    let mut nodes = dns.nodes.clone();
    nodes.sort();
    nodes.dedup();
    let problem = if dns.ready < 2 {
        format!("{} of {} replicas ready", dns.ready, dns.replicas)
    } else if nodes.len() < 2 {
        format!(
            "all {} replicas on {}",
            dns.ready,
            nodes.first().map_or("one node", String::as_str)
        )
    } else {
        return;
    };
    out.push(
        out.finding(format!(
            "CoreDNS ({}) has {problem}: cluster DNS is down while that node is switched",
            dns.deployment
        ))
        .object(dns.deployment.clone()),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    fn coredns(ready: u32, second_node: &str) -> String {
        let mut out = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: coredns\n  namespace: kube-system\n  labels:\n    k8s-app: kube-dns\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      k8s-app: kube-dns\n  template:\n    metadata:\n      labels:\n        k8s-app: kube-dns\n    spec:\n      containers:\n      - name: coredns\n        image: coredns:1.11\nstatus:\n  replicas: 2\n  readyReplicas: {ready}\n---\n"
        );
        for (i, node) in ["n0", second_node].iter().enumerate() {
            out.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: coredns-{i}\n  namespace: kube-system\n  labels:\n    k8s-app: kube-dns\n  ownerReferences:\n  - kind: ReplicaSet\n    name: coredns-abc\n    controller: true\nspec:\n  nodeName: {node}\n  containers:\n  - name: coredns\n    image: coredns:1.11\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"));
        }
        out
    }

    #[test]
    fn fires_when_on_one_node() {
        assert_eq!(
            fired(
                "MIG013",
                &[("cluster/all.yaml", &cluster(2, &[], &coredns(2, "n0")))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_when_spread() {
        assert!(
            fired(
                "MIG013",
                &[("cluster/all.yaml", &cluster(2, &[], &coredns(2, "n1")))],
                Target::default()
            )
            .is_empty()
        );
    }
}
