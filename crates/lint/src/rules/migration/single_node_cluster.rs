use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG008",
        name: "single-node-cluster",
        title: "single-node cluster",
        severity: Severity::Info,
        inputs: &[Input::Facts],
        fix: "plan a cutover in a maintenance window",
        docs: include_str!("../../../../../docs/rules/MIG008.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if let [node] = ctx.facts.nodes.as_slice() {
        out.push(
            out.finding(format!(
                "the cluster has one node ({}): a rolling migration is impossible and pod networking is down during the switch",
                node.name
            ))
            .object(format!("Node/{}", node.name)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_one_node() {
        assert_eq!(
            fired(
                "MIG008",
                &[("cluster/all.yaml", &cluster(1, &[], ""))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_two() {
        assert!(
            fired(
                "MIG008",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                Target::default()
            )
            .is_empty()
        );
    }
}
