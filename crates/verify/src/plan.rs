//! Which probe each agent runs: every check for every node and node pair, one-shot or
//! continuous. Checks that cannot run (an agent is missing) are planned as failures with the
//! reason, so the report still lists every cell.

use crate::kind::Kind;

use crate::topology::{Agent, Topology};
use crate::wire::{DnsExpect, Probe, ProbeMode, Role, payload_for_mtu};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One path: what is checked, from which node, to which node (for pair checks), and the
/// target as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PathKey {
    pub kind: Kind,
    pub from_node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_node: Option<String>,
    pub target: String,
}

impl PathKey {
    /// Whether the path starts or ends on `node`.
    pub fn touches(&self, node: &str) -> bool {
        self.from_node == node || self.to_node.as_deref() == Some(node)
    }

    /// `pod-to-pod node-a -> node-b`, `dns-kubernetes on node-a`.
    pub fn label(&self) -> String {
        match &self.to_node {
            Some(to) => format!("{} {} -> {}", self.kind, self.from_node, to),
            None => format!("{} on {} ({})", self.kind, self.from_node, self.target),
        }
    }
}

/// A check for one agent to run, or the reason it cannot run.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned<T> {
    pub path: PathKey,
    /// The agent that runs it: its node and role.
    pub source: (String, Role),
    pub action: Result<T, String>,
}

fn agent_ref<'a>(t: &'a Topology, node: &str, role: Role, what: &str) -> Result<&'a Agent, String> {
    match t.node(node) {
        None => Err(format!("node {node} is not in the topology")),
        Some(n) => n
            .agent(role)
            .as_ref()
            .map_err(|why| format!("{what} on node {node}: {why}")),
    }
}

struct Builder<'a, T> {
    t: &'a Topology,
    out: Vec<Planned<T>>,
}

impl<T> Builder<'_, T> {
    fn push(
        &mut self,
        kind: Kind,
        from: &str,
        to: Option<&str>,
        target: String,
        source: Role,
        action: Result<T, String>,
    ) {
        if self.t.skip.contains(&kind) {
            return;
        }
        // A missing source agent is the first reason given.
        let action = match agent_ref(
            self.t,
            from,
            source,
            &format!("no {} agent", source.as_str()),
        ) {
            Err(why) => Err(why),
            Ok(_) => action,
        };
        self.out.push(Planned {
            path: PathKey {
                kind,
                from_node: from.to_string(),
                to_node: to.map(str::to_string),
                target,
            },
            source: (from.to_string(), source),
            action,
        });
    }
}

/// The pod a pod-to-pod check from `from` to `to` aims at: the same-node peer, or the other
/// node's probe pod.
fn pod_target<'a>(t: &'a Topology, from: &str, to: &str) -> (Role, Result<&'a Agent, String>) {
    let role = if from == to { Role::Peer } else { Role::Probe };
    let what = if from == to {
        "no second (peer) pod"
    } else {
        "no probe pod"
    };
    (role, agent_ref(t, to, role, what))
}

fn target_text(role: Role, agent: &Result<&Agent, String>, port: u16) -> String {
    match agent {
        Ok(a) => format!("{} {}", a.pod, SocketAddr::new(a.ip, port)),
        Err(_) => format!("{} agent", role.as_str()),
    }
}

/// Every one-shot check.
pub fn one_shot(t: &Topology) -> Vec<Planned<Probe>> {
    let mut b = Builder { t, out: vec![] };
    let nodes = t.node_names();
    let port = t.echo_port;
    for from in &nodes {
        let own_mtu = match t.node(from).map(|n| &n.probe) {
            Some(Ok(agent)) if !agent.answers => {
                Err(crate::topology::not_collected(Role::Probe, from))
            }
            Some(Ok(Agent { mtu: Some(mtu), .. })) => Ok(*mtu),
            _ => Err(format!(
                "the probe pod on node {from} could not read its interface MTU"
            )),
        };
        for to in &nodes {
            let (role, target) = pod_target(t, from, to);
            let text = target_text(role, &target, port);
            let addr: Result<SocketAddr, String> = target
                .as_ref()
                .map(|a| SocketAddr::new(a.ip, port))
                .map_err(|e| e.clone());
            b.push(
                Kind::PodToPod,
                from,
                Some(to),
                text.clone(),
                Role::Probe,
                addr.clone().map(|addr| Probe::TcpEcho { addr }),
            );
            b.push(
                Kind::PodToPodUdp,
                from,
                Some(to),
                text.clone(),
                Role::Probe,
                addr.clone().map(|addr| Probe::UdpEcho {
                    addr,
                    size: crate::wire::UDP_HEADER,
                    dont_fragment: false,
                }),
            );
            let mtu_probe = addr.clone().and_then(|addr| match &own_mtu {
                Ok(mtu) => Ok(Probe::UdpEcho {
                    addr,
                    size: payload_for_mtu(*mtu, addr.is_ipv6()),
                    dont_fragment: true,
                }),
                Err(reason) => Err(reason.clone()),
            });
            b.push(Kind::PathMtu, from, Some(to), text, Role::Probe, mtu_probe);

            let host_target = agent_ref(t, to, Role::Host, "no hostNetwork agent");
            b.push(
                Kind::PodToHost,
                from,
                Some(to),
                target_text(Role::Host, &host_target, port),
                Role::Probe,
                host_target.map(|a| Probe::TcpEcho {
                    addr: SocketAddr::new(a.ip, port),
                }),
            );
            let pod = agent_ref(t, to, Role::Probe, "no probe pod");
            b.push(
                Kind::HostToPod,
                from,
                Some(to),
                target_text(Role::Probe, &pod, port),
                Role::Host,
                pod.map(|a| Probe::TcpEcho {
                    addr: SocketAddr::new(a.ip, port),
                }),
            );
        }
        per_node_one_shot(&mut b, from);
    }
    b.out
}

fn per_node_one_shot(b: &mut Builder<'_, Probe>, from: &str) {
    let t = b.t;
    let port = t.echo_port;
    let service = t
        .probe_service
        .ok_or_else(|| format!("Service {} has no ClusterIP", t.service_name));
    b.push(
        Kind::PodToService,
        from,
        None,
        format!("Service {} port {port}", t.service_name),
        Role::Probe,
        service.clone().map(|ip| Probe::TcpEcho {
            addr: SocketAddr::new(ip, port),
        }),
    );
    let kubernetes = t
        .kubernetes_service
        .ok_or_else(|| "the kubernetes Service in default was not found".to_string());
    let name = format!("kubernetes.default.svc.{}.", t.domain);
    b.push(
        Kind::DnsKubernetes,
        from,
        None,
        name.clone(),
        Role::Probe,
        kubernetes.clone().map(|addr| Probe::Dns {
            name,
            expect: DnsExpect::Contains(addr.ip()),
        }),
    );
    let name = t.service_fqdn(&t.service_name);
    b.push(
        Kind::DnsService,
        from,
        None,
        name.clone(),
        Role::Probe,
        service.map(|ip| Probe::Dns {
            name,
            expect: DnsExpect::Contains(ip),
        }),
    );
    let name = t.service_fqdn(&t.headless_name);
    b.push(
        Kind::DnsHeadless,
        from,
        None,
        name.clone(),
        Role::Probe,
        Ok(Probe::Dns {
            name,
            expect: DnsExpect::Subset(t.probe_ips()),
        }),
    );
    b.push(
        Kind::ApiService,
        from,
        None,
        match &kubernetes {
            Ok(addr) => format!("Service kubernetes {addr}"),
            Err(_) => "Service kubernetes".into(),
        },
        Role::Probe,
        kubernetes.map(|addr| Probe::TcpConnect { addr }),
    );
    if t.api_endpoints.is_empty() {
        b.push(
            Kind::ApiDirect,
            from,
            None,
            "API server endpoints".into(),
            Role::Probe,
            Err("the kubernetes Service has no endpoints".into()),
        );
    }
    for addr in &t.api_endpoints {
        b.push(
            Kind::ApiDirect,
            from,
            None,
            addr.to_string(),
            Role::Probe,
            Ok(Probe::TcpConnect { addr: *addr }),
        );
    }
    for addr in &t.outside {
        b.push(
            Kind::Outside,
            from,
            None,
            addr.to_string(),
            Role::Probe,
            Ok(Probe::TcpConnect { addr: *addr }),
        );
    }
}

/// A target named by role, not pod: continuous paths keep their identity when a pod is
/// recreated with a new IP (a node switched to another CNI).
fn stable_text(role: Role, port: u16) -> String {
    match role {
        Role::Host => format!("node IP port {port}"),
        role => format!("{} pod port {port}", role.as_str()),
    }
}

/// Every continuous path: datagrams pod to pod, host to pod, pod to host and to the Service;
/// long-lived TCP connections to every pod and through the Service; DNS and the API server.
pub fn continuous(t: &Topology) -> Vec<Planned<ProbeMode>> {
    let mut b = Builder { t, out: vec![] };
    let nodes = t.node_names();
    let port = t.echo_port;
    for from in &nodes {
        for to in &nodes {
            let (role, target) = pod_target(t, from, to);
            let text = stable_text(role, port);
            let addr: Result<SocketAddr, String> = target
                .as_ref()
                .map(|a| SocketAddr::new(a.ip, port))
                .map_err(|e| e.clone());
            b.push(
                Kind::PodToPodUdp,
                from,
                Some(to),
                text.clone(),
                Role::Probe,
                addr.clone().map(|addr| ProbeMode::Udp { addr }),
            );
            b.push(
                Kind::TcpStreamPod,
                from,
                Some(to),
                text,
                Role::Probe,
                addr.map(|addr| ProbeMode::TcpStream { addr }),
            );
            let host = agent_ref(t, to, Role::Host, "no hostNetwork agent");
            b.push(
                Kind::PodToHost,
                from,
                Some(to),
                stable_text(Role::Host, port),
                Role::Probe,
                host.map(|a| ProbeMode::Udp {
                    addr: SocketAddr::new(a.ip, port),
                }),
            );
            let pod = agent_ref(t, to, Role::Probe, "no probe pod");
            b.push(
                Kind::HostToPod,
                from,
                Some(to),
                stable_text(Role::Probe, port),
                Role::Host,
                pod.map(|a| ProbeMode::Udp {
                    addr: SocketAddr::new(a.ip, port),
                }),
            );
        }
        let service = t
            .probe_service
            .ok_or_else(|| format!("Service {} has no ClusterIP", t.service_name));
        let text = format!("Service {} port {port}", t.service_name);
        b.push(
            Kind::PodToService,
            from,
            None,
            text.clone(),
            Role::Probe,
            service.clone().map(|ip| ProbeMode::Udp {
                addr: SocketAddr::new(ip, port),
            }),
        );
        b.push(
            Kind::TcpStreamService,
            from,
            None,
            text,
            Role::Probe,
            service.map(|ip| ProbeMode::TcpStream {
                addr: SocketAddr::new(ip, port),
            }),
        );
        let kubernetes = t
            .kubernetes_service
            .ok_or_else(|| "the kubernetes Service in default was not found".to_string());
        let name = format!("kubernetes.default.svc.{}.", t.domain);
        b.push(
            Kind::DnsKubernetes,
            from,
            None,
            name.clone(),
            Role::Probe,
            kubernetes.clone().map(|addr| ProbeMode::Dns {
                name,
                expect: DnsExpect::Contains(addr.ip()),
            }),
        );
        b.push(
            Kind::ApiService,
            from,
            None,
            match &kubernetes {
                Ok(addr) => format!("Service kubernetes {addr}"),
                Err(_) => "Service kubernetes".into(),
            },
            Role::Probe,
            kubernetes.map(|addr| ProbeMode::TcpConnect { addr }),
        );
        for addr in &t.outside {
            b.push(
                Kind::Outside,
                from,
                None,
                addr.to_string(),
                Role::Probe,
                Ok(ProbeMode::TcpConnect { addr: *addr }),
            );
        }
    }
    b.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::NodeAgents;
    use std::collections::BTreeSet;

    pub(crate) fn topology(nodes: usize) -> Topology {
        let agent = |pod: String, ip: String| {
            Ok(Agent {
                pod,
                ip: ip.parse().unwrap(),
                mtu: Some(1450),
                answers: true,
            })
        };
        Topology {
            domain: "cluster.local".into(),
            namespace: "cniswap-verify".into(),
            echo_port: 9440,
            nodes: (0..nodes)
                .map(|i| NodeAgents {
                    node: format!("node-{i}"),
                    probe: agent(format!("probe-{i}"), format!("10.244.{i}.2")),
                    peer: agent(format!("peer-{i}"), format!("10.244.{i}.3")),
                    host: agent(format!("host-{i}"), format!("192.168.1.{}", 10 + i)),
                })
                .collect(),
            kubernetes_service: Some("10.96.0.1:443".parse().unwrap()),
            api_endpoints: vec!["192.168.1.1:6443".parse().unwrap()],
            probe_service: Some("10.96.0.20".parse().unwrap()),
            outside: vec![],
            skip: vec![],
            headless_ips: vec![],
            service_name: crate::names::SERVICE.into(),
            headless_name: crate::names::HEADLESS.into(),
        }
    }

    #[test]
    fn every_pair_and_every_node_is_checked() {
        let t = topology(3);
        let plan = one_shot(&t);
        for kind in [
            Kind::PodToPod,
            Kind::PodToPodUdp,
            Kind::PathMtu,
            Kind::HostToPod,
            Kind::PodToHost,
        ] {
            let pairs: BTreeSet<(String, String)> = plan
                .iter()
                .filter(|p| p.path.kind == kind)
                .map(|p| (p.path.from_node.clone(), p.path.to_node.clone().unwrap()))
                .collect();
            assert_eq!(pairs.len(), 9, "{kind}");
        }
        for kind in [
            Kind::PodToService,
            Kind::DnsKubernetes,
            Kind::DnsService,
            Kind::DnsHeadless,
            Kind::ApiService,
            Kind::ApiDirect,
        ] {
            assert_eq!(plan.iter().filter(|p| p.path.kind == kind).count(), 3);
        }
        assert!(plan.iter().all(|p| p.action.is_ok()));
        // Same node goes to the peer pod, other nodes to their probe pod.
        let same = plan
            .iter()
            .find(|p| {
                p.path.kind == Kind::PodToPod
                    && p.path.to_node.as_deref() == Some("node-1")
                    && p.path.from_node == "node-1"
            })
            .unwrap();
        assert_eq!(
            same.action,
            Ok(Probe::TcpEcho {
                addr: "10.244.1.3:9440".parse().unwrap()
            })
        );
        let mtu = plan.iter().find(|p| p.path.kind == Kind::PathMtu).unwrap();
        assert!(matches!(
            mtu.action,
            Ok(Probe::UdpEcho {
                size: 1422,
                dont_fragment: true,
                ..
            })
        ));
    }

    #[test]
    fn a_silent_agent_s_mtu_check_says_its_results_were_not_collected() {
        let mut t = topology(2);
        if let Ok(agent) = &mut t.nodes[1].probe {
            agent.answers = false;
            agent.mtu = None;
        }
        let plan = one_shot(&t);
        let mtu = plan
            .iter()
            .find(|p| p.path.kind == Kind::PathMtu && p.path.from_node == "node-1")
            .unwrap();
        let error = mtu.action.as_ref().unwrap_err();
        assert!(error.starts_with("results not collected"), "{error}");
        // Its pod is still a target for the other node.
        let to_silent = plan
            .iter()
            .find(|p| p.path.kind == Kind::PathMtu && p.path.to_node.as_deref() == Some("node-1"))
            .unwrap();
        assert!(to_silent.action.is_ok());
    }

    #[test]
    fn missing_agents_become_failures_with_the_reason() {
        let mut t = topology(2);
        t.nodes[1].probe = Err("pod cniswap-probe-x is Pending: ImagePullBackOff".into());
        let plan = one_shot(&t);
        let from_missing = plan
            .iter()
            .find(|p| p.path.kind == Kind::DnsKubernetes && p.path.from_node == "node-1")
            .unwrap();
        assert_eq!(
            from_missing.action,
            Err(
                "no probe agent on node node-1: pod cniswap-probe-x is Pending: ImagePullBackOff"
                    .into()
            )
        );
        let to_missing = plan
            .iter()
            .find(|p| {
                p.path.kind == Kind::HostToPod
                    && p.path.from_node == "node-0"
                    && p.path.to_node.as_deref() == Some("node-1")
            })
            .unwrap();
        assert!(
            to_missing
                .action
                .as_ref()
                .unwrap_err()
                .contains("no probe pod on node node-1")
        );
        // The peer still answers same-node checks on node-1? No: the source is missing.
        assert!(
            plan.iter()
                .filter(
                    |p| p.path.from_node == "node-0" && p.path.to_node.as_deref() == Some("node-0")
                )
                .all(|p| p.action.is_ok())
        );
    }

    #[test]
    fn skipped_kinds_are_left_out() {
        let mut t = topology(2);
        t.skip = vec![Kind::PathMtu, Kind::DnsHeadless];
        let plan = one_shot(&t);
        assert!(
            !plan
                .iter()
                .any(|p| matches!(p.path.kind, Kind::PathMtu | Kind::DnsHeadless))
        );
    }

    #[test]
    fn continuous_has_streams_and_datagrams_for_every_pair() {
        let t = topology(3);
        let plan = continuous(&t);
        assert_eq!(
            plan.iter()
                .filter(|p| p.path.kind == Kind::TcpStreamPod)
                .count(),
            9
        );
        assert_eq!(
            plan.iter()
                .filter(|p| p.path.kind == Kind::PodToPodUdp)
                .count(),
            9
        );
        assert_eq!(
            plan.iter()
                .filter(|p| p.path.kind == Kind::TcpStreamService)
                .count(),
            3
        );
        let keys: BTreeSet<&PathKey> = plan.iter().map(|p| &p.path).collect();
        assert_eq!(keys.len(), plan.len(), "paths are unique");
    }
}
