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

/// Host NICs per node from node inventories: links nobody owns of a kind that carries node
/// traffic (a plain device, a bond, a VLAN).
fn node_nics(ctx: &Context) -> Vec<(String, Vec<String>)> {
    ctx.snapshot
        .node_inventories
        .iter()
        .map(|inv| {
            let nics = inv
                .data
                .items
                .iter()
                .filter(|i| {
                    i.kind == cniswap_model::ItemKind::Link
                        && i.owner == cniswap_model::Owner::Unknown
                })
                .filter(|i| {
                    matches!(
                        i.detail.get("kind").and_then(|k| k.as_str()),
                        Some("" | "bond" | "vlan" | "team")
                    )
                })
                .filter_map(|i| i.detail.get("name").and_then(|n| n.as_str()))
                .filter(|name| *name != "lo")
                .map(str::to_string)
                .collect();
            (inv.node.clone(), nics)
        })
        .filter(|(_, nics): &(String, Vec<String>)| !nics.is_empty())
        .collect()
}

/// Nodes none of whose NICs match any pattern. None when a pattern is not a valid regex here
/// (Cilium uses Go's syntax; the rule then stays quiet rather than guess).
fn nodes_without_match(
    patterns: &[String],
    nodes: &[(String, Vec<String>)],
) -> Option<Vec<String>> {
    let regexes: Vec<regex::Regex> = patterns
        .iter()
        .map(|p| regex::Regex::new(p).ok())
        .collect::<Option<_>>()?;
    Some(
        nodes
            .iter()
            .filter(|(_, nics)| {
                !nics
                    .iter()
                    .any(|nic| regexes.iter().any(|r| r.is_match(nic)))
            })
            .map(|(node, nics)| format!("{node} ({})", nics.join(", ")))
            .collect(),
    )
}

fn check(ctx: &Context, out: &mut Emitter) {
    let nics = node_nics(ctx);
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
        if patterns.is_empty() {
            continue;
        }
        // A policy limited to some nodes is checked by hand: the inventories do not say which.
        let everywhere = policy.doc.path(&["spec", "nodeSelector"]).is_none();
        let texts: Vec<String> = patterns.iter().filter_map(Node::scalar_text).collect();
        if everywhere
            && let Some(missed) = nodes_without_match(&texts, &nics).filter(|m| !m.is_empty())
        {
            out.push(
                out.finding(format!(
                    "CiliumL2AnnouncementPolicy {name} interfaces {} match no NIC on {}: those nodes never announce, and their services are unreachable when they hold the lease",
                    texts.join(", "),
                    missed.join("; ")
                ))
                .at(ctx.location(&patterns[0]))
                .object(format!("CiliumL2AnnouncementPolicy/{name}")),
            );
            continue;
        }
        if patterns.iter().all(|p| p.as_str().is_some_and(single_name)) {
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
    fn fires_when_a_node_has_no_matching_nic() {
        use crate::rules::node::test_support::inventory;
        let policy = POLICY.replace("PATTERN", "^eth[0-9]+");
        let eth = inventory("n0", &[], &[], &[("nic", "unknown", "eth0")]);
        let enp = inventory(
            "n1",
            &[],
            &[],
            &[
                ("nic", "unknown", "enp1s0"),
                ("link", "flannel", "flannel.1"),
            ],
        );
        let found = fired(
            "CIL014",
            &[
                ("l2.yaml", &policy),
                ("nodes/n0.json", &eth),
                ("nodes/n1.json", &enp),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("n1 (enp1s0)") && !found[0].message.contains("n0"),
            "{}",
            found[0].message
        );

        let broad = POLICY.replace("PATTERN", "^(eth|enp)[0-9a-z]+");
        assert!(
            fired(
                "CIL014",
                &[
                    ("l2.yaml", &broad),
                    ("nodes/n0.json", &eth),
                    ("nodes/n1.json", &enp)
                ],
                Target::default()
            )
            .is_empty()
        );
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
