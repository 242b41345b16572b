use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL013",
        name: "migration-values-left-behind",
        title: "migration-only Cilium values left in place",
        severity: Severity::Warning,
        inputs: &[Input::Cilium, Input::Facts],
        fix: "apply the final values: `cni.customConf: false`, `policyEnforcementMode: default`, `operator.unmanagedPodWatcher.restart: true`, then restart the cilium DaemonSet",
        docs: include_str!("../../../../../docs/rules/CIL013.md"),
    },
    check,
};

/// (path, migration value, why it must go)
const TEMPORARY: &[(&str, &str, &str)] = &[
    (
        "cni.customConf",
        "true",
        "agents never write their CNI config, so a rebuilt node stays without one",
    ),
    (
        "policyEnforcementMode",
        "never",
        "NetworkPolicies are not enforced",
    ),
    (
        "operator.unmanagedPodWatcher.restart",
        "false",
        "pods Cilium does not manage are never restarted",
    ),
];

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.running_cnis() != [CniKind::Cilium]
        || ctx.target.cni.is_some_and(|t| t != CniKind::Cilium)
    {
        return;
    }
    for values in &ctx.cilium {
        for (path, migration, why) in TEMPORARY {
            let Some(node) = values.get(path) else {
                continue;
            };
            if node.scalar_text().as_deref() == Some(*migration) {
                out.push(
                    out.finding(format!(
                        "Cilium is the only CNI, but `{path}: {migration}` from the migration is still set: {why}"
                    ))
                    .at(ctx.location(node))
                    .object(values.label.clone()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_after_migration() {
        let dump = cluster(
            2,
            &[("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5")],
            "",
        );
        let found = fired(
            "CIL013",
            &[
                ("cluster/all.yaml", &dump),
                (
                    "helm/cilium.yaml",
                    "cni:\n  customConf: true\npolicyEnforcementMode: never\n",
                ),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn quiet_while_flannel_still_runs() {
        let dump = cluster(
            2,
            &[
                ("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5"),
                (
                    "kube-system/kube-flannel",
                    "ghcr.io/flannel-io/flannel:v0.25.1",
                ),
            ],
            "",
        );
        assert!(
            fired(
                "CIL013",
                &[
                    ("cluster/all.yaml", &dump),
                    (
                        "helm/cilium.yaml",
                        "cni:\n  customConf: true\nipam: {mode: cluster-pool}\n"
                    )
                ],
                Target::default()
            )
            .is_empty()
        );
    }
}
