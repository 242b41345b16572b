use super::kube_proxy_runs;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL001",
        name: "bpf-dataplane-with-kube-proxy",
        title: "Calico eBPF next to a running kube-proxy",
        severity: Severity::Error,
        inputs: &[Input::Calico],
        fix: "set `kubeProxyManagement: Enabled` (operator), or give kube-proxy the `non-calico: \"true\"` nodeSelector, or keep it with FelixConfiguration `bpfKubeProxyIptablesCleanupEnabled: false` and `bpfKubeProxyHealthzPort: 0`",
        docs: include_str!("../../../../../docs/rules/CAL001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(bpf) = ctx.calico.bpf() else { return };
    let Some(why) = kube_proxy_runs(ctx) else {
        return;
    };
    let managed = ctx
        .calico
        .installations
        .iter()
        .any(|i| i.text("calicoNetwork.kubeProxyManagement").as_deref() == Some("Enabled"));
    let coexists = ctx.calico.felix.iter().any(|f| {
        f.get("bpfKubeProxyIptablesCleanupEnabled")
            .and_then(Node::as_bool)
            == Some(false)
            && f.get("bpfKubeProxyHealthzPort").and_then(Node::as_u16) == Some(0)
    });
    let selector = ctx.snapshot.objects.daemonsets.iter().any(|d| {
        d.metadata.name == "kube-proxy"
            && d.spec
                .template
                .spec
                .node_selector
                .get("non-calico")
                .map(String::as_str)
                == Some("true")
    });
    if managed || coexists || selector {
        return;
    }
    out.push(
        out.finding(format!(
            "Calico's BPF dataplane is selected and {why}: Felix and kube-proxy both bind :10256 and rewrite each other's iptables rules"
        ))
        .at(ctx.location(bpf)),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const BPF: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n";

    #[test]
    fn fires_when_talos_keeps_kube_proxy() {
        let found = fired(
            "CAL001",
            &[
                ("installation.yaml", BPF),
                (
                    "patch.yaml",
                    "cluster:\n  network:\n    cni: {name: none}\n",
                ),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 7);
    }

    #[test]
    fn quiet_when_operator_manages_kube_proxy() {
        let managed =
            format!("{BPF}    kubeProxyManagement: Enabled\n    bpfNetworkBootstrap: Enabled\n");
        assert!(
            fired(
                "CAL001",
                &[
                    ("installation.yaml", &managed),
                    (
                        "patch.yaml",
                        "cluster:\n  network:\n    cni: {name: none}\n"
                    )
                ],
                Target::default()
            )
            .is_empty()
        );
    }
}
