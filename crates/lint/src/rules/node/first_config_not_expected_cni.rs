use super::{belongs, expected, inventories, names};
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD001",
        name: "first-config-not-expected-cni",
        title: "the first CNI config belongs to another CNI",
        severity: Severity::Error,
        inputs: &[Input::Node],
        fix: "remove or rename the stray config (`cniswap node clean --cni <old>` moves it into a backup)",
        docs: include_str!("../../../../../docs/rules/NOD001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let expected = expected(ctx, node, inventory);
        let Some(first) = &inventory.cni_config.containerd else {
            continue;
        };
        let Some(owner) = first.owner.filter(|o| o.cni().is_some()) else {
            continue;
        };
        if expected.is_empty() || belongs(owner, &expected) {
            continue;
        }
        out.push(
            out.finding(format!(
                "{} sorts first in {} and belongs to {owner}, but the node runs {}: containerd gives every new pod {owner}'s network",
                first.file,
                inventory.cni_config.conf_dir,
                names(&expected)
            ))
            .object(format!("Node/{node}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_when_flannel_config_wins_on_a_cilium_node() {
        let inv = inventory(
            "n0",
            &["cilium-agent"],
            &[
                ("10-flannel.conflist", "flannel"),
                ("20-cilium.conflist", "cilium-cni"),
            ],
            &[],
        );
        assert_eq!(
            fired("NOD001", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_when_the_right_config_wins() {
        let inv = inventory(
            "n0",
            &["cilium-agent"],
            &[
                ("05-cilium.conflist", "cilium-cni"),
                ("10-flannel.conflist", "flannel"),
            ],
            &[],
        );
        assert!(fired("NOD001", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
