use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL016",
        name: "omni-patch-missing-cluster-label",
        title: "ConfigPatch without `omni.sidero.dev/cluster`",
        severity: Severity::Error,
        inputs: &[Input::Omni],
        fix: "add label `omni.sidero.dev/cluster: <cluster>` (and `omni.sidero.dev/machine-set` or `cluster-machine` to narrow it)",
        docs: include_str!("../../../../../docs/rules/TAL016.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for source in ctx
        .snapshot
        .talos
        .iter()
        .filter(|s| s.summary.kind == "omni-patch" && s.omni_cluster.is_none())
    {
        let anchor = source
            .omni_metadata
            .as_ref()
            .map(|m| m.get("labels").unwrap_or(m));
        out.push(
            out.finding(format!(
                "ConfigPatch {} has no `omni.sidero.dev/cluster` label: Omni never applies it",
                source.summary.file
            ))
            .at(anchor.and_then(|n| ctx.location(n)))
            .object(source.summary.file.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_without_label() {
        let patch = "metadata:\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-x\nspec:\n  data: |\n    cluster:\n      proxy:\n        disabled: true\n";
        assert_eq!(
            fired("TAL016", &[("omni/p.yaml", patch)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_label() {
        let patch = "metadata:\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-x\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      proxy:\n        disabled: true\n";
        assert!(fired("TAL016", &[("omni/p.yaml", patch)], Target::default()).is_empty());
    }
}
