use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG002",
        name: "bare-pods",
        title: "pods without a controller",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "recreate these pods under a Deployment/StatefulSet/Job before the switch, or accept that they are deleted",
        docs: include_str!("../../../../../docs/rules/MIG002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let pods = &ctx.facts.workloads.bare_pods;
    if pods.is_empty() {
        return;
    }
    let names: Vec<String> = pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace.as_deref().unwrap_or("default"), p.name))
        .collect();
    out.push(
        out.finding(format!(
            "{} no controller ({}): switching a node's CNI recreates its pods, and nobody recreates these",
            count(pods.len(), "pod has", "pods have"),
            super::some_of(&names, 5)
        ))
        .object(format!("Pod/{}", names[0])),
    );
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_bare_pod() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  namespace: default\nspec:\n  nodeName: n0\n  containers:\n  - name: c\n    image: busybox\nstatus:\n  phase: Running\n";
        assert_eq!(
            fired(
                "MIG002",
                &[("cluster/all.yaml", &cluster(1, &[], pod))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_without_bare_pods() {
        assert!(
            fired(
                "MIG002",
                &[(
                    "cluster/all.yaml",
                    &cluster(1, &[("kube-system/kube-proxy", "kube-proxy:v1")], "")
                )],
                Target::default()
            )
            .is_empty()
        );
    }
}
