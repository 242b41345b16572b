use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG006",
        name: "network-policies-change-meaning",
        title: "NetworkPolicy enforcement changes with the CNI",
        severity: Severity::Warning,
        inputs: &[Input::Facts, Input::Target],
        fix: "audit the policies against the target before the switch, and tell workload owners when enforcement starts or stops",
        docs: include_str!("../../../../../docs/rules/MIG006.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let count = ctx.facts.workloads.network_policies;
    let Some(target) = ctx.target.cni else { return };
    if count == 0 {
        return;
    }
    let sources = ctx.source_cnis();
    let change = if sources.iter().all(|s| *s == CniKind::Flannel)
        && !sources.is_empty()
        && target != CniKind::Flannel
    {
        "Flannel never enforced them; the target starts enforcing them, so traffic they deny stops the moment a node switches"
    } else if target == CniKind::Flannel {
        "Flannel does not enforce NetworkPolicy: enforcement stops after the switch"
    } else if ctx.rolling_to(target) {
        "during the rolling window pods on switched and unswitched nodes are under different enforcement (Cilium: none while policyEnforcementMode is never)"
    } else {
        return;
    };
    out.push(
        out.finding(format!("{count} NetworkPolicies exist: {change}"))
            .object("NetworkPolicy"),
    );
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn dump() -> String {
        let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n  namespace: app\nspec:\n  podSelector: {}\n";
        cluster(
            2,
            &[(
                "kube-system/kube-flannel",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            )],
            np,
        )
    }

    #[test]
    fn fires_from_flannel() {
        assert_eq!(
            fired(
                "MIG006",
                &[("cluster/all.yaml", &dump())],
                to(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_without_policies() {
        let none = cluster(
            2,
            &[(
                "kube-system/kube-flannel",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            )],
            "",
        );
        assert!(
            fired(
                "MIG006",
                &[("cluster/all.yaml", &none)],
                to(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
