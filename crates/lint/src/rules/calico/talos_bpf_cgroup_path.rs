use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL006",
        name: "talos-bpf-cgroup-path",
        title: "Calico eBPF on Talos without `cgroupV2Path`",
        severity: Severity::Error,
        inputs: &[Input::Calico],
        fix: "add FelixConfiguration `default` with `cgroupV2Path: /sys/fs/cgroup`",
        docs: include_str!("../../../../../docs/rules/CAL006.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.is_talos() {
        return;
    }
    let Some(bpf) = ctx.calico.bpf() else { return };
    let set = ctx
        .calico
        .felix
        .iter()
        .any(|f| f.get("cgroupV2Path").and_then(Node::as_str) == Some("/sys/fs/cgroup"));
    if !set {
        out.push(
            out.finding("Calico's BPF dataplane on Talos without FelixConfiguration `cgroupV2Path: /sys/fs/cgroup`: eBPF init cannot mount cgroup2 and calico-node never becomes ready")
                .at(ctx.location(bpf)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    cni: {name: none}\n";
    const BPF: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    linuxDataplane: BPF\n";

    #[test]
    fn fires_without_felix_setting() {
        assert_eq!(
            fired(
                "CAL006",
                &[("i.yaml", BPF), ("patch.yaml", TALOS)],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_with_felix_setting() {
        let felix = "apiVersion: crd.projectcalico.org/v1\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  cgroupV2Path: /sys/fs/cgroup\n";
        assert!(
            fired(
                "CAL006",
                &[("i.yaml", BPF), ("f.yaml", felix), ("patch.yaml", TALOS)],
                Target::default()
            )
            .is_empty()
        );
    }
}
