use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL009",
        name: "cni-urls-require-custom",
        title: "cni.urls need `name: custom`",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "set `cluster.network.cni.name: custom` when listing `urls`",
        docs: include_str!("../../../../../docs/rules/TAL009.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for view in &ctx.talos {
        let urls = view.cni_urls();
        let Some(first) = urls.first() else { continue };
        let name = view
            .at(&["cluster", "network", "cni", "name"])
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "flannel".into());
        if name == "flannel" || name == "none" {
            out.push(
                out.finding(format!(
                    "{} lists cni.urls with cni.name `{name}`: Talos rejects the config (ValidateCNI)",
                    view.describe()
                ))
                .at(ctx.location(first))
                .object(ctx.talos_object(view)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_with_none() {
        let patch = "cluster:\n  network:\n    cni:\n      name: none\n      urls: [https://example.com/v1/cni.yaml]\n";
        assert_eq!(
            fired("TAL009", &[("patch.yaml", patch)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn a_merge_of_patches_is_one_subject() {
        // Three patches merged for every node: "3 Talos patches lists" was the message.
        let files = [
            (
                "talos/a.yaml",
                "cluster:\n  network:\n    cni:\n      name: none\n",
            ),
            (
                "talos/b.yaml",
                "cluster:\n  network:\n    cni:\n      urls: [https://example.com/v1/cni.yaml]\n",
            ),
            ("talos/c.yaml", "machine:\n  kubelet: {}\n"),
        ];
        let found = fired("TAL009", &files, Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .starts_with("the config merged from 3 Talos patches lists cni.urls"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn quiet_with_custom() {
        let patch = "cluster:\n  network:\n    cni:\n      name: custom\n      urls: [https://example.com/v1/cni.yaml]\n";
        assert!(fired("TAL009", &[("patch.yaml", patch)], Target::default()).is_empty());
    }
}
