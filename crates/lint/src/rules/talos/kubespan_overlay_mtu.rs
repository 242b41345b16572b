use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL018",
        name: "kubespan-overlay-mtu",
        title: "overlay MTU not reduced for KubeSpan",
        severity: Severity::Warning,
        inputs: &[Input::Talos],
        fix: "set the overlay MTU to the KubeSpan MTU minus the overlay's overhead (1420 - 50 = 1370 for VXLAN)",
        docs: include_str!("../../../../../docs/rules/TAL018.md"),
    },
    check,
};

/// VXLAN and Geneve headers over IPv4 (what Flannel and Cilium subtract from the link MTU).
const OVERLAY_OVERHEAD: u16 = 50;

fn check(ctx: &Context, out: &mut Emitter) {
    for view in &ctx.talos {
        let Some((kubespan_mtu, enabled)) = view.kubespan() else {
            continue;
        };
        let fits = kubespan_mtu.saturating_sub(OVERLAY_OVERHEAD);
        let at = enabled.and_then(|n| ctx.location(n));
        // Cilium in tunnel mode: its `MTU` value sizes the pod and tunnel devices.
        let cilium = ctx.cilium_for(view);
        for values in cilium.iter().filter(|v| !v.from_cluster) {
            if values.tunnel_port().is_none() {
                continue;
            }
            let mtu = values.get("MTU");
            let too_big = match mtu.and_then(Node::as_u16) {
                Some(0) | None => values.complete(),
                Some(m) => m > fits,
            };
            if too_big {
                let state = mtu
                    .and_then(Node::scalar_text)
                    .unwrap_or_else(|| "not set (detected from the node's link)".into());
                out.push(
                    out.finding(format!(
                        "KubeSpan is on (WireGuard MTU {kubespan_mtu}) and Cilium tunnels pod traffic with MTU {state}: encapsulated packets do not fit KubeSpan and are fragmented or dropped; at most {fits} fits"
                    ))
                    .at(mtu.and_then(|n| ctx.location(n)).or_else(|| at.clone()))
                    .object(values.label.clone()),
                );
            }
        }
        // Talos' own Flannel (VXLAN): 1.14 has `backendMTU`; before that nothing sets it.
        if cilium.is_empty() && view.cni_name().value == "flannel" {
            let mtu = view
                .document("KubeFlannelCNIConfig")
                .and_then(|d| d.get("backendMTU"));
            let set = mtu.and_then(Node::as_u16);
            if set.is_none_or(|m| m > kubespan_mtu) {
                let how = if view.document("KubeFlannelCNIConfig").is_some() {
                    format!(
                        "set `backendMTU: {kubespan_mtu}` in KubeFlannelCNIConfig (Flannel subtracts the VXLAN overhead itself)"
                    )
                } else {
                    "Flannel sizes flannel.1 from the node's link (1450 on a 1500 link)".to_string()
                };
                out.push(
                    out.finding(format!(
                        "KubeSpan is on (WireGuard MTU {kubespan_mtu}) under Talos' Flannel VXLAN: {how}; packets larger than {fits} are fragmented (siderolabs/talos#13457)"
                    ))
                    .at(mtu.and_then(|n| ctx.location(n)).or(at))
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

    const KUBESPAN: &str = "machine:\n  network:\n    kubespan:\n      enabled: true\ncluster:\n  network:\n    cni: {name: none}\n";

    #[test]
    fn fires_on_cilium_vxlan_without_a_reduced_mtu() {
        let values = "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\nroutingMode: tunnel\n";
        let found = fired(
            "TAL018",
            &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().file, "patch.yaml");
        let big = format!("{values}MTU: 1450\n");
        let found = fired(
            "TAL018",
            &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", &big)],
            Target::default(),
        );
        assert_eq!(found[0].location.as_ref().unwrap().line, 5);
    }

    #[test]
    fn fires_on_talos_flannel_under_kubespan() {
        let patch = "machine:\n  network:\n    kubespan:\n      enabled: true\n";
        let found = fired("TAL018", &[("patch.yaml", patch)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("talos#13457"));
    }

    #[test]
    fn quiet_with_a_fitting_mtu_native_routing_or_no_kubespan() {
        let values = "routingMode: tunnel\nMTU: 1370\nk8sServiceHost: localhost\n";
        assert!(
            fired(
                "TAL018",
                &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
        let native = "routingMode: native\nk8sServiceHost: localhost\nipv4NativeRoutingCIDR: 10.244.0.0/16\n";
        assert!(
            fired(
                "TAL018",
                &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", native)],
                Target::default()
            )
            .is_empty()
        );
        let off = "machine:\n  network:\n    kubespan:\n      enabled: false\n";
        assert!(fired("TAL018", &[("patch.yaml", off)], Target::default()).is_empty());
    }
}
