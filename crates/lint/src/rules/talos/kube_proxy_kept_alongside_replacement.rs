use super::control_plane_views;
use crate::input::talos::TalosView;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL005",
        name: "kube-proxy-kept-alongside-replacement",
        title: "kube-proxy still deployed next to its replacement",
        severity: Severity::Warning,
        inputs: &[Input::Talos],
        fix: "disable kube-proxy in Talos: `cluster.proxy.disabled: true` (v1alpha1) or `KubeProxyConfig` with `enabled: false` (1.14)",
        docs: include_str!("../../../../../docs/rules/TAL005.md"),
    },
    check,
};

/// A view that deploys kube-proxy for sure: explicitly enabled, or no unread patch could
/// disable it.
fn deploys_kube_proxy(view: &TalosView) -> bool {
    let proxy = view.proxy_disabled();
    !proxy.value && (proxy.node.is_some() || view.complete())
}

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx.cilium.iter().filter(|v| v.replaces_kube_proxy()) {
        let views = ctx.views_for(&values.label);
        let view = views
            .iter()
            .copied()
            .filter(|v| v.role.as_deref().is_none_or(|r| r != "worker"))
            .find(|v| deploys_kube_proxy(v));
        if let (Some(view), Some(node)) = (view, values.get("kubeProxyReplacement")) {
            let what = format!("Cilium kubeProxyReplacement in {}", values.label);
            report(ctx, out, view, &what, node);
        }
    }
    let managed = ctx
        .calico
        .installations
        .iter()
        .any(|i| i.text("calicoNetwork.kubeProxyManagement").as_deref() == Some("Enabled"));
    if let Some(bpf) = ctx.calico.bpf().filter(|_| !managed)
        && let Some(view) = control_plane_views(&ctx.talos).find(|v| deploys_kube_proxy(v))
    {
        let what = "Calico's BPF dataplane (without kubeProxyManagement: Enabled)";
        report(ctx, out, view, what, bpf);
    }
}

fn report(ctx: &Context, out: &mut Emitter, view: &TalosView, what: &str, node: &Node) {
    let calico = if what.starts_with("Calico") {
        " and both bind :10256"
    } else {
        ""
    };
    out.push(
        out.finding(format!(
            "{what} replaces kube-proxy, but {} still deploys kube-proxy: two service implementations program the same Services{calico}",
            view.describe()
        ))
        .at(ctx.location(node))
        .object(ctx.talos_object(view)),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const CNI_NONE: &str = "cluster:\n  network:\n    cni:\n      name: none\n";

    #[test]
    fn fires_when_kpr_and_kube_proxy_both_run() {
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\n";
        let found = fired(
            "TAL005",
            &[("patch.yaml", CNI_NONE), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().file, "helm/cilium.yaml");
    }

    #[test]
    fn quiet_when_proxy_disabled_or_no_replacement() {
        let values = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n";
        let disabled = format!("{CNI_NONE}  proxy:\n    disabled: true\n");
        assert!(
            fired(
                "TAL005",
                &[("patch.yaml", &disabled), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
        assert!(
            fired(
                "TAL005",
                &[
                    ("patch.yaml", CNI_NONE),
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
