use crate::rules::address_in;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL020",
        name: "cluster-pool-overlaps-node-network",
        title: "Cilium pod pool overlaps the node network",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `ipam.operator.clusterPoolIPv4PodCIDRList` to a range no node, VIP or API endpoint uses",
        docs: include_str!("../../../../../docs/rules/CIL020.md"),
    },
    check,
};

/// The chart's pool when `clusterPoolIPv4PodCIDRList` is not set (Cilium Helm values).
const DEFAULT_POOL: &str = "10.0.0.0/8";

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        let ipam = values
            .text("ipam.mode")
            .unwrap_or_else(|| "cluster-pool".into());
        if ipam != "cluster-pool" {
            continue;
        }
        let explicit = values.cluster_pool_cidrs();
        // An unset pool may be set in a Secret the release reads.
        if explicit.is_empty() && !values.complete() {
            continue;
        }
        let pools: Vec<(String, Option<&Node>)> = if explicit.is_empty() {
            vec![(DEFAULT_POOL.to_string(), None)]
        } else {
            explicit
                .iter()
                .filter_map(|n| Some((n.scalar_text()?, Some(*n))))
                .collect()
        };
        let addresses = node_addresses(ctx, &values.label);
        for (pool, node) in pools {
            let Ok(net) = pool.trim().parse::<ipnet::IpNet>() else {
                continue;
            };
            let inside: Vec<&(String, String)> = addresses
                .iter()
                .filter(|(ip, _)| {
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| net.contains(&ip))
                })
                .collect();
            let Some((ip, from)) = inside.first() else {
                continue;
            };
            let more = match inside.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            let pool_text = match node {
                Some(_) => format!("the pod pool {pool}"),
                None => format!(
                    "the chart's default pod pool {pool} (clusterPoolIPv4PodCIDRList is not set)"
                ),
            };
            out.push(
                out.finding(format!(
                    "{pool_text} contains {ip} ({from}){more}: pods get addresses of the node network, and traffic to those nodes is routed to pods instead"
                ))
                .at(ctx.location_or_file(node, values.anchor()))
                .object(values.label.clone()),
            );
        }
    }
}

/// Node, VIP and endpoint addresses of the cluster the values belong to, with where each
/// was read.
fn node_addresses(ctx: &Context, label: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for node in &ctx.facts.nodes {
        if let Some(ip) = &node.internal_ip {
            out.push((ip.clone(), format!("InternalIP of node {}", node.name)));
        }
    }
    let mut written: Vec<&Node> = ctx
        .views_for(label)
        .into_iter()
        .flat_map(|v| v.node_addresses())
        .collect();
    written.extend(ctx.snapshot.node_addresses.iter().filter(|n| {
        ctx.snapshot
            .source_file(n.pos.source)
            .is_none_or(|f| ctx.same_cluster(label, &f.path))
    }));
    for node in written {
        let Some(ip) = node.scalar_text().as_deref().and_then(address_in) else {
            continue;
        };
        let from = ctx.location(node).map_or_else(
            || "a Talos config".to_string(),
            |l| format!("{}:{}", l.file, l.line),
        );
        out.push((ip.to_string(), from));
    }
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const VALUES: &str =
        "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\n";

    #[test]
    fn fires_on_the_default_pool_over_a_10_network() {
        let patch = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.10.0.11/24]\n        vip:\n          ip: 10.10.0.10\ncluster:\n  network:\n    cni: {name: none}\n";
        let found = fired(
            "CIL020",
            &[("patch.yaml", patch), ("helm/cilium.yaml", VALUES)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("default pod pool 10.0.0.0/8"),
            "{}",
            found[0].message
        );
        assert!(
            found[0].message.contains("patch.yaml:5"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn fires_on_an_explicit_pool_over_talhelper_nodes() {
        let talconfig = "clusterName: home\ntalosVersion: v1.13.2\nnodes:\n  - hostname: cp1\n    ipAddress: 172.16.5.10\n    controlPlane: true\n";
        let values = format!(
            "{VALUES}ipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: [\"172.16.0.0/16\"]\n"
        );
        let found = fired(
            "CIL020",
            &[("talconfig.yaml", talconfig), ("helm/cilium.yaml", &values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 6);
    }

    #[test]
    fn quiet_with_a_separate_pool_or_other_ipam() {
        let patch = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [192.168.1.11/24]\n";
        assert!(
            fired(
                "CIL020",
                &[("patch.yaml", patch), ("helm/cilium.yaml", VALUES)],
                Target::default()
            )
            .is_empty()
        );
        let ten = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.10.0.11/24]\n";
        let kubernetes = format!("{VALUES}ipam: {{mode: kubernetes}}\n");
        assert!(
            fired(
                "CIL020",
                &[("patch.yaml", ten), ("helm/cilium.yaml", &kubernetes)],
                Target::default()
            )
            .is_empty()
        );
    }
}
