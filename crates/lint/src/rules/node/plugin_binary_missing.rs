use super::inventories;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD003",
        name: "plugin-binary-missing",
        title: "a plugin of the first CNI config is missing",
        severity: Severity::Error,
        inputs: &[Input::Node],
        fix: "reinstall the CNI agent on the node (its init container copies the plugin), or remove the config",
        docs: include_str!("../../../../../docs/rules/NOD003.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let Some(first) = &inventory.cni_config.containerd else {
            continue;
        };
        if first.missing_binaries.is_empty() {
            continue;
        }
        out.push(
            out.finding(format!(
                "{} needs {} but {} has no such binary: every pod ADD fails (\"failed to find plugin\")",
                first.file,
                first.missing_binaries.join(", "),
                inventory.cni_config.bin_dir
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
    fn fires_without_binary() {
        let inv = inventory("n0", &[], &[("05-cilium.conflist", "cilium-cni")], &[]);
        let inv = inv.replace(
            "\"missing_binaries\": []",
            "\"missing_binaries\": [\"cilium-cni\"]",
        );
        assert_eq!(
            fired("NOD003", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_with_binary() {
        let inv = inventory("n0", &[], &[("05-cilium.conflist", "cilium-cni")], &[]);
        assert!(fired("NOD003", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
