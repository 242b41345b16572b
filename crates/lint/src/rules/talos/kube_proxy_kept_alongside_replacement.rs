use super::control_plane_views;
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

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(view) = control_plane_views(&ctx.talos).find(|v| !v.proxy_disabled().value) else {
        return;
    };
    let replacement = if let Some(values) = ctx.cilium.iter().find(|v| v.replaces_kube_proxy()) {
        values.get("kubeProxyReplacement").map(|n| {
            (
                format!("Cilium kubeProxyReplacement in {}", values.label),
                n,
            )
        })
    } else {
        let managed = ctx
            .calico
            .installations
            .iter()
            .any(|i| i.text("calicoNetwork.kubeProxyManagement").as_deref() == Some("Enabled"));
        ctx.calico.bpf().filter(|_| !managed).map(|n| {
            (
                "Calico's BPF dataplane (without kubeProxyManagement: Enabled)".to_string(),
                n,
            )
        })
    };
    let Some((what, node)) = replacement else {
        return;
    };
    out.push(
        out.finding(format!(
            "{what} replaces kube-proxy, but {} still deploys kube-proxy: two service implementations fight (Calico BPF and kube-proxy both bind :10256)",
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
