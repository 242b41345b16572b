use super::control_plane_views;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL003",
        name: "kube-proxy-daemonset-survives-disable",
        title: "kube-proxy DaemonSet outlives `proxy.disabled`",
        severity: Severity::Warning,
        inputs: &[Input::Talos, Input::Facts],
        fix: "once the replacement serves Services: back up and delete DaemonSet kube-system/kube-proxy, then clean KUBE-* rules on every node (`cniswap node clean --include-kube-proxy`)",
        docs: include_str!("../../../../../docs/rules/TAL003.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(ds) = ctx.snapshot.objects.daemonset("kube-system", "kube-proxy") else {
        return;
    };
    let views: Vec<_> = control_plane_views(&ctx.talos).collect();
    if views.is_empty() || views.iter().any(|v| !v.proxy_disabled().value) {
        return;
    }
    let disabled = views[0].proxy_disabled();
    out.push(
        out.finding(format!(
            "kube-proxy is disabled in {}, but DaemonSet kube-system/kube-proxy still exists ({} of {} ready): Talos does not delete it",
            views[0].describe(),
            ds.ready(),
            ds.desired()
        ))
        .at(disabled.node.and_then(|n| ctx.location(n)))
        .object("kube-system/DaemonSet/kube-proxy"),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const DISABLED: &str = "version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  proxy:\n    disabled: true\n";

    #[test]
    fn fires_when_kube_proxy_still_runs() {
        let dump = cluster(
            1,
            &[(
                "kube-system/kube-proxy",
                "registry.k8s.io/kube-proxy:v1.33.2",
            )],
            "",
        );
        let found = fired(
            "TAL003",
            &[("talos/cp.yaml", DISABLED), ("cluster/all.yaml", &dump)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 6);
    }

    #[test]
    fn quiet_when_proxy_enabled_or_gone() {
        let dump = cluster(
            1,
            &[(
                "kube-system/kube-proxy",
                "registry.k8s.io/kube-proxy:v1.33.2",
            )],
            "",
        );
        let enabled = DISABLED.replace("true", "false");
        assert!(
            fired(
                "TAL003",
                &[("talos/cp.yaml", &enabled), ("cluster/all.yaml", &dump)],
                Target::default()
            )
            .is_empty()
        );
        let empty = cluster(1, &[], "");
        assert!(
            fired(
                "TAL003",
                &[("talos/cp.yaml", DISABLED), ("cluster/all.yaml", &empty)],
                Target::default()
            )
            .is_empty()
        );
    }
}
