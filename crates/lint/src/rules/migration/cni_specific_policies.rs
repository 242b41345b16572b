use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG007",
        name: "cni-specific-policies",
        title: "CNI-specific policies vanish with their CNI",
        severity: Severity::Error,
        inputs: &[Input::Facts, Input::Target],
        fix: "translate them to NetworkPolicy or the target's own kinds (by hand: no correct translation tool exists) before the switch; back them up",
        docs: include_str!("../../../../../docs/rules/MIG007.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(target) = ctx.target.cni else { return };
    for kinds in ctx
        .facts
        .workloads
        .cni_policies
        .iter()
        .filter(|k| k.owner != target)
    {
        out.push(
            out.finding(format!(
                "{} {} {} and {} is being replaced by {}: {} deleted with the CRDs and {} nothing on the new CNI",
                kinds.count,
                kinds.kind,
                plural(kinds.count, "object exists", "objects exist"),
                kinds.owner.as_str(),
                target.as_str(),
                plural(kinds.count, "it is", "they are"),
                plural(kinds.count, "enforces", "enforce"),
            ))
            .object(kinds.kind.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn dump() -> String {
        let policy = "apiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkPolicy\nmetadata:\n  name: deny-all\nspec:\n  selector: all()\n";
        cluster(
            2,
            &[("calico-system/calico-node", "quay.io/calico/node:v3.29.1")],
            policy,
        )
    }

    #[test]
    fn fires_when_leaving_calico() {
        assert_eq!(
            fired(
                "MIG007",
                &[("cluster/all.yaml", &dump())],
                to(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_when_staying() {
        assert!(
            fired(
                "MIG007",
                &[("cluster/all.yaml", &dump())],
                to(CniKind::Calico)
            )
            .is_empty()
        );
    }
}
