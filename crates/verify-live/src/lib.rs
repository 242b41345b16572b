//! `cniswap verify` against a live cluster.
//!
//! Deploys the probe agents (server-side apply), waits for them, talks to each through a
//! port-forward (API server -> kubelet -> pod: independent of the pod network under test),
//! runs the checks of `cniswap_verify::plan`, and removes everything it deployed. This crate
//! is separate from `cniswap-kube` so that the crate `inspect` and `plan` use stays read-only.

mod agent_client;
pub mod cluster;
mod continuous;
pub mod deploy;

pub use continuous::{ContinuousOptions, run_continuous};

use cniswap_kube::{Connection, LiveOptions};
use cniswap_verify::Kind;
use cniswap_verify::manifests::{self, ManifestOptions};
use cniswap_verify::plan::{self, Planned};
use cniswap_verify::report::{Outcome, Report};
use cniswap_verify::wire::{Check, CheckRequest, CheckResponse, Probe, Role};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the nodes' Service dataplane gets to follow a ready EndpointSlice.
const SERVICE_SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Options {
    pub live: LiveOptions,
    pub manifests: ManifestOptions,
    /// Per probe.
    pub probe_timeout: Duration,
    /// For the agents to start and answer.
    pub ready_timeout: Duration,
    pub outside: Vec<SocketAddr>,
    pub skip: Vec<Kind>,
    pub keep: bool,
    /// Cluster DNS domain; default: from the probe pods' resolv.conf, else cluster.local.
    pub domain: Option<String>,
    /// Only these nodes (default: all).
    pub nodes: Vec<String>,
    /// Only checks from or to these nodes (every node still takes part).
    pub focus: Vec<String>,
}

/// Where verify reports what it is doing (a spinner on terminals).
pub trait Progress: Send + Sync {
    fn message(&self, text: &str);
}

/// verify could not run (exit code 2): what happened and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    #[error("{message}")]
    CouldNotRun { message: String, help: String },
}

/// A kube-rs error for people: the API server's answer in words (never the debug dump of its
/// Status), else the error with its causes.
pub fn describe(e: &kube::Error) -> String {
    cniswap_kube::chain(e)
}

impl VerifyError {
    pub fn api(server: &str, what: &str, e: &kube::Error) -> VerifyError {
        let forbidden = matches!(e, kube::Error::Api(s) if s.code == 403);
        VerifyError::CouldNotRun {
            message: format!("cannot {what} on {server}: {}", describe(e)),
            help: if forbidden {
                "your credentials lack a permission verify needs: `cniswap verify --print-manifests` prints the RBAC".into()
            } else {
                "check the cluster is reachable (kubectl get nodes) and try again".into()
            },
        }
    }

    pub fn help(&self) -> &str {
        match self {
            VerifyError::CouldNotRun { help, .. } => help,
        }
    }
}

/// A deployment in progress: removed by [`Session::finish`] unless `--keep`.
pub struct Session {
    pub connection: Connection,
    pub deployed: Option<deploy::Deployed>,
    pub options: Options,
    pub nodes: Vec<String>,
}

impl Session {
    pub async fn start(options: Options, progress: &dyn Progress) -> Result<Session, VerifyError> {
        progress.message("connecting to the cluster");
        let connection =
            cniswap_kube::connect(&options.live)
                .await
                .map_err(|e| VerifyError::CouldNotRun {
                    message: e.to_string(),
                    help: "check --kubeconfig and --context (kubectl get nodes should work)".into(),
                })?;
        let server = connection.describe();
        let all = cluster::nodes(&connection.client, &server).await?;
        let nodes: Vec<String> = all
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| options.nodes.is_empty() || options.nodes.contains(n))
            .collect();
        if let Some(unknown) = options
            .nodes
            .iter()
            .chain(&options.focus)
            .find(|n| !all.iter().any(|a| &a.name == *n))
        {
            return Err(VerifyError::CouldNotRun {
                message: format!("node {unknown} is not in the cluster"),
                help: "kubectl get nodes lists them".into(),
            });
        }
        if nodes.is_empty() {
            return Err(VerifyError::CouldNotRun {
                message: format!("the cluster at {server} has no nodes"),
                help: "verify needs nodes to deploy its probes on".into(),
            });
        }
        let mut options = options;
        // A new suffix for new Services, the old one when a `--keep` run left them.
        let suffix = match cluster::existing_service_suffix(
            &connection.client,
            &options.manifests.namespace,
        )
        .await
        {
            Some(suffix) => suffix,
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("{:06x}", (now ^ u128::from(std::process::id())) & 0xff_ffff)
            }
        };
        options.manifests.service_suffix = Some(suffix);
        let kept = cluster::kept_token(&connection.client, &options.manifests.namespace).await;
        let token_kept = kept.is_some();
        options.manifests.token = Some(match kept {
            Some(token) => token,
            None => new_token().map_err(|e| VerifyError::CouldNotRun {
                message: format!("cannot read random bytes for the agents' token: {e}"),
                help: "verify needs /dev/urandom".into(),
            })?,
        });
        progress.message(&format!(
            "deploying the probes into namespace {}",
            options.manifests.namespace
        ));
        let objects = manifests::objects(&options.manifests);
        let deployed = deploy::apply(
            &connection.client,
            &options.manifests.namespace,
            &objects,
            &server,
            token_kept,
        )
        .await?;
        Ok(Session {
            connection,
            deployed: Some(deployed),
            options,
            nodes,
        })
    }

    pub fn server(&self) -> String {
        self.connection.describe()
    }

    /// Waits for the agents and builds the topology.
    pub async fn agents(
        &self,
        progress: &dyn Progress,
    ) -> Result<(Vec<cluster::Live>, cniswap_verify::topology::Topology), VerifyError> {
        let o = &self.options;
        let client = &self.connection.client;
        let server = self.server();
        let roles = cluster::roles(o.manifests.host);
        let (live, missing, silent) = cluster::wait_for_agents(
            client,
            &server,
            &o.manifests.namespace,
            &self.nodes,
            &roles,
            o.manifests.http_port,
            &token(o),
            o.ready_timeout,
            progress,
        )
        .await?;
        if live.is_empty() {
            let reasons: Vec<String> = missing
                .iter()
                .take(3)
                .map(|((node, role), why)| format!("{} on {node}: {why}", role.as_str()))
                .collect();
            return Err(VerifyError::CouldNotRun {
                message: format!(
                    "no probe agent answered within {}s ({})",
                    o.ready_timeout.as_secs(),
                    reasons.join("; ")
                ),
                help: format!(
                    "check the image {} can be pulled on the nodes (--image, --image-pull-policy; docs/verify.md, \"The image\")",
                    o.manifests.image
                ),
            });
        }
        let probes = live.iter().filter(|l| l.role == Role::Probe).count();
        progress.message("waiting for the probe Service's endpoints");
        let ready = cluster::wait_service_endpoints(
            client,
            &o.manifests.namespace,
            &o.manifests.service_name(),
            probes,
            o.ready_timeout,
        )
        .await;
        if ready >= probes {
            // kube-proxy (or the CNI's replacement) programs the nodes after the EndpointSlice
            // changes; give it a moment rather than report that lag as a broken Service.
            tokio::time::sleep(SERVICE_SETTLE).await;
        }
        let (kubernetes_service, api_endpoints) = cluster::api_server(client).await;
        let probe_service =
            cluster::cluster_ip(client, &o.manifests.namespace, &o.manifests.service_name()).await;
        let identities: Vec<_> = live
            .iter()
            .filter(|l| l.role == Role::Probe)
            .map(|l| &l.identity)
            .collect();
        let domain = o
            .domain
            .clone()
            .or_else(|| cluster::domain_from(&identities))
            .unwrap_or_else(|| "cluster.local".into());
        let headless_ips = cluster::pods(client, &o.manifests.namespace, &server)
            .await?
            .into_iter()
            .filter(|p| p.role == Role::Probe)
            .filter_map(|p| p.ip)
            .collect();
        let mut topology = cluster::topology(
            &self.nodes,
            &live,
            &missing,
            &silent,
            domain,
            &o.manifests.namespace,
            o.manifests.echo_port,
            kubernetes_service,
            api_endpoints,
            probe_service,
            o.outside.clone(),
            o.skip.clone(),
            o.manifests.host,
        );
        topology.headless_ips = headless_ips;
        topology.service_name = o.manifests.service_name();
        topology.headless_name = o.manifests.headless_name();
        Ok((live, topology))
    }

    /// Removes what was deployed (unless `--keep`).
    pub async fn finish(&mut self, progress: &dyn Progress) -> Result<(), VerifyError> {
        let Some(deployed) = self.deployed.take() else {
            return Ok(());
        };
        if self.options.keep {
            return Ok(());
        }
        progress.message(&format!("removing namespace {}", deployed.namespace));
        deploy::remove(&self.connection.client, &deployed, Duration::from_secs(120)).await
    }
}

/// A new token for this run's agents: 32 random bytes as hex, and an unrelated random id.
fn new_token() -> std::io::Result<manifests::AgentToken> {
    use std::io::Read;
    let mut bytes = [0u8; 40];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(manifests::AgentToken {
        secret: hex(&bytes[..32]),
        id: hex(&bytes[32..]),
    })
}

/// The token agents of this session demand (empty before [`Session::start`] made one).
pub(crate) fn token(options: &Options) -> String {
    options
        .manifests
        .token
        .as_ref()
        .map(|t| t.secret.clone())
        .unwrap_or_default()
}

/// A planned check and its number in the request.
type Numbered = (u32, Planned<Probe>);

/// Runs every one-shot check on the deployed agents.
pub async fn run_checks(
    session: &Session,
    live: &mut [cluster::Live],
    topology: &cniswap_verify::topology::Topology,
    progress: &dyn Progress,
) -> Vec<Outcome> {
    let focus = &session.options.focus;
    let planned: Vec<Planned<Probe>> = plan::one_shot(topology)
        .into_iter()
        .filter(|p| focus.is_empty() || focus.iter().any(|n| p.path.touches(n)))
        .collect();
    progress.message(&format!("running {} checks", planned.len()));
    let mut outcomes = vec![];
    let mut per_agent: BTreeMap<(String, Role), Vec<Numbered>> = BTreeMap::new();
    for (id, p) in planned.into_iter().enumerate() {
        match &p.action {
            Err(why) => outcomes.push(Outcome {
                path: p.path.clone(),
                ok: false,
                error: Some(why.clone()),
                rtt_ms: None,
            }),
            Ok(_) => per_agent
                .entry(p.source.clone())
                .or_default()
                .push((id as u32, p)),
        }
    }
    let timeout = session.options.probe_timeout;
    let futures = live.iter_mut().filter_map(|agent| {
        let checks = per_agent.remove(&(agent.node.clone(), agent.role))?;
        Some(async move {
            let request = CheckRequest {
                checks: checks
                    .iter()
                    .filter_map(|(id, p)| {
                        p.action.as_ref().ok().map(|probe| Check {
                            id: *id,
                            probe: probe.clone(),
                        })
                    })
                    .collect(),
                timeout_ms: timeout.as_millis() as u64,
                concurrency: 32,
            };
            let budget = timeout * (request.checks.len() as u32 / 32 + 2) + Duration::from_secs(10);
            let body = serde_json::to_string(&request).unwrap_or_default();
            let response: Result<CheckResponse, String> = agent
                .client
                .json("POST", "/check", Some(body), budget)
                .await;
            let mut outcomes = vec![];
            match response {
                Ok(response) => {
                    let by_id: BTreeMap<u32, _> =
                        response.results.into_iter().map(|r| (r.id, r)).collect();
                    for (id, p) in checks {
                        let result = by_id.get(&id);
                        // A path-MTU probe sized to the sender's own interface, refused by its
                        // kernel with a smaller path MTU: the sender learned it (a route MTU, or
                        // ICMP "fragmentation needed"), so nothing is black-holed (Cilium
                        // beside Flannel routes at 1400 with 1450-byte pod interfaces).
                        let learned = p.path.kind == cniswap_verify::Kind::PathMtu
                            && result.is_some_and(|r| {
                                r.error.as_deref().is_some_and(|e| {
                                    e.starts_with("message too long") && e.contains("path MTU is")
                                })
                            });
                        outcomes.push(Outcome {
                            path: p.path,
                            ok: result.is_some_and(|r| r.ok) || learned,
                            error: match result {
                                Some(r) => r.error.clone(),
                                None => Some("the agent returned no result".into()),
                            },
                            rtt_ms: result.and_then(|r| r.rtt_us).map(|us| us as f64 / 1000.0),
                        });
                    }
                }
                Err(e) => {
                    for (_, p) in checks {
                        outcomes.push(Outcome {
                            path: p.path,
                            ok: false,
                            error: Some(format!(
                                "results not collected from the {} agent on node {}: {e}",
                                agent.role.as_str(),
                                agent.node
                            )),
                            rtt_ms: None,
                        });
                    }
                }
            }
            outcomes
        })
    });
    let collected = futures::future::join_all(futures).await;
    outcomes.extend(collected.into_iter().flatten());
    // Agents whose pods run but which do not answer through the API server.
    for ((node, role), checks) in per_agent {
        for (_, p) in checks {
            outcomes.push(Outcome {
                path: p.path,
                ok: false,
                error: Some(cniswap_verify::topology::not_collected(role, &node)),
                rtt_ms: None,
            });
        }
    }
    outcomes
}

/// A whole one-shot verify: deploy, wait, check, remove. The report is returned even when
/// removal fails (the error then comes second).
/// `stop` (Ctrl-C) interrupts it; what was deployed is removed all the same.
pub async fn run_once(
    options: Options,
    progress: &dyn Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(Report, Option<VerifyError>), VerifyError> {
    let start = Instant::now();
    let mut session = Session::start(options, progress).await?;
    let work = async {
        let (mut live, topology) = session.agents(progress).await?;
        let outcomes = run_checks(&session, &mut live, &topology, progress).await;
        Ok::<_, VerifyError>((topology, outcomes))
    };
    let result = tokio::select! {
        r = work => r,
        _ = stop => Err(VerifyError::CouldNotRun {
            message: "interrupted".into(),
            help: String::new(),
        }),
    };
    let cleanup = session.finish(progress).await.err();
    let (topology, outcomes) = match result {
        Ok(r) => r,
        Err(e) => return Err(e),
    };
    let report = Report::new(
        session.server(),
        session.options.manifests.namespace.clone(),
        topology.domain.clone(),
        topology.node_names(),
        outcomes,
        start.elapsed().as_secs_f64(),
    );
    Ok((report, cleanup))
}
