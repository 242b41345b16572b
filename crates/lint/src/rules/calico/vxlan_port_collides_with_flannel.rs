use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL008",
        name: "vxlan-port-collides-with-flannel",
        title: "Calico VXLAN port equals Flannel's",
        severity: Severity::Error,
        inputs: &[Input::Calico, Input::Facts],
        fix: "use Calico's shared-overlay Flannel migration (same pod CIDR, VTEP reuse), or set FelixConfiguration `vxlanPort` to a free port",
        docs: include_str!("../../../../../docs/rules/CAL008.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.rolling_to(CniKind::Calico) {
        return;
    }
    let Some(flannel) = ctx
        .facts
        .cnis
        .iter()
        .find(|c| matches!(c.kind, CniKind::Flannel | CniKind::Canal) && c.running)
    else {
        return;
    };
    let mode = flannel.flannel.clone().unwrap_or_default();
    if mode.backend.as_deref().is_some_and(|b| b != "vxlan") {
        return;
    }
    let flannel_port = mode.port.unwrap_or(
        if flannel.install == Some(cniswap_model::InstallMethod::Talos) {
            4789
        } else {
            8472
        },
    );
    let felix_port = ctx.calico.felix.iter().find_map(|f| f.get("vxlanPort"));
    let calico_port = felix_port.and_then(Node::as_u16).unwrap_or(4789);
    // The shared-overlay migration keeps Flannel's network as the pool: then the port is shared on purpose.
    let shared = mode.network.as_deref().is_some_and(|network| {
        ctx.calico
            .pool_cidrs()
            .iter()
            .any(|p| p.scalar_text().as_deref() == Some(network))
    });
    if calico_port == flannel_port && !shared {
        let anchor = felix_port.or_else(|| ctx.calico.pool_cidrs().first().copied());
        out.push(
            out.finding(format!(
                "Calico VXLAN would use UDP {calico_port}, the port {} already binds, with a different pod CIDR: both overlays cannot run side by side",
                flannel.daemonset.as_deref().unwrap_or("Flannel")
            ))
            .at(anchor.and_then(|n| ctx.location(n))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn flannel_dump() -> String {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-system\ndata:\n  net-conf.json: '{\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"vxlan\", \"Port\": 4789}}'\n";
        cluster(
            2,
            &[(
                "kube-system/kube-flannel",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            )],
            cm,
        )
    }

    #[test]
    fn fires_with_new_pool_on_same_port() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.50.0.0/16, encapsulation: VXLAN}]\n";
        let found = fired(
            "CAL008",
            &[("cluster/all.yaml", &flannel_dump()), ("i.yaml", install)],
            rolling(CniKind::Calico),
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn quiet_with_shared_overlay() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.244.0.0/16, encapsulation: VXLAN}]\n";
        assert!(
            fired(
                "CAL008",
                &[("cluster/all.yaml", &flannel_dump()), ("i.yaml", install)],
                rolling(CniKind::Calico)
            )
            .is_empty()
        );
    }
}
