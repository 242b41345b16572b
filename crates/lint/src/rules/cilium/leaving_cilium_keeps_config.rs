use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL015",
        name: "leaving-cilium-keeps-config",
        title: "Cilium leaves its CNI config behind when removed",
        severity: Severity::Warning,
        inputs: &[Input::Cilium, Input::Target],
        fix: "let the plan remove /etc/cni/net.d/05-cilium.conflist and restore *.cilium_bak per node (`cniswap node clean --cni cilium`), or set `cni.uninstall: true` before uninstalling",
        docs: include_str!("../../../../../docs/rules/CIL015.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.target.cni == Some(CniKind::Cilium) {
        return;
    }
    let target = ctx.target.cni.map_or("", |t| t.as_str());
    for values in &ctx.cilium {
        let node = values.get("cni.uninstall");
        if node.and_then(Node::as_bool) == Some(true) {
            continue;
        }
        out.push(
            out.finding(format!(
                "leaving Cilium for {target} with cni.uninstall {}: 05-cilium.conflist and the *.cilium_bak renames stay on every node, and 05-cilium sorts before the new CNI's config",
                if node.is_some() { "false" } else { "unset (false in recent charts)" }
            ))
            .at(ctx.location_or_file(node, values.anchor()))
            .object(values.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    #[test]
    fn fires_when_leaving() {
        assert_eq!(
            fired(
                "CIL015",
                &[("helm/cilium.yaml", "ipam:\n  mode: kubernetes\n")],
                to(CniKind::Calico)
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_when_staying_or_uninstalling() {
        assert!(
            fired(
                "CIL015",
                &[("helm/cilium.yaml", "ipam:\n  mode: kubernetes\n")],
                to(CniKind::Cilium)
            )
            .is_empty()
        );
        assert!(
            fired(
                "CIL015",
                &[(
                    "helm/cilium.yaml",
                    "cni:\n  uninstall: true\nipam: {mode: kubernetes}\n"
                )],
                to(CniKind::Calico)
            )
            .is_empty()
        );
    }
}
