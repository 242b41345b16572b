use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL018",
        name: "values-sources-disagree",
        title: "two Cilium values sources disagree on the dataplane",
        severity: Severity::Warning,
        inputs: &[Input::Cilium],
        fix: "keep one source of truth (e.g. render the bootstrap install from the same values file the GitOps release uses)",
        docs: include_str!("../../../../../docs/rules/CIL018.md"),
    },
    check,
};

/// Settings whose change alters the dataplane of a running cluster.
const DATAPLANE: &[&str] = &[
    "kubeProxyReplacement",
    "routingMode",
    "tunnelProtocol",
    "tunnelPort",
    "ipam.mode",
    "k8sServiceHost",
    "k8sServicePort",
    "bpf.masquerade",
    "bpf.hostLegacyRouting",
    "bpf.datapathMode",
    "cni.exclusive",
];

fn normal(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::scalar_text)
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Whether two files sit at the same place in sibling directory trees: same depth, same file
/// name, and exactly one directory apart (`a/x/values.yaml`, `b/x/values.yaml`).
fn parallel(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.len() == b.len()
        && a.last() == b.last()
        && a.iter().zip(&b).filter(|(x, y)| x != y).count() == 1
}

fn check(ctx: &Context, out: &mut Emitter) {
    let sources: Vec<_> = ctx.cilium.iter().filter(|v| !v.from_cluster).collect();
    let Some((first, rest)) = sources.split_first() else {
        return;
    };
    // Values next to different Talos clusters (`hetzner/`, `proxmox/`) are different installs,
    // and so are files at the same place in parallel directories (`hetzner/deployments/
    // cilium.yaml` and `linode/deployments/cilium.yaml`; `clusters/prod/...` and
    // `clusters/staging/...`), even without Talos configs among the inputs.
    for other in rest
        .iter()
        .filter(|o| ctx.same_cluster(&first.label, &o.label) && !parallel(&first.label, &o.label))
    {
        let mut differences = Vec::new();
        let mut anchor = None;
        for path in DATAPLANE {
            let (a, b) = (normal(first.get(path)), normal(other.get(path)));
            if a.is_some() && b.is_some() && a != b {
                differences.push(format!(
                    "{path}: {} vs {}",
                    a.unwrap_or_default(),
                    b.unwrap_or_default()
                ));
                anchor = anchor.or(other.get(path));
            }
        }
        if let (Some(a), Some(b)) = (first.version, other.version)
            && a != b
        {
            differences.push(format!("chart version: {a} vs {b}"));
        }
        if differences.is_empty() {
            continue;
        }
        out.push(
            out.finding(format!(
                "{} and {} configure the same Cilium install differently ({}): the next reconcile silently changes the dataplane",
                first.label,
                other.label,
                differences.join("; ")
            ))
            .at(ctx.location_or_file(anchor, other.anchor()))
            .object(other.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_kpr_difference() {
        let found = fired(
            "CIL018",
            &[
                // The bootstrap values and the GitOps release of one cluster.
                (
                    "bootstrap/cilium-values.yaml",
                    "kubeProxyReplacement: disabled\nipam: {mode: kubernetes}\n",
                ),
                (
                    "apps/cilium/values.yaml",
                    "kubeProxyReplacement: true\nipam: {mode: kubernetes}\n",
                ),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn quiet_across_parallel_cluster_directories() {
        // sergelogvinov/terraform-talos: one install per cloud, side by side, no Talos config
        // among the inputs.
        let values = |kpr: &str, host: &str| {
            format!(
                "kubeProxyReplacement: {kpr}\nk8sServiceHost: {host}\nipam: {{mode: kubernetes}}\n"
            )
        };
        let (h, l, p) = (
            values("strict", "api.cluster.local"),
            values("strict", "172.16.0.5"),
            values("true", "10.0.0.1"),
        );
        let found = fired(
            "CIL018",
            &[
                ("hetzner/deployments/cilium.yaml", h.as_str()),
                ("linode/deployments/cilium.yaml", l.as_str()),
                ("proxmox/deployments/cilium.yaml", p.as_str()),
            ],
            Target::default(),
        );
        assert!(found.is_empty(), "{found:?}");
        // The same cluster's bootstrap values and GitOps release still pair up.
        let found = fired(
            "CIL018",
            &[
                ("tofu/talos/cilium-values.yaml", h.as_str()),
                ("kubernetes/apps/cilium/values.yaml", p.as_str()),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn quiet_when_equal() {
        assert!(
            fired(
                "CIL018",
                &[
                    (
                        "a/cilium-values.yaml",
                        "kubeProxyReplacement: true\nipam: {mode: kubernetes}\n"
                    ),
                    (
                        "b/cilium-values.yaml",
                        "kubeProxyReplacement: \"true\"\nhubble: {enabled: true}\n"
                    )
                ],
                Target::default(),
            )
            .is_empty()
        );
    }
}
