use super::inventories;
use crate::rules::prelude::*;
use cniswap_model::{ItemKind, Owner};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "NOD008",
        name: "overlay-port-in-use",
        title: "another CNI's overlay device holds the target's port",
        severity: Severity::Error,
        inputs: &[Input::Node, Input::Target],
        fix: "remove the old device first (`cniswap node clean --cni <old>`), or give the target another port",
        docs: include_str!("../../../../../docs/rules/NOD008.md"),
    },
    check,
};

/// The UDP port the target's overlay binds: Cilium values when given, else the defaults.
fn target_port(ctx: &Context, target: CniKind) -> Option<u16> {
    match target {
        CniKind::Cilium => Some(
            ctx.cilium
                .first()
                .and_then(|v| v.tunnel_port())
                .map_or(8472, |(p, _)| p),
        ),
        CniKind::Calico => Some(
            ctx.calico
                .felix
                .iter()
                .find_map(|f| f.get("vxlanPort").and_then(Node::as_u16))
                .unwrap_or(4789),
        ),
        CniKind::Flannel => Some(ctx.flannel.first().and_then(|f| f.port).unwrap_or(8472)),
        _ => None,
    }
}

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(target) = ctx.target.cni else { return };
    let Some(port) = target_port(ctx, target) else {
        return;
    };
    for (node, inventory) in inventories(ctx) {
        for item in inventory.items.iter().filter(|i| {
            i.kind == ItemKind::Link
                && i.owner != Owner::from_cni(target)
                && i.owner.cni().is_some()
        }) {
            let held = item.detail["info_data"]["port"].as_u64() == Some(u64::from(port));
            if held {
                out.push(
                    out.finding(format!(
                        "{} ({}) holds UDP {port}, the port {target}'s overlay needs: the new overlay fails with \"address already in use\"",
                        item.id, item.owner
                    ))
                    .object(format!("Node/{node}")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    #[test]
    fn fires_when_flannel_holds_8472() {
        let inv = inventory("n0", &[], &[], &[("link", "flannel", "flannel.1")]);
        assert_eq!(
            fired("NOD008", &[("nodes/n0.json", &inv)], to(CniKind::Cilium)).len(),
            1
        );
    }

    #[test]
    fn quiet_on_other_port() {
        let inv = inventory("n0", &[], &[], &[("link", "flannel", "flannel.1")]);
        assert!(fired("NOD008", &[("nodes/n0.json", &inv)], to(CniKind::Calico)).is_empty());
    }
}
