//! `cniswap-bench --apply-memory 500`: the executor's own cost per node, with the cluster in
//! memory (no API server, no waits): a rolling plan of 7 steps per node (cordon, drain, label,
//! agent restart, pod recreation, reboot, uncordon) plus node markers, every step checked
//! before and after and journaled with an fsync per record in a real plan directory. The
//! figure bounds what the journal and state machine add to each node of a real run.

use cniswap_exec::testing::{MemNode, Memory, World};
use cniswap_exec::{Executor, Journal, Options, Outcome, Quiet};
use cniswap_plan::{Action, Estimates, NodeEstimate, Phase, Plan, Step};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn step(id: String, action: Action) -> Step {
    Step {
        id,
        action,
        description: String::new(),
        commands: Vec::new(),
        notes: Vec::new(),
        done_when: String::new(),
        check: None,
        timeout_seconds: 60,
        pods_recreated: Vec::new(),
        pods_deleted: Vec::new(),
    }
}

fn rolling_plan(nodes: &[String]) -> Plan {
    let mut steps = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("1.{n}")
    };
    let annotation = cniswap_plan::CORDON_ANNOTATION.to_string();
    for node in nodes {
        steps.push(step(
            id(),
            Action::Cordon {
                node: node.clone(),
                annotation: annotation.clone(),
            },
        ));
        steps.push(step(
            id(),
            Action::Drain {
                node: node.clone(),
                eviction_timeout_seconds: 60,
                bare_pods: Vec::new(),
                bare_pods_backup: None,
            },
        ));
        steps.push(step(
            id(),
            Action::LabelNode {
                node: node.clone(),
                key: "io.cilium.migration/cilium-default".into(),
                value: Some("true".into()),
            },
        ));
        steps.push(step(
            id(),
            Action::RestartAgent {
                namespace: "kube-system".into(),
                daemonset: "cilium".into(),
                selector: "k8s-app=cilium".into(),
                node: node.clone(),
            },
        ));
        steps.push(step(id(), Action::RecreatePods { node: node.clone() }));
        steps.push(step(
            id(),
            Action::RebootNode {
                node: node.clone(),
                address: "10.0.0.1".into(),
            },
        ));
        steps.push(step(
            id(),
            Action::Uncordon {
                node: node.clone(),
                annotation: annotation.clone(),
            },
        ));
    }
    Plan {
        schema_version: cniswap_plan::PLAN_SCHEMA_VERSION,
        cluster: "bench".into(),
        platform: "kubeadm".into(),
        from: vec!["flannel".into()],
        to: "cilium".into(),
        strategy: "rolling".into(),
        strategy_reason: String::new(),
        kube_proxy: "keep".into(),
        install: "helm".into(),
        agent_image: "ghcr.io/cniswap/cniswap:bench".into(),
        helper_image: "busybox:1.36".into(),
        preflight: Vec::new(),
        handled: Vec::new(),
        proven: Vec::new(),
        estimates: Estimates {
            per_node: nodes
                .iter()
                .map(|n| NodeEstimate {
                    node: n.clone(),
                    role: "worker".into(),
                    pods_recreated: 3,
                    interruption_seconds: 0,
                })
                .collect(),
            ..Estimates::default()
        },
        phases: vec![Phase {
            id: "1-switch".into(),
            name: "Switch the nodes".into(),
            goal: String::new(),
            steps,
            rollback: Vec::new(),
        }],
        artifacts: Vec::new(),
    }
}

/// Runs the plan through the executor with a journal in `dir`; an error unless it completes.
fn run_to_the_end(
    plan: &Plan,
    dir: &std::path::Path,
    actions: &mut dyn cniswap_exec::Actions,
    options: &Options,
) -> Result<(Journal, Duration), String> {
    let mut journal = cniswap_exec::testing::open_journal(dir).map_err(|e| e.to_string())?;
    let stop = AtomicBool::new(false);
    let digest = cniswap_exec::digest::PlanDigest {
        plan: "bench".into(),
        files: Default::default(),
    };
    let started = Instant::now();
    let outcome = Executor::new(
        plan,
        digest,
        &mut journal,
        actions,
        options,
        &mut Quiet,
        &stop,
    )
    .apply()
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if outcome != Outcome::Complete {
        return Err(format!("the run did not complete: {outcome:?}"));
    }
    Ok((journal, elapsed))
}

pub fn memory(nodes: usize) -> Result<(), String> {
    let names: Vec<String> = (0..nodes).map(|i| format!("node-{i:04}")).collect();
    let plan = rolling_plan(&names);
    let mut world = World::default();
    for n in &names {
        world.nodes.insert(n.clone(), MemNode::default());
    }
    let mut memory = Memory::new(world);
    for n in &names {
        memory.add_pod(&format!("kube-system/cilium-{n}"), n, "DaemonSet", None);
        for p in 0..3 {
            memory.add_pod(&format!("default/app{p}-{n}"), n, "ReplicaSet", None);
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let options = Options {
        yes: true,
        retry_for: Duration::from_secs(1),
        ..Options::default()
    };
    let (journal, elapsed) = run_to_the_end(&plan, dir.path(), &mut memory, &options)?;
    let records = journal.records.len();
    let bytes = std::fs::metadata(journal.path())
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "cniswap apply executor core, in-memory cluster (7 steps per node, journal in {})",
        dir.path().display()
    );
    println!(
        "{:>6} {:>6} {:>8} {:>10} {:>8} {:>14}",
        "nodes", "steps", "records", "journal KiB", "wall s", "per node ms"
    );
    println!(
        "{nodes:>6} {:>6} {records:>8} {:>10.1} {:>8.2} {:>14.2}",
        nodes * 7,
        bytes as f64 / 1024.0,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / nodes as f64
    );
    Ok(())
}

/// `cniswap-bench --apply-lab N`: brings up a lab of N kwok nodes (2 pods each) with an agent
/// DaemonSet on every node, runs `cluster` on it, and takes the lab down.
pub fn lab(nodes: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let root = std::env::temp_dir().join(format!("cniswap-bench-apply-{}", std::process::id()));
    let mut options = cniswap_lab::Options::new(root.join("lab"));
    options.real_nodes = 0;
    options.kwok_nodes = nodes;
    options.kwok_pods_per_node = 2;
    let started = Instant::now();
    let lab = runtime
        .block_on(cniswap_lab::Lab::up(options, &mut |m| {
            eprintln!("lab: {m}")
        }))
        .map_err(|e| e.to_string())?;
    eprintln!("lab up in {:.1} s", started.elapsed().as_secs_f64());
    let result = runtime
        .block_on(async {
            let cluster = lab.cluster().await?;
            cluster
                .apply(&[cniswap_lab::kwok::daemonset(
                    "new-agent",
                    "kube-system",
                    &lab.images.busybox,
                )])
                .await?;
            cluster
                .wait_daemonset("kube-system", "new-agent", Duration::from_secs(600))
                .await
        })
        .map_err(|e| e.to_string())
        .and_then(|()| cluster(&lab.kubeconfig, usize::MAX));
    let down = lab.down().map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&root);
    result.and(down)
}

/// `cniswap-bench --apply-kubeconfig FILE [--nodes N]`: a rolling plan on a cluster's kwok
/// nodes (annotation `kwok.x-k8s.io/node`), run in this process through the real adapter
/// (kube-rs, journal, Lease-free), printing the total time, the time spent waiting for the
/// cluster (evictions to finish, agent pods to come back) and cniswap's own overhead per node.
pub fn cluster(kubeconfig: &std::path::Path, limit: usize) -> Result<(), String> {
    let options = cniswap_kube::LiveOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = rt.block_on(async {
        let connection = cniswap_kube::connect(&options)
            .await
            .map_err(|e| e.to_string())?;
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(connection.client);
        let list = nodes
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(
            list.items
                .into_iter()
                .filter(|n| {
                    n.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key("kwok.x-k8s.io/node"))
                })
                .filter_map(|n| n.metadata.name)
                .collect(),
        )
    })?;
    let all = names.clone();
    let nodes: Vec<String> = names.into_iter().take(limit).collect();
    if nodes.is_empty() {
        return Err("the cluster has no kwok nodes".into());
    }
    let mut plan = rolling_plan(&nodes);
    // Every node of the cluster is the plan's (the drift check refuses unknown ones).
    plan.estimates.per_node = all
        .iter()
        .map(|n| NodeEstimate {
            node: n.clone(),
            role: "worker".into(),
            pods_recreated: 1,
            interruption_seconds: 0,
        })
        .collect();
    plan.from.clear();
    // No reboots on kwok nodes (they have no boot ID to change).
    for phase in &mut plan.phases {
        phase
            .steps
            .retain(|s| !matches!(s.action, Action::RebootNode { .. }));
        for s in &mut phase.steps {
            if let Action::RestartAgent {
                daemonset,
                selector,
                ..
            } = &mut s.action
            {
                *daemonset = "new-agent".into();
                *selector = "app=new-agent".into();
            }
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut actions = cniswap_apply::KubeActions::connect(
        &options,
        &plan,
        cniswap_apply::Settings {
            plan_dir: cniswap_exec::PlanDir::open(dir.path()).map_err(|e| e.to_string())?,
            digest: cniswap_exec::digest::PlanDigest {
                plan: "bench".into(),
                files: Default::default(),
            },
            agent_image: None,
        },
    )
    .map_err(|f| f.message)?;
    let run_options = Options {
        yes: true,
        ..Options::default()
    };
    let (journal, elapsed) = run_to_the_end(&plan, dir.path(), &mut actions, &run_options)?;
    let waited = actions.waited();
    let own = elapsed.saturating_sub(waited);
    let n = nodes.len();
    println!(
        "cniswap apply on kwok nodes: cordon, drain, label, agent restart, pod recreation, uncordon per node ({} steps, {} journal records)",
        plan.phases[0].steps.len(),
        journal.records.len()
    );
    println!(
        "{:>6} {:>8} {:>9} {:>9} {:>16}",
        "nodes", "total s", "waited s", "own s", "own per node ms"
    );
    println!(
        "{n:>6} {:>8.1} {:>9.1} {:>9.1} {:>16.0}",
        elapsed.as_secs_f64(),
        waited.as_secs_f64(),
        own.as_secs_f64(),
        own.as_secs_f64() * 1000.0 / n as f64
    );
    Ok(())
}
