use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL010",
        name: "flannel-settings-without-flannel",
        title: "Flannel settings with a non-Flannel CNI",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "remove `cluster.network.cni.flannel` when the CNI is `none` or `custom`",
        docs: include_str!("../../../../../docs/rules/TAL010.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for view in &ctx.talos {
        let name = view
            .at(&["cluster", "network", "cni", "name"])
            .and_then(Node::scalar_text);
        if !matches!(name.as_deref(), Some("none" | "custom")) {
            continue;
        }
        for key in ["extraArgs", "kubeNetworkPoliciesEnabled"] {
            if let Some(node) = view.at(&["cluster", "network", "cni", "flannel", key]) {
                out.push(
                    out.finding(format!(
                        "{} sets cni.flannel.{key} with cni.name `{}`: Talos rejects the config",
                        view.describe(),
                        name.as_deref().unwrap_or_default()
                    ))
                    .at(ctx.location(node))
                    .object(ctx.talos_object(view)),
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
    fn fires_with_none() {
        let patch = "cluster:\n  network:\n    cni:\n      name: none\n      flannel:\n        extraArgs: [--iface=eth1]\n";
        assert_eq!(
            fired("TAL010", &[("patch.yaml", patch)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_flannel() {
        let patch = "cluster:\n  network:\n    cni:\n      name: flannel\n      flannel:\n        extraArgs: [--iface=eth1]\n";
        assert!(fired("TAL010", &[("patch.yaml", patch)], Target::default()).is_empty());
    }
}
