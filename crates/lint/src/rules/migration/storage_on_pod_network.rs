use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG004",
        name: "storage-on-pod-network",
        title: "storage depends on the pod network",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "switch storage nodes one at a time, keep each window short, and check volume health between nodes",
        docs: include_str!("../../../../../docs/rules/MIG004.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let storage = &ctx.facts.workloads.storage_on_pod_network;
    if storage.is_empty() {
        return;
    }
    out.push(
        out.finding(format!(
            "{} {} the pod network: volumes cannot attach or replicate while a node's pod network is down",
            storage.join(", "),
            plural(storage.len(), "uses", "use")
        ))
        .object(storage[0].clone()),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_longhorn() {
        let csi = "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: driver.longhorn.io\n";
        assert_eq!(
            fired(
                "MIG004",
                &[("cluster/all.yaml", &cluster(2, &[], csi))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_without_storage() {
        assert!(
            fired(
                "MIG004",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                Target::default()
            )
            .is_empty()
        );
    }
}
