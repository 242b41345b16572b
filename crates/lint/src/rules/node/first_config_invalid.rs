use super::inventories;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD002",
        name: "first-config-invalid",
        title: "the first CNI config does not load",
        severity: Severity::Error,
        inputs: &[Input::Node],
        fix: "fix the file or move it out of the CNI config directory",
        docs: include_str!("../../../../../docs/rules/NOD002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for (node, inventory) in inventories(ctx) {
        let Some(first) = &inventory.cni_config.containerd else {
            continue;
        };
        if first.parses {
            continue;
        }
        out.push(
            out.finding(format!(
                "{} sorts first and does not load ({}): containerd loads no network at all and the node goes NotReady (\"cni plugin not initialized\")",
                first.file,
                first.error.as_deref().unwrap_or("invalid")
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
    fn fires_on_invalid_first_file() {
        let inv = inventory("n0", &[], &[("00-broken.conf", "")], &[]);
        assert_eq!(
            fired("NOD002", &[("nodes/n0.json", &inv)], Target::default()).len(),
            1
        );
    }

    #[test]
    fn quiet_on_valid_first_file() {
        let inv = inventory("n0", &[], &[("10-flannel.conflist", "flannel")], &[]);
        assert!(fired("NOD002", &[("nodes/n0.json", &inv)], Target::default()).is_empty());
    }
}
