//! Node inventories: what `cniswap node inventory` finds on a node, each item labelled with
//! its owner and why. The JSON form is what snapshots carry under `nodes/<node>.json`.

use crate::CniKind;
use serde::{Deserialize, Serialize};

/// Version of the inventory JSON. Bump on incompatible changes.
pub const INVENTORY_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Inventory {
    pub schema_version: u32,
    /// The node's hostname (from `<root>/etc/hostname`, else the kernel's).
    pub node: String,
    /// Where the host filesystem was read (`/`, or `/host` from a privileged pod).
    pub root: String,
    /// The distribution whose own service runs parts of the network here (k3s, RKE2), and
    /// what it runs itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// CNI, kube-proxy and runtime agents running on the node.
    pub agents: Vec<RunningAgent>,
    /// Which CNI config the container runtimes will load.
    pub cni_config: CniConfigChoice,
    pub items: Vec<Item>,
    /// Sources that could not be read, with why (a tool missing, no permission).
    pub unreadable: Vec<String>,
}

impl Inventory {
    /// CNIs whose agent process runs on the node.
    pub fn running_cnis(&self) -> Vec<CniKind> {
        let mut cnis: Vec<CniKind> = self.agents.iter().filter_map(|a| a.owner.cni()).collect();
        cnis.sort();
        cnis.dedup();
        cnis
    }

    pub fn owned_by(&self, owner: Owner) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.owner == owner)
    }
}

/// Who owns a piece of node state.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    Flannel,
    Canal,
    Calico,
    Cilium,
    Weave,
    KubeProxy,
    /// The container runtime (pod network namespaces).
    Runtime,
    /// The reference CNI plugins shared by several CNIs (bridge, host-local, portmap, ...).
    CniPlugins,
    /// Not recognised: never removed.
    #[default]
    Unknown,
}

impl Owner {
    pub fn cni(self) -> Option<CniKind> {
        match self {
            Owner::Flannel => Some(CniKind::Flannel),
            Owner::Canal => Some(CniKind::Canal),
            Owner::Calico => Some(CniKind::Calico),
            Owner::Cilium => Some(CniKind::Cilium),
            Owner::Weave => Some(CniKind::Weave),
            _ => None,
        }
    }

    pub fn from_cni(cni: CniKind) -> Self {
        match cni {
            CniKind::Flannel => Owner::Flannel,
            CniKind::Canal => Owner::Canal,
            CniKind::Calico => Owner::Calico,
            CniKind::Cilium => Owner::Cilium,
            CniKind::Weave => Owner::Weave,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Flannel => "flannel",
            Owner::Canal => "canal",
            Owner::Calico => "calico",
            Owner::Cilium => "cilium",
            Owner::Weave => "weave",
            Owner::KubeProxy => "kube-proxy",
            Owner::Runtime => "runtime",
            Owner::CniPlugins => "cni-plugins",
            Owner::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Link,
    Address,
    Route,
    Rule,
    Neighbour,
    IptablesChain,
    IptablesRule,
    NftTable,
    Ipset,
    BpfPin,
    TcFilter,
    File,
    Directory,
}

/// One object on the node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    /// Human-readable identity, e.g. `link flannel.1 (vxlan id 1 port 4789)`.
    pub id: String,
    pub owner: Owner,
    /// Why cniswap thinks so, e.g. `name flannel.N + kind vxlan`.
    pub why: String,
    /// Kind-specific data used by clean and restore (link parameters, route spec, rule text, path).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunningAgent {
    pub owner: Owner,
    pub process: String,
    pub pid: u32,
}

/// The CNI config files and what each runtime will load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CniConfigChoice {
    pub conf_dir: String,
    pub bin_dir: String,
    /// The containerd config that set the two directories (k3s and RKE2 move them); absent
    /// when they are containerd's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirs_from: Option<String>,
    /// `.conf`, `.conflist` and `.json` files in load (byte) order.
    pub files: Vec<String>,
    /// containerd loads the lexically first file, valid or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containerd: Option<ConfigVerdict>,
    /// CRI-O loads the first file that parses and whose plugin binaries exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crio: Option<ConfigVerdict>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConfigVerdict {
    pub file: String,
    pub owner: Option<Owner>,
    pub parses: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Plugin `type`s in the config, in order.
    pub plugins: Vec<String>,
    /// Plugin types without a binary in the bin dir.
    pub missing_binaries: Vec<String>,
}
