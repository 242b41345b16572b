use crate::input::talos::TalosVersion;
use crate::keys;
use crate::rules::prelude::*;
use cniswap_config::talos::{document_kind, is_v1alpha1_document};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL017",
        name: "unknown-talos-key",
        title: "not a Talos machine-config key",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "use the documented path (see the Talos configuration reference for your version)",
        docs: include_str!("../../../../../docs/rules/TAL017.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let fallback = ctx.talos.iter().find_map(|v| v.version);
    for source in &ctx.snapshot.talos {
        let version = source
            .summary
            .talos_version
            .as_deref()
            .and_then(TalosVersion::parse)
            .or(fallback);
        for doc in &source.docs {
            let unknown = if is_v1alpha1_document(doc) {
                keys::talos().unknown_keys(doc, version.map(|v| (v.0, v.1)))
            } else if let Some(tree) =
                document_kind(doc).and_then(|k| keys::talos_documents().get(k))
            {
                tree.unknown_keys(doc, None)
            } else {
                continue;
            };
            for key in unknown {
                let message = match (key.since, version) {
                    (Some(since), Some(v)) => format!(
                        "`{}` exists only since Talos {}.{}, but this config is for Talos {v}: Talos rejects it",
                        key.path, since.0, since.1
                    ),
                    _ => format!(
                        "`{}` is not a Talos machine-config key{}: Talos rejects the config, or the patch silently does not do what was meant",
                        key.path,
                        version.map(|v| format!(" (Talos {v})")).unwrap_or_default()
                    ),
                };
                let mut finding = out
                    .finding(message)
                    .at(ctx.location(key.key))
                    .object(source.summary.file.clone());
                if let Some(suggestion) = &key.suggestion {
                    finding = finding.help(format!("did you mean `{suggestion}`?"));
                }
                out.push(finding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_misplaced_proxy_section() {
        let patch = "cluster:\n  network:\n    proxy:\n      disabled: true\n";
        let found = fired(
            "TAL017",
            &[("omni/31-no-default-proxy.yaml", patch)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].help, "did you mean `cluster.proxy`?");
        assert_eq!(found[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn quiet_on_valid_keys_in_both_formats() {
        let patch = "machine:\n  features:\n    kubePrism: {enabled: true, port: 7445}\ncluster:\n  proxy:\n    disabled: true\n---\napiVersion: v1alpha1\nkind: KubeProxyConfig\nenabled: false\n";
        assert!(fired("TAL017", &[("patch.yaml", patch)], Target::default()).is_empty());
    }
}
