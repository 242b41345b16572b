use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL002",
        name: "bpf-without-services-endpoint",
        title: "Calico eBPF without a direct API endpoint",
        severity: Severity::Error,
        inputs: &[Input::Calico],
        fix: "create ConfigMap `kubernetes-services-endpoint` (KUBERNETES_SERVICE_HOST/PORT; Talos: localhost / 7445) in tigera-operator before the operator starts, or set `bpfNetworkBootstrap: Enabled`",
        docs: include_str!("../../../../../docs/rules/CAL002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(bpf) = ctx.calico.bpf() else { return };
    let bootstrap = ctx
        .calico
        .installations
        .iter()
        .any(|i| i.text("calicoNetwork.bpfNetworkBootstrap").as_deref() == Some("Enabled"));
    if bootstrap || !ctx.calico.services_endpoint.is_empty() {
        return;
    }
    out.push(
        out.finding(
            "Calico's BPF dataplane is selected but no `kubernetes-services-endpoint` ConfigMap is given and bpfNetworkBootstrap is not Enabled: without kube-proxy the operator and Felix cannot reach the API server",
        )
        .at(ctx.location(bpf)),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const BPF: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n";

    #[test]
    fn fires_without_configmap() {
        assert_eq!(
            fired("CAL002", &[("installation.yaml", BPF)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_configmap() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubernetes-services-endpoint\n  namespace: tigera-operator\ndata:\n  KUBERNETES_SERVICE_HOST: localhost\n  KUBERNETES_SERVICE_PORT: \"7445\"\n";
        assert!(
            fired(
                "CAL002",
                &[("installation.yaml", BPF), ("cm.yaml", cm)],
                Target::default()
            )
            .is_empty()
        );
    }
}
