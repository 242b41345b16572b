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

fn check(ctx: &Context, out: &mut Emitter) {
    let sources: Vec<_> = ctx.cilium.iter().filter(|v| !v.from_cluster).collect();
    let Some((first, rest)) = sources.split_first() else {
        return;
    };
    // Values next to different Talos clusters (`hetzner/`, `proxmox/`) are different installs.
    for other in rest
        .iter()
        .filter(|o| ctx.same_cluster(&first.label, &o.label))
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
                (
                    "a/cilium-values.yaml",
                    "kubeProxyReplacement: disabled\nipam: {mode: kubernetes}\n",
                ),
                (
                    "b/cilium-values.yaml",
                    "kubeProxyReplacement: true\nipam: {mode: kubernetes}\n",
                ),
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
