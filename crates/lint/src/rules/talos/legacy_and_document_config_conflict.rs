use crate::rules::prelude::*;
use cniswap_config::talos::{document_kind, is_v1alpha1_document};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL011",
        name: "legacy-and-document-config-conflict",
        title: "1.14 document and its v1alpha1 section both set",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "use one format: move the v1alpha1 section into the document, or drop the document",
        docs: include_str!("../../../../../docs/rules/TAL011.md"),
    },
    check,
};

/// 1.14 document kind -> the v1alpha1 section it replaces (`V1Alpha1ConflictValidate`).
const CONFLICTS: &[(&str, &[&str])] = &[
    ("KubeNetworkConfig", &["cluster", "network"]),
    ("KubeFlannelCNIConfig", &["cluster", "network"]),
    ("KubeProxyConfig", &["cluster", "proxy"]),
    ("KubePrismConfig", &["machine", "features", "kubePrism"]),
    ("ResolverConfig", &["machine", "features", "hostDNS"]),
];

fn check(ctx: &Context, out: &mut Emitter) {
    // Per file: a config or patch that carries both is rejected wherever it is applied. Talos
    // configs written by talosctl (full configs) are checked after their patches.
    let sources = ctx
        .snapshot
        .talos
        .iter()
        .map(|s| (s.summary.file.clone(), &s.docs));
    let views = ctx
        .talos
        .iter()
        .filter(|v| !v.generated_base)
        .map(|v| (v.describe(), &v.docs));
    let mut seen = std::collections::BTreeSet::new();
    for (label, docs) in sources.chain(views) {
        let Some(v1) = docs.iter().find(|d| is_v1alpha1_document(d)) else {
            continue;
        };
        for (kind, path) in CONFLICTS {
            let Some(doc) = docs.iter().find(|d| document_kind(d) == Some(kind)) else {
                continue;
            };
            // A ResolverConfig with only nameservers/searchDomains (Talos 1.12+) replaces
            // nothing of v1alpha1's hostDNS section.
            if doc.get("$patch").is_some()
                || *kind == "ResolverConfig" && doc.get("hostDNS").is_none()
            {
                continue;
            }
            let Some(section) = v1.path_key(path) else {
                continue;
            };
            let section_at = ctx.location(section);
            let doc_at = ctx.location(doc);
            let at = section_at.clone().or_else(|| doc_at.clone());
            if !seen.insert((kind, at.clone().map(|l| (l.file, l.line)))) {
                continue;
            }
            // Name the file that holds each part: after merging, the section may come from a
            // patch and the document from the machine config.
            let file = |l: &Option<cniswap_model::Location>| {
                l.as_ref()
                    .map_or_else(|| "a Talos default".to_string(), |l| l.file.clone())
            };
            let (doc_file, section_file) = (file(&doc_at), file(&section_at));
            let message = if doc_file == section_file {
                format!(
                    "{doc_file} has a {kind} document and the v1alpha1 section `{}`: Talos rejects the config (V1Alpha1ConflictValidate)",
                    path.join(".")
                )
            } else {
                format!(
                    "{section_file} sets the v1alpha1 section `{}`, and the config it is merged into ({label}) has a {kind} document from {doc_file}: Talos rejects the merged config (V1Alpha1ConflictValidate)",
                    path.join(".")
                )
            };
            out.push(
                out.finding(message)
                    .at(at)
                    .object(format!("Talos config {label}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_when_both_present() {
        let config = "version: v1alpha1\nmachine:\n  type: worker\ncluster:\n  proxy:\n    disabled: true\n---\napiVersion: v1alpha1\nkind: KubeProxyConfig\nenabled: false\n";
        let found = fired("TAL011", &[("talos/w.yaml", config)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 5);
        assert!(
            found[0]
                .message
                .starts_with("talos/w.yaml has a KubeProxyConfig document")
        );
    }

    #[test]
    fn names_the_file_of_each_part_when_a_patch_brings_the_section() {
        // The 1.14 example: the documents are in the machine config, `cluster.network` comes
        // from a patch; the finding must not say the machine config holds the section.
        let config = "version: v1alpha1\nmachine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: KubeNetworkConfig\npodSubnets: [10.244.0.0/16]\n";
        let patch = "cluster:\n  network:\n    cni:\n      name: none\n";
        let found = fired(
            "TAL011",
            &[
                ("talos/controlplane.yaml", config),
                ("talos/cni-none.yaml", patch),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let message = &found[0].message;
        assert!(
            message.starts_with("talos/cni-none.yaml sets the v1alpha1 section `cluster.network`")
                && message.contains("KubeNetworkConfig document from talos/controlplane.yaml"),
            "{message}"
        );
        assert_eq!(
            found[0].location.as_ref().unwrap().file,
            "talos/cni-none.yaml"
        );
    }

    #[test]
    fn quiet_on_a_resolver_config_without_host_dns() {
        // Talos 1.13: ResolverConfig (nameservers, searchDomains) next to machine.features.hostDNS.
        let config = "version: v1alpha1\nmachine:\n  type: worker\n  install: {image: ghcr.io/siderolabs/installer:v1.13.2}\n  features:\n    hostDNS:\n      enabled: true\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nsearchDomains:\n  domains: [example.org]\n";
        assert!(fired("TAL011", &[("talos/w.yaml", config)], Target::default()).is_empty());
        let both = "version: v1alpha1\nmachine:\n  type: worker\n  features:\n    hostDNS:\n      enabled: true\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nhostDNS:\n  forwardKubeDNSToHost: true\n";
        assert_eq!(
            fired("TAL011", &[("talos/w.yaml", both)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_one_format() {
        let config = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: KubeProxyConfig\nenabled: false\n";
        assert!(fired("TAL011", &[("talos/w.yaml", config)], Target::default()).is_empty());
    }
}
