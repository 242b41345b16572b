use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL013",
        name: "upgrade-k8s-reverts-cni",
        title: "CNI managed by Talos manifests and by Helm",
        severity: Severity::Warning,
        inputs: &[Input::Talos],
        fix: "manage the CNI one way only: either Talos (`cni.urls` / inline manifests) or Helm/GitOps",
        docs: include_str!("../../../../../docs/rules/TAL013.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let helm_cnis: Vec<(&str, String)> = ctx
        .cilium
        .iter()
        .filter(|v| !v.from_cluster)
        .map(|v| ("cilium", v.label.clone()))
        .chain(
            ctx.snapshot
                .helm
                .iter()
                .filter(|h| h.chart.contains("tigera-operator") || h.chart == "calico")
                .map(|h| ("calico", h.file.clone())),
        )
        .collect();
    if helm_cnis.is_empty() {
        return;
    }
    for source in &ctx.snapshot.talos {
        for doc in &source.docs {
            let mut manifests: Vec<(&Node, String)> = Vec::new();
            for path in [
                &["cluster", "network", "cni", "urls"][..],
                &["cluster", "extraManifests"][..],
            ] {
                for url in doc.path(path).map(Node::as_seq).unwrap_or_default() {
                    manifests.push((url, url.scalar_text().unwrap_or_default()));
                }
            }
            for inline in doc
                .path(&["cluster", "inlineManifests"])
                .map(Node::as_seq)
                .unwrap_or_default()
            {
                let name = inline
                    .get("name")
                    .and_then(Node::scalar_text)
                    .unwrap_or_default();
                manifests.push((inline.get("name").unwrap_or(inline), name));
            }
            for (node, text) in manifests {
                let lower = text.to_ascii_lowercase();
                let Some((cni, values)) = helm_cnis.iter().find(|(cni, _)| {
                    lower.contains(cni) || (*cni == "calico" && lower.contains("tigera"))
                }) else {
                    continue;
                };
                out.push(
                    out.finding(format!(
                        "{} installs {cni} through Talos (`{text}`) while {values} manages it with Helm: `talosctl upgrade-k8s` re-applies the Talos manifests and reverts the Helm changes",
                        source.summary.file
                    ))
                    .at(ctx.location(node))
                    .object(source.summary.file.clone()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const VALUES: &str = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n";

    #[test]
    fn fires_on_both() {
        let patch = "cluster:\n  network:\n    cni:\n      name: custom\n      urls: [https://example.com/v1.16.5/cilium.yaml]\n";
        let found = fired(
            "TAL013",
            &[("patch.yaml", patch), ("helm/cilium.yaml", VALUES)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn quiet_with_one_manager() {
        let patch = "cluster:\n  network:\n    cni:\n      name: none\n";
        assert!(
            fired(
                "TAL013",
                &[("patch.yaml", patch), ("helm/cilium.yaml", VALUES)],
                Target::default()
            )
            .is_empty()
        );
    }
}
