use super::inventories;
use crate::rules::prelude::*;
use cniswap_model::Owner;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD004",
        name: "flannel-subnet-env-missing",
        title: "Flannel's config wins but /run/flannel/subnet.env is gone",
        severity: Severity::Error,
        inputs: &[Input::Node],
        fix: "start flanneld on the node (it writes subnet.env), or remove 10-flannel.conflist if Flannel is being replaced",
        docs: include_str!("../../../../../docs/rules/NOD004.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let Some(first) = &inventory.cni_config.containerd else {
            continue;
        };
        if !first.plugins.iter().any(|p| p == "flannel") {
            continue;
        }
        let has_env = inventory
            .items
            .iter()
            .any(|i| i.owner == Owner::Flannel && i.detail["path"] == "run/flannel/subnet.env");
        if !has_env {
            out.push(
                out.finding(format!(
                    "{} sorts first and uses the flannel plugin, but /run/flannel/subnet.env does not exist: every pod fails with \"loadFlannelSubnetEnv failed\" (Talos wipes /run on reboot)",
                    first.file
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
    fn fires_without_subnet_env() {
        let inv = inventory("n0", &[], &[("10-flannel.conflist", "flannel")], &[]);
        assert_eq!(
            fired("NOD004", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_subnet_env() {
        let inv = inventory(
            "n0",
            &[],
            &[("10-flannel.conflist", "flannel")],
            &[("file", "flannel", "run/flannel/subnet.env")],
        );
        assert!(fired("NOD004", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
