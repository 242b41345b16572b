use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG011",
        name: "stale-cni-resources",
        title: "leftovers of a CNI that no longer runs",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "back them up and remove them (`cniswap plan` includes the cleanup; node conditions clear when the node's status is patched)",
        docs: include_str!("../../../../../docs/rules/MIG011.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let stale = &ctx.facts.workloads.stale_cni_resources;
    let mut owners: Vec<CniKind> = stale.iter().map(|s| s.owner).collect();
    owners.sort_by_key(|k| k.as_str());
    owners.dedup();
    for owner in owners {
        let items: Vec<String> = stale
            .iter()
            .filter(|s| s.owner == owner)
            .map(|s| format!("{} {}", s.kind, s.name))
            .collect();
        out.push(
            out.finding(format!(
                "{} no longer runs but left {}: {}",
                owner.as_str(),
                count(items.len(), "object", "objects"),
                super::some_of(&items, 6)
            ))
            .object(items[0].clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_calico_crds_without_calico() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ippools.crd.projectcalico.org\nspec:\n  group: crd.projectcalico.org\n  names:\n    kind: IPPool\n    plural: ippools\n";
        assert_eq!(
            fired(
                "MIG011",
                &[(
                    "cluster/all.yaml",
                    &cluster(
                        2,
                        &[("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5")],
                        crd
                    )
                )],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_clean_cluster() {
        assert!(
            fired(
                "MIG011",
                &[(
                    "cluster/all.yaml",
                    &cluster(
                        2,
                        &[("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5")],
                        ""
                    )
                )],
                Target::default()
            )
            .is_empty()
        );
    }
}
