use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL004",
        name: "ippool-cidr-defaulted",
        title: "Calico pool CIDR falls back to 192.168.0.0/16",
        severity: Severity::Error,
        inputs: &[Input::Calico],
        fix: "set `calicoNetwork.ipPools[].cidr` explicitly (the cluster's pod CIDR)",
        docs: include_str!("../../../../../docs/rules/CAL004.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.calico.pool_cidrs().is_empty() {
        return;
    }
    let kubeadm = ctx
        .snapshot
        .objects
        .config_maps
        .iter()
        .any(|c| c.metadata.name == "kubeadm-config");
    // Only when it is known that no kubeadm-config exists: Talos, or a cluster snapshot without it.
    if kubeadm || !(ctx.is_talos() || ctx.has_cluster()) {
        return;
    }
    for installation in &ctx.calico.installations {
        out.push(
            out.finding(format!(
                "{} names no IP pool CIDR and the cluster has no kube-system/kubeadm-config: the operator falls back to 192.168.0.0/16, which often collides with the LAN",
                installation.label
            ))
            .at(ctx.location_or_file(installation.spec.get("calicoNetwork"), &installation.spec))
            .object(installation.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    cni: {name: none}\n";

    #[test]
    fn fires_on_talos_without_pool() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    bgp: Disabled\n";
        assert_eq!(
            fired(
                "CAL004",
                &[("i.yaml", install), ("patch.yaml", TALOS)],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_with_pool() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools:\n      - cidr: 10.244.0.0/16\n";
        assert!(
            fired(
                "CAL004",
                &[("i.yaml", install), ("patch.yaml", TALOS)],
                Target::default()
            )
            .is_empty()
        );
    }
}
