use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL006",
        name: "kubeprism-not-enabled",
        title: "CNI points at KubePrism, which is off",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "enable KubePrism (`machine.features.kubePrism: {enabled: true, port: 7445}`, or a `KubePrismConfig` document on 1.14), or point the CNI at the real API endpoint",
        docs: include_str!("../../../../../docs/rules/TAL006.md"),
    },
    check,
};

fn is_local(host: &str) -> bool {
    matches!(host.trim(), "localhost" | "127.0.0.1" | "::1")
}

fn check(ctx: &Context, out: &mut Emitter) {
    // (who, host, port, node)
    let mut endpoints: Vec<(String, String, Option<u16>, &Node)> = Vec::new();
    for values in &ctx.cilium {
        if let Some(host) = values.get("k8sServiceHost") {
            let port = values.get("k8sServicePort").and_then(Node::as_u16);
            endpoints.push((
                format!("Cilium k8sServiceHost in {}", values.label),
                host.scalar_text().unwrap_or_default(),
                port,
                host,
            ));
        }
    }
    for cm in &ctx.calico.services_endpoint {
        if let Some(host) = cm.get("KUBERNETES_SERVICE_HOST") {
            let port = cm.get("KUBERNETES_SERVICE_PORT").and_then(Node::as_u16);
            endpoints.push((
                cm.label.clone(),
                host.scalar_text().unwrap_or_default(),
                port,
                host,
            ));
        }
    }
    for (who, host, port, node) in endpoints {
        if !is_local(&host) {
            continue;
        }
        let file = ctx.location(node).map(|l| l.file).unwrap_or_default();
        for view in ctx.views_for(&file) {
            let prism = view.kube_prism();
            let problem = match (prism.value, port) {
                // Off for sure: set off, or nothing unread could turn it on.
                (None, _) if prism.node.is_some() || view.complete() => {
                    "KubePrism is not enabled".to_string()
                }
                (None, _) => continue,
                (Some(p), Some(want)) if p != want => format!("KubePrism listens on {p}"),
                _ => continue,
            };
            // The place to point at is the KubePrism setting when a file writes it (that is
            // the value to change); else the endpoint, which the message names either way.
            let endpoint = ctx.location(node);
            let setting = prism.node.and_then(|n| ctx.location(n));
            let who = match (&setting, &endpoint) {
                (Some(_), Some(e)) => format!("{who} ({}:{})", e.file, e.line),
                _ => who,
            };
            out.push(
                out.finding(format!(
                    "{who} is {host}:{}, but in {} {problem}: the agent cannot reach the API server",
                    port.map_or("?".into(), |p| p.to_string()),
                    view.describe()
                ))
                .at(setting.or(endpoint))
                .object(ctx.talos_object(view)),
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const VALUES: &str =
        "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\n";

    #[test]
    fn fires_when_prism_is_off() {
        let off = "version: v1alpha1\nmachine:\n  type: controlplane\n  features:\n    kubePrism:\n      enabled: false\ncluster:\n  proxy: {disabled: true}\n";
        let found = fired(
            "TAL006",
            &[("talos/cp.yaml", off), ("helm/cilium.yaml", VALUES)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        // At the setting that turns KubePrism off; the message names the endpoint's line.
        let at = found[0].location.as_ref().unwrap();
        assert_eq!((at.file.as_str(), at.line), ("talos/cp.yaml", 6));
        assert!(
            found[0].message.contains("helm/cilium.yaml:2"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn one_finding_for_a_line_every_role_shares() {
        // talhelper: a worker-only patch makes one view per role; the KubePrism patch applies
        // to both, at one line: one finding.
        let talconfig = "clusterName: c\ntalosVersion: v1.13.0\nnodes:\n  - hostname: cp\n    controlPlane: true\n  - hostname: w\n    controlPlane: false\nworker:\n  patches:\n    - \"@./w.yaml\"\n";
        let off = "machine:\n  features:\n    kubePrism:\n      enabled: false\n";
        let found = fired(
            "TAL006",
            &[
                ("talos/talconfig.yaml", talconfig),
                ("talos/prism-off.yaml", off),
                ("talos/w.yaml", "machine:\n  kubelet: {}\n"),
                ("helm/cilium.yaml", VALUES),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 4);
    }

    #[test]
    fn quiet_when_prism_matches_or_endpoint_is_remote() {
        let on = "machine:\n  features:\n    kubePrism:\n      enabled: true\n      port: 7445\n";
        assert!(
            fired(
                "TAL006",
                &[("patch.yaml", on), ("helm/cilium.yaml", VALUES)],
                Target::default()
            )
            .is_empty()
        );
        let off = "machine:\n  features:\n    kubePrism:\n      enabled: false\n";
        let remote =
            "kubeProxyReplacement: true\nk8sServiceHost: 10.0.0.10\nk8sServicePort: 6443\n";
        assert!(
            fired(
                "TAL006",
                &[("patch.yaml", off), ("helm/cilium.yaml", remote)],
                Target::default()
            )
            .is_empty()
        );
    }
}
