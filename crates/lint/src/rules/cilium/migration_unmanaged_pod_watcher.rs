use super::for_rolling_migration;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL011",
        name: "migration-unmanaged-pod-watcher",
        title: "operator restarts unmanaged pods during the migration",
        severity: Severity::Warning,
        inputs: &[Input::Cilium],
        fix: "set `operator.unmanagedPodWatcher.restart: false` for the migration",
        docs: include_str!("../../../../../docs/rules/CIL011.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for_rolling_migration(ctx, out, |values, reason, out| {
        if values.bool("operator.unmanagedPodWatcher.restart") != Some(false) {
            out.push(
                out.finding(format!(
                    "operator.unmanagedPodWatcher.restart is not false {reason}: the operator restarts every pod Cilium does not manage yet, on every node at once"
                ))
                .at(ctx.location_or_file(values.get("operator.unmanagedPodWatcher.restart"), values.anchor()))
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
                "CIL011",
                &[("helm/cilium.yaml", "ipam:\n  mode: cluster-pool\n")],
                rolling(CniKind::Cilium)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_when_false() {
        assert!(fired("CIL011", &[("helm/cilium.yaml", "operator:\n  unmanagedPodWatcher:\n    restart: false\nipam: {mode: cluster-pool}\n")], rolling(CniKind::Cilium)).is_empty());
    }
}
