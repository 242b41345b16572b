use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG012",
        name: "upgrade-in-flight",
        title: "nodes run different versions",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "finish the Talos/Kubernetes upgrade first, then migrate the CNI",
        docs: include_str!("../../../../../docs/rules/MIG012.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.facts.kubernetes.mixed_versions {
        return;
    }
    let mut talos: Vec<String> = ctx
        .facts
        .nodes
        .iter()
        .filter_map(|n| n.talos_version.clone())
        .collect();
    talos.sort();
    talos.dedup();
    let kubelet: Vec<String> = ctx
        .facts
        .kubernetes
        .versions
        .iter()
        .map(|v| format!("{} on {}", v.version, v.nodes))
        .collect();
    let detail = if talos.len() > 1 {
        format!("Talos {}", talos.join(", "))
    } else {
        format!("kubelet {}", kubelet.join(", "))
    };
    out.push(out.finding(format!(
        "an upgrade is in flight ({detail}): combining it with a CNI migration makes every failure ambiguous"
    )));
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_mixed_talos() {
        let dump = cluster(2, &[], "").replacen("Talos (v1.10.5)", "Talos (v1.10.2)", 1);
        assert_eq!(
            fired("MIG012", &[("cluster/all.yaml", &dump)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_on_uniform_versions() {
        assert!(
            fired(
                "MIG012",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                Target::default()
            )
            .is_empty()
        );
    }
}
