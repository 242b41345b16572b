//! Facts a plan acts on, each proven from the cluster's own records or asked for: the pod
//! CIDR, a migration pool that overlaps nothing, an API endpoint that survives one server.
//! A fact nothing proves is a question to the user, never a default. One-way: this module
//! reads facts and the cluster context, never strategies or artifacts.

use crate::context::{Cluster, StrategyChoice};
use cniswap_model::{CniKind, Facts};
use ipnet::IpNet;

/// A value and the record it was read from (shown in plan.yaml and the runbook).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sourced {
    pub value: String,
    pub source: String,
}

/// Why the plan cannot go on, and the question that would let it.
#[derive(Debug)]
pub struct Question {
    pub message: String,
    pub help: String,
}

fn question(message: impl Into<String>, help: impl Into<String>) -> Question {
    Question {
        message: message.into(),
        help: help.into(),
    }
}

/// The cluster pod range a record declares: Talos podSubnets, kubeadm-config, the
/// controller-manager's `--cluster-cidr`, k3s/RKE2 `--cluster-cidr`. CNI pools and node
/// allocations are not declarations of the cluster range.
pub fn declared_pod_cidr(facts: &Facts) -> Option<Sourced> {
    facts
        .cidrs
        .pod
        .iter()
        .filter(|c| !c.source.ends_with(" pool") && !c.source.starts_with("node "))
        .find(|c| c.cidr.parse::<IpNet>().is_ok())
        .map(|c| Sourced {
            value: c.cidr.clone(),
            source: c.source.clone(),
        })
}

/// Whether the plan writes the cluster pod range into the target's config: Flannel's
/// `Network` (outside Talos, which renders its own from podSubnets) and Calico's pool when
/// Calico takes over in one go (rolling keeps Flannel's network, read from Flannel).
pub fn needs_pod_cidr(cluster: &Cluster, target: CniKind, strategy: StrategyChoice) -> bool {
    match target {
        CniKind::Flannel => !cluster.talos,
        CniKind::Calico => strategy != StrategyChoice::Rolling,
        _ => false,
    }
}

/// The pod CIDR the plan uses: `--pod-cidr` (checked against the node allocations and the
/// service ranges), else the declared range, else, for Calico, the pool the old CNI gives
/// pods now. `Ok(None)` when nothing says and the plan does not need it.
pub fn pod_cidr(
    cluster: &Cluster,
    flag: Option<&str>,
    needed: bool,
    target: CniKind,
) -> Result<Option<Sourced>, Question> {
    if let Some(flag) = flag {
        let net: IpNet = flag.parse().map_err(|_| {
            question(
                format!("--pod-cidr {flag:?} is not a CIDR"),
                "pass the cluster's pod range, e.g. --pod-cidr 10.244.0.0/16",
            )
        })?;
        for node in &cluster.facts.nodes {
            for allocated in &node.pod_cidrs {
                let inside = allocated
                    .parse::<IpNet>()
                    .is_ok_and(|a| net.contains(&a.network()) && net.contains(&a.broadcast()));
                if !inside {
                    return Err(question(
                        format!(
                            "--pod-cidr {flag}: node {}'s podCIDR {allocated} lies outside it, so its pods would be on a network the CNI does not route",
                            node.name
                        ),
                        "pass the range the controller-manager allocates node podCIDRs from (its --cluster-cidr)",
                    ));
                }
            }
        }
        for service in &cluster.facts.cidrs.service {
            if crate::overlap(flag, &service.cidr) {
                return Err(question(
                    format!(
                        "--pod-cidr {flag} overlaps the service range {} ({})",
                        service.cidr, service.source
                    ),
                    "pass the cluster's pod range, which never overlaps its service range",
                ));
            }
        }
        return Ok(Some(Sourced {
            value: flag.to_string(),
            source: "--pod-cidr".into(),
        }));
    }
    if let Some(declared) = cluster.pod_cidr.clone() {
        return Ok(Some(declared));
    }
    if target == CniKind::Calico
        && let Some(pool) = old_pool(cluster)
    {
        return Ok(Some(pool));
    }
    if !needed {
        return Ok(None);
    }
    let covering = covering_range(cluster);
    let mut help = "pass the cluster's pod range with --pod-cidr CIDR (kubeadm: `kubectl -n kube-system get cm kubeadm-config -o yaml` shows networking.podSubnet; otherwise the kube-controller-manager's --cluster-cidr)".to_string();
    if let Some((range, n)) = &covering {
        help.push_str(&format!(
            "; the {n} node podCIDRs lie within {range}, the smallest range holding them all, which is a lower bound, not the cluster range"
        ));
    }
    Err(question(
        "the cluster's pod CIDR is unknown: no kubeadm-config, kube-controller-manager --cluster-cidr, Talos podSubnets or k3s/RKE2 node-args in the snapshot, and the target's config needs it",
        help,
    ))
}

/// The pool the old CNI gives pods now, when exactly one running source has one.
fn old_pool(cluster: &Cluster) -> Option<Sourced> {
    let pools: Vec<(CniKind, &String)> = cluster
        .facts
        .cnis
        .iter()
        .filter(|c| c.running && cluster.sources.contains(&c.kind))
        .flat_map(|c| c.pod_cidrs.iter().map(move |p| (c.kind, p)))
        .filter(|(_, p)| p.parse::<IpNet>().is_ok())
        .collect();
    match pools.as_slice() {
        [(kind, pool)] => Some(Sourced {
            value: (*pool).clone(),
            source: format!("the {kind} pool the cluster's pods use now (kept by the cutover)"),
        }),
        _ => None,
    }
}

/// The smallest range holding every node podCIDR, with their number.
fn covering_range(cluster: &Cluster) -> Option<(IpNet, usize)> {
    let nets: Vec<IpNet> = cluster
        .facts
        .nodes
        .iter()
        .flat_map(|n| &n.pod_cidrs)
        .filter_map(|c| c.parse().ok())
        .collect();
    let first = *nets.first()?;
    let mut range = first;
    while !nets
        .iter()
        .all(|n| range.contains(&n.network()) && range.contains(&n.broadcast()))
    {
        range = range.supernet()?;
    }
    Some((range.trunc(), nets.len()))
}

/// What a new pod pool must not overlap, each with what it is.
fn taken(cluster: &Cluster) -> Vec<(IpNet, String)> {
    let facts = cluster.facts;
    let mut taken: Vec<(IpNet, String)> = Vec::new();
    let mut add = |cidr: &str, what: String| {
        let net = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from));
        if let Ok(net) = net {
            taken.push((net, what));
        }
    };
    for c in &facts.cidrs.pod {
        add(&c.cidr, format!("pod range {} ({})", c.cidr, c.source));
    }
    for c in &facts.cidrs.service {
        add(&c.cidr, format!("service range {} ({})", c.cidr, c.source));
    }
    if facts.cidrs.service.is_empty() {
        // Unknown service range: stay clear of the ranges clusters are usually given.
        for (cidr, who) in [("10.96.0.0/12", "kubeadm"), ("10.43.0.0/16", "k3s/RKE2")] {
            add(
                cidr,
                format!("{cidr}, {who}'s default service range (this cluster's is unknown)"),
            );
        }
    }
    if let Some(pod) = &cluster.pod_cidr {
        add(
            &pod.value,
            format!("pod range {} ({})", pod.value, pod.source),
        );
    }
    for node in &facts.nodes {
        for c in &node.pod_cidrs {
            add(c, format!("node {}'s podCIDR {c}", node.name));
        }
        if let Some(ip) = &node.internal_ip {
            add(ip, format!("node {}'s address {ip}", node.name));
        }
    }
    for ip in &cluster.service_addresses {
        add(ip, format!("Service address {ip}"));
    }
    taken
}

/// A /16 for the migration's pods that overlaps no pod or service range, node podCIDR, node
/// address or Service (cluster, external, load-balancer) address, with the reason it was
/// chosen; a question when every candidate is taken.
pub fn free_pool(cluster: &Cluster) -> Result<Sourced, Question> {
    let taken = taken(cluster);
    let candidates = (245..=254)
        .map(|n| format!("10.{n}.0.0/16"))
        .chain((16..=31).map(|n| format!("172.{n}.0.0/16")))
        .chain((64..=127).map(|n| format!("100.{n}.0.0/16")));
    let mut rejected = Vec::new();
    for candidate in candidates {
        let Ok(net) = candidate.parse::<IpNet>() else {
            continue;
        };
        match taken.iter().find(|(t, _)| overlaps(&net, t)) {
            Some((_, what)) => rejected.push(format!("{candidate} (overlaps {what})")),
            None => {
                let mut source = format!(
                    "overlaps none of the {} pod and service ranges, node podCIDRs, node addresses and Service addresses the snapshot holds",
                    taken.len()
                );
                if let Some(first) = rejected.first() {
                    source.push_str(&format!(
                        "; passed over {}, first {first}",
                        crate::names::count(rejected.len(), "candidate", "candidates")
                    ));
                }
                return Ok(Sourced {
                    value: candidate,
                    source,
                });
            }
        }
    }
    Err(question(
        format!(
            "no free /16 for the migration pool: every candidate overlaps an address in use ({})",
            rejected.join(", ")
        ),
        "migrate with --strategy cutover (it keeps the pod range), or free one of the ranges",
    ))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether the target needs its own route to the API server (it replaces kube-proxy, so the
/// `kubernetes` Service does not work until it runs), and the endpoint it is given.
pub fn api_endpoint(
    cluster: &Cluster,
    replace_kube_proxy: bool,
    flag: Option<&str>,
) -> Result<Option<Sourced>, Question> {
    if let Some(flag) = flag {
        let (host, port) = flag.rsplit_once(':').ok_or_else(|| {
            question(
                format!("--api-endpoint {flag:?} is not HOST:PORT"),
                "pass the address every node reaches the API server on, e.g. --api-endpoint api.example.com:6443",
            )
        })?;
        let valid_host = !host.is_empty()
            && (host.parse::<std::net::IpAddr>().is_ok()
                || cniswap_model::names::dns1123_subdomain(host).is_ok());
        if !valid_host || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(question(
                format!("--api-endpoint {flag:?} is not HOST:PORT"),
                "pass the address every node reaches the API server on, e.g. --api-endpoint api.example.com:6443",
            ));
        }
        return Ok(Some(Sourced {
            value: flag.to_string(),
            source: "--api-endpoint".into(),
        }));
    }
    if !replace_kube_proxy || cluster.kube_prism_port.is_some() {
        return Ok(None);
    }
    let Some((host, port)) = &cluster.api_endpoint else {
        return Err(question(
            "the target replaces kube-proxy and needs the API server's address, and the snapshot shows none (no kubeadm controlPlaneEndpoint, no control-plane node with an address)",
            "pass the highly available API address with --api-endpoint HOST:PORT (a VIP or DNS name), or --kube-proxy keep",
        ));
    };
    match &cluster.api_endpoint_source {
        Some(source) => Ok(Some(Sourced {
            value: format!("{host}:{port}"),
            source: source.clone(),
        })),
        None if cluster.control_planes().len() <= 1 => Ok(Some(Sourced {
            value: format!("{host}:{port}"),
            source: "the only control plane's address".into(),
        })),
        None => Err(question(
            format!(
                "the target replaces kube-proxy and would reach the API server at {host}:{port}, one of {} control planes: when that server is down, no agent can start",
                cluster.control_planes().len()
            ),
            "pass the highly available API address with --api-endpoint HOST:PORT (the VIP or DNS name the nodes joined with), or --kube-proxy keep",
        )),
    }
}

/// A Service path at every moment: when the old CNI is the cluster's service proxy (no
/// kube-proxy runs) and kube-proxy is to stay, nothing would serve Services once the old CNI
/// goes. The plan does not bring kube-proxy back itself yet, so it asks.
pub fn service_path(cluster: &Cluster, replace_kube_proxy: bool) -> Result<(), Question> {
    let proxy = &cluster.facts.kube_proxy;
    let Some(replacer) = proxy
        .replaced_by
        .filter(|cni| cluster.sources.contains(cni))
    else {
        return Ok(());
    };
    if replace_kube_proxy || proxy.present || cluster.nodes.is_empty() {
        return Ok(());
    }
    let restore = if cluster.talos {
        "set `cluster.proxy.disabled: false` (v1alpha1) or `KubeProxyConfig enabled: true` (1.14) and wait for kube-proxy on every node"
    } else {
        match cluster.facts.platform.kind {
            cniswap_model::PlatformKind::K3s | cniswap_model::PlatformKind::Rke2 => {
                "remove `disable-kube-proxy` from every server's config and restart them"
            }
            _ => "kubeadm: `kubeadm init phase addon kube-proxy` with the cluster's config",
        }
    };
    Err(question(
        format!(
            "--kube-proxy keep: no kube-proxy runs, {replacer} serves Services, so Services would stop when {replacer} is removed"
        ),
        format!(
            "use --kube-proxy replace (the target serves Services), or deploy kube-proxy first ({restore}), check it serves, then plan again"
        ),
    ))
}

/// LoadBalancer Services keep an announced address at every moment: when their addresses
/// come from the old CNI (Cilium LB-IPAM) and nothing else that runs could take over, the
/// plan asks for a replacement first. Returns the inventory and its providers.
pub fn load_balancers(cluster: &Cluster, target: CniKind) -> Result<Option<Sourced>, Question> {
    if cluster.load_balancers.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = cluster
        .load_balancers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let shown = if names.len() > 5 {
        format!("{}, ...", names[..5].join(", "))
    } else {
        names.join(", ")
    };
    let going: Vec<&str> = cluster
        .lb_providers
        .iter()
        .filter(|(cni, _)| cni.is_some_and(|c| c != target && cluster.sources.contains(&c)))
        .map(|(_, p)| p.as_str())
        .collect();
    let staying: Vec<&str> = cluster
        .lb_providers
        .iter()
        .filter(|(cni, _)| cni.is_none_or(|c| c == target || !cluster.sources.contains(&c)))
        .map(|(_, p)| p.as_str())
        .collect();
    if !going.is_empty() && staying.is_empty() {
        return Err(question(
            format!(
                "{} ({shown}) get their addresses from {}, which goes with the old CNI: nothing would hand out or announce them after the switch",
                crate::names::count(names.len(), "LoadBalancer Service", "LoadBalancer Services"),
                going.join(", ")
            ),
            "deploy a replacement that announces the same addresses (for example MetalLB with address pools holding them), check the Services answer through it, then plan again",
        ));
    }
    let source = match (going.is_empty(), staying.is_empty()) {
        (true, true) => "no in-cluster provider found (a cloud or external load balancer): the migration does not touch it".to_string(),
        (true, false) => format!("announced by {}, which the migration does not touch", staying.join(", ")),
        (false, _) => format!(
            "{} goes with the old CNI; {} runs already and must announce them before it goes",
            going.join(", "),
            staying.join(", ")
        ),
    };
    Ok(Some(Sourced {
        value: format!(
            "{} ({shown})",
            crate::names::count(names.len(), "LoadBalancer Service", "LoadBalancer Services")
        ),
        source,
    }))
}
