use crate::rules::cluster_pod_cidrs;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "FLN002",
        name: "flannel-network-mismatch",
        title: "Flannel Network differs from the cluster pod CIDR",
        severity: Severity::Warning,
        inputs: &[Input::Flannel],
        fix: "set net-conf.json `Network` to the cluster pod CIDR (podSubnets / --cluster-cidr)",
        docs: include_str!("../../../../../docs/rules/FLN002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let cluster = cluster_pod_cidrs(ctx);
    if cluster.is_empty() {
        return;
    }
    for flannel in &ctx.flannel {
        let Some(network) = &flannel.network else {
            continue;
        };
        if cluster.iter().any(|(c, _)| c == network) {
            continue;
        }
        let list: Vec<String> = cluster
            .iter()
            .map(|(c, s)| format!("{c} from {s}"))
            .collect();
        out.push(
            out.finding(format!(
                "{}: Network {network} differs from the cluster pod CIDR ({}): node podCIDRs come from the controller-manager range, so pods get addresses outside Flannel's network",
                flannel.label,
                list.join(", ")
            ))
            .at(flannel.network_at.clone())
            .object(flannel.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    fn cm(network: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: |\n    {{\n      \"Network\": \"{network}\",\n      \"Backend\": {{ \"Type\": \"vxlan\" }}\n    }}\n"
        )
    }

    const TALOS: &str = "cluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n";

    #[test]
    fn fires_on_other_network() {
        let found = fired(
            "FLN002",
            &[
                ("patch.yaml", TALOS),
                ("kube-flannel.yml", &cm("10.0.0.0/16")),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 9);
    }

    #[test]
    fn quiet_on_same_network() {
        assert!(
            fired(
                "FLN002",
                &[
                    ("patch.yaml", TALOS),
                    ("kube-flannel.yml", &cm("10.244.0.0/16"))
                ],
                Target::default()
            )
            .is_empty()
        );
    }
}
