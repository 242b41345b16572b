//! Reading what verify needs from the cluster: nodes, the agents' pods, the Services and the
//! API server endpoints; waiting for the agents; building the topology.

use crate::VerifyError;
use crate::agent_client::AgentClient;
use cniswap_verify::names;
use cniswap_verify::topology::{Agent, NodeAgents, Topology};
use cniswap_verify::wire::{Identity, Role};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub unschedulable: bool,
    pub ready: bool,
    /// apply's marker: cniswap apply is working on this node.
    pub apply_marker: bool,
}

pub async fn nodes(client: &Client, server: &str) -> Result<Vec<NodeState>, VerifyError> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| VerifyError::api(server, "list nodes", &e))?;
    let mut nodes: Vec<NodeState> = list
        .items
        .iter()
        .map(|n| NodeState {
            name: n.name_any(),
            unschedulable: n
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            ready: n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True"),
            apply_marker: n
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(cniswap_verify::windows::APPLY_MARKER)),
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// A probe pod as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodState {
    pub name: String,
    pub node: String,
    pub role: Role,
    pub ip: Option<IpAddr>,
    pub running: bool,
    /// Why it is not running (Pending: ImagePullBackOff: ...), when it is not.
    pub problem: Option<String>,
    /// The kubelet cannot get the image (reported at once: waiting cannot help).
    pub pull_failure: Option<cniswap_kube::pods::ImagePullFailure>,
    pub uid: String,
}

fn pod_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.clone().unwrap_or_default();
    if phase == "Running" {
        return None;
    }
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.clone());
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.status == "False" && c.message.is_some())
        .and_then(|c| c.message.clone());
    Some(match (waiting, condition) {
        (Some(w), _) => format!(
            "{phase}: {}{}",
            w.reason.unwrap_or_default(),
            w.message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
        (None, Some(c)) => format!("{phase}: {c}"),
        (None, None) => phase,
    })
}

pub async fn pods(
    client: &Client,
    namespace: &str,
    server: &str,
) -> Result<Vec<PodState>, VerifyError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels("app.kubernetes.io/name=cniswap-probe"))
        .await
        .map_err(|e| VerifyError::api(server, &format!("list pods in {namespace}"), &e))?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let role: Role = p.labels().get(names::ROLE_LABEL)?.parse().ok()?;
            let node = p.spec.as_ref()?.node_name.clone()?;
            let status = p.status.as_ref();
            Some(PodState {
                name: p.name_any(),
                node,
                role,
                ip: status
                    .and_then(|s| s.pod_ip.as_ref())
                    .and_then(|ip| ip.parse().ok()),
                running: status.and_then(|s| s.phase.as_deref()) == Some("Running"),
                problem: pod_problem(p),
                pull_failure: cniswap_kube::pods::image_pull_failure(p),
                uid: p.uid().unwrap_or_default(),
            })
        })
        .collect())
}

/// The kubernetes Service's ClusterIP:port and the API server endpoints behind it.
pub async fn api_server(client: &Client) -> (Option<SocketAddr>, Vec<SocketAddr>) {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service = services
        .get_opt("kubernetes")
        .await
        .ok()
        .flatten()
        .and_then(|s| {
            let spec = s.spec?;
            let ip: IpAddr = spec.cluster_ip?.parse().ok()?;
            let port = spec.ports?.first()?.port;
            Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
        });
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let mut endpoints = vec![];
    if let Ok(list) = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await
    {
        for slice in list.items {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find_map(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(6443);
            for endpoint in slice.endpoints {
                for address in endpoint.addresses {
                    if let Ok(ip) = address.parse::<IpAddr>() {
                        endpoints.push(SocketAddr::new(ip, port));
                    }
                }
            }
        }
    }
    endpoints.sort();
    endpoints.dedup();
    (service, endpoints)
}

/// Waits until the Service's EndpointSlices list `expected` ready addresses (or the timeout
/// passes), and returns how many they list. A Service probed before its endpoints reach the
/// nodes' dataplane is refused although nothing is broken.
pub async fn wait_service_endpoints(
    client: &Client,
    namespace: &str,
    service: &str,
    expected: usize,
    timeout: Duration,
) -> usize {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let selector = format!("kubernetes.io/service-name={service}");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ready = match slices.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list
                .items
                .iter()
                .flat_map(|s| &s.endpoints)
                // An unknown condition counts as ready, as the API documents it.
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .map(|e| e.addresses.len())
                .sum(),
            Err(_) => 0,
        };
        if ready >= expected || tokio::time::Instant::now() >= deadline {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn cluster_ip(client: &Client, namespace: &str, name: &str) -> Option<IpAddr> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services
        .get_opt(name)
        .await
        .ok()
        .flatten()?
        .spec?
        .cluster_ip?
        .parse()
        .ok()
}

/// A reachable agent.
pub struct Live {
    pub node: String,
    pub role: Role,
    pub pod: PodState,
    pub identity: Identity,
    pub client: AgentClient,
}

/// The roles verify expects on every node.
pub fn roles(host: bool) -> Vec<Role> {
    if host {
        vec![Role::Probe, Role::Peer, Role::Host]
    } else {
        vec![Role::Probe, Role::Peer]
    }
}

/// Answering agents; why the others are missing; and the pods that run but do not answer.
pub type Agents = (
    Vec<Live>,
    BTreeMap<(String, Role), String>,
    BTreeMap<(String, Role), PodState>,
);

/// Waits until every expected agent runs and answers (or `timeout` passes), then returns
/// the reachable ones and, for the others, why not.
#[allow(clippy::too_many_arguments)]
pub async fn wait_for_agents(
    client: &Client,
    server: &str,
    namespace: &str,
    nodes: &[String],
    roles: &[Role],
    http_port: u16,
    token: &str,
    timeout: Duration,
    progress: &dyn crate::Progress,
) -> Result<Agents, VerifyError> {
    let start = Instant::now();
    let expected = nodes.len() * roles.len();
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut live: BTreeMap<(String, Role), Live> = BTreeMap::new();
    let mut last_error: BTreeMap<(String, Role), String> = BTreeMap::new();
    // Pods that run but whose agent does not answer through the API server (their node's
    // kubelet unreachable): since when, and the pod (its IP is still a target for others).
    let mut silent: BTreeMap<(String, Role), (Instant, PodState)> = BTreeMap::new();
    let grace = Duration::from_secs(20).min(timeout);
    loop {
        let pods = pods(client, namespace, server).await?;
        // An image the nodes cannot get does not come by waiting: say so now, with the fix.
        if let Some(failure) = pods
            .iter()
            .filter(|p| nodes.contains(&p.node))
            .find_map(|p| p.pull_failure.as_ref())
        {
            return Err(VerifyError::CouldNotRun {
                message: format!(
                    "the probe agents cannot start: {} after {:.0} s",
                    failure.describe(),
                    start.elapsed().as_secs_f64()
                ),
                help: format!(
                    "{}; then `cniswap verify --image REGISTRY/cniswap:TAG`",
                    failure.fix()
                ),
            });
        }
        let mut candidates = vec![];
        for pod in &pods {
            let key = (pod.node.clone(), pod.role);
            if !nodes.contains(&pod.node) || !roles.contains(&pod.role) {
                continue;
            }
            if live.get(&key).is_some_and(|l| l.pod.uid == pod.uid) {
                continue;
            }
            if !pod.running {
                last_error.insert(
                    key,
                    format!(
                        "pod {} is {}",
                        pod.name,
                        pod.problem.clone().unwrap_or_default()
                    ),
                );
                continue;
            }
            candidates.push((key, pod.clone()));
        }
        // Ask every new agent at once: one on an unreachable node must not hold up the rest.
        let answers = futures::future::join_all(candidates.into_iter().map(|(key, pod)| {
            let api = pod_api.clone();
            let token = token.to_string();
            async move {
                let mut agent = AgentClient::new(api, pod.name.clone(), http_port, token);
                let identity = agent
                    .json::<Identity>("GET", "/", None, Duration::from_secs(5))
                    .await;
                (key, pod, agent, identity)
            }
        }))
        .await;
        for (key, pod, agent, identity) in answers {
            match identity {
                Ok(identity) => {
                    last_error.remove(&key);
                    silent.remove(&key);
                    live.insert(
                        key,
                        Live {
                            node: pod.node.clone(),
                            role: pod.role,
                            pod,
                            identity,
                            client: agent,
                        },
                    );
                }
                Err(e) => {
                    last_error.insert(
                        key.clone(),
                        format!("pod {} runs but its agent does not answer: {e}", pod.name),
                    );
                    silent.entry(key).or_insert_with(|| (Instant::now(), pod));
                }
            }
        }
        progress.message(&format!(
            "waiting for the probe agents: {}/{expected} answering",
            live.len()
        ));
        // Done when every agent answers, or the rest have run silent past the grace period.
        let settled = live.len()
            + silent
                .values()
                .filter(|(since, _)| since.elapsed() >= grace)
                .count();
        if live.len() == expected || settled == expected || start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut missing = BTreeMap::new();
    for node in nodes {
        for role in roles {
            let key = (node.clone(), *role);
            if !live.contains_key(&key) {
                let why = last_error.get(&key).cloned().unwrap_or_else(|| {
                    format!(
                        "the DaemonSet scheduled no {} pod on it within {}s",
                        role.as_str(),
                        timeout.as_secs()
                    )
                });
                missing.insert(key, why);
            }
        }
    }
    let silent = silent
        .into_iter()
        .filter(|(key, _)| !live.contains_key(key))
        .map(|(key, (_, pod))| (key, pod))
        .collect();
    Ok((live.into_values().collect(), missing, silent))
}

/// The cluster domain from a probe pod's resolv.conf search list (`svc.<domain>`).
pub fn domain_from(identities: &[&Identity]) -> Option<String> {
    identities
        .iter()
        .flat_map(|i| i.search.iter())
        .find_map(|s| s.strip_prefix("svc.").map(str::to_string))
}

#[allow(clippy::too_many_arguments)]
pub fn topology(
    nodes: &[String],
    live: &[Live],
    missing: &BTreeMap<(String, Role), String>,
    silent: &BTreeMap<(String, Role), PodState>,
    domain: String,
    namespace: &str,
    echo_port: u16,
    kubernetes_service: Option<SocketAddr>,
    api_endpoints: Vec<SocketAddr>,
    probe_service: Option<IpAddr>,
    outside: Vec<SocketAddr>,
    skip: Vec<cniswap_verify::Kind>,
    host: bool,
) -> Topology {
    let agent = |node: &str, role: Role| -> Result<Agent, String> {
        if role == Role::Host && !host {
            return Err("host checks were not asked for".into());
        }
        if let Some(l) = live.iter().find(|l| l.node == node && l.role == role) {
            let ip = l
                .identity
                .ip
                .or(l.pod.ip)
                .ok_or_else(|| format!("pod {} has no IP", l.pod.name))?;
            return Ok(Agent {
                pod: l.pod.name.clone(),
                ip,
                mtu: l.identity.mtu,
                answers: true,
            });
        }
        // A pod that runs but cannot be asked: still a target for the others.
        if let Some(pod) = silent.get(&(node.to_string(), role))
            && let Some(ip) = pod.ip
        {
            return Ok(Agent {
                pod: pod.name.clone(),
                ip,
                mtu: None,
                answers: false,
            });
        }
        Err(missing
            .get(&(node.to_string(), role))
            .cloned()
            .unwrap_or_else(|| "not found".into()))
    };
    Topology {
        domain,
        namespace: namespace.to_string(),
        echo_port,
        nodes: nodes
            .iter()
            .map(|n| NodeAgents {
                node: n.clone(),
                probe: agent(n, Role::Probe),
                peer: agent(n, Role::Peer),
                host: agent(n, Role::Host),
            })
            .collect(),
        kubernetes_service,
        api_endpoints,
        probe_service,
        outside,
        skip,
        headless_ips: vec![],
        service_name: cniswap_verify::names::SERVICE.into(),
        headless_name: cniswap_verify::names::HEADLESS.into(),
    }
}

/// The suffix of the probe Services already in the namespace (a `--keep` run), if any.
pub async fn existing_service_suffix(client: &Client, namespace: &str) -> Option<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let list = services
        .list(&ListParams::default().labels("cniswap.io/service=clusterip"))
        .await
        .ok()?;
    list.items.iter().find_map(|s| {
        s.name_any()
            .strip_prefix(&format!("{}-", names::SERVICE))
            .map(str::to_string)
    })
}

/// The token of the agents a `--keep` run left (the Secret and the id on the probe
/// DaemonSet's pod template), so this run talks to them as they are: a new token would restart
/// every agent, and the cluster DNS would answer the headless Service with the old pods' IPs for
/// up to its cache time.
pub async fn kept_token(
    client: &Client,
    namespace: &str,
) -> Option<cniswap_verify::manifests::AgentToken> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::Secret;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get_opt(names::TOKEN_SECRET).await.ok()??;
    let token = secret.data?.get("token")?.0.clone();
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    let probe = daemonsets.get_opt(names::PROBE).await.ok()??;
    let id = probe
        .spec?
        .template
        .metadata?
        .annotations?
        .get(names::TOKEN_ID_ANNOTATION)?
        .clone();
    Some(cniswap_verify::manifests::AgentToken {
        secret: String::from_utf8(token).ok()?,
        id,
    })
}
