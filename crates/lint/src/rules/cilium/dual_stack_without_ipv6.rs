use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL021",
        name: "dual-stack-without-ipv6",
        title: "dual-stack cluster with IPv4-only Cilium values",
        severity: Severity::Warning,
        inputs: &[Input::Talos, Input::Cilium],
        fix: "set `ipv6.enabled: true` (and an IPv6 pool or `ipam.mode: kubernetes`), or drop the IPv6 pod subnet",
        docs: include_str!("../../../../../docs/rules/CIL021.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        if values.bool("ipv6.enabled") == Some(true) || !values.complete() {
            continue;
        }
        // The Talos config of the same cluster gives pods both families.
        let dual = ctx.views_for(&values.label).into_iter().find_map(|view| {
            let subnets = view.pod_subnets();
            let v6 = subnets.value.iter().any(|c| c.contains(':'));
            let v4 = subnets.value.iter().any(|c| c.contains('.'));
            (v4 && v6).then_some((subnets.node, subnets.value))
        });
        let Some((node, subnets)) = dual else {
            continue;
        };
        let at = node
            .and_then(|n| ctx.location(n))
            .map_or_else(String::new, |l| format!(" ({}:{})", l.file, l.line));
        let state = match values.get("ipv6.enabled") {
            Some(_) => "`ipv6.enabled: false`",
            None => "no `ipv6.enabled` (chart default false)",
        };
        out.push(
            out.finding(format!(
                "the cluster is dual-stack (podSubnets {}{at}) but the Cilium values have {state}: pods get no IPv6 address, and IPv6 or RequireDualStack Services have no endpoints",
                subnets.join(", ")
            ))
            .at(ctx.location_or_file(values.get("ipv6.enabled"), values.anchor()))
            .object(values.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const DUAL: &str = "cluster:\n  network:\n    cni: {name: none}\n    podSubnets: [10.244.0.0/16, \"fd00:10:244::/56\"]\n    serviceSubnets: [10.96.0.0/12, \"fd00:10:96::/112\"]\n";

    #[test]
    fn fires_on_ipv4_only_values() {
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: localhost\nipv6:\n  enabled: false\n";
        let found = fired(
            "CIL021",
            &[("patch.yaml", DUAL), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 4);
        assert!(
            found[0].message.contains("patch.yaml:4"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn quiet_with_ipv6_or_a_single_stack() {
        let values =
            "kubeProxyReplacement: true\nk8sServiceHost: localhost\nipv6:\n  enabled: true\n";
        assert!(
            fired(
                "CIL021",
                &[("patch.yaml", DUAL), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
        let single =
            "cluster:\n  network:\n    cni: {name: none}\n    podSubnets: [10.244.0.0/16]\n";
        let v4 = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n";
        assert!(
            fired(
                "CIL021",
                &[("patch.yaml", single), ("helm/cilium.yaml", v4)],
                Target::default()
            )
            .is_empty()
        );
    }
}
