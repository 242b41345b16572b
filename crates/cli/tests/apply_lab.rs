//! `cniswap apply` against the lab's real control plane (kube-apiserver, controller-manager,
//! scheduler) and its kwok nodes: full runs checked object by object, a crash at every step
//! boundary and inside every step, the lock, a PodDisruptionBudget that allows nothing, an API
//! server restarted in the middle of a step, and rollback. The plans are built from the same
//! actions `cniswap plan` writes, limited to what runs without helm, talosctl or omnictl (those
//! are covered by recording fakes in crates/apply/tests/tools.rs). Needs root, Go and the
//! packages scripts/test.sh installs.
//!
//! One lab serves every check: bringing one up is the expensive part. The checks run in order
//! (the cluster has one apply lock), each on its own nodes and objects.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use cniswap_plan::{Action, Estimates, NodeEstimate, ObjectRef, PatchType, Phase, Plan, Step};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

const KWOK_NODES: usize = 12;

struct Ctx {
    lab: Lab,
    work: PathBuf,
    kubectl: PathBuf,
    nodes: Vec<String>,
}

fn node(i: usize) -> String {
    format!("kwok-node-{i:04}")
}

fn command(ctx: &Ctx, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cniswap"));
    command
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove(cniswap_exec::crash::ENV)
        .current_dir(&ctx.work);
    command
}

fn cniswap(ctx: &Ctx, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(ctx, args);
    command.envs(env.iter().copied());
    command.output().unwrap()
}

/// `cniswap apply DIR` in the background.
fn spawn_apply(ctx: &Ctx, dir: &str) -> std::process::Child {
    command(ctx, &["apply", dir])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kubectl(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(&ctx.kubectl)
        .args(args)
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .output()
        .unwrap()
}

fn get(ctx: &Ctx, args: &[&str]) -> Value {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    let out = kubectl(ctx, &all);
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kubectl_apply(ctx: &Ctx, objects: &[Value]) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut child = Command::new(&ctx.kubectl)
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &ctx.lab.kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
}

fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        action,
        description: String::new(),
        commands: Vec::new(),
        notes: Vec::new(),
        done_when: String::new(),
        check: None,
        timeout_seconds: 120,
        pods_recreated: Vec::new(),
        pods_deleted: Vec::new(),
    }
}

fn phase(id: &str, steps: Vec<Step>, rollback: Vec<Step>) -> Phase {
    Phase {
        id: id.into(),
        name: id.into(),
        goal: String::new(),
        steps,
        rollback,
    }
}

/// A plan for the lab: every node of the cluster is the plan's (the drift check refuses
/// nodes it does not know).
fn write_plan(ctx: &Ctx, name: &str, phases: Vec<Phase>) -> PathBuf {
    let plan = Plan {
        schema_version: cniswap_plan::PLAN_SCHEMA_VERSION,
        cluster: "lab".into(),
        platform: "kubeadm".into(),
        // The lab runs no CNI on its kwok nodes: nothing for the drift check to expect.
        from: Vec::new(),
        to: "cilium".into(),
        strategy: "rolling".into(),
        strategy_reason: String::new(),
        kube_proxy: "keep".into(),
        install: "helm".into(),
        agent_image: "cniswap:lab".into(),
        helper_image: ctx.lab.images.busybox.clone(),
        preflight: Vec::new(),
        handled: Vec::new(),
        proven: Vec::new(),
        estimates: Estimates {
            per_node: ctx
                .nodes
                .iter()
                .map(|n| NodeEstimate {
                    node: n.clone(),
                    role: "worker".into(),
                    pods_recreated: 1,
                    interruption_seconds: 0,
                })
                .collect(),
            ..Estimates::default()
        },
        phases,
        artifacts: Vec::new(),
    };
    let dir = ctx.work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plan.yaml"),
        serde_saphyr::to_string(&plan).unwrap(),
    )
    .unwrap();
    dir
}

const CORDON: &str = cniswap_plan::CORDON_ANNOTATION;
const LABEL: &str = "io.cilium.migration/cilium-default";

/// The rolling part of a migration for some nodes, then a finish that patches and deletes
/// objects with backups; each phase with its rollback.
fn rolling_plan(ctx: &Ctx, name: &str, nodes: &[String], config: &str) -> PathBuf {
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("1.{n}")
    };
    for node in nodes {
        let node = node.clone();
        steps.push(step(
            &id(),
            Action::Cordon {
                node: node.clone(),
                annotation: CORDON.into(),
            },
        ));
        steps.push(step(
            &id(),
            Action::Drain {
                node: node.clone(),
                eviction_timeout_seconds: 60,
                bare_pods: Vec::new(),
                bare_pods_backup: None,
            },
        ));
        steps.push(step(
            &id(),
            Action::LabelNode {
                node: node.clone(),
                key: LABEL.into(),
                value: Some("true".into()),
            },
        ));
        steps.push(step(
            &id(),
            Action::RestartAgent {
                namespace: "kube-system".into(),
                daemonset: "new-agent".into(),
                selector: "app=new-agent".into(),
                node: node.clone(),
            },
        ));
        steps.push(step(&id(), Action::RecreatePods { node: node.clone() }));
        steps.push(step(
            &id(),
            Action::Uncordon {
                node: node.clone(),
                annotation: CORDON.into(),
            },
        ));
        rollback.push(step(
            &format!("r1.{}", rollback.len() + 1),
            Action::LabelNode {
                node,
                key: LABEL.into(),
                value: None,
            },
        ));
    }
    let object = |name: &str| ObjectRef::new("ConfigMap", Some("default"), name);
    let finish = vec![
        step(
            "2.1",
            Action::PatchObject {
                object: object(config),
                patch_type: PatchType::Merge,
                patch: r#"{"data":{"mode":"new"}}"#.into(),
                field: "data.mode".into(),
                expected: "new".into(),
                backup: Some(format!("backups/{config}.yaml")),
            },
        ),
        step(
            "2.2",
            Action::DeleteObject {
                object: object(&format!("{config}-old")),
                backup: format!("backups/{config}-old.yaml"),
            },
        ),
    ];
    let finish_rollback = vec![
        step(
            "r2.1",
            Action::RestoreBackup {
                path: format!("backups/{config}-old.yaml"),
                replace: false,
            },
        ),
        step(
            "r2.2",
            Action::RestoreBackup {
                path: format!("backups/{config}.yaml"),
                replace: true,
            },
        ),
    ];
    write_plan(
        ctx,
        name,
        vec![
            phase("1-switch", steps, rollback),
            phase("2-finish", finish, finish_rollback),
        ],
    )
}

/// Two ConfigMaps a plan patches and deletes.
fn configs(ctx: &Ctx, name: &str) {
    kubectl_apply(
        ctx,
        &[
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": "default", "labels": {"owner": "team-a"}},
                   "data": {"mode": "old", "keep": "this"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("{name}-old"), "namespace": "default"},
                   "data": {"legacy": "yes"}}),
        ],
    );
}

/// The pods of `app` on `node`, by name -> uid.
fn pods_on(ctx: &Ctx, namespace: &str, selector: &str, node: &str) -> BTreeMap<String, String> {
    let list = get(
        ctx,
        &[
            "pods",
            "-n",
            namespace,
            "-l",
            selector,
            "--field-selector",
            &format!("spec.nodeName={node}"),
        ],
    );
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What a rolling run leaves on a node, for comparing runs.
fn node_state(ctx: &Ctx, name: &str) -> Value {
    let node = get(ctx, &["node", name]);
    let annotations = &node["metadata"]["annotations"];
    json!({
        "unschedulable": node["spec"]["unschedulable"].as_bool().unwrap_or(false),
        "label": node["metadata"]["labels"][LABEL],
        "cordon-annotation": annotations[CORDON],
        "in-progress": annotations[cniswap_exec::NODE_IN_PROGRESS],
        "done": annotations[cniswap_exec::NODE_DONE].is_string(),
    })
}

fn config_state(ctx: &Ctx, name: &str) -> Value {
    let out = kubectl(
        ctx,
        &["get", "configmap", "-n", "default", name, "-o", "json"],
    );
    if !out.status.success() {
        return Value::Null;
    }
    let cm: Value = serde_json::from_slice(&out.stdout).unwrap();
    json!({"data": cm["data"], "labels": cm["metadata"]["labels"]})
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The agent DaemonSet and an application on the kwok nodes, with a budget that lets one pod
/// go at a time.
fn workloads(ctx: &Ctx) {
    let busybox = ctx.lab.images.busybox.clone();
    let mut web = cniswap_lab::kwok::workload("web", 2 * KWOK_NODES, &busybox);
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(0);
    kubectl_apply(
        ctx,
        &[
            cniswap_lab::kwok::daemonset("new-agent", "kube-system", &busybox),
            web,
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
            }),
        ],
    );
    wait_for("the agent on every kwok node", || {
        let ds = get(ctx, &["daemonset", "-n", "kube-system", "new-agent"]);
        ds["status"]["numberReady"].as_u64() == Some(KWOK_NODES as u64)
    });
    wait_for("web ready", || {
        let d = get(ctx, &["deployment", "-n", "default", "web"]);
        d["status"]["readyReplicas"].as_u64() == Some(2 * KWOK_NODES as u64)
    });
}

/// A rolling run from start to end, then run again (everything already done, nothing acts
/// twice), `apply status`, and rollback of each phase back to the objects as they were.
fn a_full_run_ends_in_the_planned_state_and_rolls_back(ctx: &Ctx) -> Value {
    let nodes = [node(0), node(1)];
    configs(ctx, "full");
    let before_config = (config_state(ctx, "full"), config_state(ctx, "full-old"));
    let before_nodes: Vec<Value> = nodes.iter().map(|n| node_state(ctx, n)).collect();
    let agents: Vec<_> = nodes
        .iter()
        .map(|n| pods_on(ctx, "kube-system", "app=new-agent", n))
        .collect();
    let dir = rolling_plan(ctx, "full", &nodes, "full");
    let dir_s = dir.to_str().unwrap();

    let out = cniswap(ctx, &["apply", dir_s], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    for (n, before) in nodes.iter().zip(&agents) {
        let state = node_state(ctx, n);
        assert_eq!(
            state,
            json!({"unschedulable": false, "label": "true", "cordon-annotation": null,
                   "in-progress": null, "done": true}),
            "{n}"
        );
        let after = pods_on(ctx, "kube-system", "app=new-agent", n);
        assert_eq!(after.len(), 1, "one agent on {n}: {after:?}");
        assert!(
            after.values().all(|uid| !before.values().any(|b| b == uid)),
            "the agent on {n} was restarted: {before:?} -> {after:?}"
        );
    }
    assert_eq!(
        config_state(ctx, "full"),
        json!({"data": {"mode": "new", "keep": "this"}, "labels": {"owner": "team-a"}})
    );
    assert_eq!(config_state(ctx, "full-old"), Value::Null, "deleted");
    let backup = std::fs::read_to_string(dir.join("backups/full-old.yaml")).unwrap();
    assert!(
        backup.contains("legacy") && backup.contains("full-old"),
        "the backup holds the deleted object: {backup}"
    );
    let mirror = get(
        ctx,
        &["configmap", "-n", "kube-system", cniswap_exec::MIRROR_NAME],
    );
    assert!(
        mirror["data"]["2.2"].as_str().unwrap().starts_with("done"),
        "the mirror shows the last step: {mirror:#}"
    );
    assert_eq!(lock_holder(ctx), None, "the lock is released");

    // Again: every step is already done; nothing is restarted or deleted a second time.
    let restarted: Vec<_> = nodes
        .iter()
        .map(|n| pods_on(ctx, "kube-system", "app=new-agent", n))
        .collect();
    let again = cniswap(ctx, &["apply", dir_s], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let unchanged: Vec<_> = nodes
        .iter()
        .map(|n| pods_on(ctx, "kube-system", "app=new-agent", n))
        .collect();
    assert_eq!(restarted, unchanged, "a second apply restarts nothing");
    assert_eq!(
        std::fs::read_to_string(dir.join("backups/full-old.yaml")).unwrap(),
        backup,
        "the backup is not overwritten"
    );

    let status = cniswap(ctx, &["apply", "status", dir_s, "-o", "json"], &[]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status_json: Value = serde_json::from_slice(&status.stdout).unwrap();
    let final_state = json!({
        "nodes": nodes.iter().map(|n| node_state(ctx, n)).collect::<Vec<_>>(),
        "config": config_state(ctx, "full")["data"],
        "old-config": config_state(ctx, "full-old"),
    });

    // Rollback: the later phase first, then the first; the objects are as before the run.
    let back = cniswap(ctx, &["apply", "rollback", dir_s, "--phase", "2"], &[]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    assert_eq!(
        (config_state(ctx, "full"), config_state(ctx, "full-old")),
        before_config,
        "phase 2 rolled back"
    );
    let back = cniswap(ctx, &["apply", "rollback", dir_s, "--phase", "1"], &[]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    let after_nodes: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let mut s = node_state(ctx, n);
            s["done"] = json!(false);
            s
        })
        .collect();
    assert_eq!(after_nodes, before_nodes, "phase 1 rolled back");
    assert!(
        status_json.to_string().contains("2.2"),
        "status lists the steps: {status_json:#}"
    );
    final_state
}

/// A rollback that deletes an object of a kind the cluster never served (the CiliumNodeConfig
/// of a Cilium install that never ran) treats it as gone; a backup of such a kind cannot be
/// put back, and the error names the object and the kind.
fn a_kind_never_installed_rolls_back_as_gone(ctx: &Ctx) {
    let target = node(11);
    let config = || ObjectRef::new("ciliumnodeconfig", Some("kube-system"), "cilium-default");
    let label = |value: Option<&str>| Action::LabelNode {
        node: target.clone(),
        key: "cniswap.test/never-installed".into(),
        value: value.map(str::to_string),
    };
    let dir = write_plan(
        ctx,
        "never-installed",
        vec![phase(
            "1-install",
            vec![
                step(
                    "1.1",
                    Action::Backup {
                        objects: vec![config()],
                        file: "backups/node-config-before.yaml".into(),
                    },
                ),
                step("1.2", label(Some("true"))),
            ],
            vec![
                step(
                    "r1.1",
                    Action::DeleteObject {
                        object: config(),
                        backup: "backups/node-config.yaml".into(),
                    },
                ),
                step("r1.2", label(None)),
            ],
        )],
    );
    let dir_s = dir.to_str().unwrap();
    let out = cniswap(ctx, &["apply", dir_s, "--yes"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let back = cniswap(ctx, &["apply", "rollback", dir_s, "--yes"], &[]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    assert!(
        text(&back).contains("serves no kind called ciliumnodeconfig"),
        "the rollback says why the delete had nothing to do: {}",
        text(&back)
    );
    let labels = get(ctx, &["node", &target])["metadata"]["labels"].clone();
    assert!(
        labels.get("cniswap.test/never-installed").is_none(),
        "the rest of the rollback ran: {labels}"
    );
    assert!(
        !dir.join("backups/node-config.yaml").exists(),
        "no backup of an object that cannot exist"
    );

    let restore = write_plan(
        ctx,
        "never-installed-restore",
        vec![phase(
            "1-install",
            vec![step("1.1", label(Some("true")))],
            vec![
                step(
                    "r1.1",
                    Action::RestoreBackup {
                        path: "backups/node-config.yaml".into(),
                        replace: false,
                    },
                ),
                step("r1.2", label(None)),
            ],
        )],
    );
    std::fs::create_dir_all(restore.join("backups")).unwrap();
    std::fs::write(
        restore.join("backups/node-config.yaml"),
        "# cniswap backup of kube-system/CiliumNodeConfig/cilium-default\n\
         apiVersion: cilium.io/v2\nkind: CiliumNodeConfig\n\
         metadata: {name: cilium-default, namespace: kube-system}\n\
         spec: {nodeSelector: {}, defaults: {cni-exclusive: \"true\"}}\n---\n",
    )
    .unwrap();
    let restore_s = restore.to_str().unwrap();
    let out = cniswap(ctx, &["apply", restore_s, "--yes"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let back = cniswap(ctx, &["apply", "rollback", restore_s, "--yes"], &[]);
    assert_ne!(back.status.code(), Some(0), "{}", text(&back));
    let said = text(&back);
    assert!(
        said.contains("kube-system/CiliumNodeConfig/cilium-default")
            && said.contains("serves no cilium.io/v2 CiliumNodeConfig"),
        "the error names the object and the kind: {said}"
    );
    // Left as the failed rollback found it, then put back by hand for the next checks.
    kubectl(
        ctx,
        &["label", "node", &target, "cniswap.test/never-installed-"],
    );
}

/// Whether the adapter has a crash point inside the step (after the first eviction or pod
/// deletion, between a backup and its delete).
fn has_mid(action: &Action) -> bool {
    matches!(
        action,
        Action::Drain { .. } | Action::RecreatePods { .. } | Action::DeleteObject { .. }
    )
}

/// A crash (abort, as kill -9) at every point of every step, each run resuming what the last
/// left: in one pass before each step starts, after its start record and inside it; in a
/// second pass, on other nodes, after each step acted (before its finish record); in a third,
/// after each finish record. Each pass then runs to the end: the same state as an
/// uninterrupted run, each pod evicted at most once, every backup written once and holding the
/// object as it was.
fn a_crash_anywhere_resumes_to_the_same_state(ctx: &Ctx, uninterrupted: &Value) {
    let passes: [(&str, [String; 2], &[&str]); 3] = [
        (
            "crash",
            [node(2), node(3)],
            &["before-start", "after-start", "mid"],
        ),
        ("crash-run", [node(10), node(11)], &["after-run"]),
        ("crash-finish", [node(8), node(9)], &["after-finish"]),
    ];
    let mut crashes = 0;
    for (name, nodes, points) in passes {
        for n in &nodes {
            assert!(
                !pods_on(ctx, "default", "app=web", n).is_empty(),
                "{n} runs a pod for the drain to evict"
            );
        }
        configs(ctx, name);
        let dir = rolling_plan(ctx, name, &nodes, name);
        let dir_s = dir.to_str().unwrap();
        let plan: Plan =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join("plan.yaml")).unwrap())
                .unwrap();
        for step in plan.phases.iter().flat_map(|p| &p.steps) {
            for point in points
                .iter()
                .filter(|p| **p != "mid" || has_mid(&step.action))
            {
                // --until: a run that did not crash must not go past this step.
                let at = format!("{}:{point}", step.id);
                let out = cniswap(
                    ctx,
                    &["apply", dir_s, "--until", &step.id],
                    &[(cniswap_exec::crash::ENV, &at)],
                );
                assert_eq!(
                    out.status.code(),
                    None,
                    "{at} was not reached: {}",
                    text(&out)
                );
                crashes += 1;
            }
        }
        let out = cniswap(ctx, &["apply", dir_s], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let state = json!({
            "nodes": nodes.iter().map(|n| node_state(ctx, n)).collect::<Vec<_>>(),
            "config": config_state(ctx, name)["data"],
            "old-config": config_state(ctx, &format!("{name}-old")),
        });
        assert_eq!(
            &state, uninterrupted,
            "{name}: the same end as an uninterrupted run"
        );
        let backup = std::fs::read_to_string(dir.join(format!("backups/{name}-old.yaml"))).unwrap();
        assert!(backup.contains("legacy"), "{backup}");
        let patched = std::fs::read_to_string(dir.join(format!("backups/{name}.yaml"))).unwrap();
        assert!(
            patched.contains("old") && !patched.contains("new"),
            "the patch's backup holds the object before the patch: {patched}"
        );
    }
    eprintln!("crashed {crashes} times");
    let evictions = evictions(ctx);
    let twice: Vec<_> = evictions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "pods evicted twice: {twice:?}");
}

/// Successful evictions per pod, from the API server's audit log.
fn evictions(ctx: &Ctx) -> BTreeMap<String, usize> {
    let log = std::fs::read_to_string(ctx.lab.audit_log()).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["stage"] == "ResponseComplete"
            && event["objectRef"]["subresource"] == "eviction"
            && event["responseStatus"]["code"].as_u64() == Some(201)
        {
            let pod = format!(
                "{}/{}",
                event["objectRef"]["namespace"].as_str().unwrap_or(""),
                event["objectRef"]["name"].as_str().unwrap_or("")
            );
            *counts.entry(pod).or_insert(0) += 1;
        }
    }
    counts
}

/// A drain held by a budget that allows no disruption stops at its timeout, naming the budget
/// and the pod, at a gate (exit 3); approving the step lets it delete the pod.
fn a_budget_that_allows_nothing_stops_the_drain_at_a_gate(ctx: &Ctx) {
    let target = node(4);
    let busybox = ctx.lab.images.busybox.clone();
    let mut guarded = cniswap_lab::kwok::workload("guarded", 1, &busybox);
    guarded["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": target});
    kubectl_apply(
        ctx,
        &[
            guarded,
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "guarded", "namespace": "default"},
                "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "guarded"}}},
            }),
        ],
    );
    wait_for("guarded ready", || {
        pods_on(ctx, "default", "app=guarded", &target).len() == 1
    });
    let pod = pods_on(ctx, "default", "app=guarded", &target)
        .into_keys()
        .next()
        .unwrap();
    let mut drain = step(
        "1.2",
        Action::Drain {
            node: target.clone(),
            eviction_timeout_seconds: 5,
            bare_pods: Vec::new(),
            bare_pods_backup: None,
        },
    );
    drain.timeout_seconds = 60;
    let dir = write_plan(
        ctx,
        "budget",
        vec![phase(
            "1-drain",
            vec![
                step(
                    "1.1",
                    Action::Cordon {
                        node: target.clone(),
                        annotation: CORDON.into(),
                    },
                ),
                drain,
            ],
            Vec::new(),
        )],
    );
    let dir_s = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    let out = cniswap(ctx, &["apply", dir_s], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "stops at the eviction timeout"
    );
    assert!(all.contains("guarded") && all.contains(&pod), "{all}");
    assert!(all.contains("PodDisruptionBudget"), "{all}");
    assert!(all.contains("--approve 1.2"), "says how to go on: {all}");
    assert_eq!(
        pods_on(ctx, "default", "app=guarded", &target).len(),
        1,
        "the pod is still there"
    );

    let out = cniswap(ctx, &["apply", dir_s, "--approve", "1.2"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        pods_on(ctx, "default", "app=guarded", &target).is_empty(),
        "approved: the pod is gone from the node"
    );
}

/// Cordons `target` and leaves on it only one pod of `app`, which a budget that allows no
/// disruption protects (the pod tolerates the cordon).
fn held_pod_alone_on(ctx: &Ctx, app: &str, target: &str) {
    let out = kubectl(ctx, &["cordon", target]);
    assert!(out.status.success(), "{}", text(&out));
    let on_target = format!("spec.nodeName={target}");
    let out = kubectl(
        ctx,
        &[
            "delete",
            "pods",
            "-n",
            "default",
            "-l",
            "app=web",
            "--field-selector",
            &on_target,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut held = cniswap_lab::kwok::workload(app, 1, &ctx.lab.images.busybox);
    held["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": target});
    held["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]);
    kubectl_apply(
        ctx,
        &[
            held,
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": app, "namespace": "default"},
                "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": app}}},
            }),
        ],
    );
    wait_for(&format!("{app} ready, alone on {target}"), || {
        pods_on(ctx, "default", &format!("app={app}"), target).len() == 1
            && pods_on(ctx, "default", "app=web", target).is_empty()
    });
}

/// A plan that drains `target`, where a held pod (see `held_pod_alone_on`) keeps it waiting.
fn held_drain_plan(ctx: &Ctx, app: &str, target: &str, name: &str) -> PathBuf {
    held_pod_alone_on(ctx, app, target);
    let mut drain = step(
        "1.1",
        Action::Drain {
            node: target.to_string(),
            eviction_timeout_seconds: 90,
            bare_pods: Vec::new(),
            bare_pods_backup: None,
        },
    );
    drain.timeout_seconds = 120;
    write_plan(ctx, name, vec![phase("1-drain", vec![drain], Vec::new())])
}

/// The workload leaves the node, then its budget goes: a drain of it can finish. In this
/// order: with the budget gone first, an eviction could go through and the ReplicaSet put a
/// replacement on the same node (the pod is pinned there) before the scale-down, so the
/// drain's check found a pod on the node (seen twice).
fn release_held_pod(ctx: &Ctx, app: &str) {
    let out = kubectl(
        ctx,
        &["scale", "deployment", "-n", "default", app, "--replicas=0"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = kubectl(ctx, &["delete", "pdb", "-n", "default", app]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Ctrl-C while a drain waits: the first asks to stop after the step, the second stops at
/// once (exit 130, saying how to resume); the same command then takes over the lock its dead
/// process left on this host and finishes.
fn ctrl_c_twice_stops_and_the_same_command_resumes(ctx: &Ctx) {
    let target = node(6);
    let dir = held_drain_plan(ctx, "paused", &target, "ctrl-c");
    let dir_s = dir.to_str().unwrap();
    let child = spawn_apply(ctx, dir_s);
    let interrupt = || {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    wait_for("the drain started", || {
        std::fs::read_to_string(dir.join(cniswap_exec::JOURNAL_FILE))
            .is_ok_and(|j| j.contains("\"start\""))
    });
    interrupt();
    std::thread::sleep(std::time::Duration::from_secs(2));
    interrupt();
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{all}"
    );
    assert!(all.contains("stopping after the current step"), "{all}");
    assert!(all.contains("run the same command again"), "{all}");
    assert_eq!(pods_on(ctx, "default", "app=paused", &target).len(), 1);

    release_held_pod(ctx, "paused");
    let again = cniswap(ctx, &["apply", dir_s], &[]);
    let all = text(&again);
    assert_eq!(again.status.code(), Some(0), "{all}");
    assert!(all.contains("that process on this host is gone"), "{all}");
    assert!(pods_on(ctx, "default", "app=paused", &target).is_empty());
}

/// The API server stops and starts again while a drain waits on a budget; the step keeps
/// trying through the outage and completes once the budget allows it. Meanwhile a second
/// apply is refused, naming who holds the lock.
fn an_api_server_restart_mid_step_and_a_second_apply(ctx: &mut Ctx) {
    let target = node(5);
    let dir = held_drain_plan(ctx, "held", &target, "restart");
    let other = write_plan(
        ctx,
        "other",
        vec![phase(
            "1-label",
            vec![step(
                "1.1",
                Action::LabelNode {
                    node: node(6),
                    key: "other".into(),
                    value: Some("yes".into()),
                },
            )],
            Vec::new(),
        )],
    );
    let child = spawn_apply(ctx, dir.to_str().unwrap());
    wait_for("the drain started", || lock_holder(ctx).is_some());

    let second = cniswap(ctx, &["apply", other.to_str().unwrap()], &[]);
    let second_text = text(&second);
    assert_eq!(second.status.code(), Some(2), "{second_text}");
    assert!(
        second_text.contains("holds this cluster's lock")
            && second_text.contains(&format!("pid {}", child.id())),
        "names the holder: {second_text}"
    );

    std::thread::sleep(std::time::Duration::from_secs(3));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(ctx.lab.restart_apiserver()).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    release_held_pod(ctx, "held");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(pods_on(ctx, "default", "app=held", &target).is_empty());
}

/// A Lease left by an apply that is gone: refused until it expires (the message says so),
/// taken over at once with --force-unlock.
fn a_stale_lock_is_taken_over_only_when_allowed(ctx: &Ctx) {
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"])
        .output()
        .unwrap();
    let now = String::from_utf8_lossy(&now.stdout).trim().to_string();
    kubectl_apply(
        ctx,
        &[json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": cniswap_exec::LEASE_NAME, "namespace": "kube-system"},
            "spec": {"holderIdentity": "someone@elsewhere pid 1 plan 0123abcd",
                     "leaseDurationSeconds": 600, "renewTime": now, "acquireTime": now},
        })],
    );
    let dir = write_plan(
        ctx,
        "stale",
        vec![phase(
            "1-label",
            vec![step(
                "1.1",
                Action::LabelNode {
                    node: node(7),
                    key: "stale".into(),
                    value: Some("taken".into()),
                },
            )],
            Vec::new(),
        )],
    );
    let dir_s = dir.to_str().unwrap();
    let out = cniswap(ctx, &["apply", dir_s], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("someone@elsewhere") && all.contains("--force-unlock"),
        "{all}"
    );
    let out = cniswap(ctx, &["apply", dir_s, "--force-unlock"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("took over the apply lock from someone@elsewhere"),
        "{all}"
    );
    assert_eq!(
        get(ctx, &["node", &node(7)])["metadata"]["labels"]["stale"],
        "taken"
    );
}

/// Write requests cniswap (not kubectl) made from `since` on, other than to its Lease, from
/// the API server's audit log: `verb resource/name`.
fn writes_since(ctx: &Ctx, since: cniswap_apply::lease::Timestamp) -> Vec<String> {
    let log = std::fs::read_to_string(ctx.lab.audit_log()).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| !matches!(e["verb"].as_str(), Some("get" | "list" | "watch") | None))
        .filter(|e| e["objectRef"]["resource"] != "leases")
        .filter(|e| {
            !e["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("kubectl"))
        })
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<cniswap_apply::lease::Timestamp>().ok())
                .is_some_and(|t| t >= since)
        })
        .map(|e| {
            format!(
                "{} {}/{} {}",
                e["verb"].as_str().unwrap_or(""),
                e["objectRef"]["resource"].as_str().unwrap_or(""),
                e["objectRef"]["name"].as_str().unwrap_or(""),
                e["objectRef"]["subresource"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Fencing: while a drain keeps asking for an eviction, someone else takes the Lease (as an
/// expired lock taken over, or `--force-unlock` from another machine, would). The holder
/// stops before its next write (exit 1, saying it lost the lock) and the API server sees no
/// write from it after the takeover (a second for the last confirmation to go stale).
fn a_holder_that_loses_its_lock_stops_before_its_next_write(ctx: &Ctx) {
    let target = node(9);
    let dir = held_drain_plan(ctx, "fenced", &target, "fenced");
    let child = spawn_apply(ctx, dir.to_str().unwrap());
    wait_for("the drain asks for evictions", || {
        lock_holder(ctx).is_some()
            && std::fs::read_to_string(dir.join(cniswap_exec::JOURNAL_FILE))
                .is_ok_and(|j| j.contains("\"start\""))
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = kubectl(
        ctx,
        &[
            "patch",
            "lease",
            "-n",
            "kube-system",
            cniswap_exec::LEASE_NAME,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"holderIdentity":"thief@elsewhere pid 1 plan 0123abcd"}}"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let taken = cniswap_apply::lease::Timestamp::now();
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "stopped {:?} after the takeover: {all}",
        started.elapsed()
    );
    assert!(all.contains("no longer holds the cluster's lock"), "{all}");
    let stale = taken.checked_add(jiff_seconds(1.5)).unwrap();
    let late = writes_since(ctx, stale);
    assert!(late.is_empty(), "writes after the lock was lost: {late:?}");
    // The thief's Lease is left alone.
    assert_eq!(
        lock_holder(ctx).as_deref(),
        Some("thief@elsewhere pid 1 plan 0123abcd")
    );
    let out = kubectl(
        ctx,
        &[
            "delete",
            "lease",
            "-n",
            "kube-system",
            cniswap_exec::LEASE_NAME,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    release_held_pod(ctx, "fenced");
}

fn jiff_seconds(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s)
}

/// A holder is judged gone only in its own boot and PID namespace: a Lease of this host whose
/// pid does not exist here, but from another PID namespace (a container, a hostNetwork pod
/// with this hostname), or from a cniswap that did not record its namespace, is refused.
fn a_holder_in_another_pid_namespace_is_not_taken_over(ctx: &Ctx) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string();
    let dir = write_plan(
        ctx,
        "pidns",
        vec![phase(
            "1-label",
            vec![step(
                "1.1",
                Action::LabelNode {
                    node: node(7),
                    key: "pidns".into(),
                    value: Some("taken".into()),
                },
            )],
            Vec::new(),
        )],
    );
    for identity in [
        format!("root@{host} pid 4194000 plan 0123abcd boot {boot} pidns 1"),
        format!("root@{host} pid 4194000 plan 0123abcd"),
    ] {
        let now = Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"])
            .output()
            .unwrap();
        let now = String::from_utf8_lossy(&now.stdout).trim().to_string();
        kubectl_apply(
            ctx,
            &[json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": cniswap_exec::LEASE_NAME, "namespace": "kube-system"},
                "spec": {"holderIdentity": identity, "leaseDurationSeconds": 600,
                         "renewTime": now, "acquireTime": now},
            })],
        );
        let out = cniswap(ctx, &["apply", dir.to_str().unwrap()], &[]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{identity}: {all}");
        assert!(all.contains("holds this cluster's lock"), "{all}");
        assert_eq!(lock_holder(ctx).as_deref(), Some(identity.as_str()));
    }
    let out = kubectl(
        ctx,
        &[
            "delete",
            "lease",
            "-n",
            "kube-system",
            cniswap_exec::LEASE_NAME,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(get(ctx, &["node", &node(7)])["metadata"]["labels"]["pidns"].is_null());
}

/// `--force-unlock` of a plan whose journal another apply on this machine has open is refused
/// before the Lease is touched: the running apply keeps its lock and finishes.
fn a_refused_force_unlock_changes_nothing(ctx: &Ctx) {
    let target = node(8);
    let dir = held_drain_plan(ctx, "forced", &target, "forced");
    let dir_s = dir.to_str().unwrap();
    let child = spawn_apply(ctx, dir_s);
    wait_for("the first apply holds the lock", || {
        lock_holder(ctx).is_some_and(|h| h.contains(&format!("pid {} ", child.id())))
    });
    let out = cniswap(ctx, &["apply", dir_s, "--force-unlock"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("in use by another cniswap process"), "{all}");
    let holder = lock_holder(ctx).unwrap_or_default();
    assert!(
        holder.contains(&format!("pid {} ", child.id())),
        "the Lease changed hands: {holder}"
    );
    release_held_pod(ctx, "forced");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Who holds the apply lock, if anyone (a released lock is deleted).
fn lock_holder(ctx: &Ctx) -> Option<String> {
    let out = kubectl(
        ctx,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            cniswap_exec::LEASE_NAME,
            "-o",
            "json",
        ],
    );
    if !out.status.success() {
        return None;
    }
    let lease: Value = serde_json::from_slice(&out.stdout).unwrap();
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// Each check runs even when another failed; the test fails listing all failures.
/// `CNISWAP_APPLY_LAB_ONLY=WORD` runs only the checks whose name contains WORD, to look at
/// some of them quickly (the crash check needs the full run's: give a word both contain).
fn check(failures: &mut Vec<String>, name: &str, f: impl FnOnce()) {
    if let Ok(only) = std::env::var("CNISWAP_APPLY_LAB_ONLY")
        && !name.contains(&only)
    {
        eprintln!("check: {name} (skipped: CNISWAP_APPLY_LAB_ONLY={only})");
        return;
    }
    eprintln!("check: {name}");
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        failures.push(format!("{name}: {message}"));
    }
}

#[test]
fn apply_against_the_lab() {
    let root = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut options = Options::new(root.path().join("lab"));
    options.real_nodes = 0;
    options.kwok_nodes = KWOK_NODES;
    let lab = runtime
        .block_on(Lab::up(options, &mut |m| eprintln!("lab: {m}")))
        .unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut ctx = Ctx {
        lab,
        work,
        kubectl: cniswap_lab::kubectl().unwrap(),
        nodes: Vec::new(),
    };
    let nodes = get(&ctx, &["nodes"]);
    ctx.nodes = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    workloads(&ctx);

    let mut failures = Vec::new();
    let mut uninterrupted = Value::Null;
    check(&mut failures, "full run and rollback", || {
        uninterrupted = a_full_run_ends_in_the_planned_state_and_rolls_back(&ctx);
    });
    // The full run's end state, before its rollback, with the names of its objects.
    check(&mut failures, "crash anywhere", || {
        a_crash_anywhere_resumes_to_the_same_state(&ctx, &uninterrupted)
    });
    check(&mut failures, "budget allows nothing", || {
        a_budget_that_allows_nothing_stops_the_drain_at_a_gate(&ctx)
    });
    check(&mut failures, "API server restart, second apply", || {
        an_api_server_restart_mid_step_and_a_second_apply(&mut ctx)
    });
    check(&mut failures, "Ctrl-C twice, then resume", || {
        ctrl_c_twice_stops_and_the_same_command_resumes(&ctx)
    });
    check(&mut failures, "rollback of a kind never installed", || {
        a_kind_never_installed_rolls_back_as_gone(&ctx)
    });
    check(&mut failures, "stale lock", || {
        a_stale_lock_is_taken_over_only_when_allowed(&ctx)
    });
    check(
        &mut failures,
        "lock: holder in another PID namespace",
        || a_holder_in_another_pid_namespace_is_not_taken_over(&ctx),
    );
    check(&mut failures, "lock: refused --force-unlock", || {
        a_refused_force_unlock_changes_nothing(&ctx)
    });
    check(&mut failures, "lock: fencing", || {
        a_holder_that_loses_its_lock_stops_before_its_next_write(&ctx)
    });
    let down = ctx.lab.down();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    down.unwrap();
}
