//! `cniswap node inventory`: every object on this node a CNI, kube-proxy or the runtime owns.
//! Kernel state is read in the current network namespace; files under `root`.

mod files;
mod firewall;
mod network;
mod runtime;

pub use runtime::{CniDirs, cni_dirs};

pub use files::plugin_types;

/// (backend, family, save command, restore command) for every iptables flavour.
pub fn firewall_commands() -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    firewall::IPTABLES
}

use crate::NodeError;
use cniswap_model::{INVENTORY_SCHEMA_VERSION, Inventory, Item, RunningAgent};
use std::path::Path;

/// Reads the whole inventory. A source that cannot be read (a tool missing, say) is listed
/// under `unreadable` instead of failing the run.
pub fn collect(root: &Path) -> Result<Inventory, NodeError> {
    if !root.is_dir() {
        return Err(NodeError::new(
            format!("root {} is not a directory", root.display()),
            "pass the host filesystem with --root (e.g. /host in a privileged pod)",
        ));
    }
    let mut inventory = Inventory {
        schema_version: INVENTORY_SCHEMA_VERSION,
        node: hostname(root),
        root: root.display().to_string(),
        agents: agents(root),
        ..Inventory::default()
    };
    let mut items: Vec<Item> = Vec::new();
    let flannel_network = files::flannel_network(root);
    network::collect(&mut items, &mut inventory.unreadable, flannel_network);
    firewall::collect(&mut items, &mut inventory.unreadable);
    let dirs = cni_dirs(root);
    files::collect(root, &dirs, &mut items, &mut inventory.unreadable);
    inventory.cni_config = files::config_choice(root, &dirs);
    if let Some(dist) = crate::distribution::detect(root) {
        name_embedded_owners(dist, &mut items);
        inventory.distribution = Some(if dist.embeds_network {
            format!(
                "{} (/{}): Flannel, kube-proxy and a network policy controller run inside its own process unless its config turns them off",
                dist.name, dist.data_dir
            )
        } else {
            format!(
                "{} (/{}): its CNI and kube-proxy run as pods from its own charts and static pod manifests",
                dist.name, dist.data_dir
            )
        });
    }
    inventory.items = items;
    Ok(inventory)
}

/// On k3s, Flannel's and kube-proxy's state is made by the k3s process itself: said so.
fn name_embedded_owners(dist: &crate::distribution::Distribution, items: &mut [Item]) {
    if !dist.embeds_network {
        return;
    }
    for item in items {
        let what = match item.owner {
            cniswap_model::Owner::Flannel => "Flannel",
            cniswap_model::Owner::KubeProxy => "kube-proxy",
            _ => continue,
        };
        item.why
            .push_str(&format!("; on {} made by its embedded {what}", dist.name));
    }
}

fn hostname(root: &Path) -> String {
    ["etc/hostname", "proc/sys/kernel/hostname"]
        .iter()
        .find_map(|p| crate::paths::read_regular(&root.join(p)))
        .or_else(|| crate::paths::read_regular(Path::new("/proc/sys/kernel/hostname")))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CNI and kube-proxy agents, from `<root>/proc/<pid>/comm`. Agents run in the node's network
/// namespace (they are hostNetwork pods or host services), as the inventory itself does: a
/// process in another network namespace (another node sharing the PID namespace, as in a
/// lab, or a pod's own namespace) is not this node's agent.
fn agents(root: &Path) -> Vec<RunningAgent> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(root.join("proc")) else {
        return Vec::new();
    };
    let own_netns = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
    let mut agents: Vec<RunningAgent> = entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = crate::paths::read_regular(&e.path().join("comm"))?;
            let comm = comm.trim();
            let netns = std::fs::metadata(e.path().join("ns/net")).map(|m| m.ino());
            if let (Some(own), Ok(theirs)) = (own_netns, netns)
                && own != theirs
            {
                return None;
            }
            if crate::distribution::is_k3s_process(comm) {
                return Some(k3s_agents(root, comm, pid));
            }
            Some(vec![RunningAgent {
                owner: crate::owner::process(comm)?,
                process: comm.to_string(),
                pid,
            }])
        })
        .flatten()
        .collect();
    agents.sort_by_key(|a| a.pid);
    agents
}

/// k3s runs Flannel and kube-proxy inside its own process: each counted as an agent while it
/// runs there (or when that cannot be read: never clean under a running agent).
fn k3s_agents(root: &Path, comm: &str, pid: u32) -> Vec<RunningAgent> {
    use crate::distribution::{k3s_runs_flannel, k3s_runs_kube_proxy};
    let embedded = [
        (
            cniswap_model::Owner::Flannel,
            "Flannel",
            k3s_runs_flannel(root, pid),
            "its start time could not be read",
        ),
        (
            cniswap_model::Owner::KubeProxy,
            "kube-proxy",
            k3s_runs_kube_proxy(root, pid),
            "a socket listens on kube-proxy's health port and its open files could not be read",
        ),
    ];
    embedded
        .into_iter()
        .filter(|(_, _, runs, _)| *runs != Some(false))
        .map(|(owner, what, runs, unsure)| RunningAgent {
            owner,
            process: if runs.is_none() {
                format!("{comm} (embedded {what}: {unsure}, so it may run)")
            } else {
                format!("{comm} (embedded {what})")
            },
            pid,
        })
        .collect()
}
