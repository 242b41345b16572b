use crate::rules::prelude::*;
use cniswap_model::InstallMethod;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL006",
        name: "tunnel-port-collides-with-source",
        title: "Cilium tunnel port equals the old overlay's port",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "give Cilium its own port during the migration, e.g. `tunnelPort: 8473`",
        docs: include_str!("../../../../../docs/rules/CIL006.md"),
    },
    check,
};

/// UDP ports of the overlays other than Cilium's, with who owns them.
fn source_ports(ctx: &Context) -> Vec<(u16, String)> {
    let mut ports = Vec::new();
    for cni in ctx
        .facts
        .cnis
        .iter()
        .filter(|c| c.kind != CniKind::Cilium && c.running)
    {
        match cni.kind {
            CniKind::Flannel | CniKind::Canal => {
                let mode = cni.flannel.as_ref();
                if mode
                    .and_then(|m| m.backend.as_deref())
                    .is_none_or(|b| b == "vxlan")
                {
                    let default = if cni.install == Some(InstallMethod::Talos) {
                        4789
                    } else {
                        8472
                    };
                    ports.push((
                        mode.and_then(|m| m.port).unwrap_or(default),
                        format!("{} VXLAN", cni.kind.as_str()),
                    ));
                }
            }
            CniKind::Calico
                if cni
                    .calico
                    .as_ref()
                    .is_some_and(|m| m.encapsulation.iter().any(|e| e.starts_with("VXLAN"))) =>
            {
                ports.push((4789, "Calico VXLAN".into()));
            }
            _ => {}
        }
    }
    if ports.is_empty() {
        for view in &ctx.talos {
            if view.cni_name().value == "flannel" {
                let port = view
                    .document("KubeFlannelCNIConfig")
                    .and_then(|d| d.get("backendPort"))
                    .and_then(Node::as_u16)
                    .unwrap_or(4789);
                ports.push((port, format!("Talos Flannel VXLAN ({})", view.describe())));
                break;
            }
        }
    }
    ports
}

fn check(ctx: &Context, out: &mut Emitter) {
    let both_running =
        ctx.running_cnis().contains(&CniKind::Cilium) && ctx.running_cnis().len() > 1;
    if !ctx.rolling_to(CniKind::Cilium) && !both_running {
        return;
    }
    let sources = source_ports(ctx);
    for values in &ctx.cilium {
        let Some((port, node)) = values.tunnel_port() else {
            continue;
        };
        if let Some((_, owner)) = sources.iter().find(|(p, _)| *p == port) {
            let origin = if node.is_some() {
                "tunnelPort"
            } else {
                "the default tunnel port"
            };
            out.push(
                out.finding(format!(
                    "Cilium's overlay uses {origin} {port}, the same UDP port as {owner}: both overlays cannot bind it while they run side by side"
                ))
                .at(ctx.location_or_file(node, values.anchor()))
                .object(values.label.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    const TALOS_FLANNEL: &str = "cluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n";

    #[test]
    fn fires_on_4789_against_talos_flannel() {
        let values = "routingMode: tunnel\ntunnelProtocol: vxlan\ntunnelPort: 4789\n";
        let found = fired(
            "CIL006",
            &[("patch.yaml", TALOS_FLANNEL), ("helm/cilium.yaml", values)],
            rolling(CniKind::Cilium),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn quiet_on_distinct_port() {
        let values = "routingMode: tunnel\ntunnelProtocol: vxlan\ntunnelPort: 8473\n";
        assert!(
            fired(
                "CIL006",
                &[("patch.yaml", TALOS_FLANNEL), ("helm/cilium.yaml", values)],
                rolling(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
