//! NOD: node inventories (`cniswap node inventory`, snapshots' `nodes/<node>.json`).

pub mod cilium_backup_configs;
pub mod first_config_invalid;
pub mod first_config_not_expected_cni;
pub mod flannel_subnet_env_missing;
pub mod leftover_cni_state;
pub mod leftover_masquerade_breaks_policy;
pub mod overlay_port_in_use;
pub mod plugin_binary_missing;

use crate::context::Context;
use cniswap_model::{CniKind, Inventory, Owner};

/// Every inventory with the node it describes.
pub(crate) fn inventories<'a>(ctx: &'a Context) -> impl Iterator<Item = (&'a str, &'a Inventory)> {
    ctx.snapshot.node_inventories.iter().map(|n| {
        let name = if n.data.node.is_empty() {
            n.node.as_str()
        } else {
            n.data.node.as_str()
        };
        (name, &n.data)
    })
}

/// The CNIs a node should run: its agents per cluster facts, else the agents the inventory saw.
/// Empty when neither says.
pub(crate) fn expected(ctx: &Context, node: &str, inventory: &Inventory) -> Vec<CniKind> {
    if let Some(facts) = ctx.facts.nodes.iter().find(|n| n.name == node)
        && !facts.cni_agents.is_empty()
    {
        return facts.cni_agents.clone();
    }
    inventory.running_cnis()
}

/// Whether state of `owner` belongs to one of the expected CNIs (Canal runs Flannel and Calico pieces).
pub(crate) fn belongs(owner: Owner, expected: &[CniKind]) -> bool {
    expected.iter().any(|cni| match cni {
        CniKind::Canal => matches!(owner, Owner::Canal | Owner::Flannel | Owner::Calico),
        other => owner == Owner::from_cni(*other),
    })
}

pub(crate) fn names(cnis: &[CniKind]) -> String {
    cnis.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Inventories as `cniswap node inventory -o json` writes them, built small.
    use serde_json::json;

    /// `agents`: process names; `configs`: (file name, plugin type, "" = invalid);
    /// `items`: (kind, owner, name-or-path).
    pub fn inventory(
        node: &str,
        agents: &[&str],
        configs: &[(&str, &str)],
        items: &[(&str, &str, &str)],
    ) -> String {
        let agents: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"owner": cniswap_node_owner(p), "process": p, "pid": 100 + i}))
            .collect();
        let verdict = configs.first().map(|(file, plugin)| {
            json!({
                "file": format!("/etc/cni/net.d/{file}"),
                "owner": owner_of_plugin(plugin),
                "parses": !plugin.is_empty(),
                "error": if plugin.is_empty() { Some("not valid JSON") } else { None },
                "plugins": if plugin.is_empty() { vec![] } else { vec![*plugin] },
                "missing_binaries": [],
            })
        });
        let items: Vec<_> = items
            .iter()
            .map(|(kind, owner, name)| match *kind {
                "nic" => json!({"kind": "link", "id": format!("link {name} (device)"), "owner": owner, "why": "test",
                    "detail": {"name": name, "kind": ""}}),
                "link" => json!({"kind": "link", "id": format!("link {name} (vxlan id 1 port 8472)"), "owner": owner, "why": "test",
                    "detail": {"name": name, "kind": "vxlan", "info_data": {"id": 1, "port": 8472}}}),
                "iptables-chain" => json!({"kind": "iptables-chain", "id": format!("iptables legacy ipv4 nat chain {name}"), "owner": owner, "why": "test",
                    "detail": {"backend": "legacy", "family": "ipv4", "table": "nat", "chain": name}}),
                _ => json!({"kind": "file", "id": format!("file /{name}"), "owner": owner, "why": "test", "detail": {"path": name}}),
            })
            .collect();
        serde_json::to_string_pretty(&json!({
            "schema_version": 1,
            "node": node,
            "root": "/",
            "agents": agents,
            "cni_config": {
                "conf_dir": "/etc/cni/net.d",
                "bin_dir": "/opt/cni/bin",
                "files": configs.iter().map(|(f, _)| format!("/etc/cni/net.d/{f}")).collect::<Vec<_>>(),
                "containerd": verdict,
            },
            "items": items,
            "unreadable": [],
        }))
        .unwrap_or_default()
    }

    fn cniswap_node_owner(process: &str) -> &'static str {
        match process {
            "flanneld" => "flannel",
            "calico-node" => "calico",
            "cilium-agent" => "cilium",
            _ => "unknown",
        }
    }

    fn owner_of_plugin(plugin: &str) -> &'static str {
        match plugin {
            "flannel" => "flannel",
            "calico" => "calico",
            "cilium-cni" => "cilium",
            _ => "unknown",
        }
    }
}
