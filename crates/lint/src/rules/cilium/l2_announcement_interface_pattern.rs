use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL014",
        name: "l2-announcement-interface-pattern",
        title: "L2 announcement policy matches a single interface name",
        severity: Severity::Warning,
        inputs: &[],
        fix: "match every NIC naming scheme in the cluster, e.g. `^eth[0-9]+`, `^en[a-z0-9]+`, `^bond[0-9]+`",
        docs: include_str!("../../../../../docs/rules/CIL014.md"),
    },
    check,
};

/// A pattern that matches exactly one literal name: `^eth0$`, `eth0`.
fn single_name(pattern: &str) -> bool {
    let core = pattern.trim_start_matches('^').trim_end_matches('$');
    !core.is_empty()
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check(ctx: &Context, out: &mut Emitter) {
    let policies =
        ctx.snapshot.manifests.iter().filter(|m| {
            m.doc.get("kind").and_then(Node::as_str) == Some("CiliumL2AnnouncementPolicy")
        });
    for policy in policies {
        let name = policy
            .doc
            .path(&["metadata", "name"])
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        let Some(interfaces) = policy.doc.path(&["spec", "interfaces"]) else {
            continue;
        };
        let patterns = interfaces.as_seq();
        if !patterns.is_empty() && patterns.iter().all(|p| p.as_str().is_some_and(single_name)) {
            let names: Vec<String> = patterns.iter().filter_map(Node::scalar_text).collect();
            out.push(
                out.finding(format!(
                    "CiliumL2AnnouncementPolicy {name} announces only on {}: nodes whose NIC has another name (enp1s0, eno1, bond0) never announce, and their services are unreachable when they hold the lease",
                    names.join(", ")
                ))
                .at(ctx.location(&patterns[0]))
                .object(format!("CiliumL2AnnouncementPolicy/{name}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const POLICY: &str = "apiVersion: cilium.io/v2alpha1\nkind: CiliumL2AnnouncementPolicy\nmetadata:\n  name: default\nspec:\n  loadBalancerIPs: true\n  interfaces:\n    - PATTERN\n";

    #[test]
    fn fires_on_anchored_single_name() {
        let found = fired(
            "CIL014",
            &[("l2.yaml", &POLICY.replace("PATTERN", "^eth0$"))],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 8);
    }

    #[test]
    fn quiet_on_broad_patterns() {
        assert!(
            fired(
                "CIL014",
                &[("l2.yaml", &POLICY.replace("PATTERN", "^eth[0-9]+"))],
                Target::default()
            )
            .is_empty()
        );
    }
}
