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
            if doc.get("$patch").is_some() {
                continue;
            }
            let Some(section) = v1.path_key(path) else {
                continue;
            };
            let at = ctx.location(section).or_else(|| ctx.location(doc));
            if !seen.insert((kind, at.clone().map(|l| (l.file, l.line)))) {
                continue;
            }
            out.push(
                out.finding(format!(
                    "{label} has a {kind} document and the v1alpha1 section `{}`: Talos rejects the config (V1Alpha1ConflictValidate)",
                    path.join(".")
                ))
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
    }

    #[test]
    fn quiet_with_one_format() {
        let config = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: KubeProxyConfig\nenabled: false\n";
        assert!(fired("TAL011", &[("talos/w.yaml", config)], Target::default()).is_empty());
    }
}
