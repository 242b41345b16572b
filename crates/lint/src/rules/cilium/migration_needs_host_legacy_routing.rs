use super::for_rolling_migration;
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
    for_rolling_migration(ctx, out, |values, reason, out| {
        if values.bool("bpf.hostLegacyRouting") != Some(true) {
            out.push(
                out.finding(format!(
                    "bpf.hostLegacyRouting is not true {reason}: BPF host routing bypasses the Linux stack, so pods on the old overlay and on Cilium cannot reach each other"
                ))
                .at(ctx.location_or_file(values.get("bpf.hostLegacyRouting"), values.anchor()))
                .object(values.label.clone()),
            );
        }
    });
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
