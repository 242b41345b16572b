use crate::rules::cidrs_overlap;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "TAL012",
        name: "pod-cidr-overlaps-service-cidr",
        title: "pod CIDR overlaps the service CIDR",
        severity: Severity::Error,
        inputs: &[],
        fix: "choose disjoint pod and service ranges",
        docs: include_str!("../../../../../docs/rules/TAL012.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    // Service ranges: Talos views, else the cluster facts.
    let mut services: Vec<(String, Option<cniswap_model::Location>)> = Vec::new();
    for view in &ctx.talos {
        let s = view.service_subnets();
        let at = s.node.and_then(|n| ctx.location(n));
        services.extend(s.value.into_iter().map(|c| (c, at.clone())));
    }
    if services.is_empty() {
        services.extend(
            ctx.facts
                .cidrs
                .service
                .iter()
                .map(|c| (c.cidr.clone(), None)),
        );
    }
    if services.is_empty() {
        return;
    }
    // Pod ranges with where they are written.
    let mut pods: Vec<(String, String, Option<cniswap_model::Location>)> = Vec::new();
    for view in &ctx.talos {
        let p = view.pod_subnets();
        let at = p.node.and_then(|n| ctx.location(n));
        pods.extend(
            p.value
                .into_iter()
                .map(|c| (c, format!("podSubnets of {}", view.describe()), at.clone())),
        );
    }
    for values in &ctx.cilium {
        for node in values.cluster_pool_cidrs() {
            if let Some(c) = node.scalar_text() {
                pods.push((
                    c,
                    format!("Cilium cluster-pool in {}", values.label),
                    ctx.location(node),
                ));
            }
        }
    }
    for node in ctx.calico.pool_cidrs() {
        if let Some(c) = node.scalar_text() {
            pods.push((c, "Calico IP pool".into(), ctx.location(node)));
        }
    }
    for flannel in &ctx.flannel {
        if let Some(c) = &flannel.network {
            pods.push((
                c.clone(),
                format!("Flannel Network in {}", flannel.label),
                flannel.network_at.clone(),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (pod, what, at) in pods {
        for (service, service_at) in &services {
            if cidrs_overlap(&pod, service)
                && seen.insert((pod.clone(), service.clone(), what.clone()))
            {
                out.push(
                    out.finding(format!(
                        "{what} {pod} overlaps the service range {service}: traffic to Services or pods is routed to the wrong place"
                    ))
                    .at(at.clone().or_else(|| service_at.clone()))
                    .object(what.clone()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_overlap() {
        let patch = "cluster:\n  network:\n    podSubnets: [10.96.0.0/16]\n    serviceSubnets: [10.96.0.0/12]\n";
        let found = fired("TAL012", &[("patch.yaml", patch)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn quiet_on_disjoint_ranges() {
        let patch = "cluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n    serviceSubnets: [10.96.0.0/12]\n";
        assert!(fired("TAL012", &[("patch.yaml", patch)], Target::default()).is_empty());
    }
}
