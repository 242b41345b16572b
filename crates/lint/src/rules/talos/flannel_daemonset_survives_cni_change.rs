use super::control_plane_views;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL002",
        name: "flannel-daemonset-survives-cni-change",
        title: "kube-flannel DaemonSet outlives the Talos CNI change",
        severity: Severity::Warning,
        inputs: &[Input::Talos, Input::Facts],
        fix: "after every control plane runs the new config: back up and `kubectl -n kube-system delete daemonset kube-flannel` (a `cniswap plan` step)",
        docs: include_str!("../../../../../docs/rules/TAL002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(ds) = ctx
        .snapshot
        .objects
        .daemonset("kube-system", "kube-flannel")
    else {
        return;
    };
    let views: Vec<_> = control_plane_views(&ctx.talos).collect();
    if views.is_empty() || views.iter().any(|v| v.cni_name().value == "flannel") {
        return;
    }
    let view = views[0];
    let cni = view.cni_name();
    out.push(
        out.finding(format!(
            "Talos no longer renders Flannel (cni `{}` in {}), but DaemonSet kube-system/kube-flannel still exists ({} of {} ready): Talos never deletes bootstrap manifests, so both CNIs keep running",
            cni.value,
            view.describe(),
            ds.ready(),
            ds.desired(),
        ))
        .at(cni.node.and_then(|n| ctx.location(n)))
        .object("kube-system/DaemonSet/kube-flannel"),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const NONE: &str = "version: v1alpha1\nmachine:\n  type: controlplane\n  install: {image: ghcr.io/siderolabs/installer:v1.10.5}\ncluster:\n  network:\n    cni:\n      name: none\n";

    #[test]
    fn fires_when_flannel_still_runs() {
        let dump = cluster(
            2,
            &[(
                "kube-system/kube-flannel",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            )],
            "",
        );
        let found = fired(
            "TAL002",
            &[("talos/cp.yaml", NONE), ("cluster/all.yaml", &dump)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 8);
    }

    #[test]
    fn quiet_when_flannel_is_gone_or_still_configured() {
        let empty = cluster(2, &[], "");
        assert!(
            fired(
                "TAL002",
                &[("talos/cp.yaml", NONE), ("cluster/all.yaml", &empty)],
                Target::default()
            )
            .is_empty()
        );
        let dump = cluster(
            2,
            &[(
                "kube-system/kube-flannel",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            )],
            "",
        );
        let flannel = NONE.replace("name: none", "name: flannel");
        assert!(
            fired(
                "TAL002",
                &[("talos/cp.yaml", &flannel), ("cluster/all.yaml", &dump)],
                Target::default()
            )
            .is_empty()
        );
    }
}
