//! What a lab made, written down as it is made (`DIR/lab.json`), so that `down` (from any
//! process, also after a crash) removes exactly that and can check nothing is left.

use crate::error::{LabError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "lab.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Small number unique among the labs running on this machine: it picks the bridge name,
    /// the node subnet and the ports.
    pub index: u8,
    /// The process that brought the lab up; a test lab whose owner is gone is stale.
    pub owner_pid: u32,
    /// Whether the lab outlives its owner (`scripts/lab up`), or is swept when the owner is gone.
    pub detached: bool,
    pub bridge: Option<String>,
    pub processes: Vec<ProcessRecord>,
    /// Network namespaces (`ip netns` names).
    pub netns: Vec<String>,
    /// Persistent mount namespaces (bind-mounted nsfs files).
    pub mount_ns: Vec<PathBuf>,
    /// Host mounts the lab made, unmounted in reverse order.
    pub mounts: Vec<PathBuf>,
    /// cgroup v1 paths (relative to each controller's root) the nodes' kubelets use.
    pub cgroups: Vec<String>,
    /// Host directories the lab created as mount points (removed when empty).
    #[serde(default)]
    pub created_dirs: Vec<PathBuf>,
    /// Host-side links (bridge ports).
    pub host_links: Vec<String>,
    pub nodes: Vec<NodeRecord>,
    pub images: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    /// The CNI the lab started on.
    #[serde(default)]
    pub cni: crate::cni::Cni,
    /// The charts, values and manifests a plan installs from, when the lab has them.
    #[serde(default)]
    pub install_files: Option<crate::cni::InstallFiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22): a PID reused by
    /// another process after a crash is never killed by mistake.
    pub start_ticks: u64,
    pub log: PathBuf,
    /// The node it runs on (`None`: the host's control plane).
    #[serde(default)]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub name: String,
    pub netns: String,
    pub mount_ns: PathBuf,
    pub ip: String,
    pub role: String,
    /// Host-side name of the node's uplink veth (the node side is `eth0`).
    pub uplink: String,
    pub dir: PathBuf,
    pub containerd_socket: PathBuf,
    pub cgroup_root: String,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub fn load(dir: &Path) -> Result<State> {
        let path = State::path(dir);
        let text = std::fs::read_to_string(&path)
            .map_err(LabError::io(format!("read {}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            LabError::Other(format!(
                "{} is not a lab state file: {e}; remove the lab's leftovers by hand",
                path.display()
            ))
        })
    }

    /// Written after every change, atomically (temp file, then rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = State::path(dir);
        let temp = dir.join(format!(".{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| LabError::Other(format!("serialize lab state: {e}")))?;
        std::fs::write(&temp, text).map_err(LabError::io(format!("write {}", temp.display())))?;
        std::fs::rename(&temp, &path).map_err(LabError::io(format!("rename to {}", path.display())))
    }
}
