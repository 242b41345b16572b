//! Helpers shared by the planner tests: example snapshots, generated clusters, fake tools, and
//! the properties every plan keeps, checked mechanically.

#![allow(dead_code, clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_model::CniKind;
use cniswap_plan::{Action, Plan, PlanOptions, Probe, Step, StrategyChoice};
use std::path::{Path, PathBuf};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

pub const EXAMPLES: &[&str] = &[
    "talos-flannel-homelab",
    "talos-1.14-multidoc",
    "kubeadm-calico-vxlan",
    "talos-flannel-to-cilium-half-migrated",
];

pub fn options(target: CniKind, strategy: StrategyChoice) -> PlanOptions {
    PlanOptions {
        target,
        strategy,
        kube_proxy: None,
        install: None,
        values: Vec::new(),
        batch_size: 1,
        agent_image: None,
        pod_cidr: None,
        api_endpoint: None,
        local: Default::default(),
        reboot: Default::default(),
        helper_image: None,
    }
}

pub fn plan_for(
    snapshot: &cniswap_snapshot::Snapshot,
    options: &PlanOptions,
) -> Option<cniswap_plan::Output> {
    let facts = cniswap_facts::detect(snapshot);
    cniswap_plan::plan(snapshot, &facts, options).ok()
}

pub fn example(name: &str) -> cniswap_snapshot::Snapshot {
    cniswap_snapshot::load(&examples().join(name)).unwrap()
}

/// A written file of the plan by its path (`plan.yaml`, `artifacts/...`).
pub fn file<'a>(output: &'a cniswap_plan::Output, path: &str) -> &'a str {
    &output
        .files
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not written"))
        .1
}

pub fn steps(plan: &Plan) -> Vec<&Step> {
    plan.phases.iter().flat_map(|p| &p.steps).collect()
}

pub fn all_steps(plan: &Plan) -> Vec<&Step> {
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter().chain(&p.rollback))
        .collect()
}

pub fn commands(plan: &Plan) -> Vec<String> {
    all_steps(plan)
        .iter()
        .flat_map(|s| s.commands.iter().cloned().chain(s.check.clone()))
        .collect()
}

/// A kubectl-shaped cluster: `workers` + `control_planes` nodes over `zones` zones, the source
/// CNI's DaemonSet and agent pods, an app pod per node, maybe kube-proxy.
pub fn cluster_yaml(
    source: CniKind,
    control_planes: usize,
    workers: usize,
    zones: usize,
    kube_proxy: bool,
) -> String {
    let (ns, ds, image) = match source {
        CniKind::Calico => (
            "calico-system",
            "calico-node",
            "quay.io/calico/node:v3.29.1",
        ),
        CniKind::Cilium => ("kube-system", "cilium", "quay.io/cilium/cilium:v1.16.5"),
        CniKind::Canal => ("kube-system", "canal", "docker.io/calico/node:v3.29.1"),
        CniKind::Weave => (
            "kube-system",
            "weave-net",
            "ghcr.io/weaveworks/launcher/weave-kube:2.8.1",
        ),
        _ => (
            "kube-flannel",
            "kube-flannel-ds",
            "ghcr.io/flannel-io/flannel:v0.25.1",
        ),
    };
    let mut out = String::new();
    let total = control_planes + workers;
    let mut daemonsets = vec![(ns, ds, image)];
    if kube_proxy {
        daemonsets.push((
            "kube-system",
            "kube-proxy",
            "registry.k8s.io/kube-proxy:v1.33.2",
        ));
    }
    for i in 0..total {
        let role = if i < control_planes {
            "    node-role.kubernetes.io/control-plane: \"\"\n"
        } else {
            ""
        };
        out.push_str(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  labels:\n{role}    topology.kubernetes.io/zone: z{}\nspec:\n  podCIDR: 10.244.{i}.0/24\nstatus:\n  addresses:\n  - type: InternalIP\n    address: 192.168.1.{}\n  nodeInfo:\n    osImage: Debian GNU/Linux 12\n    kubeletVersion: v1.33.2\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n",
            i % zones.max(1),
            10 + i
        ));
        out.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{i}\n  namespace: default\n  ownerReferences:\n  - kind: ReplicaSet\n    name: app\n    controller: true\nspec:\n  nodeName: n{i}\n  containers:\n  - name: app\n    image: app:1\nstatus:\n  phase: Running\n---\n"));
    }
    for (ns, name, image) in daemonsets {
        out.push_str(&format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\nspec:\n  selector:\n    matchLabels:\n      k8s-app: {name}\n  template:\n    metadata:\n      labels:\n        k8s-app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\nstatus:\n  desiredNumberScheduled: {total}\n  numberReady: {total}\n---\n"));
        for i in 0..total {
            out.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{i}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\n  ownerReferences:\n  - kind: DaemonSet\n    name: {name}\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: {name}\n    image: {image}\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"));
        }
    }
    out.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\n  namespace: kube-system\ndata:\n  ClusterConfiguration: |\n    networking:\n      podSubnet: 10.244.0.0/16\n      serviceSubnet: 10.96.0.0/12\n");
    out
}

/// A snapshot directory holding one generated `cluster/all.yaml`.
pub fn generated_snapshot(yaml: &str) -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
    std::fs::write(dir.path().join("cluster/all.yaml"), yaml).unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    (dir, snapshot)
}

/// Tools the plans call, replaced by scripts that print nothing and succeed: nothing reaches a
/// cluster, a registry or a node.
pub const FAKE_TOOLS: &[&str] = &[
    "kubectl",
    "helm",
    "talosctl",
    "omnictl",
    "curl",
    "ssh",
    "sudo",
    "cniswap",
    "systemctl",
];

/// A directory of fake tools (each prints `stdout` and exits `code`); returns its PATH value.
pub fn fake_tools(dir: &Path, stdout: &str, code: i32) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in FAKE_TOOLS {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n"),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
    }
    format!("{}:/usr/bin:/bin", bin.display())
}

pub fn run_sh(command: &str, cwd: &Path, path: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

pub fn parses(command: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-n", "-c", command])
        .status()
        .unwrap()
        .success()
}

/// The CNIs of a plan, parsed.
pub fn kinds(names: &[String]) -> Vec<CniKind> {
    names
        .iter()
        .map(|s| serde_json::from_value(serde_json::json!(s)).unwrap())
        .collect()
}

/// The properties every plan keeps (issue 9, "Done when"), checked on the plan's data.
pub fn assert_invariants(plan: &Plan) {
    let label = format!(
        "{:?} -> {} ({}, kube-proxy {})",
        plan.from, plan.to, plan.strategy, plan.kube_proxy
    );
    for phase in &plan.phases {
        assert!(
            !phase.rollback.is_empty(),
            "{label}: phase {} has no rollback",
            phase.name
        );
    }
    distinct_checks(plan, &label);
    backups_before_deletes(plan, &label);
    node_pods_attach_and_wait(plan, &label);
    no_delete_before_the_replacement_wins(plan, &label);
    final_values_restart_and_check(plan, &label);
    kube_proxy_rules(plan, &label);
    control_planes_last(plan, &label);
    no_forbidden_commands(plan, &label);
    apply_can_renew_every_node(plan, &label);
    round_trips(plan, &label);
    node_services_one_node_at_a_time(plan, &label);
    no_kubeadm_objects_outside_kubeadm(plan, &label);
}

/// k3s and RKE2 have no kube-proxy DaemonSet or ConfigMap and no kubeadm-config: a plan there
/// never deletes or patches them (their kube-proxy goes with the distribution's config).
fn no_kubeadm_objects_outside_kubeadm(plan: &Plan, label: &str) {
    if !matches!(plan.platform.as_str(), "k3s" | "rke2") {
        return;
    }
    for step in all_steps(plan) {
        let object = match &step.action {
            Action::DeleteObject { object, .. } | Action::PatchObject { object, .. } => object,
            _ => continue,
        };
        assert!(
            !(object.name == "kube-proxy" || object.name == "kubeadm-config"),
            "{label}: {} touches {}/{}, which {} does not have",
            step.id,
            object.kind,
            object.name,
            plan.platform
        );
    }
}

/// A node's own service (k3s, RKE2) restarts only in a step for that one node, which apply
/// performs and checks right after; never one command for every server (issue 17 item 4).
fn node_services_one_node_at_a_time(plan: &Plan, label: &str) {
    for phase in &plan.phases {
        for list in [&phase.steps, &phase.rollback] {
            for (i, step) in list.iter().enumerate() {
                let restarts = step
                    .commands
                    .iter()
                    .any(|c| c.contains("systemctl restart"));
                match &step.action {
                    Action::NodeService { node, .. } => {
                        let next = list.get(i + 1).map(|s| &s.action);
                        assert!(
                            matches!(next, Some(Action::Verify { probes, .. }) if probes.iter().any(|p| matches!(p, Probe::NodeCheck { node: n, .. } if n == node))),
                            "{label}: {} restarts {node}'s service without checking it next",
                            step.id
                        );
                    }
                    // Before bootstrap (fresh) a person edits each server's config.
                    Action::ManualGate { .. } if plan.strategy == "fresh" => {}
                    _ => assert!(
                        !restarts,
                        "{label}: {} restarts a service outside a node step",
                        step.id
                    ),
                }
            }
        }
    }
}

/// With the default `--reboot auto`, a node outside Talos is never rebooted: apply reboots
/// only Talos nodes itself, and would stop there.
fn apply_can_renew_every_node(plan: &Plan, label: &str) {
    if plan.platform.starts_with("talos") {
        return;
    }
    for phase in &plan.phases {
        for step in phase.steps.iter().chain(&phase.rollback) {
            assert!(
                !matches!(step.action, Action::RebootNode { .. }),
                "{label}: {} reboots a {} node",
                step.id,
                plan.platform
            );
        }
    }
}

/// plan.yaml reads back as the same plan (a step's fields never collide with its action's).
fn round_trips(plan: &Plan, label: &str) {
    let text = serde_saphyr::to_string(plan).unwrap();
    let back: Plan = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{label}: plan.yaml does not read back: {e}"));
    assert!(back == *plan, "{label}: plan.yaml changes when read back");
}

/// No two steps share a check unless their effects (their actions) are equal.
fn distinct_checks(plan: &Plan, label: &str) {
    let steps = all_steps(plan);
    for (i, a) in steps.iter().enumerate() {
        let Some(check) = &a.check else { continue };
        for b in &steps[i + 1..] {
            if b.check.as_ref() == Some(check) {
                assert_eq!(
                    a.action, b.action,
                    "{label}: {} and {} share the check `{check}` but do different things",
                    a.id, b.id
                );
            }
        }
    }
}

/// The command index that writes `backup` atomically (temporary file, rename, never over an
/// existing one), if any.
pub fn atomic_backup_command(step: &Step, backup: &str) -> Option<usize> {
    let quoted = cniswap_plan::quote(backup);
    let tmp = cniswap_plan::quote(&format!("{backup}.tmp"));
    step.commands.iter().position(|c| {
        c.contains(&format!("test -e {quoted} ||")) && c.contains(&format!("mv {tmp} {quoted}"))
    })
}

/// Every destructive step writes its backup atomically before it removes anything (node
/// cleans: the agent writes its own backup, named on its command line).
fn backups_before_deletes(plan: &Plan, label: &str) {
    for step in all_steps(plan) {
        if !step.action.is_destructive() {
            continue;
        }
        let backup = step
            .action
            .backup()
            .unwrap_or_else(|| panic!("{label}: {} has no backup", step.id));
        if let Action::NodeClean { pod, .. } = &step.action {
            let on_host = format!("/host{backup}");
            assert!(
                pod.command
                    .windows(2)
                    .any(|w| w[0] == "--backup" && w[1] == on_host),
                "{label}: {} cleans without --backup {on_host}: {:?}",
                step.id,
                pod.command
            );
            continue;
        }
        let saved = atomic_backup_command(step, backup).unwrap_or_else(|| {
            panic!(
                "{label}: {} does not write {backup} atomically: {:?}",
                step.id, step.commands
            )
        });
        let removes = step
            .commands
            .iter()
            .position(|c| {
                c.contains(" delete ") || c.contains(" uninstall ") || c.contains("kubectl drain ")
            })
            .unwrap_or_else(|| panic!("{label}: {} removes nothing: {:?}", step.id, step.commands));
        assert!(
            saved < removes,
            "{label}: {} removes before it saves: {:?}",
            step.id,
            step.commands
        );
    }
}

/// Every step that runs on a node does it in a pod pinned to the node, attached and waited
/// for (`kubectl run --rm --attach`), never `kubectl debug`.
fn node_pods_attach_and_wait(plan: &Plan, label: &str) {
    for step in all_steps(plan) {
        for c in &step.commands {
            assert!(!c.contains("kubectl debug"), "{label}: {}: {c}", step.id);
        }
        let pods: Vec<(&str, &cniswap_plan::NodePod)> = match &step.action {
            Action::NodeClean { node, pod, .. }
            | Action::NodeRestore { node, pod, .. }
            | Action::NodeFiles { node, pod, .. }
            | Action::NodeService { node, pod, .. } => vec![(node, pod)],
            Action::Verify { probes, .. } => probes
                .iter()
                .filter_map(|p| match p {
                    Probe::NodeInventory { node, pod } | Probe::NodeCheck { node, pod, .. } => {
                        Some((node.as_str(), pod))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (node, pod) in pods {
            assert_eq!(pod.namespace, "kube-system", "{label}: {}", step.id);
            let run = step
                .commands
                .iter()
                .find(|c| c.contains(" run ") && c.contains(&pod.name))
                .unwrap_or_else(|| {
                    panic!(
                        "{label}: {} does not run {}: {:?}",
                        step.id, pod.name, step.commands
                    )
                });
            assert!(run.contains("--rm --attach"), "{label}: {}: {run}", step.id);
            // The words the shell passes to kubectl (values with control characters are
            // rebuilt by the shell and cannot be split here: the hostile tests run those).
            if let Some(words) = shlex::split(run) {
                let spec = words
                    .iter()
                    .find_map(|w| w.strip_prefix("--overrides="))
                    .unwrap_or_else(|| panic!("{label}: {}: no --overrides in {run}", step.id));
                let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
                assert_eq!(
                    spec["spec"]["nodeName"], node,
                    "{label}: {} is not pinned: {run}",
                    step.id
                );
                assert_eq!(
                    spec["spec"]["containers"][0]["securityContext"]["privileged"],
                    true
                );
                assert_eq!(spec["spec"]["tolerations"][0]["operator"], "Exists");
                assert_eq!(
                    spec["spec"]["containers"][0]["command"],
                    serde_json::json!(pod.command)
                );
            }
        }
    }
}

/// The DaemonSets of the plan's sources, as the plan deletes them (namespace, name).
fn source_daemonsets(plan: &Plan) -> Vec<(String, String)> {
    steps(plan)
        .iter()
        .filter_map(|s| match &s.action {
            Action::DeleteObject { object, .. }
                if object.kind == "daemonset" && object.name != "kube-proxy" =>
            {
                Some((
                    object.namespace.clone().unwrap_or_default(),
                    object.name.clone(),
                ))
            }
            _ => None,
        })
        .collect()
}

/// No step deletes a CNI's DaemonSet before the step that makes its replacement win: in
/// rolling plans a verification that the target runs on every node (and every node is
/// switched); in cutover plans the gate that opens the stated outage, after the target's files
/// were downloaded and rendered.
fn no_delete_before_the_replacement_wins(plan: &Plan, label: &str) {
    let steps = steps(plan);
    for (i, step) in steps.iter().enumerate() {
        let Action::DeleteObject { object, .. } = &step.action else {
            continue;
        };
        if object.kind != "daemonset" || object.name == "kube-proxy" {
            continue;
        }
        let before = &steps[..i];
        match plan.strategy.as_str() {
            "rolling" => {
                let proven = before.iter().any(|s| {
                    matches!(&s.action, Action::Verify { probes, .. }
                        if probes.iter().any(|p| matches!(p, Probe::AgentsReady { .. }))
                        && probes.iter().any(|p| matches!(p, Probe::NodesLabelled { .. } | Probe::NoNodeLabelled { .. })))
                });
                assert!(
                    proven,
                    "{label}: {} deletes {}/{} before the target is proven on every node",
                    step.id,
                    object.namespace.as_deref().unwrap_or(""),
                    object.name
                );
            }
            "cutover" => {
                let gate = before.iter().any(|s| {
                    matches!(
                        s.action,
                        Action::ManualGate {
                            starts_outage: true,
                            ..
                        }
                    )
                });
                assert!(
                    gate,
                    "{label}: {} deletes {} outside the announced outage",
                    step.id, object.name
                );
            }
            other => panic!("{label}: a {other} plan deletes DaemonSet {}", object.name),
        }
    }
}

fn is_final_values(action: &Action) -> bool {
    match action {
        Action::HelmUpgrade { values, .. } => values
            .iter()
            .any(|v| v.ends_with("cilium/values-final.yaml")),
        Action::ApplyManifest { file } => file.ends_with("cilium/rendered-final.yaml"),
        Action::TalosPatch { file, .. } => file.ends_with("install-cni.yaml"),
        Action::OmniConfigPatch {
            patch_id: id,
            remove: false,
            ..
        } => id.contains("install-cni"),
        Action::OmniTemplatePatch {
            entry,
            remove: false,
            ..
        } => entry.contains("install-cni"),
        _ => false,
    }
}

/// Every final-values step (Cilium) is followed by an agent restart on every node and then a
/// check that the ConfigMap and the agents carry the new settings.
fn final_values_restart_and_check(plan: &Plan, label: &str) {
    if plan.to != "cilium" {
        return;
    }
    let steps = steps(plan);
    let nodes: Vec<&str> = plan
        .estimates
        .per_node
        .iter()
        .map(|n| n.node.as_str())
        .collect();
    for (i, step) in steps.iter().enumerate() {
        if !is_final_values(&step.action) {
            continue;
        }
        let after = &steps[i + 1..];
        let restart_all = after.iter().position(|s| {
            matches!(&s.action, Action::RolloutRestart { kind, name, .. } if kind == "daemonset" && name == "cilium")
        });
        let restart_each = {
            let mut last = None;
            let mut all = !nodes.is_empty();
            for node in &nodes {
                match after.iter().position(|s| matches!(&s.action, Action::RestartAgent { daemonset, node: n, .. } if daemonset == "cilium" && n == node)) {
                    Some(p) => last = last.max(Some(p)),
                    None => all = false,
                }
            }
            all.then_some(last).flatten()
        };
        let restarted = restart_all.or(restart_each).unwrap_or_else(|| {
            panic!(
                "{label}: {} sets the final values and no agent restart follows",
                step.id
            )
        });
        let checked = after[restarted..].iter().any(|s| {
            matches!(&s.action, Action::VerifySettings { settings, report: Some(_), .. }
                if settings.iter().any(|x| x.key == "kube-proxy-replacement"))
        });
        assert!(
            checked,
            "{label}: {} sets the final values and nothing checks the agents run with them",
            step.id
        );
    }
}

/// kube-proxy goes only when replaced, never with Flannel, and only after the replacement's
/// settings are proven on every agent; a node clean with --include-kube-proxy follows its
/// deletion.
fn kube_proxy_rules(plan: &Plan, label: &str) {
    let steps = steps(plan);
    let deleted = steps.iter().position(
        |s| matches!(&s.action, Action::DeleteObject { object, .. } if object.name == "kube-proxy"),
    );
    let talos_off = steps.iter().any(|s| matches!(&s.action, Action::TalosPatch { file, .. } if file.ends_with("disable-kube-proxy.yaml")));
    if deleted.is_some() || talos_off {
        assert_eq!(plan.kube_proxy, "replace", "{label}");
        assert_ne!(
            plan.to, "flannel",
            "{label}: kube-proxy removed with Flannel as the target"
        );
    }
    if let Some(d) = deleted
        && plan.to == "cilium"
        && plan.strategy == "rolling"
    {
        let proven = steps[..d].iter().any(|s| {
            matches!(&s.action, Action::VerifySettings { settings, .. }
                if settings.iter().any(|x| x.key == "kube-proxy-replacement" && x.value == "true"))
        });
        assert!(
            proven,
            "{label}: kube-proxy is deleted before every agent reports kube-proxy replacement"
        );
    }
    for (i, s) in steps.iter().enumerate() {
        if let Action::NodeClean {
            include_kube_proxy: true,
            ..
        } = &s.action
        {
            // No deletion at all: the snapshot showed kube-proxy absent (unknown presence
            // refuses the plan with a question).
            assert!(
                deleted.is_none_or(|d| d < i),
                "{label}: {} cleans kube-proxy's state before kube-proxy is deleted (node clean refuses while kube-proxy runs)",
                s.id
            );
        }
    }
}

/// Control planes after workers in every per-node sequence.
fn control_planes_last(plan: &Plan, label: &str) {
    let is_cp = |n: &str| {
        plan.estimates
            .per_node
            .iter()
            .any(|e| e.node == n && e.role == "control-plane")
    };
    for phase in &plan.phases {
        let mut seen_control_plane = false;
        for step in &phase.steps {
            if let Action::Drain { node, .. } | Action::RecreatePods { node } = &step.action {
                let cp = is_cp(node);
                assert!(
                    cp || !seen_control_plane,
                    "{label}: worker {node} after a control plane in {}",
                    phase.name
                );
                seen_control_plane |= cp;
            }
        }
    }
}

/// Commands need no jq; Talos patches never reboot by themselves; agent pods are found by
/// label, not by name.
fn no_forbidden_commands(plan: &Plan, label: &str) {
    for c in commands(plan) {
        assert!(!c.contains("jq "), "{label}: needs jq: {c}");
        assert!(
            !c.contains("grep '^pod/"),
            "{label}: finds pods by name: {c}"
        );
        if c.contains("talosctl") && c.contains("patch machineconfig") {
            assert!(c.contains("--mode=no-reboot"), "{label}: may reboot: {c}");
        }
        assert!(!c.contains("set env"), "{label}: {c}");
    }
}
