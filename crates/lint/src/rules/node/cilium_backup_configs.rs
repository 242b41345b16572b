use super::{belongs, expected, inventories};
use crate::rules::prelude::*;
use cniswap_model::Owner;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD007",
        name: "cilium-backup-configs",
        title: "configs renamed away by Cilium remain",
        severity: Severity::Warning,
        inputs: &[Input::Node],
        fix: "rename the *.cilium_bak file back if its CNI should own the node again, or delete it",
        docs: include_str!("../../../../../docs/rules/NOD007.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let expected = expected(ctx, node, inventory);
        if belongs(Owner::Cilium, &expected) {
            continue;
        }
        let files: Vec<String> = inventory
            .items
            .iter()
            .filter_map(|i| {
                i.detail["path"]
                    .as_str()
                    .filter(|p| p.ends_with(".cilium_bak"))
                    .map(|p| format!("/{p}"))
            })
            .collect();
        if !files.is_empty() {
            out.push(
                out.finding(format!(
                    "{} while Cilium does not run here: Cilium renamed another CNI's config away, and that CNI finds no config",
                    files.join(", ")
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
    fn fires_without_cilium() {
        let inv = inventory(
            "n0",
            &["flanneld"],
            &[],
            &[(
                "file",
                "cilium",
                "etc/cni/net.d/10-flannel.conflist.cilium_bak",
            )],
        );
        assert_eq!(
            fired("NOD007", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_cilium() {
        let inv = inventory(
            "n0",
            &["cilium-agent"],
            &[],
            &[(
                "file",
                "cilium",
                "etc/cni/net.d/10-flannel.conflist.cilium_bak",
            )],
        );
        assert!(fired("NOD007", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
