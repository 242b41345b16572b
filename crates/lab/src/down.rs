//! Taking a lab down from its state file, in the reverse order of bringing it up, and checking
//! that nothing of it is left: no process, mount, network namespace, link or cgroup.

use crate::error::{LabError, Result};
use crate::node;
use crate::process;
use crate::state::State;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `down` could not remove.
#[derive(Debug, Default)]
pub struct Leftovers(pub Vec<String>);

/// Brings the lab in `dir` down and removes `dir`. Errors list whatever is left.
pub fn down(dir: &Path) -> Result<Leftovers> {
    let state = State::load(dir)?;
    teardown(&state);
    let leftovers = check(&state, dir);
    unregister(state.index, dir);
    if leftovers.0.is_empty() {
        remove_lab_files(dir)?;
        Ok(leftovers)
    } else {
        Err(LabError::Other(format!(
            "the lab in {} is down, but these are left: {}",
            dir.display(),
            leftovers.0.join("; ")
        )))
    }
}

/// What a lab writes into its directory. Only these are removed, then the directory if it is
/// empty: a lab brought up in a directory that held other files never deletes them.
const LAB_FILES: &[&str] = &[
    "lab.json",
    ".lab.json.tmp",
    "logs",
    "pki",
    "etcd",
    "nodes",
    "kubeconfig",
    "admin.kubeconfig",
    "controller-manager.kubeconfig",
    "scheduler.kubeconfig",
    "kwok.yaml",
    "images",
    "audit-policy.yaml",
    "scheduler.yaml",
    "users",
    // What a plan installs from (crates/lab/src/cni.rs) and helm's own directories.
    "charts",
    "values",
    "manifests",
    "helm",
    // The lab's kubectl and helm for whoever plans on it (up.rs `bin_dir`).
    "bin",
];

fn remove_lab_files(dir: &Path) -> Result<()> {
    for name in LAB_FILES {
        let path = dir.join(name);
        let result = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => continue,
        };
        result.map_err(LabError::io(format!("remove {}", path.display())))?;
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

fn teardown(state: &State) {
    let grace = Duration::from_secs(5);
    // Kubelets first, so that nothing restarts pods; then the pods themselves (their shims
    // outlive containerd), then containerd; the control plane last.
    for record in state
        .processes
        .iter()
        .filter(|p| p.name.starts_with("kubelet@"))
    {
        process::stop(record, grace);
    }
    for node_record in &state.nodes {
        if Path::new(&node_record.mount_ns).exists()
            && crate::network::netns_exists(&node_record.netns)
        {
            node::remove_cgroups(node_record);
        }
    }
    for record in state.processes.iter().filter(|p| p.node.is_some()) {
        process::stop(record, grace);
    }
    // Anything else still in a node's network namespace (shims, stray children).
    for node_record in &state.nodes {
        for pid in pids_in_netns(&node_record.netns) {
            process::kill_pid(pid);
        }
    }
    for record in state.processes.iter().rev().filter(|p| p.node.is_none()) {
        process::stop(record, grace);
    }
    for mount_ns in state.mount_ns.iter().rev() {
        node::release_mount_namespace(mount_ns);
    }
    for mount in state.mounts.iter().rev() {
        let _ = process::run("umount", &["-l", &mount.display().to_string()]);
    }
    for netns in &state.netns {
        crate::network::delete_netns(netns);
    }
    for link in &state.host_links {
        crate::network::delete_link(link);
    }
    if let Some(bridge) = &state.bridge {
        crate::network::delete_link(bridge);
    }
    // Only directories the lab created, and only when nothing else has put files there.
    for dir in state.created_dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Everything of the lab that still exists.
fn check(state: &State, dir: &Path) -> Leftovers {
    let mut left = Vec::new();
    for record in &state.processes {
        if process::alive(record) {
            left.push(format!("process {} (pid {})", record.name, record.pid));
        }
    }
    for netns in &state.netns {
        if crate::network::netns_exists(netns) {
            left.push(format!("network namespace {netns}"));
        }
    }
    for link in state.host_links.iter().chain(state.bridge.iter()) {
        if crate::network::link_exists(link) {
            left.push(format!("link {link}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    for line in mountinfo.lines() {
        if let Some(point) = line.split(' ').nth(4)
            && point.starts_with(&prefix)
        {
            left.push(format!("mount {point}"));
        }
    }
    for root in &state.cgroups {
        for controller in ["memory", "pids", "cpu", "systemd", "unified"] {
            let path = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(root.trim_start_matches('/'));
            if path.exists() {
                left.push(format!("cgroup {}", path.display()));
            }
        }
    }
    Leftovers(left)
}

/// PIDs whose network namespace is `netns`.
fn pids_in_netns(netns: &str) -> Vec<u32> {
    let Ok(target) = std::fs::metadata(Path::new("/run/netns").join(netns)) else {
        return Vec::new();
    };
    use std::os::unix::fs::MetadataExt;
    let inode = target.ino();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == inode)
        })
        .collect()
}

fn registry_entry(index: u8) -> PathBuf {
    Path::new(crate::REGISTRY).join(format!("lab-{index}"))
}

/// Records which directory holds lab `index`, for `sweep_stale`.
pub fn register(index: u8, dir: &Path) {
    let _ = std::fs::create_dir_all(crate::REGISTRY);
    let _ = std::fs::write(registry_entry(index), dir.display().to_string());
}

fn unregister(index: u8, dir: &Path) {
    let entry = registry_entry(index);
    if std::fs::read_to_string(&entry).is_ok_and(|d| Path::new(&d) == dir) {
        let _ = std::fs::remove_file(entry);
    }
}

/// Brings down test labs whose test process is gone (killed before its teardown ran).
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(crate::REGISTRY) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let Ok(dir) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let dir = PathBuf::from(dir);
        match State::load(&dir) {
            Ok(state) if !state.detached && !owner_alive(state.owner_pid) => {
                let _ = down(&dir);
            }
            Ok(_) => {}
            // The directory is gone: nothing to sweep but the entry (its bridge, if any, is
            // found by `claim_bridge` skipping it).
            Err(_) => {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn owner_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
