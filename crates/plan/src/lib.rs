//! The planner: facts + target -> a reviewable plan (plan.yaml), generated artifacts and a
//! runbook for people (runbook.md). Pure: no cluster access; `cniswap apply` executes plans.

#[macro_use]
mod shell;
mod agent;
mod artifacts;
mod backup;
mod check;
mod context;
mod distribution;
mod firewall;
mod handled;
mod install;
mod known;
pub mod local;
mod model;
mod names;
mod ops;
mod order;
mod probe;
mod runbook;
mod storage;
mod strategies;
mod tigera;
mod webhooks;

pub use context::{
    CALICO_VERSION, CILIUM_VERSION, FLANNEL_VERSION, InstallChoice, KubeProxyChoice, PlanOptions,
    RebootChoice, StrategyChoice, default_agent_image,
};
pub use known::Sourced;
pub use model::*;
pub use runbook::render as runbook;
pub use shell::quote;

use cniswap_model::{CniKind, Facts, Severity};
use cniswap_snapshot::Snapshot;
use context::Cluster;

/// The plan and its files (`plan.yaml`, `runbook.md`, `artifacts/...`).
pub struct Output {
    pub plan: Plan,
    /// (path relative to the plan directory, content)
    pub files: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct PlanError {
    pub message: String,
    pub help: String,
}

fn error(message: impl Into<String>, help: impl Into<String>) -> PlanError {
    PlanError {
        message: message.into(),
        help: help.into(),
    }
}

impl From<known::Question> for PlanError {
    fn from(q: known::Question) -> Self {
        error(q.message, q.help)
    }
}

pub(crate) fn overlap(a: &str, b: &str) -> bool {
    match (a.parse::<ipnet::IpNet>(), b.parse::<ipnet::IpNet>()) {
        (Ok(a), Ok(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => false,
    }
}

/// Picks the strategy: not bootstrapped -> fresh; one node -> cutover; rolling when its
/// prerequisites hold; cutover otherwise. Returns the strategy and why.
fn choose_strategy(
    cluster: &Cluster,
    options: &PlanOptions,
) -> Result<(StrategyChoice, String), PlanError> {
    let rolling = strategies::rolling::prerequisites(cluster, options.target);
    match options.strategy {
        StrategyChoice::Auto => Ok(if cluster.nodes.is_empty() {
            (
                StrategyChoice::Fresh,
                "no nodes in the snapshot: the cluster is not bootstrapped yet".into(),
            )
        } else if cluster.nodes.len() == 1 {
            (
                StrategyChoice::Cutover,
                "a single node cannot keep a pod network while it switches (MIG008)".into(),
            )
        } else {
            match rolling {
                Ok(why) => (StrategyChoice::Rolling, why),
                Err(why) => (
                    StrategyChoice::Cutover,
                    format!("rolling is not possible: {why}"),
                ),
            }
        }),
        StrategyChoice::Rolling => {
            rolling
                .map(|why| (StrategyChoice::Rolling, why))
                .map_err(|why| {
                    error(
                        format!("--strategy rolling is not possible here: {why}"),
                        "use --strategy cutover (or auto)",
                    )
                })
        }
        StrategyChoice::Cutover if cluster.nodes.is_empty() => Err(error(
            "--strategy cutover needs a running cluster, and the snapshot has no nodes",
            "use --strategy fresh to configure a cluster before bootstrap",
        )),
        StrategyChoice::Cutover => Ok((
            StrategyChoice::Cutover,
            "requested with --strategy cutover".into(),
        )),
        StrategyChoice::Fresh if !cluster.nodes.is_empty() => Err(error(
            format!(
                "--strategy fresh configures a cluster before bootstrap, and this one runs {}",
                names::count(cluster.nodes.len(), "node", "nodes")
            ),
            "use --strategy cutover or rolling (or auto) for a running cluster",
        )),
        StrategyChoice::Fresh => Ok((
            StrategyChoice::Fresh,
            "requested with --strategy fresh".into(),
        )),
    }
}

/// Settles the facts the plan acts on (a Service path, pod CIDR, API endpoint, migration pool) from the
/// cluster's records or the flags, or refuses with the question; returns them with their
/// sources for plan.yaml and the runbook.
fn prove(
    cluster: &mut Cluster,
    options: &PlanOptions,
    strategy: StrategyChoice,
    replace_kube_proxy: bool,
) -> Result<Vec<ProvenFact>, PlanError> {
    let target = options.target;
    let mut proven = vec![ProvenFact {
        fact: "cluster name".into(),
        value: cluster.name.clone(),
        source: cluster.name_source.clone(),
    }];
    known::service_path(cluster, replace_kube_proxy)?;
    let needed = known::needs_pod_cidr(cluster, target, strategy);
    cluster.pod_cidr = known::pod_cidr(cluster, options.pod_cidr.as_deref(), needed, target)?;
    if let Some(pod) = &cluster.pod_cidr {
        proven.push(ProvenFact::new("pod CIDR", pod));
    }
    match known::api_endpoint(cluster, replace_kube_proxy, options.api_endpoint.as_deref())? {
        Some(endpoint) => {
            if let Some((host, port)) = endpoint.value.rsplit_once(':')
                && let Ok(port) = port.parse()
            {
                cluster.api_endpoint = Some((host.to_string(), port));
            }
            proven.push(ProvenFact::new("API endpoint", &endpoint));
        }
        // kube-proxy stays, so the `kubernetes` Service works: no agent is pinned to one
        // server's address that nothing proves to be highly available.
        None if cluster.api_endpoint_source.is_none() => cluster.api_endpoint = None,
        None => {}
    }
    if let Some(inventory) = known::load_balancers(cluster, target)? {
        proven.push(ProvenFact::new("load balancers", &inventory));
    }
    if strategy == StrategyChoice::Rolling && target == CniKind::Cilium {
        let pool = match artifacts::cilium::running_migration(cluster) {
            Some((pool, port)) => Sourced {
                value: pool,
                source: format!(
                    "the pool of the Cilium already running beside the old CNI (tunnel port {port}): resumed"
                ),
            },
            None => known::free_pool(cluster)?,
        };
        proven.push(ProvenFact::new("migration pool", &pool));
    }
    Ok(proven)
}

/// Refuses options that cannot work on this cluster, with the reason.
fn check_options(cluster: &Cluster, options: &PlanOptions) -> Result<(), PlanError> {
    if options.batch_size == 0 {
        return Err(error(
            "--batch-size 0 would switch no node",
            "pass --batch-size 1 or more (control planes always go one at a time)",
        ));
    }
    match options.install {
        Some(InstallChoice::Omni) if !cluster.omni => {
            return Err(error(
                "--install omni: Omni does not manage this cluster (no Omni ConfigPatch, template or omni.sidero.dev label in the snapshot)",
                "use --install talos-urls (Talos) or helm/manifests",
            ));
        }
        Some(InstallChoice::TalosUrls | InstallChoice::Omni) if !cluster.talos => {
            return Err(error(
                "--install talos-urls: this cluster does not run Talos",
                "use --install helm or manifests",
            ));
        }
        _ => {}
    }
    if cluster.omni && cluster.omni_cluster.is_none() {
        return Err(error(
            "Omni manages this cluster, but the snapshot does not say its Omni cluster name (needed to label ConfigPatches)",
            "add one of the cluster's Omni ConfigPatches (omnictl get configpatches -o yaml) or its cluster template under omni/ in the snapshot",
        ));
    }
    options.local.check()?;
    if options.install == Some(InstallChoice::Manifest) && options.target == CniKind::Cilium {
        return Err(error(
            "--install manifest: Cilium has no manifest of its own (it is installed from its Helm chart)",
            "use --install helm, or --install manifests (the chart rendered with helm template and applied with kubectl)",
        ));
    }
    if let Some(image) = &options.agent_image
        && (image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(error(
            format!("--agent-image {image:?} is not an image reference"),
            "pass an image every node can pull, e.g. registry.example.com/cniswap/cniswap:0.1.0",
        ));
    }
    Ok(())
}

pub fn plan(
    snapshot: &Snapshot,
    facts: &Facts,
    options: &PlanOptions,
) -> Result<Output, PlanError> {
    let target = options.target;
    if !target.is_target() {
        return Err(error(
            format!("{target} is a source only"),
            "plan --to flannel, calico or cilium",
        ));
    }
    if !facts.inputs.unread.is_empty() {
        return Err(error(
            format!(
                "cannot plan from a partial read: the cluster did not let cniswap list {} ({}), so the nodes, pods, budgets, webhooks or policies the plan depends on are unknown",
                names::count(facts.inputs.unread.len(), "kind", "kinds"),
                cniswap_model::UnreadKind::describe_all(&facts.inputs.unread)
            ),
            cniswap_model::UnreadKind::grant_hint(&facts.inputs.unread),
        ));
    }
    let mut cluster = Cluster::new(snapshot, facts, target);
    if cluster.sources.is_empty()
        && !cluster.nodes.is_empty()
        && facts.cnis.iter().any(|c| c.kind == target && c.running)
    {
        return Err(error(
            format!("{target} already is the cluster's only CNI"),
            "nothing to migrate; `cniswap inspect` shows the state",
        ));
    }
    check_options(&cluster, options)?;
    let (strategy, strategy_reason) = choose_strategy(&cluster, options)?;
    let replace_kube_proxy = match options.kube_proxy {
        Some(KubeProxyChoice::Replace) => true,
        Some(KubeProxyChoice::Keep) => false,
        // Keep what the cluster does today: a cluster without kube-proxy needs a replacement.
        None if cluster.nodes.is_empty() => false,
        None => match cluster.kube_proxy {
            Some(present) => !present,
            None => {
                return Err(error(
                    "kube-proxy: the snapshot cannot tell whether it runs (no kube-system DaemonSet was read)",
                    "say what the plan should do: --kube-proxy keep (kube-proxy runs and stays) or --kube-proxy replace (the target takes over Services and kube-proxy is removed)",
                ));
            }
        },
    };
    if replace_kube_proxy && target == CniKind::Flannel {
        return Err(error(
            "Flannel cannot replace kube-proxy (TAL004)",
            "use --kube-proxy keep, or migrate to Cilium or Calico",
        ));
    }
    let proven = prove(&mut cluster, options, strategy, replace_kube_proxy)?;
    // Mirrored image names go under the user's values, so a value the user set still wins.
    let mut values = Vec::new();
    if let Some(registry) = &options.local.image_registry
        && target != CniKind::Flannel
    {
        let chart = if target == CniKind::Cilium {
            "cilium"
        } else {
            "tigera-operator"
        };
        let defaults = options
            .local
            .chart(chart)
            .map(local::LocalChart::values)
            .unwrap_or_default();
        values.push(local::mirrored_chart_values(registry, chart, &defaults));
    }
    values.extend(options.values.iter().cloned());
    let strategy_options = PlanOptions {
        strategy,
        values,
        ..options.clone()
    };
    let mut builder = strategies::Builder::new(&cluster, &strategy_options, replace_kube_proxy);

    let lint_target = cniswap_lint::Target {
        cni: Some(target),
        strategy: Some(match strategy {
            StrategyChoice::Fresh => cniswap_lint::Strategy::Fresh,
            StrategyChoice::Cutover => cniswap_lint::Strategy::Cutover,
            _ => cniswap_lint::Strategy::Rolling,
        }),
        estimated_outage_minutes: None,
    };
    let mut estimates = estimate(&cluster, strategy, builder.reboots());
    builder.outage_minutes = estimates.longest_outage_minutes;
    let lint_target = cniswap_lint::Target {
        estimated_outage_minutes: Some(estimates.longest_outage_minutes),
        ..lint_target
    };
    let preflight = cniswap_lint::lint(
        snapshot,
        facts,
        lint_target,
        &cniswap_lint::SuppressionConfig::default(),
    )
    .findings;
    estimates.exceeds_token_lifetime = preflight.iter().any(|f| f.rule == "MIG009");

    builder.preflight();
    let restores = strategies::safeguards::relax(&mut builder, &preflight);
    builder.replace_broken_omni_patches(&preflight);
    match strategy {
        StrategyChoice::Fresh => strategies::fresh::build(&mut builder),
        StrategyChoice::Cutover => strategies::cutover::build(&mut builder),
        _ => strategies::rolling::build(&mut builder),
    }
    strategies::verify::build(&mut builder);
    strategies::safeguards::restore(&mut builder, restores);
    if strategy != StrategyChoice::Fresh {
        strategies::cleanup::build(&mut builder);
    }
    let offline = !options.local.charts.is_empty()
        || !options.local.manifests.is_empty()
        || options.local.image_registry.is_some();
    if offline && !builder.downloads.is_empty() {
        let wanted: Vec<String> = builder
            .downloads
            .iter()
            .map(|(name, url)| format!("{name} ({url})"))
            .collect();
        return Err(error(
            format!(
                "this plan would fetch {} from the internet, and --chart/--manifest/--image-registry say the cluster installs without it",
                wanted.join(", ")
            ),
            "pass each with --chart NAME=DIR (cilium, tigera-operator) or --manifest NAME=FILE (calico, flannel, calico-flannel-migration, calico-migration-job)",
        ));
    }
    let install = install::method(&builder);
    // The Cilium values as written (the user's merged in): the tunnel ports they set.
    let cilium_values: Vec<serde_json::Value> = ["values-migration.yaml", "values-final.yaml"]
        .iter()
        .filter_map(|f| builder.artifacts.text(&format!("artifacts/cilium/{f}")))
        .filter_map(|text| serde_saphyr::from_str(text).ok())
        .collect();
    let calico_operator = target == CniKind::Calico
        && install != InstallChoice::Manifest
        && !strategies::rolling::uses_calico_migration_manifests(target, strategy);
    if let Some(ports) = firewall::prerequisites(&cluster, target, calico_operator, &cilium_values)
    {
        builder.risks.push(ports);
    }
    let handled = handled::resolved(
        snapshot,
        &cluster,
        &preflight,
        &builder.artifacts,
        &builder.resolves,
        lint_target,
    );
    let agent_image = builder.agent_image();
    let helper_image = builder.helper_image();
    let strategies::Builder {
        artifacts,
        mut phases,
        risks,
        ..
    } = builder;
    // A check's commands run its probes in pods of the helper image, known only now.
    for step in phases
        .iter_mut()
        .flat_map(|p| p.steps.iter_mut().chain(p.rollback.iter_mut()))
    {
        if let Action::Verify { probes, .. } = &step.action {
            step.commands = probes
                .iter()
                .flat_map(|p| probe::commands(p, &helper_image))
                .map(shell::Sh::into_string)
                .collect();
        }
    }
    estimates.risks = risks;
    let plan = Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        cluster: cluster.name.clone(),
        platform: cluster.platform(),
        from: cluster.sources.iter().map(|c| c.to_string()).collect(),
        to: target.to_string(),
        strategy: match strategy {
            StrategyChoice::Fresh => "fresh",
            StrategyChoice::Cutover => "cutover",
            _ => "rolling",
        }
        .into(),
        strategy_reason,
        kube_proxy: if replace_kube_proxy {
            "replace"
        } else {
            "keep"
        }
        .into(),
        install: if target == CniKind::Flannel && cluster.talos {
            "talos (built-in Flannel)".into()
        } else if strategies::rolling::uses_calico_migration_manifests(target, strategy) {
            "manifests (Calico's flannel-migration manifests)".into()
        } else {
            install.as_str().into()
        },
        agent_image,
        helper_image,
        preflight,
        handled,
        proven,
        estimates,
        phases,
        artifacts: artifacts
            .files
            .iter()
            .map(|(p, _, d)| Artifact {
                path: p.clone(),
                description: d.clone(),
            })
            .collect(),
    };
    let mut files: Vec<(String, String)> = artifacts
        .files
        .into_iter()
        .map(|(p, t, _)| (p, t))
        .collect();
    files.push((
        "plan.yaml".into(),
        serde_saphyr::to_string(&plan).unwrap_or_default(),
    ));
    files.push(("runbook.md".into(), runbook::render(&plan)));
    Ok(Output { plan, files })
}

/// Whether the plan must be refused without --force.
pub fn has_errors(plan: &Plan) -> bool {
    !blocking(plan).is_empty()
}

/// Error findings the plan does not resolve itself.
pub fn blocking(plan: &Plan) -> Vec<&cniswap_model::Finding> {
    plan.preflight
        .iter()
        .filter(|f| f.severity == Severity::Error && !plan.handled.iter().any(|h| h.covers(f)))
        .collect()
}

/// Per-node and total estimates (stated assumptions, not measurements).
fn estimate(cluster: &Cluster, strategy: StrategyChoice, reboots: bool) -> Estimates {
    // Without a reboot the node's pods are recreated: about a minute.
    let renewal = if reboots {
        cluster.reboot_seconds()
    } else {
        60
    };
    let mut per_node = Vec::new();
    let mut total: u32 = 600; // install and finish
    for node in &cluster.nodes {
        let pods = node.pods.len();
        let pods_u32 = u32::try_from(pods).unwrap_or(u32::MAX);
        let interruption = match strategy {
            // Drained pods restart elsewhere; each is down for about its restart.
            StrategyChoice::Rolling => 30 + pods_u32.min(60),
            _ => 60 + 2 * pods_u32,
        };
        total = total.saturating_add(match strategy {
            StrategyChoice::Rolling => 120 + renewal + 5 * pods_u32,
            _ => 90 + 2 * pods_u32,
        });
        per_node.push(NodeEstimate {
            node: node.name.clone(),
            role: if node.control_plane {
                "control-plane".into()
            } else {
                "worker".into()
            },
            pods_recreated: pods,
            interruption_seconds: interruption,
        });
    }
    let longest = match strategy {
        // Cutover: from stopping the old CNI until the last batch is switched.
        StrategyChoice::Cutover => total,
        _ => per_node
            .iter()
            .map(|n| n.interruption_seconds)
            .max()
            .unwrap_or(0),
    };
    Estimates {
        per_node,
        total_minutes: total.div_ceil(60),
        longest_outage_minutes: longest.div_ceil(60),
        exceeds_token_lifetime: false,
        risks: Vec::new(),
        assumptions: vec![
            "rolling: drain, agent restart and the node's renewal take about 2 min plus 5 s per pod per node; a drained pod is down for its restart (30 s + up to 60 s)".into(),
            if reboots {
                format!("renewal: a reboot, {renewal} s")
            } else {
                format!("renewal: the node's pods recreated (no reboot), {renewal} s")
            },
            "cutover: the whole cluster's pod network is down from \"Stop the old CNI\" until the last node is switched".into(),
        ],
    }
}
