use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL016",
        name: "operator-replicas-exceed-nodes",
        title: "more operator replicas than nodes",
        severity: Severity::Warning,
        inputs: &[Input::Cilium, Input::Facts],
        fix: "set `operator.replicas` to at most the number of nodes (1 on a single-node cluster)",
        docs: include_str!("../../../../../docs/rules/CIL016.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let nodes = ctx.facts.nodes.len();
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        let node = values.get("operator.replicas");
        let replicas = node
            .and_then(|n| n.scalar_text()?.parse::<usize>().ok())
            .unwrap_or(2);
        if replicas > nodes {
            out.push(
                out.finding(format!(
                    "operator.replicas is {replicas}{} but the cluster has {}: the extra replicas stay Pending (pod anti-affinity)",
                    if node.is_none() { " (chart default)" } else { "" },
                    count(nodes, "node", "nodes")
                ))
                .at(ctx.location_or_file(node, values.anchor()))
                .object(values.label.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_single_node_default() {
        let dump = cluster(1, &[], "");
        assert_eq!(
            fired(
                "CIL016",
                &[
                    ("cluster/all.yaml", &dump),
                    ("helm/cilium.yaml", "ipam:\n  mode: kubernetes\n")
                ],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_with_one_replica() {
        let dump = cluster(1, &[], "");
        assert!(
            fired(
                "CIL016",
                &[
                    ("cluster/all.yaml", &dump),
                    ("helm/cilium.yaml", "operator:\n  replicas: 1\n")
                ],
                Target::default()
            )
            .is_empty()
        );
    }
}
