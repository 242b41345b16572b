use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL005",
        name: "talos-volume-plugin-path",
        title: "Calico kubelet volume plugin path on Talos",
        severity: Severity::Warning,
        inputs: &[Input::Calico],
        fix: "set `kubeletVolumePluginPath: None` in the Installation",
        docs: include_str!("../../../../../docs/rules/CAL005.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.is_talos() {
        return;
    }
    for installation in &ctx.calico.installations {
        let node = installation.get("kubeletVolumePluginPath");
        if node.and_then(Node::as_str) == Some("None") {
            continue;
        }
        out.push(
            out.finding(format!(
                "{}: kubeletVolumePluginPath is {}: Talos has no writable /var/lib/kubelet/plugins path for Calico's CSI driver",
                installation.label,
                node.and_then(Node::scalar_text).map_or("unset".into(), |v| format!("`{v}`"))
            ))
            .at(ctx.location_or_file(node, &installation.spec))
            .object(installation.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    cni: {name: none}\n";
    const INSTALL: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.244.0.0/16}]\n";

    #[test]
    fn fires_when_unset_on_talos() {
        assert_eq!(
            fired(
                "CAL005",
                &[("i.yaml", INSTALL), ("patch.yaml", TALOS)],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_with_none() {
        let fixed = format!("{INSTALL}  kubeletVolumePluginPath: None\n");
        assert!(
            fired(
                "CAL005",
                &[("i.yaml", &fixed), ("patch.yaml", TALOS)],
                Target::default()
            )
            .is_empty()
        );
    }
}
