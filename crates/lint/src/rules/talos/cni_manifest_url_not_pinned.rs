use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL008",
        name: "cni-manifest-url-not-pinned",
        title: "manifest URL follows a branch",
        severity: Severity::Warning,
        inputs: &[Input::Talos],
        fix: "pin the URL to a release tag or a commit (e.g. `.../v1.16.5/...` or `.../<sha>/...`)",
        docs: include_str!("../../../../../docs/rules/TAL008.md"),
    },
    check,
};

/// Why a URL floats, if it does.
pub(crate) fn floating(url: &str) -> Option<&'static str> {
    let lower = url.to_ascii_lowercase();
    if lower.contains("/refs/heads/") {
        Some("a branch (refs/heads)")
    } else if lower.contains("/master/") || lower.contains("/main/") {
        Some("the default branch")
    } else if lower.contains("/latest/") || lower.contains(":latest") || lower.ends_with("/latest")
    {
        Some("`latest`")
    } else {
        None
    }
}

/// Names in a manifest URL that say it installs a CNI. `extraManifests` also carry
/// metrics-server, cert approvers, Gateway API CRDs and the like: a floating URL there is the
/// owner's choice and outside what cniswap checks.
const CNI_NAMES: &[&str] = &[
    "cilium",
    "calico",
    "tigera",
    "flannel",
    "canal",
    "weave",
    "kube-router",
    "antrea",
    "multus",
];

pub(crate) fn is_cni_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    CNI_NAMES.iter().any(|name| lower.contains(name))
}

fn check(ctx: &Context, out: &mut Emitter) {
    use cniswap_config::talos::document_kind;
    for source in &ctx.snapshot.talos {
        // cni.urls install the CNI whatever they are called; other manifests only when the
        // URL names a CNI.
        let mut urls: Vec<&Node> = Vec::new();
        for doc in &source.docs {
            urls.extend(
                doc.path(&["cluster", "network", "cni", "urls"])
                    .map(Node::as_seq)
                    .unwrap_or_default(),
            );
            let extra = doc
                .path(&["cluster", "extraManifests"])
                .map(Node::as_seq)
                .unwrap_or_default();
            let external = (document_kind(doc) == Some("KubeExternalManifestConfig"))
                .then(|| doc.get("url"))
                .flatten();
            urls.extend(
                extra
                    .iter()
                    .chain(external)
                    .filter(|u| u.as_str().is_some_and(is_cni_url)),
            );
        }
        for url in urls {
            let Some(text) = url.as_str() else { continue };
            if let Some(why) = floating(text) {
                out.push(
                    out.finding(format!(
                        "`{text}` follows {why}: every bootstrap or `talosctl upgrade-k8s` may apply different manifests"
                    ))
                    .at(ctx.location(url))
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

    #[test]
    fn fires_on_branch_urls() {
        let patch = "cluster:\n  network:\n    cni:\n      name: custom\n      urls:\n        - https://raw.githubusercontent.com/x/y/refs/heads/master/cilium.yaml\n";
        let found = fired("TAL008", &[("patch.yaml", patch)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 6);
    }

    #[test]
    fn extra_manifests_only_when_they_install_a_cni() {
        // From onedr0p-style repos: kubelet-serving-cert-approver and metrics-server on main.
        let patch = "cluster:\n  extraManifests:\n    - https://raw.githubusercontent.com/alex1989hu/kubelet-serving-cert-approver/main/deploy/standalone-install.yaml\n    - https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml\n    - https://raw.githubusercontent.com/projectcalico/calico/master/manifests/tigera-operator.yaml\n";
        let found = fired("TAL008", &[("patch.yaml", patch)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 5);
    }

    #[test]
    fn quiet_on_tags() {
        let patch = "cluster:\n  extraManifests:\n    - https://raw.githubusercontent.com/x/y/v1.2.3/cilium.yaml\n";
        assert!(fired("TAL008", &[("patch.yaml", patch)], Target::default()).is_empty());
    }
}
