use super::for_rolling_migration;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL010",
        name: "migration-policy-enforcement",
        title: "policy enforcement during a rolling migration",
        severity: Severity::Warning,
        inputs: &[Input::Cilium],
        fix: "set `policyEnforcementMode: never` for the migration and state the enforcement gap to the workload owners",
        docs: include_str!("../../../../../docs/rules/CIL010.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let policies = ctx.facts.workloads.network_policies;
    for_rolling_migration(ctx, out, |values, reason, out| {
        let mode = values
            .text("policyEnforcementMode")
            .unwrap_or_else(|| "default".into());
        let at = ctx.location_or_file(values.get("policyEnforcementMode"), values.anchor());
        if mode != "never" {
            out.push(
                out.finding(format!(
                    "policyEnforcementMode is `{mode}` {reason}: Cilium drops traffic from pods it does not manage yet"
                ))
                .at(at)
                .object(values.label.clone()),
            );
        } else if policies > 0 {
            out.push(
                out.finding(format!(
                    "{policies} NetworkPolicies will not be enforced by Cilium until the migration ends (policyEnforcementMode: never)"
                ))
                .severity(Severity::Info)
                .at(at)
                .object(values.label.clone())
                .help("tell the owners of those policies about the window; restore `policyEnforcementMode: default` in the final values"),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    #[test]
    fn fires_on_default_mode() {
        assert_eq!(
            fired(
                "CIL010",
                &[("helm/cilium.yaml", "ipam:\n  mode: cluster-pool\n")],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_never_without_policies() {
        assert!(
            fired(
                "CIL010",
                &[(
                    "helm/cilium.yaml",
                    "policyEnforcementMode: never\nipam: {mode: cluster-pool}\n"
                )],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
