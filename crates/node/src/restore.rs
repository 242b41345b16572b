//! `cniswap node restore --backup DIR`: puts back what clean removed, in reverse order, and
//! says precisely what it cannot put back (pod veths, BPF programs and pins, neighbour
//! entries: the CNI agent recreates those when it starts).

use crate::clean::{Action, MANIFEST, Plan, io, move_path};
use crate::inventory::firewall_commands;
use crate::{NodeError, tools};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Default)]
pub struct Outcome {
    pub restored: Vec<String>,
    pub not_restored: Vec<String>,
}

pub fn read_plan(backup: &Path) -> Result<Plan, NodeError> {
    let path = backup.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        NodeError::new(
            format!("{}: {e}", path.display()),
            "pass the directory that `cniswap node clean --backup DIR` wrote",
        )
    })?;
    let manifest: Value = serde_json::from_str(&text).map_err(|e| {
        NodeError::new(
            format!("{}: not a cniswap backup: {e}", path.display()),
            "check the --backup path",
        )
    })?;
    serde_json::from_value(manifest["plan"].clone()).map_err(|e| {
        NodeError::new(
            format!("{}: unreadable plan: {e}", path.display()),
            "the backup was written by another cniswap version",
        )
    })
}

pub fn restore(backup: &Path, root: &Path) -> Result<Outcome, NodeError> {
    let plan = read_plan(backup)?;
    let mut outcome = Outcome::default();

    for action in &plan.actions {
        match action {
            Action::FileMove { path } => {
                let target = root.join(path);
                if target.exists() {
                    outcome.not_restored.push(format!("/{path}: something exists there now; the saved copy stays in the backup"));
                    continue;
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                move_path(&backup.join("files").join(path), &target)?;
                outcome.restored.push(format!("/{path}"));
            }
            Action::BpfPinRemove { path } => outcome
                .not_restored
                .push(format!("BPF pin /{path}: map contents cannot be recreated; the agent recreates its maps when it starts")),
            Action::TcFilterDelete { dev, name, .. } => outcome
                .not_restored
                .push(format!("tc program {name} on {dev}: the agent reattaches it when it starts")),
            _ => {}
        }
    }

    // Links before their addresses and routes.
    for action in &plan.actions {
        if let Action::LinkDelete { name, detail } = action {
            match link_add_command(name, detail) {
                                Some(command) => {
                    let args: Vec<&str> = command.iter().map(String::as_str).collect();
                    if let Err(e) = tools::run("ip", &args, None) {
                        outcome.not_restored.push(format!("link {name}: {}", e.message));
                        continue;
                    }
                    if let Some(mtu) = detail["mtu"].as_u64() {
                        tools::run("ip", &["link", "set", name, "mtu", &mtu.to_string()], None)?;
                    }
                    if let Some(master) = detail["master"].as_str() {
                        let _ = tools::run("ip", &["link", "set", name, "master", master], None);
                    }
                    if detail["up"] == true {
                        tools::run("ip", &["link", "set", name, "up"], None)?;
                    }
                    outcome.restored.push(format!("link {name}"));
                }
                None => outcome.not_restored.push(format!(
                    "link {name} ({}): pod interfaces and agent-made devices are recreated by the CNI, not by restore",
                    detail["kind"].as_str().unwrap_or("device")
                )),
            }
        }
    }
    for action in &plan.actions {
        if let Action::AddressDrop { dev, address } = action
            && tools::run("ip", &["addr", "add", address, "dev", dev], None).is_ok()
        {
            outcome.restored.push(format!("address {address} on {dev}"));
        }
    }
    for family in ["-4", "-6"] {
        for action in &plan.actions {
            match action {
                // Kernel routes come back with their address and link.
                Action::RouteDelete {
                    family: f, spec, ..
                } if f == family && !spec.contains("proto kernel") => {
                    let mut args = vec![family, "route", "add"];
                    args.extend(spec.split_whitespace());
                    match tools::run("ip", &args, None) {
                        Ok(_) => outcome.restored.push(format!("route {spec}")),
                        Err(e) => outcome
                            .not_restored
                            .push(format!("route {spec}: {}", e.message)),
                    }
                }
                Action::RuleDelete {
                    family: f, spec, ..
                } if f == family => {
                    let mut args = vec![family, "rule", "add"];
                    args.extend(spec.split_whitespace());
                    tools::run("ip", &args, None)?;
                    outcome.restored.push(format!("ip rule {spec}"));
                }
                _ => {}
            }
        }
    }
    for action in &plan.actions {
        match action {
            Action::NftTableDelete {
                family,
                name,
                saved,
            } => {
                tools::run("nft", &["-f", "-"], Some(saved))?;
                outcome.restored.push(format!("nft table {family} {name}"));
            }
            Action::IpsetDestroy { name, saved } => {
                tools::run("ipset", &["restore"], Some(saved))?;
                outcome.restored.push(format!("ipset {name}"));
            }
            _ => {}
        }
    }
    // iptables last: the sets its rules match must exist again.
    for action in &plan.actions {
        if let Action::IptablesTable {
            backend,
            family,
            table,
            removed_chains,
            removed_rules,
            ..
        } = action
        {
            let restore = firewall_commands()
                .iter()
                .find(|(b, f, _, _)| b == backend && f == family)
                .map(|(_, _, _, r)| *r)
                .unwrap_or("iptables-restore");
            let input = crate::iptables::additions(
                table,
                removed_chains.iter().map(String::as_str),
                removed_rules.iter().map(String::as_str),
            );
            tools::run(restore, &["-c", "--noflush"], Some(&input))?;
            outcome.restored.push(format!(
                "iptables {backend} {family} {table}: {} chain(s), {} rule(s) (appended; order within built-in chains may differ)",
                removed_chains.len(),
                removed_rules.len()
            ));
        }
    }
    Ok(outcome)
}

/// `ip link add` for devices that restore can recreate from their saved parameters.
fn link_add_command(name: &str, detail: &Value) -> Option<Vec<String>> {
    let kind = detail["kind"].as_str()?;
    let data = &detail["info_data"];
    let mut cmd: Vec<String> = vec!["link".into(), "add".into(), name.into()];
    if let Some(mac) = detail["address"]
        .as_str()
        .filter(|_| matches!(kind, "vxlan" | "bridge" | "dummy"))
    {
        cmd.extend(["address".into(), mac.into()]);
    }
    cmd.extend(["type".into(), kind.into()]);
    match kind {
        "vxlan" => {
            cmd.extend(["id".into(), data["id"].as_u64()?.to_string()]);
            if let Some(port) = data["port"].as_u64() {
                cmd.extend(["dstport".into(), port.to_string()]);
            }
            if let Some(local) = data["local"].as_str() {
                cmd.extend(["local".into(), local.into()]);
            }
            if let Some(link) = data["link"].as_str() {
                cmd.extend(["dev".into(), link.into()]);
            }
            if data["learning"] == false {
                cmd.push("nolearning".into());
            }
            Some(cmd)
        }
        "bridge" | "dummy" => Some(cmd),
        "ipip" => {
            if let Some(local) = data["local"].as_str().filter(|l| *l != "any") {
                cmd.extend(["local".into(), local.into()]);
            }
            Some(cmd)
        }
        _ => None,
    }
}
