//! `verify --continuous`: every path each interval until stopped, results pulled from the
//! agents every second, outages computed as they come, node events recorded, pods that are
//! recreated (a node switched to another CNI) followed to their new addresses.

use crate::agent_client::AgentClient;
use crate::cluster::{self, Live};
use crate::{Progress, Session, VerifyError};
use cniswap_verify::PathKey;
use cniswap_verify::continuous::{Collected, NodeEvent};
use cniswap_verify::gaps::Tracker;
use cniswap_verify::plan;
use cniswap_verify::topology::Topology;
use cniswap_verify::windows;
use cniswap_verify::wire::{Identity, ProbeConfig, ProbeTarget, ResultsPage, Role};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ContinuousOptions {
    pub interval: Duration,
    /// Stop after this long (else at `stop`).
    pub duration: Option<Duration>,
    /// Nodes being switched for the whole run (`--switching`); other nodes are being switched
    /// while apply's marker or a cordon is seen on them.
    pub switching: Vec<String>,
}

/// How often nodes are read for apply's markers and cordons (the main loop's tick).
const NODE_POLL: Duration = Duration::from_secs(1);

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// What is known of one probing agent.
struct Source {
    live: Live,
    session: String,
    since: u64,
    config: Option<ProbeConfig>,
    /// Cumulative resets per path in the current session, and the total of earlier ones.
    resets: BTreeMap<u32, u64>,
}

struct State {
    ids: HashMap<PathKey, u32>,
    keys: Vec<PathKey>,
    trackers: HashMap<u32, Tracker>,
    resets_done: HashMap<u32, u64>,
    not_probed: BTreeMap<PathKey, String>,
    events: Vec<NodeEvent>,
}

impl State {
    fn id(&mut self, key: &PathKey) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key.clone(), id);
        id
    }
}

/// Builds each source agent's configuration from the topology.
fn configs(
    state: &mut State,
    topology: &Topology,
    interval: Duration,
    timeout: Duration,
) -> BTreeMap<(String, Role), ProbeConfig> {
    let mut out: BTreeMap<(String, Role), ProbeConfig> = BTreeMap::new();
    state.not_probed.clear();
    for p in plan::continuous(topology) {
        match p.action {
            Ok(mode) => {
                let id = state.id(&p.path);
                out.entry(p.source.clone())
                    .or_insert_with(|| ProbeConfig {
                        interval_ms: interval.as_millis() as u64,
                        timeout_ms: timeout.as_millis() as u64,
                        targets: vec![],
                    })
                    .targets
                    .push(ProbeTarget { path: id, mode });
            }
            Err(why) => {
                state.not_probed.insert(p.path, why);
            }
        }
    }
    out
}

async fn push(source: &mut Source, config: &ProbeConfig) -> Result<(), String> {
    if source.config.as_ref() == Some(config) {
        return Ok(());
    }
    let body = serde_json::to_string(config).unwrap_or_default();
    source
        .live
        .client
        .request("PUT", "/probe", Some(body), Duration::from_secs(10))
        .await?;
    source.config = Some(config.clone());
    Ok(())
}

/// Pulls new results from one source and feeds the trackers.
async fn fetch(source: &mut Source) -> Result<ResultsPage, String> {
    let path = format!("/results?since={}", source.since);
    source
        .live
        .client
        .json("GET", &path, None, Duration::from_secs(10))
        .await
}

/// Fetches new results from every source at once (a slow or unreachable one does not hold
/// up the others), then feeds them in. Returns the sources that could not be reached.
async fn pull_all(
    sources: &mut BTreeMap<(String, Role), Source>,
    state: &mut State,
) -> Vec<String> {
    let pages = futures::future::join_all(sources.values_mut().map(|source| async move {
        let page = fetch(source).await;
        (source, page)
    }))
    .await;
    let mut unreachable = vec![];
    for (source, page) in pages {
        match page {
            Ok(page) => ingest(source, page, state),
            Err(e) => unreachable.push(format!(
                "{} on {}: {e}",
                source.live.role.as_str(),
                source.live.node
            )),
        }
    }
    unreachable
}

fn ingest(source: &mut Source, page: ResultsPage, state: &mut State) {
    if page.session != source.session {
        // The agent restarted inside the same pod: its numbering starts again.
        state.events.push(NodeEvent {
            t_us: now_us(),
            node: source.live.node.clone(),
            what: format!("{} agent restarted", source.live.role.as_str()),
        });
        for (path, count) in std::mem::take(&mut source.resets) {
            *state.resets_done.entry(path).or_default() += count;
        }
        source.session = page.session.clone();
        source.since = 0;
        source.config = None;
        return;
    }
    for r in &page.records {
        state.trackers.entry(r.p).or_default().add(
            page.start_unix_us + r.t as i64,
            r.rtt,
            r.e.clone(),
        );
    }
    let watermark = page.start_unix_us + page.complete_before_us as i64;
    if let Some(config) = &source.config {
        for target in &config.targets {
            state
                .trackers
                .entry(target.path)
                .or_default()
                .advance(watermark);
        }
    }
    for c in &page.resets {
        source.resets.insert(c.path, c.count);
    }
    source.since = page.next;
}

fn collected(
    session: &Session,
    state: &mut State,
    sources: &BTreeMap<(String, Role), Source>,
    start_us: i64,
    switching: BTreeSet<String>,
    options: &ContinuousOptions,
) -> Collected {
    let mut resets: HashMap<u32, u64> = state.resets_done.clone();
    for source in sources.values() {
        for (path, count) in &source.resets {
            *resets.entry(*path).or_default() += count;
        }
    }
    let mut paths = vec![];
    for (id, key) in state.keys.iter().enumerate() {
        let id = id as u32;
        let stats = match state.trackers.get_mut(&id) {
            Some(t) => {
                t.flush();
                t.stats.clone()
            }
            None => Default::default(),
        };
        if stats.probes > 0 || !state.not_probed.contains_key(key) {
            paths.push((key.clone(), stats, resets.get(&id).copied().unwrap_or(0)));
        }
    }
    Collected {
        cluster: session.server(),
        namespace: session.options.manifests.namespace.clone(),
        interval_ms: options.interval.as_millis() as u64,
        timeout_ms: session.options.probe_timeout.as_millis() as u64,
        start_us,
        end_us: now_us(),
        nodes: session.nodes.clone(),
        switching,
        // A change is seen up to one node poll late, and a probe sent just before a switch
        // fails up to its timeout later.
        window_margin_us: (NODE_POLL + session.options.probe_timeout).as_micros() as i64,
        paths,
        not_probed: state
            .not_probed
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        events: state.events.clone(),
    }
}

#[allow(clippy::too_many_lines)]
async fn probe(
    session: &Session,
    options: &ContinuousOptions,
    progress: &dyn Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Collected, VerifyError> {
    let (live, mut topology) = session.agents(progress).await?;
    let client = &session.connection.client;
    let server = session.server();
    let namespace = session.options.manifests.namespace.clone();
    let timeout = session.options.probe_timeout;
    let http_port = session.options.manifests.http_port;
    let token = crate::token(&session.options);
    let mut state = State {
        ids: HashMap::new(),
        keys: vec![],
        trackers: HashMap::new(),
        resets_done: HashMap::new(),
        not_probed: BTreeMap::new(),
        events: vec![],
    };
    // Peers only echo; probes and host agents probe. Every running agent is kept for the
    // topology (its address), the probing ones also as sources.
    let mut known: BTreeMap<(String, Role), (String, Identity, cluster::PodState)> =
        BTreeMap::new();
    let mut sources: BTreeMap<(String, Role), Source> = BTreeMap::new();
    for l in live {
        known.insert(
            (l.node.clone(), l.role),
            (l.pod.uid.clone(), l.identity.clone(), l.pod.clone()),
        );
        if l.role != Role::Peer {
            sources.insert(
                (l.node.clone(), l.role),
                Source {
                    session: l.identity.session.clone(),
                    since: 0,
                    config: None,
                    resets: BTreeMap::new(),
                    live: l,
                },
            );
        }
    }
    let switching: BTreeSet<String> = options.switching.iter().cloned().collect();
    let mut node_state: BTreeMap<String, cluster::NodeState> = cluster::nodes(client, &server)
        .await?
        .into_iter()
        .map(|n| (n.name.clone(), n))
        .collect();
    let mut planned = configs(&mut state, &topology, options.interval, timeout);
    for (key, source) in sources.iter_mut() {
        if let Some(config) = planned.get(key) {
            push(source, config)
                .await
                .map_err(|e| VerifyError::CouldNotRun {
                    message: format!("cannot start probing on node {}: {e}", key.0),
                    help: "check the agent pods: kubectl -n cniswap-verify get pods -o wide".into(),
                })?;
        }
    }
    let start_us = now_us();
    let started = Instant::now();
    // Nodes already being switched when probing starts.
    for n in node_state.values() {
        if n.apply_marker {
            state.events.push(NodeEvent {
                t_us: start_us,
                node: n.name.clone(),
                what: windows::MARKED.into(),
            });
        }
        if n.unschedulable {
            state.events.push(NodeEvent {
                t_us: start_us,
                node: n.name.clone(),
                what: windows::CORDONED.into(),
            });
        }
    }
    progress.message(&format!(
        "probing {} paths every {} ms (Ctrl-C to stop)",
        state.keys.len(),
        options.interval.as_millis()
    ));
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    tokio::pin!(stop);
    let mut tick = 0u64;
    loop {
        let pause = tokio::time::sleep(NODE_POLL);
        tokio::select! {
            _ = pause => {}
            _ = &mut stop => break,
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        tick += 1;
        let unreachable = pull_all(&mut sources, &mut state).await;
        for source in sources.values_mut() {
            if source.config.is_none()
                && let Some(config) = planned.get(&(source.live.node.clone(), source.live.role))
            {
                let _ = push(source, config).await;
            }
        }
        // Node events, every tick: their times bound the switch windows (NODE_POLL).
        if let Ok(nodes) = cluster::nodes(client, &server).await {
            for n in nodes {
                if let Some(old) = node_state.get(&n.name) {
                    let t_us = now_us();
                    if n.apply_marker != old.apply_marker {
                        state.events.push(NodeEvent {
                            t_us,
                            node: n.name.clone(),
                            what: if n.apply_marker {
                                windows::MARKED
                            } else {
                                windows::UNMARKED
                            }
                            .into(),
                        });
                    }
                    if n.unschedulable != old.unschedulable {
                        state.events.push(NodeEvent {
                            t_us,
                            node: n.name.clone(),
                            what: if n.unschedulable {
                                windows::CORDONED
                            } else {
                                windows::UNCORDONED
                            }
                            .into(),
                        });
                    }
                    if n.ready != old.ready {
                        state.events.push(NodeEvent {
                            t_us,
                            node: n.name.clone(),
                            what: if n.ready { "ready" } else { "not-ready" }.into(),
                        });
                    }
                }
                node_state.insert(n.name.clone(), n);
            }
        }
        if tick.is_multiple_of(2) {
            // Pods recreated (new UID, new IP): follow them.
            let mut changed = false;
            if let Ok(pods) = cluster::pods(client, &namespace, &server).await {
                for pod in pods
                    .into_iter()
                    .filter(|p| p.running && session.nodes.contains(&p.node))
                {
                    let key = (pod.node.clone(), pod.role);
                    if known.get(&key).is_some_and(|(uid, _, _)| *uid == pod.uid) {
                        continue;
                    }
                    let mut agent = AgentClient::new(
                        pod_api.clone(),
                        pod.name.clone(),
                        http_port,
                        token.clone(),
                    );
                    let Ok(identity) = agent
                        .json::<Identity>("GET", "/", None, Duration::from_secs(5))
                        .await
                    else {
                        continue;
                    };
                    state.events.push(NodeEvent {
                        t_us: now_us(),
                        node: pod.node.clone(),
                        what: cniswap_verify::windows::agent_back(
                            pod.role.as_str(),
                            &identity.ip.map(|i| i.to_string()).unwrap_or_default(),
                        ),
                    });
                    known.insert(
                        key.clone(),
                        (pod.uid.clone(), identity.clone(), pod.clone()),
                    );
                    if pod.role != Role::Peer {
                        if let Some(old) = sources.remove(&key) {
                            for (path, count) in old.resets {
                                *state.resets_done.entry(path).or_default() += count;
                            }
                        }
                        sources.insert(
                            key.clone(),
                            Source {
                                session: identity.session.clone(),
                                since: 0,
                                config: None,
                                resets: BTreeMap::new(),
                                live: Live {
                                    node: pod.node.clone(),
                                    role: pod.role,
                                    pod: pod.clone(),
                                    identity,
                                    client: agent,
                                },
                            },
                        );
                    }
                    changed = true;
                }
            }
            if changed {
                let lives: Vec<Live> = known
                    .iter()
                    .map(|((node, role), (_, identity, pod))| Live {
                        node: node.clone(),
                        role: *role,
                        pod: pod.clone(),
                        identity: identity.clone(),
                        client: AgentClient::new(
                            pod_api.clone(),
                            pod.name.clone(),
                            http_port,
                            token.clone(),
                        ),
                    })
                    .collect();
                topology = cluster::topology(
                    &session.nodes,
                    &lives,
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                    topology.domain.clone(),
                    &namespace,
                    topology.echo_port,
                    topology.kubernetes_service,
                    topology.api_endpoints.clone(),
                    topology.probe_service,
                    topology.outside.clone(),
                    topology.skip.clone(),
                    session.options.manifests.host,
                );
                planned = configs(&mut state, &topology, options.interval, timeout);
                for (key, source) in sources.iter_mut() {
                    if let Some(config) = planned.get(key) {
                        let _ = push(source, config).await;
                    }
                }
            }
        }
        let down = state
            .trackers
            .values()
            .filter(|t| t.stats.is_down())
            .count();
        let lost: u64 = state.trackers.values().map(|t| t.stats.lost).sum();
        let mut text = format!(
            "{:.0} s: probing {} paths every {} ms; {down} down now, {lost} probes lost (Ctrl-C to stop)",
            started.elapsed().as_secs_f64(),
            state.keys.len(),
            options.interval.as_millis()
        );
        if !unreachable.is_empty() {
            text.push_str(&format!("; not reachable now: {}", unreachable.join(", ")));
        }
        progress.message(&text);
    }
    // Let the last probes complete, collect them, stop the probers.
    progress.message("collecting the last results");
    tokio::time::sleep(timeout + Duration::from_millis(700)).await;
    let _ = pull_all(&mut sources, &mut state).await;
    for source in sources.values_mut() {
        let _ = source
            .live
            .client
            .request("DELETE", "/probe", None, Duration::from_secs(5))
            .await;
    }
    Ok(collected(
        session, &mut state, &sources, start_us, switching, options,
    ))
}

/// A whole continuous run: deploy, probe until `stop` or the duration, collect, remove.
pub async fn run_continuous(
    options: crate::Options,
    continuous: ContinuousOptions,
    progress: &dyn Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(Collected, Option<VerifyError>), VerifyError> {
    let mut session = Session::start(options, progress).await?;
    let result = probe(&session, &continuous, progress, stop).await;
    let cleanup = session.finish(progress).await.err();
    result.map(|c| (c, cleanup))
}
