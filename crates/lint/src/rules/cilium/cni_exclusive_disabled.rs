use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL001",
        name: "cni-exclusive-disabled",
        title: "`cni.exclusive: false` leaves other CNI configs in place",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `cni.exclusive: true` (Multus users: keep false, and remove the old CNI's config file on every node explicitly)",
        docs: include_str!("../../../../../docs/rules/CIL001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    // Facts count only when they describe a cluster, not CNI manifests lying in a repository.
    let others: Vec<CniKind> = if ctx.has_cluster() {
        ctx.facts
            .cnis
            .iter()
            .map(|c| c.kind)
            .filter(|k| *k != CniKind::Cilium)
            .collect()
    } else {
        Vec::new()
    };
    for values in &ctx.cilium {
        let Some(node) = values.get("cni.exclusive") else {
            continue;
        };
        if node.as_bool() != Some(false) {
            continue;
        }
        let (severity, context) = if !others.is_empty() {
            let names: Vec<&str> = others.iter().map(|k| k.as_str()).collect();
            (
                Severity::Error,
                format!("{} is also present in the cluster", names.join(", ")),
            )
        } else if ctx.migrating() {
            (Severity::Error, "a migration is planned".to_string())
        } else {
            (
                Severity::Warning,
                "no other CNI is known to be present (pass cluster facts to be sure)".to_string(),
            )
        };
        out.push(
            out.finding(format!(
                "cni.exclusive is false and {context}: the runtime loads the lexically first config in /etc/cni/net.d, so another CNI's file (10-flannel.conflist, 10-calico.conflist) can keep attaching pods"
            ))
            .severity(severity)
            .at(ctx.location(node))
            .object(values.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;
    use cniswap_model::{CniKind, Severity};

    #[test]
    fn error_during_migration_warning_otherwise() {
        let values = "cni:\n  exclusive: false\n  customConf: true\nipam:\n  mode: cluster-pool\n";
        let found = fired(
            "CIL001",
            &[("helm/cilium.yaml", values)],
            to(CniKind::Cilium),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].location.as_ref().unwrap().line, 2);
        let found = fired("CIL001", &[("helm/cilium.yaml", values)], Target::default());
        assert_eq!(found[0].severity, Severity::Warning);
    }

    #[test]
    fn quiet_when_exclusive() {
        let values = "cni:\n  exclusive: true\nipam:\n  mode: kubernetes\n";
        assert!(
            fired(
                "CIL001",
                &[("helm/cilium.yaml", values)],
                to(CniKind::Cilium)
            )
            .is_empty()
        );
    }
}
