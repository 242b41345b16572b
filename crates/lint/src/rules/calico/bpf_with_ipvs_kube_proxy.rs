use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL009",
        name: "bpf-with-ipvs-kube-proxy",
        title: "Calico eBPF with kube-proxy in IPVS mode",
        severity: Severity::Warning,
        inputs: &[Input::Calico, Input::Facts],
        fix: "switch kube-proxy to iptables mode and restart the nodes before enabling eBPF",
        docs: include_str!("../../../../../docs/rules/CAL009.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(bpf) = ctx.calico.bpf() else { return };
    if ctx.facts.kube_proxy.mode.as_deref() == Some("ipvs") {
        out.push(
            out.finding("Calico's BPF dataplane with kube-proxy in IPVS mode: the IPVS state left on the nodes conflicts with eBPF service handling")
                .at(ctx.location(bpf))
                .object("kube-system/ConfigMap/kube-proxy"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const BPF: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n";

    fn dump(mode: &str) -> String {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-proxy\n  namespace: kube-system\ndata:\n  config.conf: |\n    mode: {mode}\n"
        );
        cluster(
            2,
            &[(
                "kube-system/kube-proxy",
                "registry.k8s.io/kube-proxy:v1.33.2",
            )],
            &cm,
        )
    }

    #[test]
    fn fires_on_ipvs() {
        assert_eq!(
            fired(
                "CAL009",
                &[("cluster/all.yaml", &dump("ipvs")), ("i.yaml", BPF)],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_iptables() {
        assert!(
            fired(
                "CAL009",
                &[("cluster/all.yaml", &dump("iptables")), ("i.yaml", BPF)],
                Target::default()
            )
            .is_empty()
        );
    }
}
