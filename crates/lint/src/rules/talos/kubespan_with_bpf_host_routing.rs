use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL019",
        name: "kubespan-with-bpf-host-routing",
        title: "KubeSpan bypassed by Cilium BPF host routing",
        severity: Severity::Warning,
        inputs: &[Input::Talos, Input::Cilium],
        fix: "set Cilium `bpf.hostLegacyRouting: true` so pod traffic goes through the host stack (and KubeSpan)",
        docs: include_str!("../../../../../docs/rules/TAL019.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for view in &ctx.talos {
        let Some((_, enabled)) = view.kubespan() else {
            continue;
        };
        for values in ctx.cilium_for(view) {
            // BPF host routing is what bpf.masquerade with kube-proxy replacement turns on.
            if !values.replaces_kube_proxy()
                || values.bool("bpf.masquerade") != Some(true)
                || values.bool("bpf.hostLegacyRouting") == Some(true)
            {
                continue;
            }
            let kubespan = enabled
                .and_then(|n| ctx.location(n))
                .map_or_else(|| view.describe(), |l| format!("{}:{}", l.file, l.line));
            out.push(
                out.finding(format!(
                    "KubeSpan is on ({kubespan}) and Cilium runs with kubeProxyReplacement and bpf.masquerade without bpf.hostLegacyRouting: BPF host routing sends pod traffic past the host stack where KubeSpan's WireGuard routes live, so traffic between nodes that only KubeSpan connects is lost"
                ))
                .at(values.get("bpf.masquerade").and_then(|n| ctx.location(n)))
                .object(values.label.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const KUBESPAN: &str = "machine:\n  network:\n    kubespan:\n      enabled: true\ncluster:\n  network:\n    cni: {name: none}\n";
    const VALUES: &str = "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\nbpf:\n  masquerade: true\n";

    #[test]
    fn fires_with_bpf_masquerade_and_kpr() {
        let found = fired(
            "TAL019",
            &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", VALUES)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 5);
        assert!(
            found[0].message.contains("patch.yaml:4"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn quiet_with_legacy_routing_or_without_kubespan() {
        let legacy = format!("{VALUES}  hostLegacyRouting: true\n");
        assert!(
            fired(
                "TAL019",
                &[("patch.yaml", KUBESPAN), ("helm/cilium.yaml", &legacy)],
                Target::default()
            )
            .is_empty()
        );
        let plain = "cluster:\n  network:\n    cni: {name: none}\n";
        assert!(
            fired(
                "TAL019",
                &[("patch.yaml", plain), ("helm/cilium.yaml", VALUES)],
                Target::default()
            )
            .is_empty()
        );
    }
}
