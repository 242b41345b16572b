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
    // Only managed releases (HelmRelease / Application): a loose values file may just be the
    // input the Talos manifests were rendered from.
    let helm_cnis: Vec<(&str, String)> = ctx
        .cilium
        .iter()
        .filter(|v| v.release)
        .map(|v| ("cilium", v.label.clone()))
        .chain(
            ctx.snapshot
                .helm
                .iter()
                .filter(|h| {
                    h.release && (h.chart.contains("tigera-operator") || h.chart == "calico")
                })
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
                let Some((cni, values)) = helm_cnis.iter().find(|(cni, file)| {
                    (lower.contains(cni) || (*cni == "calico" && lower.contains("tigera")))
                        && ctx.same_cluster(&source.summary.file, file)
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

    const RELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cilium\nspec:\n  chart:\n    spec: {chart: cilium, version: 1.16.5}\n  values:\n    kubeProxyReplacement: true\n";
    const URLS: &str = "cluster:\n  network:\n    cni:\n      name: custom\n      urls: [https://example.com/v1.16.5/cilium.yaml]\n";

    #[test]
    fn fires_on_talos_manifests_and_a_helm_release() {
        let found = fired(
            "TAL013",
            &[("patch.yaml", URLS), ("cilium-release.yaml", RELEASE)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 5);
    }

    #[test]
    fn quiet_with_one_manager_or_a_loose_values_file() {
        let none = "cluster:\n  network:\n    cni:\n      name: none\n";
        assert!(
            fired(
                "TAL013",
                &[("patch.yaml", none), ("cilium-release.yaml", RELEASE)],
                Target::default()
            )
            .is_empty()
        );
        // Values only used to render the manifests Talos applies.
        let values = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n";
        assert!(
            fired(
                "TAL013",
                &[("patch.yaml", URLS), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
    }
}
