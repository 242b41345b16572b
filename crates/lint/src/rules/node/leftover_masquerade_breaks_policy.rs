use super::{belongs, expected, inventories, names};
use crate::rules::prelude::*;
use cniswap_model::{ItemKind, Owner};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD006",
        name: "leftover-masquerade-breaks-policy",
        title: "Flannel's masquerade rules outlive Flannel",
        severity: Severity::Error,
        inputs: &[Input::Node],
        fix: "`cniswap node clean --cni flannel` removes FLANNEL-POSTRTG and FLANNEL-FWD in one atomic restore",
        docs: include_str!("../../../../../docs/rules/NOD006.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let expected = expected(ctx, node, inventory);
        if expected.is_empty() || belongs(Owner::Flannel, &expected) {
            continue;
        }
        let chains: Vec<&str> = inventory
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::IptablesChain && i.detail["chain"] == "FLANNEL-POSTRTG")
            .map(|i| i.id.as_str())
            .collect();
        if let Some(first) = chains.first() {
            out.push(
                out.finding(format!(
                    "{first} is still there on a node that runs {}: its MASQUERADE hides pod source IPs, so NetworkPolicy on the new CNI silently sees the node's IP",
                    names(&expected)
                ))
                .object(format!("Node/{node}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_calico_node() {
        let inv = inventory(
            "n0",
            &["calico-node"],
            &[("10-calico.conflist", "calico")],
            &[("iptables-chain", "flannel", "FLANNEL-POSTRTG")],
        );
        assert_eq!(
            fired("NOD006", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_while_flannel_runs() {
        let inv = inventory(
            "n0",
            &["flanneld"],
            &[("10-flannel.conflist", "flannel")],
            &[("iptables-chain", "flannel", "FLANNEL-POSTRTG")],
        );
        assert!(fired("NOD006", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
