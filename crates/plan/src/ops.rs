//! Steps that many strategies use, each built from its typed action: the commands for people
//! are rendered from the same values the action carries.

use crate::backup;
use crate::context::PlanNode;
use crate::model::{Action, CORDON_ANNOTATION, NodePod, ObjectRef, PatchType, Probe};
use crate::shell::{Sh, argv};

/// A step under construction.
#[derive(Clone)]
pub struct S {
    pub action: Action,
    pub description: String,
    pub commands: Vec<Sh>,
    pub notes: Vec<String>,
    pub done_when: String,
    pub timeout: u32,
    pub pods: Vec<String>,
    pub pods_deleted: Vec<String>,
}

pub fn s(
    action: Action,
    description: impl Into<String>,
    commands: Vec<Sh>,
    done_when: impl Into<String>,
    timeout: u32,
) -> S {
    S {
        action,
        description: description.into(),
        commands,
        notes: Vec::new(),
        done_when: done_when.into(),
        timeout,
        pods: Vec::new(),
        pods_deleted: Vec::new(),
    }
}

impl S {
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

pub fn gate(
    question: impl Into<String>,
    description: impl Into<String>,
    commands: Vec<Sh>,
    done_when: impl Into<String>,
) -> S {
    s(
        Action::ManualGate {
            question: question.into(),
            starts_outage: false,
        },
        description,
        commands,
        done_when,
        0,
    )
}

pub fn cordon(node: &PlanNode) -> S {
    let annotation = CORDON_ANNOTATION;
    let path = format!(
        "jsonpath={{.metadata.annotations.{}}}",
        annotation.replace('.', "\\.")
    );
    let key = format!("{annotation}=");
    let mut step = s(
        Action::Cordon {
            node: node.name.clone(),
            annotation: annotation.into(),
        },
        format!(
            "Cordon {}, remembering whether it was cordoned before.",
            node.name
        ),
        vec![
            // Only the first run records the state before the plan.
            sh!(
                "out=$(kubectl get node {} -o {}) && {{ [ -n \"$out\" ] || {{ c=$(kubectl get node {} -o jsonpath='{{.spec.unschedulable}}') && kubectl annotate node {} {}\"${{c:-false}}\"; }}; }}",
                node.name,
                path,
                node.name,
                node.name,
                key
            ),
            sh!("kubectl cordon {}", node.name),
        ],
        format!(
            "{} is SchedulingDisabled and carries {annotation}",
            node.name
        ),
        60,
    );
    if node.unschedulable {
        step = step.note(format!(
            "{} was cordoned when the snapshot was taken: it stays cordoned at the end.",
            node.name
        ));
    }
    step
}

pub fn uncordon(node: &str) -> S {
    let annotation = CORDON_ANNOTATION;
    let path = format!(
        "jsonpath={{.metadata.annotations.{}}}",
        annotation.replace('.', "\\.")
    );
    let remove = format!("{annotation}-");
    s(
        Action::Uncordon {
            node: node.into(),
            annotation: annotation.into(),
        },
        format!("Uncordon {node}, unless it was cordoned before the plan."),
        vec![
            sh!(
                "out=$(kubectl get node {} -o {}) && {{ [ \"$out\" = true ] || kubectl uncordon {}; }}",
                node,
                path,
                node
            ),
            sh!("kubectl annotate node {} {}", node, remove),
        ],
        format!(
            "{node} is schedulable again (or cordoned as before the plan); {annotation} is gone"
        ),
        60,
    )
}

/// Drains a node. Pods without a controller are backed up first and deleted (`--force`):
/// nothing recreates them.
pub fn drain(node: &PlanNode) -> S {
    let timeout = 900;
    let backup = (!node.bare_pods.is_empty()).then(|| {
        format!(
            "backups/bare-pods-{}.yaml",
            crate::names::file_part(&node.name)
        )
    });
    let mut commands = Vec::new();
    let drain_timeout = format!("--timeout={}s", timeout - 60);
    if let Some(file) = &backup {
        let objects: Vec<ObjectRef> = node
            .bare_pods
            .iter()
            .map(|p| {
                let (ns, name) = p.split_once('/').unwrap_or(("default", p));
                ObjectRef::new("pod", Some(ns), name)
            })
            .collect();
        commands.push(backup::save_objects(&objects, file));
        commands.push(sh!(
            "kubectl drain {} --ignore-daemonsets --delete-emptydir-data --force {}",
            node.name,
            drain_timeout
        ));
    } else {
        commands.push(sh!(
            "kubectl drain {} --ignore-daemonsets --delete-emptydir-data {}",
            node.name,
            drain_timeout
        ));
    }
    let mut step = s(
        Action::Drain {
            node: node.name.clone(),
            eviction_timeout_seconds: timeout,
            bare_pods: node.bare_pods.clone(),
            bare_pods_backup: backup.clone(),
        },
        format!(
            "Drain {} (evictions respect PodDisruptionBudgets).",
            node.name
        ),
        commands,
        format!("only DaemonSet and mirror pods remain on {}", node.name),
        timeout,
    );
    step.pods = node
        .pods
        .iter()
        .filter(|p| !node.bare_pods.contains(p))
        .cloned()
        .collect();
    if let Some(file) = backup {
        step.pods_deleted = node.bare_pods.clone();
        step = step.note(format!(
            "{} ha{} no controller: the drain deletes {} and nothing recreates {}; {file} keeps {} (`kubectl apply -f {file}` recreates {}).",
            node.bare_pods.join(", "),
            if node.bare_pods.len() == 1 { "s" } else { "ve" },
            if node.bare_pods.len() == 1 { "it" } else { "them" },
            if node.bare_pods.len() == 1 { "it" } else { "them" },
            if node.bare_pods.len() == 1 { "it" } else { "them" },
            if node.bare_pods.len() == 1 { "it" } else { "them" },
        ));
    }
    step
}

pub fn label_node(node: &str, key: &str, value: Option<&str>, description: String) -> S {
    let (command, done) = match value {
        Some(v) => {
            let label = format!("{key}={v}");
            (
                sh!("kubectl label node {} --overwrite {}", node, label),
                format!("{node} has {key}={v}"),
            )
        }
        None => {
            let label = format!("{key}-");
            (
                sh!("kubectl label node {} {}", node, label),
                format!("{node} has no {key} label"),
            )
        }
    };
    s(
        Action::LabelNode {
            node: node.into(),
            key: key.into(),
            value: value.map(str::to_string),
        },
        description,
        vec![command],
        done,
        60,
    )
}

pub fn label_all(key: &str, value: Option<&str>, description: String) -> S {
    let (command, done) = match value {
        Some(v) => {
            let label = format!("{key}={v}");
            (
                sh!("kubectl label node --all --overwrite {}", label),
                format!("every node has {key}={v}"),
            )
        }
        None => {
            let label = format!("{key}-");
            (
                sh!("kubectl label node --all {}", label),
                format!("no node has the {key} label"),
            )
        }
    };
    s(
        Action::LabelAllNodes {
            key: key.into(),
            value: value.map(str::to_string),
        },
        description,
        vec![command],
        done,
        60,
    )
}

/// Replaces an object with its backup whole (a patch added fields that `apply` would keep).
pub fn replace_from_backup(file: &str, description: String) -> S {
    s(
        Action::RestoreBackup {
            path: file.into(),
            replace: true,
        },
        description,
        vec![backup::replace(file)],
        format!("the object in {file} is as saved (an empty backup restores nothing)"),
        300,
    )
}

/// Sets or removes one key of a DaemonSet's pod nodeSelector.
pub fn node_selector(
    namespace: &str,
    daemonset: &str,
    key: &str,
    value: Option<&str>,
    description: String,
) -> S {
    let command = match value {
        Some(v) => {
            let patch =
                serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {key: v}}}}})
                    .to_string();
            sh!(
                "kubectl -n {} patch daemonset {} --type merge -p {}",
                namespace,
                daemonset,
                patch
            )
        }
        None => {
            let patch =
                serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {key: null}}}}})
                    .to_string();
            sh!(
                "kubectl -n {} patch daemonset {} --type merge -p {}",
                namespace,
                daemonset,
                patch
            )
        }
    };
    let done = match value {
        Some(v) => format!("{namespace}/{daemonset} selects nodes with {key}={v}"),
        None => format!("{namespace}/{daemonset} no longer selects nodes by {key}"),
    };
    s(
        Action::NodeSelector {
            namespace: namespace.into(),
            daemonset: daemonset.into(),
            key: key.into(),
            value: value.map(str::to_string),
        },
        description,
        vec![command],
        done,
        300,
    )
}

fn delete_command(object: &ObjectRef) -> Sh {
    match &object.namespace {
        Some(ns) => sh!(
            "kubectl -n {} delete {} {} --ignore-not-found --timeout=10m",
            ns,
            object.kind,
            object.name
        ),
        None => sh!(
            "kubectl delete {} {} --ignore-not-found --timeout=10m",
            object.kind,
            object.name
        ),
    }
}

fn shown(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{} {ns}/{}", object.kind, object.name),
        None => format!("{} {}", object.kind, object.name),
    }
}

/// The backup file of an object: `backups/<kind>-<namespace>-<name>.yaml`, from safe parts.
pub fn backup_file(object: &ObjectRef) -> String {
    let ns = object
        .namespace
        .as_deref()
        .map(|n| format!("{}-", crate::names::file_part(n)))
        .unwrap_or_default();
    format!(
        "backups/{}-{ns}{}.yaml",
        crate::names::file_part(&object.kind),
        crate::names::file_part(&object.name)
    )
}

/// Backs up an object (atomically, never over an earlier backup), then deletes it.
pub fn delete_object(object: ObjectRef, why: &str) -> (S, S) {
    let backup = backup_file(&object);
    let delete = s(
        Action::DeleteObject {
            object: object.clone(),
            backup: backup.clone(),
        },
        format!("Back up and delete {}{why}.", shown(&object)),
        vec![
            backup::write_once(&backup::get_yaml(&object), &backup),
            delete_command(&object),
        ],
        format!("{} is gone; {backup} holds it", shown(&object)),
        600,
    );
    let restore = restore_backup(
        &backup,
        format!("Recreate {} from its backup.", shown(&object)),
    );
    (delete, restore)
}

pub fn restore_backup(file: &str, description: String) -> S {
    s(
        Action::RestoreBackup {
            path: file.into(),
            replace: false,
        },
        description,
        vec![backup::restore(file)],
        format!("the objects in {file} exist as saved (an empty backup restores nothing)"),
        600,
    )
}

pub fn scale(namespace: &str, name: &str, replicas: u32, description: String) -> S {
    let count = format!("--replicas={replicas}");
    s(
        Action::ScaleDeployment {
            namespace: namespace.into(),
            name: name.into(),
            replicas,
        },
        description,
        vec![sh!(
            "kubectl -n {} scale deployment {} {}",
            namespace,
            name,
            count
        )],
        format!(
            "deployment {namespace}/{name} has {}",
            crate::names::count(replicas as usize, "replica", "replicas")
        ),
        120,
    )
}

/// A patch of one object, backed up first when `backup` is given.
pub fn patch_object(
    object: ObjectRef,
    patch_type: PatchType,
    patch: serde_json::Value,
    field: &str,
    expected: &str,
    backup: Option<String>,
    description: String,
) -> S {
    let patch = patch.to_string();
    let type_arg = format!("--type={}", patch_type.as_str());
    let mut commands = Vec::new();
    if let Some(file) = &backup {
        commands.push(backup::write_once(&backup::get_yaml(&object), file));
    }
    commands.push(match &object.namespace {
        Some(ns) => sh!(
            "kubectl -n {} patch {} {} {} -p {}",
            ns,
            object.kind,
            object.name,
            type_arg,
            patch
        ),
        None => sh!(
            "kubectl patch {} {} {} -p {}",
            object.kind,
            object.name,
            type_arg,
            patch
        ),
    });
    let done = format!("{} reads {expected} at {field}", shown(&object));
    s(
        Action::PatchObject {
            object,
            patch_type,
            patch,
            field: field.into(),
            expected: expected.into(),
            backup,
        },
        description,
        commands,
        done,
        300,
    )
}

/// Deletes a node's agent pod so the DaemonSet recreates it (it reads its settings and
/// writes its CNI config at start), then waits for the DaemonSet.
pub fn restart_agent(
    namespace: &str,
    daemonset: &str,
    selector: &str,
    node: &str,
    description: String,
) -> S {
    let field = format!("spec.nodeName={node}");
    let ds = format!("ds/{daemonset}");
    s(
        Action::RestartAgent {
            namespace: namespace.into(),
            daemonset: daemonset.into(),
            selector: selector.into(),
            node: node.into(),
        },
        description,
        vec![
            sh!(
                "kubectl -n {} delete pod -l {} --field-selector {} --wait=true",
                namespace,
                selector,
                field
            ),
            sh!(
                "kubectl -n {} rollout status {} --timeout=10m",
                namespace,
                ds
            ),
        ],
        format!("the {daemonset} pod on {node} was recreated and is Ready"),
        900,
    )
}

/// Restarts every pod of a DaemonSet or Deployment (a pod-template annotation set to `token`)
/// and waits for the rollout.
pub fn rollout_restart(kind: &str, namespace: &str, name: &str, token: &str, why: &str) -> S {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {crate::check::RESTART_ANNOTATION: token}}}}}).to_string();
    let target = format!("{kind}/{name}");
    s(
        Action::RolloutRestart {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            token: token.into(),
        },
        format!("Restart every pod of {namespace}/{name} {why}, and wait for the rollout."),
        vec![
            sh!(
                "kubectl -n {} patch {} --type merge -p {}",
                namespace,
                target,
                patch
            ),
            sh!(
                "kubectl -n {} rollout status {} --timeout=15m",
                namespace,
                target
            ),
        ],
        format!(
            "{namespace}/{name} runs only pods of the template annotated {}={token}",
            crate::check::RESTART_ANNOTATION
        ),
        1200,
    )
}

pub fn wait_daemonset(namespace: &str, daemonset: &str, description: String) -> S {
    let ds = format!("ds/{daemonset}");
    s(
        Action::WaitDaemonSetReady {
            namespace: namespace.into(),
            name: daemonset.into(),
        },
        description,
        vec![sh!(
            "kubectl -n {} rollout status {} --timeout=10m",
            namespace,
            ds
        )],
        format!("{namespace}/{daemonset} is fully rolled out"),
        900,
    )
}

/// A stopped Calico agent leaves `NetworkUnavailable=True` (CalicoIsDown) on its node, and the
/// node stays unschedulable for new pods until something clears it.
pub fn clear_network_unavailable(node: &str) -> S {
    let condition = "NetworkUnavailable";
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": condition,
        "status": "False",
        "reason": "CniswapCleared",
        "message": "the CNI that set this condition no longer runs here; the new one does",
    }]}})
    .to_string();
    s(
        Action::ClearNodeCondition {
            node: node.into(),
            condition: condition.into(),
        },
        format!(
            "Clear NetworkUnavailable on {node}: the stopped Calico agent set it (CalicoIsDown) and nothing else clears it."
        ),
        vec![sh!(
            "kubectl patch node {} --subresource=status --type=strategic -p {}",
            node,
            patch
        )],
        format!("NetworkUnavailable is not True on {node}"),
        60,
    )
}

/// `cniswap node clean` on one node: first a dry run whose output is shown, then the clean
/// with a backup on the node; each attached and waited for. Returns (steps, restore).
pub fn node_clean(
    node: &str,
    cni: &str,
    include_kube_proxy: bool,
    image: &str,
    plan_id: &str,
) -> (Vec<S>, S) {
    let backup = format!("/var/lib/cniswap/backups/{plan_id}/{cni}");
    let mut args = vec!["node", "clean", "--cni", cni];
    if include_kube_proxy {
        args.push("--include-kube-proxy");
    }
    args.extend(["--root", "/host"]);
    let mut dry = args.clone();
    dry.push("--dry-run");
    let host_backup = format!("/host{backup}");
    let mut real = args.clone();
    real.extend(["--backup", host_backup.as_str()]);
    let dry_pod = crate::agent::pod("clean-dry-run", node, image, crate::agent::cniswap(&dry));
    let real_pod = crate::agent::pod("clean", node, image, crate::agent::cniswap(&real));
    let what = if include_kube_proxy {
        format!("{cni}'s and kube-proxy's")
    } else {
        format!("{cni}'s")
    };
    let clean = |pod: NodePod, dry_run: bool| {
        let commands = crate::agent::run(node, &pod);
        s(
            Action::NodeClean {
                node: node.into(),
                cni: cni.into(),
                include_kube_proxy,
                dry_run,
                pod,
                backup: backup.clone(),
            },
            if dry_run {
                format!(
                    "Show what the node agent would remove of {what} state on {node} (changes nothing)."
                )
            } else {
                format!(
                    "Remove {what} leftovers on {node} (links, routes, iptables, files); the node keeps a backup in {backup}."
                )
            },
            commands,
            if dry_run {
                "the dry run listed what the clean removes, and the agent exited 0".to_string()
            } else {
                format!(
                    "the agent exited 0; `cniswap node inventory` on {node} lists nothing of {cni}"
                )
            },
            600,
        )
    };
    let restore_pod = crate::agent::pod(
        "restore",
        node,
        image,
        crate::agent::cniswap(&[
            "node",
            "restore",
            "--backup",
            host_backup.as_str(),
            "--root",
            "/host",
        ]),
    );
    let restore = s(
        Action::NodeRestore {
            node: node.into(),
            backup: backup.clone(),
            pod: restore_pod.clone(),
        },
        format!("Put back what the clean removed on {node}."),
        crate::agent::run(node, &restore_pod),
        "the agent exited 0 and reported every item restored (or why not)",
        600,
    );
    (vec![clean(dry_pod, true), clean(real_pod, false)], restore)
}

/// Removes files on a node, and renames Cilium's `*.cilium_bak` files in `cilium_bak_dir` back,
/// through a privileged busybox pod.
pub fn node_files(
    node: &str,
    remove: &[&str],
    cilium_bak_dir: Option<&str>,
    description: String,
    image: &str,
) -> S {
    let mut script = Vec::new();
    for path in remove {
        let host = format!("/host{path}");
        script.push(sh!("rm -f {}", host));
    }
    if let Some(dir) = cilium_bak_dir {
        let host = format!("/host{dir}");
        script.push(sh!(
            "for f in {}/*.cilium_bak; do [ -e \"$f\" ] || continue; mv \"$f\" \"${{f%.cilium_bak}}\"; done",
            host
        ));
    }
    let script = script
        .iter()
        .map(Sh::as_str)
        .collect::<Vec<_>>()
        .join(" && ");
    let command = vec!["sh".to_string(), "-c".to_string(), script];
    let pod = crate::agent::pod("files", node, image, command);
    s(
        Action::NodeFiles {
            node: node.into(),
            remove: remove.iter().map(|p| p.to_string()).collect(),
            rename_back: cilium_bak_dir.map(|dir| crate::model::RenameBack {
                dir: dir.into(),
                suffix: ".cilium_bak".into(),
            }),
            pod: pod.clone(),
        },
        description,
        crate::agent::run(node, &pod),
        format!("the pod on {node} exited 0"),
        300,
    )
}

pub fn verify(
    goal: &str,
    probes: Vec<Probe>,
    description: String,
    done_when: impl Into<String>,
) -> S {
    // The commands are written when the plan is complete (they need its helper image).
    let commands = Vec::new();
    s(
        Action::Verify {
            goal: goal.into(),
            probes,
        },
        description,
        commands,
        done_when,
        900,
    )
}

/// `cniswap` with arguments, as one command.
pub fn cniswap(args: &[&str]) -> Sh {
    let mut words = vec!["cniswap"];
    words.extend_from_slice(args);
    argv(&words)
}

/// Deletes the CRDs of `groups` (their objects go with them) after saving CRDs and objects
/// into the directory `dir`, written aside and renamed when every file is in it. Returns the
/// step and its restore (CRDs first, then their objects).
pub fn delete_crds(groups: &[String], dir: &str, description: String, restore: String) -> (S, S) {
    let pattern = crate::check::crd_pattern(groups);
    let tmp = format!("{dir}.tmp");
    let delete = s(
        Action::DeleteCrds {
            groups: groups.to_vec(),
            backup: dir.to_string(),
        },
        description,
        vec![
            // The CRD list is read first: an API server that fails writes no backup.
            sh!(
                "test -e {} || {{ rm -rf {} && mkdir -p {} && crds=$(kubectl get crd -o name) && ( for crd in $(printf '%s\\n' \"$crds\" | grep -E -- {}); do n=${{crd#*/}}; kubectl get crd \"$n\" -o yaml > {}/\"crd-$n.yaml\" && kubectl get \"$n\" -A -o yaml > {}/\"objects-$n.yaml\" || exit 1; done ) && mv {} {}; }}",
                dir,
                tmp,
                tmp,
                pattern,
                tmp,
                tmp,
                tmp,
                dir
            ),
            sh!(
                "crds=$(kubectl get crd -o name) && ( for crd in $(printf '%s\\n' \"$crds\" | grep -E -- {}); do kubectl delete \"$crd\" --timeout=5m || exit 1; done )",
                pattern
            ),
        ],
        format!("no CRD of {} is left", groups.join(", ")),
        600,
    );
    let restore = s(
        Action::RestoreBackup {
            path: format!("{dir}/"),
            replace: false,
        },
        restore,
        crate::backup::restore_crds(dir),
        "the CRDs and their objects exist again",
        600,
    )
    .note("CRDs first: their objects need them.");
    (delete, restore)
}
