use super::require_for_rolling_migration;
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
    require_for_rolling_migration(
        ctx,
        out,
        "operator.unmanagedPodWatcher.restart",
        false,
        "the operator restarts every pod Cilium does not manage yet, on every node at once",
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
