//! What verify found deployed: for each node, its agents and their addresses, plus the
//! cluster's Services and API server endpoints.

use crate::kind::Kind;
use crate::wire::Role;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// Cluster DNS domain (`cluster.local`).
    pub domain: String,
    /// verify's namespace.
    pub namespace: String,
    pub echo_port: u16,
    /// Sorted by node name.
    pub nodes: Vec<NodeAgents>,
    /// The kubernetes Service's ClusterIP and port.
    pub kubernetes_service: Option<SocketAddr>,
    /// The API server endpoints behind it.
    pub api_endpoints: Vec<SocketAddr>,
    /// The probe Service's ClusterIP.
    pub probe_service: Option<IpAddr>,
    /// Addresses outside the cluster to try (only when asked).
    pub outside: Vec<SocketAddr>,
    /// Kinds left out (`--skip`).
    pub skip: Vec<Kind>,
    /// Every probe pod's IP the API shows (all nodes, answering or not): what the headless
    /// Service may resolve to. Empty: the answering probe agents' IPs.
    #[serde(default)]
    pub headless_ips: Vec<IpAddr>,
    /// The probe Services' names (with the deployment's suffix).
    #[serde(default = "default_service")]
    pub service_name: String,
    #[serde(default = "default_headless")]
    pub headless_name: String,
}

fn default_service() -> String {
    crate::names::SERVICE.into()
}

fn default_headless() -> String {
    crate::names::HEADLESS.into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeAgents {
    pub node: String,
    pub probe: Result<Agent, String>,
    pub peer: Result<Agent, String>,
    /// `Err` also when host checks were not asked for.
    pub host: Result<Agent, String>,
}

impl NodeAgents {
    pub fn agent(&self, role: Role) -> &Result<Agent, String> {
        match role {
            Role::Probe => &self.probe,
            Role::Peer => &self.peer,
            Role::Host => &self.host,
        }
    }
}

/// A running agent: its pod and the address others reach it on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub pod: String,
    pub ip: IpAddr,
    /// The MTU of its default-route interface, when it could read it.
    pub mtu: Option<u32>,
    /// Whether it answered through the API server (its pod may run and be a target for the
    /// others while it cannot be asked for its own results).
    #[serde(default = "answers_by_default")]
    pub answers: bool,
}

fn answers_by_default() -> bool {
    true
}

/// Why the checks of an agent that does not answer have no result.
pub fn not_collected(role: Role, node: &str) -> String {
    format!(
        "results not collected: the {} agent on node {node} does not answer through the API server (port-forward via its kubelet)",
        role.as_str()
    )
}

impl Topology {
    pub fn node(&self, name: &str) -> Option<&NodeAgents> {
        self.nodes.iter().find(|n| n.node == name)
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node.clone()).collect()
    }

    /// The probe pod IPs (the answers a headless Service lookup may give).
    pub fn probe_ips(&self) -> Vec<IpAddr> {
        if !self.headless_ips.is_empty() {
            return self.headless_ips.clone();
        }
        self.nodes
            .iter()
            .filter_map(|n| n.probe.as_ref().ok().map(|a| a.ip))
            .collect()
    }

    /// `<name>.<namespace>.svc.<domain>.` (fully qualified: the search list is not used).
    pub fn service_fqdn(&self, name: &str) -> String {
        format!("{name}.{}.svc.{}.", self.namespace, self.domain)
    }
}
