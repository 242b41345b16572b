//! The kinds of check, with their stable names (used in JSON, JUnit and the matrix).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Pod to pod over TCP: the same-node peer, and the probe pod of every other node.
    PodToPod,
    /// Pod to pod over UDP.
    PodToPodUdp,
    /// Pod to pod with a don't-fragment UDP packet as large as the sender's interface MTU.
    PathMtu,
    /// Pod to the probe Service's ClusterIP (answered by the same node's peer pod).
    PodToService,
    /// The hostNetwork agent of a node to the probe pod of every node.
    HostToPod,
    /// The probe pod of a node to the hostNetwork agent (node IP) of every node.
    PodToHost,
    /// `kubernetes.default.svc.<domain>` resolves to the kubernetes Service's ClusterIP.
    DnsKubernetes,
    /// The probe Service's FQDN resolves to its ClusterIP.
    DnsService,
    /// The headless probe Service's FQDN resolves to probe pod IPs.
    DnsHeadless,
    /// TCP to the API server through the kubernetes Service.
    ApiService,
    /// TCP to each API server endpoint directly.
    ApiDirect,
    /// TCP to an address outside the cluster (only when asked).
    Outside,
    /// Continuous mode: one long-lived TCP connection to another pod.
    TcpStreamPod,
    /// Continuous mode: one long-lived TCP connection through the probe Service.
    TcpStreamService,
}

impl Kind {
    pub const ONE_SHOT: [Kind; 12] = [
        Kind::PodToPod,
        Kind::PodToPodUdp,
        Kind::PathMtu,
        Kind::PodToService,
        Kind::HostToPod,
        Kind::PodToHost,
        Kind::DnsKubernetes,
        Kind::DnsService,
        Kind::DnsHeadless,
        Kind::ApiService,
        Kind::ApiDirect,
        Kind::Outside,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PodToPod => "pod-to-pod",
            Kind::PodToPodUdp => "pod-to-pod-udp",
            Kind::PathMtu => "path-mtu",
            Kind::PodToService => "pod-to-service",
            Kind::HostToPod => "host-to-pod",
            Kind::PodToHost => "pod-to-host",
            Kind::DnsKubernetes => "dns-kubernetes",
            Kind::DnsService => "dns-service",
            Kind::DnsHeadless => "dns-headless",
            Kind::ApiService => "api-service",
            Kind::ApiDirect => "api-direct",
            Kind::Outside => "outside",
            Kind::TcpStreamPod => "tcp-stream-pod",
            Kind::TcpStreamService => "tcp-stream-service",
        }
    }

    /// Checks between two nodes (shown in the node-pair matrix) rather than of one node.
    pub fn is_pair(self) -> bool {
        matches!(
            self,
            Kind::PodToPod
                | Kind::PodToPodUdp
                | Kind::PathMtu
                | Kind::HostToPod
                | Kind::PodToHost
                | Kind::TcpStreamPod
        )
    }

    /// One line for `--help`, docs/verify.md and JUnit.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::PodToPod => {
                "pod to pod over TCP (same node: a second pod; other nodes: every pair)"
            }
            Kind::PodToPodUdp => "pod to pod over UDP",
            Kind::PathMtu => {
                "a don't-fragment UDP packet as large as the sending pod's interface MTU, echoed back"
            }
            Kind::PodToService => {
                "pod to the probe Service's ClusterIP (internalTrafficPolicy Local: tests this node's Service rules)"
            }
            Kind::HostToPod => "node (hostNetwork) to the pods of every node",
            Kind::PodToHost => "pod to the node IP of every node",
            Kind::DnsKubernetes => {
                "kubernetes.default.svc.<domain> resolves to the kubernetes Service"
            }
            Kind::DnsService => "the probe Service's FQDN resolves to its ClusterIP",
            Kind::DnsHeadless => "the headless probe Service's FQDN resolves to probe pod IPs",
            Kind::ApiService => "TCP to the API server through the kubernetes Service",
            Kind::ApiDirect => "TCP to each API server endpoint, bypassing the Service",
            Kind::Outside => "TCP to an address outside the cluster",
            Kind::TcpStreamPod => "a long-lived TCP connection to another pod",
            Kind::TcpStreamService => "a long-lived TCP connection through the probe Service",
        }
    }

    /// The column title in the per-node table.
    pub fn short(self) -> &'static str {
        match self {
            Kind::PodToPod => "tcp",
            Kind::PodToPodUdp => "udp",
            Kind::PathMtu => "mtu",
            Kind::PodToService => "service",
            Kind::HostToPod => "host>pod",
            Kind::PodToHost => "pod>host",
            Kind::DnsKubernetes => "dns-k8s",
            Kind::DnsService => "dns-svc",
            Kind::DnsHeadless => "dns-headless",
            Kind::ApiService => "api-svc",
            Kind::ApiDirect => "api-direct",
            Kind::Outside => "outside",
            Kind::TcpStreamPod => "tcp-stream",
            Kind::TcpStreamService => "tcp-stream-svc",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ONE_SHOT
            .into_iter()
            .chain([Kind::TcpStreamPod, Kind::TcpStreamService])
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown check {s:?}; checks: {}",
                    Kind::ONE_SHOT.map(Kind::as_str).join(", ")
                )
            })
    }
}
