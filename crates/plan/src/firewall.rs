//! The ports the target CNI needs open between nodes, as this plan configures it, stated
//! before anything is installed: a host firewall or a cloud security group that drops them
//! breaks pod traffic between nodes the moment the target carries it. From each project's
//! own requirements page:
//! - Cilium, "System Requirements: Firewall Rules"
//!   (docs.cilium.io/en/stable/operations/system_requirements/#firewall-rules): VXLAN on the
//!   tunnel port (UDP 8472 by default), health checks TCP 4240 and ICMP echo, Hubble peers
//!   TCP 4244.
//! - Calico, "System requirements: Network requirements"
//!   (docs.tigera.io/calico/latest/getting-started/kubernetes/requirements): VXLAN UDP 4789,
//!   Typha TCP 5473 (agents to Typha), the Calico API server's TCP 5443 (from the API server).
//! - Flannel, "Backends" (github.com/flannel-io/flannel, Documentation/backends.md): VXLAN on
//!   UDP 8472 (Linux' default); Talos renders its Flannel on UDP 4789.

use crate::context::Cluster;
use crate::model::Risk;
use cniswap_model::CniKind;
use serde_json::Value;

/// One port rule: protocol, port, between what, what for.
pub struct Port {
    pub protocol: &'static str,
    pub port: String,
    pub between: &'static str,
    pub purpose: String,
}

fn port(protocol: &'static str, port: impl ToString, between: &'static str, purpose: &str) -> Port {
    Port {
        protocol,
        port: port.to_string(),
        between,
        purpose: purpose.to_string(),
    }
}

/// The Cilium tunnel ports the plan's values set (the migration's and the final one), with
/// Hubble when the values do not switch it off.
fn cilium(values: &[Value]) -> Vec<Port> {
    let mut ports: Vec<Port> = Vec::new();
    for v in values {
        let tunnel = v.get("routingMode").and_then(Value::as_str) != Some("native");
        if !tunnel {
            continue;
        }
        let protocol = v.get("tunnelProtocol").and_then(Value::as_str);
        let (default, name) = if protocol == Some("geneve") {
            (6081, "Geneve")
        } else {
            (8472, "VXLAN")
        };
        let number = v
            .get("tunnelPort")
            .and_then(Value::as_u64)
            .unwrap_or(default);
        if !ports.iter().any(|p| p.port == number.to_string()) {
            ports.push(port(
                "UDP",
                number,
                "node to node",
                &format!("{name} overlay"),
            ));
        }
    }
    ports.push(port("TCP", 4240, "node to node", "health checks"));
    ports.push(port("ICMP", "echo (8/0)", "node to node", "health checks"));
    let hubble_off = values.iter().any(|v| {
        v.pointer("/hubble/enabled")
            .and_then(Value::as_bool)
            .is_some_and(|on| !on)
    });
    if !hubble_off {
        ports.push(port("TCP", 4244, "node to node", "Hubble peers"));
    }
    ports
}

/// The ports of the target as the plan installs it, or none for a target the plan does not
/// install over the network (nothing to state). `operator`: Calico runs under the Tigera
/// operator (Typha and the Calico API server).
pub fn ports(cluster: &Cluster, target: CniKind, operator: bool, values: &[Value]) -> Vec<Port> {
    match target {
        CniKind::Cilium => cilium(values),
        CniKind::Calico => {
            let mut ports = vec![port("UDP", 4789, "node to node", "VXLAN overlay")];
            if operator {
                ports.push(port("TCP", 5473, "node to node", "calico-node to Typha"));
                ports.push(port(
                    "TCP",
                    5443,
                    "control plane to nodes",
                    "the API server to the Calico API server",
                ));
            }
            ports
        }
        CniKind::Flannel if cluster.talos => {
            vec![port(
                "UDP",
                4789,
                "node to node",
                "VXLAN overlay (Talos' Flannel)",
            )]
        }
        CniKind::Flannel => vec![port("UDP", 8472, "node to node", "VXLAN overlay")],
        _ => Vec::new(),
    }
}

/// The plan's statement of the ports: what must be open, and where that comes from.
pub fn prerequisites(
    cluster: &Cluster,
    target: CniKind,
    operator: bool,
    values: &[Value],
) -> Option<Risk> {
    let ports = ports(cluster, target, operator, values);
    if ports.is_empty() {
        return None;
    }
    let listed: Vec<String> = ports
        .iter()
        .map(|p| format!("{} {} ({}, {})", p.protocol, p.port, p.between, p.purpose))
        .collect();
    let source = match target {
        CniKind::Cilium => {
            "docs.cilium.io/en/stable/operations/system_requirements/#firewall-rules"
        }
        CniKind::Calico => "docs.tigera.io/calico/latest/getting-started/kubernetes/requirements",
        _ => "github.com/flannel-io/flannel/blob/master/Documentation/backends.md",
    };
    Some(Risk {
        rule: None,
        effect: format!(
            "{target} needs these open between the nodes: {}; a host firewall or cloud security group that drops them breaks pod traffic between nodes as soon as {target} carries it",
            listed.join("; ")
        ),
        handling: format!(
            "stated as a prerequisite (from {source}): open them before the install step; the old CNI's ports stay needed until it is gone"
        ),
    })
}
