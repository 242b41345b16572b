use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG003",
        name: "pdb-blocks-drain",
        title: "PodDisruptionBudget allows no disruption",
        severity: Severity::Error,
        inputs: &[Input::Facts],
        fix: "relax the budget for the window (maxUnavailable >= 1), or scale the workload up first",
        docs: include_str!("../../../../../docs/rules/MIG003.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for pdb in &ctx.facts.workloads.blocking_pdbs {
        out.push(
            out.finding(format!(
                "PodDisruptionBudget {}/{} allows 0 disruptions ({}): `kubectl drain` waits forever on its pods",
                pdb.namespace, pdb.name, pdb.reason
            ))
            .object(format!("{}/PodDisruptionBudget/{}", pdb.namespace, pdb.name)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    fn pdb(max_unavailable: u32) -> String {
        format!(
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: db\n  namespace: data\nspec:\n  maxUnavailable: {max_unavailable}\n  selector:\n    matchLabels: {{app: db}}\nstatus:\n  disruptionsAllowed: {max_unavailable}\n  currentHealthy: 3\n  desiredHealthy: 3\n  expectedPods: 3\n"
        )
    }

    #[test]
    fn fires_on_zero() {
        assert_eq!(
            fired(
                "MIG003",
                &[("cluster/all.yaml", &cluster(2, &[], &pdb(0)))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_one() {
        assert!(
            fired(
                "MIG003",
                &[("cluster/all.yaml", &cluster(2, &[], &pdb(1)))],
                Target::default()
            )
            .is_empty()
        );
    }
}
