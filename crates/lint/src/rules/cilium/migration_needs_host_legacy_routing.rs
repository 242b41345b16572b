use super::require_for_rolling_migration;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL009",
        name: "migration-needs-host-legacy-routing",
        title: "rolling migration needs `bpf.hostLegacyRouting: true`",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `bpf.hostLegacyRouting: true` for the migration",
        docs: include_str!("../../../../../docs/rules/CIL009.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    require_for_rolling_migration(
        ctx,
        out,
        "bpf.hostLegacyRouting",
        true,
        "BPF host routing bypasses the Linux stack, so pods on the old overlay and on Cilium cannot reach each other",
    );
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    #[test]
    fn fires_when_unset() {
        assert_eq!(
            fired(
                "CIL009",
                &[("helm/cilium.yaml", "ipam:\n  mode: cluster-pool\n")],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_when_true() {
        assert!(
            fired(
                "CIL009",
                &[(
                    "helm/cilium.yaml",
                    "bpf:\n  hostLegacyRouting: true\nipam: {mode: cluster-pool}\n"
                )],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
