//! `cniswap node clean --cni X`: removes only what X owns, in a safe order, after writing a
//! backup that `restore` can put back.
//!
//! Order: tc BPF programs; iptables (one atomic restore per table and backend); ipsets (after
//! the rules that use them); nft tables; ip rules; routes; links (pod veths only when their pod
//! sandbox is gone); BPF pins (after the programs that use them); files (moved into the backup,
//! never deleted). KUBE-* state only with `--include-kube-proxy` and only when kube-proxy is not
//! running. Shared reference plugins, runtime namespaces and unknown objects are never touched.

use crate::inventory::firewall_commands;
use crate::{NodeError, iptables, tools};
use cniswap_model::{CniKind, Inventory, Item, ItemKind, Owner};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const BACKUP_SCHEMA_VERSION: u32 = 1;
pub const MANIFEST: &str = "cniswap-backup.json";

#[derive(Debug, Clone)]
pub struct CleanOptions {
    pub cni: CniKind,
    pub include_kube_proxy: bool,
    pub root: PathBuf,
}

/// One change, with what `restore` needs to undo it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    TcFilterDelete {
        dev: String,
        direction: String,
        pref: u64,
        name: String,
    },
    IptablesTable {
        backend: String,
        family: String,
        table: String,
        /// The `iptables-restore --noflush` script that removes them in one commit.
        script: String,
        /// What is removed, for restore (`:CHAIN` and `-A` lines).
        removed_chains: Vec<String>,
        removed_rules: Vec<String>,
    },
    IpsetDestroy {
        name: String,
        saved: String,
    },
    NftTableDelete {
        family: String,
        name: String,
        saved: String,
    },
    RuleDelete {
        family: String,
        priority: u64,
        table: Option<String>,
        spec: String,
    },
    /// `implicit`: goes away with its device; recorded so restore can re-add it.
    RouteDelete {
        family: String,
        spec: String,
        implicit: bool,
    },
    AddressDrop {
        dev: String,
        address: String,
    },
    LinkDelete {
        name: String,
        detail: Value,
    },
    BpfPinRemove {
        path: String,
    },
    FileMove {
        path: String,
    },
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::TcFilterDelete {
                dev,
                direction,
                pref,
                name,
            } => {
                format!("delete tc {direction} filter pref {pref} ({name}) on {dev}")
            }
            Action::IptablesTable {
                backend,
                family,
                table,
                removed_chains,
                removed_rules,
                ..
            } => format!(
                "iptables {backend} {family} {table}: remove {} chain(s) and {} rule(s) in one restore",
                removed_chains.len(),
                removed_rules.len()
            ),
            Action::IpsetDestroy { name, .. } => format!("destroy ipset {name}"),
            Action::NftTableDelete { family, name, .. } => {
                format!("delete nft table {family} {name}")
            }
            Action::RuleDelete { spec, .. } => format!("delete ip rule {spec}"),
            Action::RouteDelete {
                spec,
                implicit: true,
                ..
            } => format!("route {spec} (goes with its device)"),
            Action::RouteDelete { spec, .. } => format!("delete route {spec}"),
            Action::AddressDrop { dev, address } => format!("address {address} (goes with {dev})"),
            Action::LinkDelete { name, detail } => format!(
                "delete link {name} ({})",
                detail["kind"]
                    .as_str()
                    .filter(|k| !k.is_empty())
                    .unwrap_or("device")
            ),
            Action::BpfPinRemove { path } => format!("remove BPF pin /{path}"),
            Action::FileMove { path } => format!("move /{path} into the backup"),
        }
    }
}

/// What clean will do, and what it leaves alone on purpose.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    pub cni: String,
    pub node: String,
    pub actions: Vec<Action>,
    /// Items of that CNI that stay, with why.
    pub kept: Vec<(String, String)>,
}

/// The owners a clean of `cni` removes.
pub fn owners(cni: CniKind, include_kube_proxy: bool) -> Vec<Owner> {
    let mut owners = match cni {
        // Canal is Calico policy on Flannel networking.
        CniKind::Canal => vec![Owner::Canal, Owner::Flannel, Owner::Calico],
        other => vec![Owner::from_cni(other)],
    };
    if include_kube_proxy {
        owners.push(Owner::KubeProxy);
    }
    owners
}

/// Checks the agents and builds the plan from an inventory (nothing is changed).
pub fn plan(inventory: &Inventory, options: &CleanOptions) -> Result<Plan, NodeError> {
    let owners = owners(options.cni, options.include_kube_proxy);
    if let Some(agent) = inventory.agents.iter().find(|a| owners.contains(&a.owner)) {
        return Err(NodeError::new(
            format!(
                "{} is running on this node (pid {}): refusing to remove {}'s state under it",
                agent.process, agent.pid, agent.owner
            ),
            if agent.owner == Owner::KubeProxy {
                "drop --include-kube-proxy, or stop kube-proxy on this node first".to_string()
            } else {
                format!(
                    "remove the {} agent from this node first (its DaemonSet, or a nodeSelector), then run clean again",
                    agent.owner
                )
            },
        ));
    }
    let mine = |item: &Item| owners.contains(&item.owner);
    let mut plan = Plan {
        cni: options.cni.to_string(),
        node: inventory.node.clone(),
        ..Plan::default()
    };

    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::TcFilter && mine(i))
    {
        plan.actions.push(Action::TcFilterDelete {
            dev: str_of(&item.detail["dev"]),
            direction: str_of(&item.detail["direction"]),
            pref: item.detail["pref"].as_u64().unwrap_or_default(),
            name: str_of(&item.detail["name"]),
        });
    }

    // iptables: one removal script per backend, family and table that has owned chains or rules.
    for (backend, family, save, _) in firewall_commands() {
        let touched = inventory.items.iter().any(|i| {
            matches!(i.kind, ItemKind::IptablesChain | ItemKind::IptablesRule)
                && mine(i)
                && i.detail["backend"] == *backend
                && i.detail["family"] == *family
        });
        if !touched {
            continue;
        }
        let text = tools::run(save, &["-c"], None)?;
        for table in iptables::parse(&text) {
            let remove = |o: Owner| owners.contains(&o);
            let Some(script) = iptables::removal_script(&table, remove) else {
                continue;
            };
            let removed_chains = table
                .chains
                .iter()
                .filter(|c| crate::owner::chain(&c.name).is_some_and(|(o, _)| remove(o)))
                .map(|c| c.line.clone())
                .collect();
            let removed_rules = table
                .rules
                .iter()
                .filter(|r| iptables::rule_owner(r).is_some_and(|(o, _)| remove(o)))
                .map(|r| r.line.clone())
                .collect();
            plan.actions.push(Action::IptablesTable {
                backend: backend.to_string(),
                family: family.to_string(),
                table: table.name.clone(),
                script,
                removed_chains,
                removed_rules,
            });
        }
    }

    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Ipset && mine(i))
    {
        let name = str_of(&item.detail["name"]);
        let saved = tools::run("ipset", &["save", &name], None)?;
        plan.actions.push(Action::IpsetDestroy { name, saved });
    }
    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::NftTable && mine(i))
    {
        let (family, name) = (str_of(&item.detail["family"]), str_of(&item.detail["name"]));
        let saved = tools::run("nft", &["list", "table", &family, &name], None)?;
        plan.actions.push(Action::NftTableDelete {
            family,
            name,
            saved,
        });
    }
    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Rule && mine(i))
    {
        let priority = item.detail["priority"].as_u64().unwrap_or_default();
        let table = item.detail["table"].as_str().map(str::to_string);
        let spec = str_of(&item.detail["spec"]);
        plan.actions.push(Action::RuleDelete {
            family: str_of(&item.detail["family"]),
            priority,
            table,
            spec,
        });
    }

    // Links: decide first, because routes and addresses on deleted links go with them.
    let mut deleted_links = Vec::new();
    let mut link_actions = Vec::new();
    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Link && mine(i))
    {
        let name = str_of(&item.detail["name"]);
        let kind = str_of(&item.detail["kind"]);
        if crate::owner::is_pod_veth(item.owner, &name, &kind)
            && !item.detail["peer_netns"].is_null()
        {
            plan.kept.push((
                item.id.clone(),
                "its pod sandbox still exists (peer in another network namespace): drain the node so the pods are gone, then clean again".into(),
            ));
            continue;
        }
        // Deleting one end of a veth deletes the other: only when the peer is ours too.
        if kind == "veth"
            && let Some(peer) = item.detail["peer"].as_str()
            && item.detail["peer_netns"].is_null()
        {
            let peer_is_mine = inventory
                .items
                .iter()
                .any(|i| i.kind == ItemKind::Link && i.detail["name"] == peer && mine(i));
            if !peer_is_mine {
                plan.kept.push((
                    item.id.clone(),
                    format!("its veth peer {peer} is not {}'s", options.cni),
                ));
                continue;
            }
        }
        deleted_links.push(name.clone());
        link_actions.push(Action::LinkDelete {
            name,
            detail: item.detail.clone(),
        });
    }
    // A bridge that still has a kept pod veth attached stays too, or that pod loses its network.
    let kept_masters: Vec<String> = inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Link && plan.kept.iter().any(|(id, _)| *id == i.id))
        .filter_map(|i| i.detail["master"].as_str().map(str::to_string))
        .collect();
    link_actions.retain(|a| match a {
        Action::LinkDelete { name, .. } if kept_masters.contains(name) => {
            plan.kept.push((
                format!("link {name}"),
                "pods are still attached to it (see above)".into(),
            ));
            deleted_links.retain(|l| l != name);
            false
        }
        _ => true,
    });
    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Route && mine(i))
    {
        let on_deleted = item.detail["dev"]
            .as_str()
            .is_some_and(|d| deleted_links.iter().any(|l| l == d));
        let on_kept_owned_link = item.detail["dev_owned"] == true && !on_deleted;
        if on_kept_owned_link {
            plan.kept
                .push((item.id.clone(), "its device stays (see above)".into()));
            continue;
        }
        plan.actions.push(Action::RouteDelete {
            family: str_of(&item.detail["family"]),
            spec: route_spec(&item.detail),
            implicit: on_deleted,
        });
    }
    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Address && mine(i))
    {
        let dev = str_of(&item.detail["dev"]);
        if deleted_links.contains(&dev) {
            plan.actions.push(Action::AddressDrop {
                dev,
                address: str_of(&item.detail["address"]),
            });
        }
    }
    plan.actions.extend(link_actions);

    for item in inventory
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::BpfPin && mine(i))
    {
        plan.actions.push(Action::BpfPinRemove {
            path: str_of(&item.detail["path"]),
        });
    }
    for item in inventory
        .items
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::File | ItemKind::Directory) && mine(i))
    {
        let path = str_of(&item.detail["path"]);
        // A file inside a directory that moves goes with it.
        let parent_moves = plan.actions.iter().any(
            |a| matches!(a, Action::FileMove { path: dir } if path.starts_with(&format!("{dir}/"))),
        );
        if parent_moves {
            continue;
        }
        if path.ends_with(".cilium_bak") {
            plan.kept.push((
                item.id.clone(),
                "another CNI's config that Cilium renamed: rename it back by hand if that CNI should use it".into(),
            ));
            continue;
        }
        plan.actions.push(Action::FileMove { path });
    }
    // Say what is never touched, so nobody wonders.
    for item in &inventory.items {
        if item.owner == Owner::KubeProxy
            && !options.include_kube_proxy
            && !matches!(item.kind, ItemKind::Route | ItemKind::Address)
        {
            plan.kept.push((
                item.id.clone(),
                "kube-proxy state: only with --include-kube-proxy".into(),
            ));
        }
    }
    Ok(plan)
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| match v {
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// `ip route` arguments for a route item (shared by delete and restore).
pub fn route_spec(detail: &Value) -> String {
    let mut spec = String::new();
    let kind = detail["type"].as_str().unwrap_or("unicast");
    if kind != "unicast" {
        spec.push_str(kind);
        spec.push(' ');
    }
    spec.push_str(detail["dst"].as_str().unwrap_or("default"));
    if let Some(g) = detail["gateway"].as_str() {
        spec.push_str(&format!(" via {g}"));
    }
    if let Some(d) = detail["dev"].as_str() {
        spec.push_str(&format!(" dev {d}"));
    }
    if let Some(p) = detail["protocol"].as_str() {
        spec.push_str(&format!(" proto {p}"));
    }
    if let Some(m) = detail["metric"].as_u64() {
        spec.push_str(&format!(" metric {m}"));
    }
    spec.push_str(&format!(
        " table {}",
        detail["table"].as_str().unwrap_or("main")
    ));
    if detail["onlink"] == true {
        spec.push_str(" onlink");
    }
    spec
}

/// A backup a finished `node restore` marked is stale (the node holds its state again):
/// renamed to `<dir>.retired-<n>` (kept), so a clean into the same directory starts afresh.
/// Any other non-empty backup is never touched.
fn retire_restored(backup: &Path) -> Result<(), NodeError> {
    if !backup.join(crate::restore::RESTORED_MARKER).is_file() {
        return Ok(());
    }
    let retired = (1u32..)
        .map(|n| std::path::PathBuf::from(format!("{}.retired-{n}", backup.display())))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| backup.with_extension("retired"));
    std::fs::rename(backup, &retired).map_err(|e| io(&retired, e))
}

/// Writes the backup (manifest, pre-clean dumps), then applies the plan. Stops at the first
/// failed step; the manifest records how far it got.
pub fn execute(plan: &Plan, root: &Path, backup: &Path) -> Result<Vec<String>, NodeError> {
    retire_restored(backup)?;
    if backup.exists()
        && std::fs::read_dir(backup)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(NodeError::new(
            format!("backup directory {} is not empty", backup.display()),
            "choose a new --backup directory; an existing backup is never overwritten",
        ));
    }
    std::fs::create_dir_all(backup.join("files")).map_err(|e| io(backup, e))?;
    write_manifest(backup, plan)?;

    let mut done = Vec::new();
    // tc programs before anything else; BPF pins only after them (see module docs).
    for action in &plan.actions {
        if let Action::TcFilterDelete {
            dev,
            direction,
            pref,
            ..
        } = action
        {
            if direction == "xdp" {
                tools::run("ip", &["link", "set", "dev", dev, "xdp", "off"], None)?;
            } else {
                let pref = pref.to_string();
                let args = ["filter", "del", "dev", dev, direction, "pref", &pref];
                tools::run("tc", &args, None)?;
            }
            done.push(action.describe());
        }
    }
    for action in &plan.actions {
        if let Action::IptablesTable {
            backend,
            family,
            script,
            ..
        } = action
        {
            let restore = firewall_commands()
                .iter()
                .find(|(b, f, _, _)| b == backend && f == family)
                .map(|(_, _, _, r)| *r)
                .unwrap_or("iptables-restore");
            tools::run(restore, &["--noflush"], Some(script))?;
            done.push(action.describe());
        }
    }
    let ipsets: String = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::IpsetDestroy { name, .. } => Some(format!("destroy {name}\n")),
            _ => None,
        })
        .collect();
    if !ipsets.is_empty() {
        tools::run("ipset", &["restore"], Some(&ipsets))?;
        done.extend(
            plan.actions
                .iter()
                .filter(|a| matches!(a, Action::IpsetDestroy { .. }))
                .map(Action::describe),
        );
    }
    let nft: String = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::NftTableDelete { family, name, .. } => {
                Some(format!("delete table {family} {name}\n"))
            }
            _ => None,
        })
        .collect();
    if !nft.is_empty() {
        tools::run("nft", &["-f", "-"], Some(&nft))?;
        done.extend(
            plan.actions
                .iter()
                .filter(|a| matches!(a, Action::NftTableDelete { .. }))
                .map(Action::describe),
        );
    }
    for family in ["-4", "-6"] {
        let batch: String = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::RuleDelete {
                    family: f, spec, ..
                } if f == family => Some(format!("rule del {spec}\n")),
                Action::RouteDelete {
                    family: f,
                    spec,
                    implicit: false,
                } if f == family => Some(format!("route del {spec}\n")),
                _ => None,
            })
            .collect();
        if !batch.is_empty() {
            tools::run("ip", &[family, "-batch", "-"], Some(&batch))?;
        }
    }
    done.extend(
        plan.actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::RuleDelete { .. }
                        | Action::RouteDelete {
                            implicit: false,
                            ..
                        }
                )
            })
            .map(Action::describe),
    );
    let names: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::LinkDelete { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !names.is_empty() {
        // Deleting devices one by one waits for an RCU grace period each (seconds for hundreds
        // of veths); moving them into an unused device group and deleting the group unregisters
        // them in one batch. The group is checked to be empty first.
        let group = unused_link_group()?;
        let mut batch: String = names
            .iter()
            .map(|n| format!("link set dev {n} group {group}\n"))
            .collect();
        batch.push_str(&format!("link del group {group}\n"));
        tools::run("ip", &["-batch", "-"], Some(&batch))?;
        done.extend(
            plan.actions
                .iter()
                .filter(|a| matches!(a, Action::LinkDelete { .. }))
                .map(Action::describe),
        );
    }
    for action in &plan.actions {
        match action {
            Action::BpfPinRemove { path } => {
                std::fs::remove_file(root.join(path)).map_err(|e| io(&root.join(path), e))?;
                remove_owned_pin_dirs(root, path);
                done.push(action.describe());
            }
            Action::FileMove { path } => {
                let relative = crate::paths::safe_relative(path)
                    .map_err(|why| NodeError::new(format!("/{path}: {why}"), "report this"))?;
                // Never through a link: the file moved is the one the inventory listed.
                crate::paths::no_links_below(root, &relative, true)
                    .map_err(|why| NodeError::new(why, "check the root"))?;
                let target = backup.join("files").join(&relative);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                move_path(&root.join(&relative), &target)?;
                done.push(action.describe());
            }
            _ => {}
        }
    }
    Ok(done)
}

/// A device group no link uses now (groups 0-255 are left to administrators).
fn unused_link_group() -> Result<u32, NodeError> {
    let links: Vec<Value> =
        serde_json::from_str(&tools::run("ip", &["-j", "link", "show"], None)?).unwrap_or_default();
    let used: Vec<String> = links
        .iter()
        .filter_map(|l| l["group"].as_str().map(str::to_string))
        .collect();
    (40_000..41_000)
        .find(|g| !used.contains(&g.to_string()))
        .ok_or_else(|| {
            NodeError::new(
                "no free device group to batch the link deletion",
                "delete some device groups 40000-41000",
            )
        })
}

/// Removes the pin's directories that belong to the same CNI once they are empty
/// (`calico/xdp`, `calico`), never shared ones such as `tc/globals`.
fn remove_owned_pin_dirs(root: &Path, pin: &str) {
    let owner = crate::owner::bpf_pin(pin.trim_start_matches("sys/fs/bpf/"));
    let mut dir = Path::new(pin).parent();
    while let Some(d) = dir {
        let relative = d
            .strip_prefix("sys/fs/bpf")
            .unwrap_or(d)
            .display()
            .to_string();
        if relative.is_empty() || crate::owner::bpf_pin(&relative) != owner {
            break;
        }
        // remove_dir fails on a non-empty directory, which is what we want.
        if std::fs::remove_dir(root.join(d)).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn write_manifest(backup: &Path, plan: &Plan) -> Result<(), NodeError> {
    let manifest = serde_json::json!({
        "schema_version": BACKUP_SCHEMA_VERSION,
        "plan": plan,
    });
    let path = backup.join(MANIFEST);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&manifest).unwrap_or_default(),
    )
    .map_err(|e| io(&path, e))
}

/// Moves a file or directory, across filesystems if needed (copy, then remove). Symbolic links
/// are moved as links, never followed.
pub fn move_path(from: &Path, to: &Path) -> Result<(), NodeError> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_tree(from, to)?;
    let meta = std::fs::symlink_metadata(from).map_err(|e| io(from, e))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(from).map_err(|e| io(from, e))
    } else {
        std::fs::remove_file(from).map_err(|e| io(from, e))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), NodeError> {
    let meta = std::fs::symlink_metadata(from).map_err(|e| io(from, e))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| io(from, e))?;
        std::os::unix::fs::symlink(target, to).map_err(|e| io(to, e))
    } else if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| io(from, e))?.flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.is_file() {
        std::fs::copy(from, to).map(|_| ()).map_err(|e| io(from, e))
    } else if is_endpoint(&meta) {
        // A socket or FIFO is a running process's endpoint, not state: nothing to keep (seen
        // on the lab: Cilium's /run/cilium/health.sock stopped the clean after a rollback).
        Ok(())
    } else {
        Err(NodeError::new(
            format!("{}: not a regular file, directory or link", from.display()),
            "move it by hand",
        ))
    }
}

fn is_endpoint(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket() || meta.file_type().is_fifo()
}

pub(crate) fn io(path: &Path, e: std::io::Error) -> NodeError {
    NodeError::new(
        format!("{}: {e}", path.display()),
        "check the path and permissions (run as root)",
    )
}
