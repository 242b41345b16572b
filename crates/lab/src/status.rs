//! `scripts/lab status -o json`: the lab's nodes, components and images, read from its state
//! file and checked against the running system.

use crate::error::Result;
use crate::process;
use crate::state::State;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct Status {
    pub dir: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub api_server: String,
    pub bridge: Option<String>,
    pub nodes: Vec<NodeStatus>,
    pub components: Vec<ComponentStatus>,
    pub images: Vec<String>,
    /// The CNI the lab started on (`flannel`, `calico`, `cilium`).
    pub cni: crate::cni::Cni,
    /// Per target CNI, the arguments `cniswap plan` needs on this lab (local chart and
    /// manifests, the image mirror, the node agent image); empty when the lab was brought up
    /// without the other CNIs' images.
    pub plan_flags: serde_json::Value,
    /// A directory with the lab's kubectl and helm (what a plan's steps run): put it first on
    /// PATH to plan and apply on this lab. None when the lab has no helm.
    pub bin: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub netns: String,
    /// The node's mount namespace (`nsenter --mount=... --net=/run/netns/<netns>`).
    pub mount_ns: PathBuf,
    pub ip: String,
    pub role: String,
    /// Host-side name of the node's uplink veth.
    pub uplink: String,
}

#[derive(Debug, Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub pid: u32,
    pub node: Option<String>,
    pub log: PathBuf,
    /// `running` or `exited`.
    pub health: &'static str,
}

impl Status {
    pub fn read(dir: &Path) -> Result<Status> {
        let state = State::load(dir)?;
        let ports = crate::control_plane::Ports::for_index(state.index);
        Ok(Status {
            dir: dir.to_path_buf(),
            kubeconfig: state.kubeconfig.clone(),
            api_server: format!(
                "https://{}:{}",
                crate::network::gateway(state.index),
                ports.apiserver
            ),
            bridge: state.bridge.clone(),
            nodes: state
                .nodes
                .iter()
                .map(|n| NodeStatus {
                    name: n.name.clone(),
                    netns: n.netns.clone(),
                    mount_ns: n.mount_ns.clone(),
                    ip: n.ip.clone(),
                    role: n.role.clone(),
                    uplink: n.uplink.clone(),
                })
                .collect(),
            components: state
                .processes
                .iter()
                .map(|p| ComponentStatus {
                    name: p.name.clone(),
                    pid: p.pid,
                    node: p.node.clone(),
                    log: p.log.clone(),
                    health: if process::alive(p) {
                        "running"
                    } else {
                        "exited"
                    },
                })
                .collect(),
            images: state.images.clone(),
            cni: state.cni,
            plan_flags: match &state.install_files {
                Some(files) => crate::cni::plan_flags(
                    files,
                    state
                        .images
                        .iter()
                        .find(|i| i.contains("/cniswap:"))
                        .map(String::as_str),
                    state
                        .images
                        .iter()
                        .find(|i| i.contains("/busybox:"))
                        .map(String::as_str),
                ),
                None => serde_json::json!({}),
            },
            bin: Some(crate::up::bin_dir(dir)).filter(|d| d.join("helm").exists()),
        })
    }
}
