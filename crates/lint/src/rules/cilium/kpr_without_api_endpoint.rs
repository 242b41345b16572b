use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL005",
        name: "kpr-without-api-endpoint",
        title: "kube-proxy replacement without an API endpoint",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `k8sServiceHost` and `k8sServicePort` (Talos: `localhost` and `7445`, KubePrism)",
        docs: include_str!("../../../../../docs/rules/CIL005.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx
        .cilium
        .iter()
        .filter(|v| !v.from_cluster && v.replaces_kube_proxy())
    {
        let host = values
            .text("k8sServiceHost")
            .filter(|h| !h.trim().is_empty());
        let port = values.get("k8sServicePort").and_then(Node::as_u16);
        let kpr = values
            .get("kubeProxyReplacement")
            .and_then(|n| ctx.location(n));
        match host {
            None => out.push(
                out.finding(
                    "kubeProxyReplacement is on but k8sServiceHost is empty: without kube-proxy the agent cannot reach the API server through the kubernetes Service (cilium-cli fills it in at install time; Helm and GitOps do not)",
                )
                .at(kpr)
                .object(values.label.clone()),
            ),
            // A template expression (blanked out as it was read) says nothing about the host.
            Some(host) if host.contains(cniswap_config::template::PLACEHOLDER) => {}
            Some(host) if ctx.is_talos() => {
                let local = matches!(host.as_str(), "localhost" | "127.0.0.1");
                if !(local && port == Some(7445)) {
                    out.push(
                        out.finding(format!(
                            "on Talos the API endpoint should be KubePrism (localhost:7445), not {host}:{}: a single API address is a single point of failure for every agent",
                            port.map_or("?".into(), |p| p.to_string())
                        ))
                        .severity(Severity::Warning)
                        .at(values.get("k8sServiceHost").and_then(|n| ctx.location(n)))
                        .object(values.label.clone()),
                    );
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quiet_on_a_templated_host() {
        let talos = "cluster:\n  network:\n    cni:\n      name: none\n";
        let values = "kubeProxyReplacement: true\nk8sServiceHost: {{ .Values.apiHost | quote }}\nk8sServicePort: 7445\n";
        let found = fired(
            "CIL005",
            &[("patch.yaml", talos), ("helm/cilium.yaml.gotmpl", values)],
            Target::default(),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    use crate::Target;
    use crate::rules::test_support::*;
    use cniswap_model::Severity;

    #[test]
    fn fires_without_host_and_warns_on_talos_without_prism() {
        let found = fired(
            "CIL005",
            &[(
                "helm/cilium.yaml",
                "kubeProxyReplacement: true\nipam: {mode: kubernetes}\n",
            )],
            Target::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].location.as_ref().unwrap().line, 1);
        let talos = "cluster:\n  network:\n    cni:\n      name: none\n";
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: api.example.com\nk8sServicePort: 6443\n";
        let found = fired(
            "CIL005",
            &[("patch.yaml", talos), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found[0].severity, Severity::Warning);
    }

    #[test]
    fn quiet_with_prism_or_without_kpr() {
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: \"7445\"\n";
        assert!(fired("CIL005", &[("helm/cilium.yaml", values)], Target::default()).is_empty());
        assert!(
            fired(
                "CIL005",
                &[(
                    "helm/cilium.yaml",
                    "kubeProxyReplacement: false\nipam: {mode: kubernetes}\n"
                )],
                Target::default()
            )
            .is_empty()
        );
    }
}
