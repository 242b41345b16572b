use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL001",
        name: "flannel-document-still-present",
        title: "Talos 1.14 config still deploys Flannel",
        severity: Severity::Error,
        inputs: &[Input::Talos, Input::Target],
        fix: "add a patch document `apiVersion: v1alpha1` / `kind: KubeFlannelCNIConfig` / `$patch: delete`",
        docs: include_str!("../../../../../docs/rules/TAL001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.target.cni == Some(CniKind::Flannel) {
        return;
    }
    for view in &ctx.talos {
        let Some(doc) = view.document("KubeFlannelCNIConfig") else {
            continue;
        };
        let cni_none = view
            .at(&["cluster", "network", "cni", "name"])
            .filter(|n| n.as_str() == Some("none"));
        // Over generated defaults the document is an assumption: it matters where a patch
        // meant to turn the built-in CNI off (`cni.name: none`/`custom`), which 1.14 ignores.
        // Patches that do not touch the CNI (a plan's kube-proxy or install step) say nothing.
        let cni_changed = view
            .at(&["cluster", "network", "cni", "name"])
            .is_some_and(|n| matches!(n.as_str(), Some("none" | "custom")));
        if view.generated_base && !cni_changed {
            continue;
        }
        let why = if view.generated_base {
            "`talosctl gen config` on Talos 1.14 always emits a KubeFlannelCNIConfig document and no patch deletes it"
        } else {
            "the config contains a KubeFlannelCNIConfig document"
        };
        let none_note = if cni_none.is_some() {
            "; `cluster.network.cni.name: none` does not disable it in the 1.14 format"
        } else {
            ""
        };
        let anchor = ctx
            .location(doc.get("kind").unwrap_or(doc))
            .or_else(|| cni_none.and_then(|n| ctx.location(n)));
        out.push(
            out.finding(format!(
                "{why}{none_note}: Talos keeps deploying Flannel next to the target CNI"
            ))
            .at(anchor)
            .object(ctx.talos_object(view)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    const NONE_PATCH: &str = "cluster:\n  network:\n    cni:\n      name: none\n";

    #[test]
    fn fires_on_1_14_config_with_cni_none_patch_only() {
        let found = fired(
            "TAL001",
            &[
                (
                    "talos/cp.yaml",
                    "version: v1alpha1\nmachine:\n  type: controlplane\n  install: {image: ghcr.io/siderolabs/installer:v1.14.0}\ncluster:\n  clusterName: a\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\nbackendPort: 4789\n",
                ),
                ("talos/cni-none.yaml", NONE_PATCH),
            ],
            to(CniKind::Cilium),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("does not disable"));
        assert_eq!(found[0].location.as_ref().unwrap().line, 9);
    }

    #[test]
    fn quiet_on_patches_that_do_not_touch_the_cni() {
        // A 1.14 patch that only disables kube-proxy: nothing says the built-in CNI is meant
        // to go, so the generated Flannel document is not reported.
        let patch = "machine:\n  install: {image: ghcr.io/siderolabs/installer:v1.14.0}\ncluster:\n  proxy:\n    disabled: true\n";
        assert!(fired("TAL001", &[("talos/p.yaml", patch)], to(CniKind::Cilium)).is_empty());
        let none = "machine:\n  install: {image: ghcr.io/siderolabs/installer:v1.14.0}\ncluster:\n  network:\n    cni:\n      name: none\n";
        assert_eq!(
            fired("TAL001", &[("talos/p.yaml", none)], to(CniKind::Cilium)).len(),
            1
        );
    }

    #[test]
    fn quiet_when_the_document_is_deleted_or_target_is_flannel() {
        let delete = "apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n";
        let config = "version: v1alpha1\nmachine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\n";
        assert!(
            fired(
                "TAL001",
                &[("talos/cp.yaml", config), ("talos/del.yaml", delete)],
                to(CniKind::Cilium)
            )
            .is_empty()
        );
        assert!(fired("TAL001", &[("talos/cp.yaml", config)], to(CniKind::Flannel)).is_empty());
        // v1alpha1 (1.13) with cni none: Flannel is really off.
        let v1 = "version: v1alpha1\nmachine:\n  type: controlplane\n  install: {image: ghcr.io/siderolabs/installer:v1.13.2}\ncluster:\n  network:\n    cni:\n      name: none\n";
        assert!(fired("TAL001", &[("talos/cp.yaml", v1)], to(CniKind::Cilium)).is_empty());
    }
}
