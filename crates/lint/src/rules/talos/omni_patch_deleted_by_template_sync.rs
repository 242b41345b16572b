use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL014",
        name: "omni-patch-deleted-by-template-sync",
        title: "standalone ConfigPatch on a template-managed cluster",
        severity: Severity::Warning,
        inputs: &[Input::Omni],
        fix: "add the patch to the cluster template's `patches:` instead of a standalone ConfigPatch",
        docs: include_str!("../../../../../docs/rules/TAL014.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for source in ctx
        .snapshot
        .talos
        .iter()
        .filter(|s| s.summary.kind == "omni-patch")
    {
        let Some(cluster) = &source.omni_cluster else {
            continue;
        };
        let Some(template) = ctx
            .snapshot
            .omni_templates
            .iter()
            .find(|t| t.cluster.as_ref() == Some(cluster))
        else {
            continue;
        };
        let anchor = source
            .omni_metadata
            .as_ref()
            .and_then(|m| m.get("id").or(Some(m)));
        out.push(
            out.finding(format!(
                "ConfigPatch {} targets cluster `{cluster}`, which the template {} manages: `omnictl cluster template sync` deletes patches it does not own",
                source.summary.file, template.file
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

    const PATCH: &str = "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cni\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n";

    #[test]
    fn fires_for_template_cluster() {
        let template = "kind: Cluster\nname: lab\ntalos:\n  version: v1.13.7\nkubernetes:\n  version: v1.36.4\n";
        let found = fired(
            "TAL014",
            &[("omni/patch.yaml", PATCH), ("omni/template.yaml", template)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 4);
    }

    #[test]
    fn quiet_without_template() {
        assert!(fired("TAL014", &[("omni/patch.yaml", PATCH)], Target::default()).is_empty());
    }
}
