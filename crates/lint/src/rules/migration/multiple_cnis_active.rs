use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG001",
        name: "multiple-cnis-active",
        title: "two CNIs active on the same nodes",
        severity: Severity::Error,
        inputs: &[Input::Facts],
        fix: "finish the migration (`cniswap plan --to <cni>`) or roll back to one CNI",
        docs: include_str!("../../../../../docs/rules/MIG001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.target.cni.is_some() {
        // A migration is declared: two agents side by side are expected.
        return;
    }
    let mixed: Vec<String> = ctx
        .facts
        .nodes
        .iter()
        .filter(|n| n.cni_agents.len() > 1)
        .map(|n| n.name.clone())
        .collect();
    let Some(first) = ctx.facts.nodes.iter().find(|n| n.cni_agents.len() > 1) else {
        return;
    };
    let cnis: Vec<&str> = first.cni_agents.iter().map(|k| k.as_str()).collect();
    out.push(
        out.finding(format!(
            "{} agents run together on {} ({}) and no migration target was given: pods get whichever CNI's config sorts first",
            cnis.join(" and "),
            count(mixed.len(), "node", "nodes"),
            super::some_of(&mixed, 5)
        ))
        .object(format!("Node/{}", first.name)),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn dump() -> String {
        cluster(
            2,
            &[
                (
                    "kube-system/kube-flannel",
                    "ghcr.io/flannel-io/flannel:v0.25.1",
                ),
                ("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5"),
            ],
            "",
        )
    }

    #[test]
    fn fires_without_target() {
        let found = fired(
            "MIG001",
            &[("cluster/all.yaml", &dump())],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].location.is_none());
    }

    #[test]
    fn quiet_during_declared_migration_or_with_one_cni() {
        assert!(
            fired(
                "MIG001",
                &[("cluster/all.yaml", &dump())],
                to(CniKind::Cilium)
            )
            .is_empty()
        );
        let one = cluster(
            2,
            &[("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5")],
            "",
        );
        assert!(fired("MIG001", &[("cluster/all.yaml", &one)], Target::default()).is_empty());
    }
}
