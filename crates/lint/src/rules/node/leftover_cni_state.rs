use super::{belongs, expected, inventories, names};
use crate::rules::prelude::*;
use std::collections::BTreeMap;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD005",
        name: "leftover-cni-state",
        title: "state of a CNI the node no longer runs",
        severity: Severity::Warning,
        inputs: &[Input::Node],
        fix: "`cniswap node clean --cni <old> --dry-run` shows what would go; run it without --dry-run once the old agent is gone",
        docs: include_str!("../../../../../docs/rules/NOD005.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let expected = expected(ctx, node, inventory);
        if expected.is_empty() {
            continue;
        }
        let mut leftovers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for item in &inventory.items {
            if item.owner.cni().is_some() && !belongs(item.owner, &expected) {
                leftovers
                    .entry(item.owner.as_str())
                    .or_default()
                    .push(&item.id);
            }
        }
        for (owner, ids) in leftovers {
            let shown: Vec<&str> = ids.iter().take(5).copied().collect();
            out.push(
                out.finding(format!(
                    "{} of {owner} {} on a node that runs {} ({}{}): leftovers send traffic to the wrong place and slow the node",
                    count(ids.len(), "object", "objects"),
                    plural(ids.len(), "remains", "remain"),
                    names(&expected),
                    shown.join(", "),
                    if ids.len() > 5 { ", ..." } else { "" }
                ))
                .object(format!("Node/{node}"))
                .help(format!("`cniswap node clean --cni {owner} --dry-run` on {node} shows what would go")),
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
    fn fires_on_flannel_leftovers_on_a_cilium_node() {
        let inv = inventory(
            "n0",
            &["cilium-agent"],
            &[("05-cilium.conflist", "cilium-cni")],
            &[("link", "flannel", "flannel.1")],
        );
        assert_eq!(
            fired("NOD005", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_when_everything_belongs() {
        let inv = inventory(
            "n0",
            &["flanneld"],
            &[("10-flannel.conflist", "flannel")],
            &[("link", "flannel", "flannel.1")],
        );
        assert!(fired("NOD005", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
