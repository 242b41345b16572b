use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL007",
        name: "bpf-requires-vxlan",
        title: "Calico eBPF with IPIP",
        severity: Severity::Error,
        inputs: &[Input::Calico],
        fix: "use `encapsulation: VXLAN` (or VXLANCrossSubnet / None) on every pool",
        docs: include_str!("../../../../../docs/rules/CAL007.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.calico.bpf().is_none() {
        return;
    }
    let mut ipip: Vec<&Node> = Vec::new();
    for installation in &ctx.calico.installations {
        for pool in installation
            .get("calicoNetwork.ipPools")
            .map(Node::as_seq)
            .unwrap_or_default()
        {
            if let Some(e) = pool
                .get("encapsulation")
                .filter(|e| e.as_str().is_some_and(|s| s.starts_with("IPIP")))
            {
                ipip.push(e);
            }
        }
    }
    for pool in &ctx.calico.ip_pools {
        if let Some(mode) = pool
            .get("ipipMode")
            .filter(|m| m.as_str().is_some_and(|s| s != "Never"))
        {
            ipip.push(mode);
        }
    }
    for felix in &ctx.calico.felix {
        if let Some(node) = felix
            .get("ipipEnabled")
            .filter(|n| n.as_bool() == Some(true))
        {
            ipip.push(node);
        }
    }
    for node in ipip {
        out.push(
            out.finding(format!(
                "IPIP encapsulation (`{}`) with the BPF dataplane: Calico eBPF supports VXLAN only",
                node.scalar_text().unwrap_or_default()
            ))
            .at(ctx.location(node)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_felix_bpf_with_ipip() {
        let felix = "apiVersion: crd.projectcalico.org/v1\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  bpfEnabled: true\n  ipipEnabled: true\n";
        assert_eq!(
            fired("CAL007", &[("f.yaml", felix)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_on_vxlan() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n    ipPools: [{cidr: 10.244.0.0/16, encapsulation: VXLAN}]\n";
        assert!(fired("CAL007", &[("i.yaml", install)], Target::default()).is_empty());
    }
}
