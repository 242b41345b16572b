use super::control_plane_views;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL004",
        name: "kube-proxy-removed-without-replacement",
        title: "kube-proxy disabled but nothing replaces it",
        severity: Severity::Error,
        inputs: &[Input::Talos],
        fix: "keep kube-proxy, or enable the replacement (Cilium `kubeProxyReplacement: true` with k8sServiceHost/Port; Calico `linuxDataplane: BPF`)",
        docs: include_str!("../../../../../docs/rules/TAL004.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for view in control_plane_views(&ctx.talos).filter(|v| v.proxy_disabled().value) {
        check_view(ctx, view, out);
    }
}

fn check_view(ctx: &Context, view: &crate::input::talos::TalosView, out: &mut Emitter) {
    let disabled = view.proxy_disabled();
    let at = disabled.node.and_then(|n| ctx.location(n));
    let object = ctx.talos_object(view);
    // Which CNI would serve Services: the values for this cluster, else the target.
    let problem = if let Some(values) = ctx.cilium_for(view).first() {
        (!values.replaces_kube_proxy()).then(|| {
            format!(
                "Cilium values {} have kubeProxyReplacement `{}`",
                values.label,
                values
                    .kube_proxy_replacement()
                    .unwrap_or_else(|| "false (chart default)".into())
            )
        })
    } else if !ctx.calico.is_empty() {
        ctx.calico
            .bpf()
            .is_none()
            .then(|| "Calico is not on the BPF dataplane".to_string())
    } else if let Some(target) = ctx.target.cni {
        matches!(target, CniKind::Flannel)
            .then(|| "the target is Flannel, which has no kube-proxy replacement".to_string())
    } else {
        None
    };
    if let Some(problem) = problem {
        out.push(
            out.finding(format!(
                "kube-proxy is disabled in {}, but {problem}: Services stop working",
                view.describe()
            ))
            .at(at)
            .object(object),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const DISABLED: &str =
        "cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n";

    #[test]
    fn fires_with_cilium_without_kpr() {
        let values = "kubeProxyReplacement: \"disabled\"\nipam:\n  mode: kubernetes\n";
        let found = fired(
            "TAL004",
            &[("patch.yaml", DISABLED), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 6);
    }

    #[test]
    fn quiet_with_kpr_or_kube_proxy_kept() {
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\n";
        assert!(
            fired(
                "TAL004",
                &[("patch.yaml", DISABLED), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
        let kept = "cluster:\n  network:\n    cni:\n      name: none\n";
        assert!(
            fired(
                "TAL004",
                &[
                    ("patch.yaml", kept),
                    (
                        "helm/cilium.yaml",
                        "kubeProxyReplacement: false\nipam: {mode: kubernetes}\n"
                    )
                ],
                Target::default()
            )
            .is_empty()
        );
    }
}
