use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL015",
        name: "omni-patch-forbidden-field",
        title: "Omni patch sets a field Omni manages",
        severity: Severity::Error,
        inputs: &[Input::Omni],
        fix: "remove the field: Omni owns cluster identity, endpoints, CAs and machine types",
        docs: include_str!("../../../../../docs/rules/TAL015.md"),
    },
    check,
};

/// Fields Omni refuses in patches (siderolabs/omni config patch validation; research/talos.md).
const FORBIDDEN: &[&[&str]] = &[
    &["cluster", "clusterName"],
    &["cluster", "controlPlane", "endpoint"],
    &["cluster", "ca"],
    &["cluster", "secret"],
    &["cluster", "id"],
    &["cluster", "token"],
    &["cluster", "aggregatorCA"],
    &["cluster", "serviceAccount"],
    &["cluster", "etcd", "ca"],
    &["machine", "ca"],
    &["machine", "type"],
    &["machine", "token"],
];

fn check(ctx: &Context, out: &mut Emitter) {
    for source in ctx
        .snapshot
        .talos
        .iter()
        .filter(|s| s.summary.kind.starts_with("omni"))
    {
        for doc in &source.docs {
            for path in FORBIDDEN {
                if let Some(key_node) = doc.path_key(path) {
                    out.push(
                        out.finding(format!(
                            "{} sets `{}`, which Omni does not allow in patches: Omni rejects it",
                            source.summary.file,
                            path.join(".")
                        ))
                        .at(ctx.location(key_node))
                        .object(source.summary.file.clone()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_cluster_name() {
        let patch = "metadata:\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-x\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      clusterName: other\n";
        let found = fired("TAL015", &[("omni/p.yaml", patch)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 9);
    }

    #[test]
    fn quiet_on_network_settings() {
        let patch = "metadata:\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-x\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n";
        assert!(fired("TAL015", &[("omni/p.yaml", patch)], Target::default()).is_empty());
    }
}
