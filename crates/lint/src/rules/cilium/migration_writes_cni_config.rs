use super::require_for_rolling_migration;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL012",
        name: "migration-writes-cni-config",
        title: "Cilium would switch every node at once",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `cni.customConf: true` and switch nodes one by one with a CiliumNodeConfig (`write-cni-conf-when-ready`)",
        docs: include_str!("../../../../../docs/rules/CIL012.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    require_for_rolling_migration(
        ctx,
        out,
        "cni.customConf",
        true,
        "every agent writes 05-cilium.conflist as soon as it starts, which sorts first and switches all nodes together",
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
                "CIL012",
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
                "CIL012",
                &[(
                    "helm/cilium.yaml",
                    "cni:\n  customConf: true\nipam: {mode: cluster-pool}\n"
                )],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
