//! What each step's effect is, as a typed condition the executor reads back from the cluster
//! before the step (already done? then skip) and after it (not there? then the step failed).
//! Derived from the step's `Action` alone, so plan.yaml stays the single source of truth; the
//! shell `check` in plan.yaml is the same condition for people (crates/plan/src/check.rs).

use cniswap_plan::{Action, NodePod, ObjectRef, PatchType, Probe, Setting};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum Effect {
    /// A file (or directory) in the plan directory exists; `non_empty`: and holds something.
    File { path: String, non_empty: bool },
    /// `spec.unschedulable` is true and the node carries `annotation` (whether it was cordoned
    /// before the plan).
    Cordoned { node: String, annotation: String },
    /// The node no longer carries `annotation` (the uncordon read it and acted on it).
    Uncordoned { node: String, annotation: String },
    /// No pod is left on the node except DaemonSet pods, static (mirror) pods and pods that
    /// have finished.
    Drained { node: String },
    /// The label is `value` on the node (every node for `None` node); absent when `value` is None.
    NodeLabel {
        node: Option<String>,
        key: String,
        value: Option<String>,
    },
    /// The DaemonSet's pod nodeSelector has `key=value` (no `key` when `value` is None).
    NodeSelector {
        namespace: String,
        daemonset: String,
        key: String,
        value: Option<String>,
    },
    /// Every object of the file is on the server as written: a server-side dry-run apply of
    /// each changes nothing.
    Applied { file: String },
    /// Every object of the backup is on the server as saved (nothing to do for an empty one).
    Restored { path: String, replace: bool },
    /// The Deployment's spec.replicas and its ready pods equal `replicas`.
    Replicas {
        namespace: String,
        name: String,
        replicas: u32,
    },
    /// `field` (a jsonpath) reads `expected`; without a field, the patch changes nothing.
    Patched {
        object: ObjectRef,
        patch_type: PatchType,
        patch: String,
        field: String,
        expected: String,
    },
    /// The object is gone.
    Absent { object: ObjectRef },
    /// No object of the manifest file is left.
    ManifestAbsent { file: String },
    /// No CRD of these API groups is left.
    CrdsAbsent { groups: Vec<String> },
    /// The node condition is not True.
    ConditionCleared { node: String, condition: String },
    /// `talosctl get machineconfig` on every endpoint shows every field of the patch.
    TalosPatched {
        nodes: Vec<String>,
        endpoints: Vec<String>,
        file: String,
    },
    /// The Omni ConfigPatch exists (or, with `remove`, does not).
    OmniConfigPatch { patch_id: String, remove: bool },
    /// The Omni cluster template file has (or, with `remove`, lacks) the patch entry.
    OmniTemplate {
        template: String,
        entry: String,
        remove: bool,
    },
    /// The node's boot ID differs from the one read before the step, and the node is Ready.
    Rebooted { node: String },
    /// The release is deployed and its description records these values' digest.
    HelmRelease {
        release: String,
        namespace: String,
        values_sha256: String,
    },
    /// No release of that name is left.
    HelmAbsent { release: String, namespace: String },
    /// The release's latest revision is a rollback to the revision in the file (or the release
    /// is gone when the file is empty).
    HelmRolledBack {
        release: String,
        namespace: String,
        revision_file: String,
    },
    /// The DaemonSet is rolled out.
    RolledOut { namespace: String, name: String },
    /// The DaemonSet's pod on the node is newer than the step and Ready.
    AgentRestarted {
        namespace: String,
        daemonset: String,
        selector: String,
        node: String,
    },
    /// The pod template carries the restart token and the rollout is complete.
    Restarted {
        kind: String,
        namespace: String,
        name: String,
        token: String,
    },
    /// The ConfigMap holds each setting (and each agent pod reports the line).
    Settings {
        namespace: String,
        configmap: String,
        settings: Vec<Setting>,
        daemonset: String,
        selector: String,
    },
    /// The Job completed.
    JobComplete { namespace: String, name: String },
    /// None of the node's pod-network pods from before the step is left.
    PodsRecreated { node: String },
    /// The node agent's inventory lists nothing of the CNI on the node.
    NodeCleaned {
        node: String,
        cni: String,
        include_kube_proxy: bool,
        pod: NodePod,
    },
    /// A pod ran on the node and exited 0 in this step (a dry run, a restore, file changes):
    /// its output is in the journal.
    PodRan { node: String, pod: NodePod },
    /// Every probe passes.
    Verified { goal: String, probes: Vec<Probe> },
    /// A person decides: approval is the effect.
    Gate { question: String },
}

/// The effect that proves a step.
pub fn of(action: &Action) -> Effect {
    let s = |x: &String| x.clone();
    match action {
        Action::Backup { file, .. } => Effect::File {
            path: s(file),
            non_empty: false,
        },
        Action::Snapshot { dir, .. } => Effect::File {
            path: s(dir),
            non_empty: false,
        },
        Action::EtcdSnapshot { file, .. }
        | Action::Download { file, .. }
        | Action::RenderManifest { file, .. } => Effect::File {
            path: s(file),
            non_empty: true,
        },
        Action::Cordon { node, annotation } => Effect::Cordoned {
            node: s(node),
            annotation: s(annotation),
        },
        Action::Uncordon { node, annotation } => Effect::Uncordoned {
            node: s(node),
            annotation: s(annotation),
        },
        Action::Drain { node, .. } => Effect::Drained { node: s(node) },
        Action::LabelNode { node, key, value } => Effect::NodeLabel {
            node: Some(s(node)),
            key: s(key),
            value: value.clone(),
        },
        Action::LabelAllNodes { key, value } => Effect::NodeLabel {
            node: None,
            key: s(key),
            value: value.clone(),
        },
        Action::NodeSelector {
            namespace,
            daemonset,
            key,
            value,
        } => Effect::NodeSelector {
            namespace: s(namespace),
            daemonset: s(daemonset),
            key: s(key),
            value: value.clone(),
        },
        Action::ApplyManifest { file } => Effect::Applied { file: s(file) },
        Action::RestoreBackup { path, replace } => Effect::Restored {
            path: s(path),
            replace: *replace,
        },
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => Effect::Replicas {
            namespace: s(namespace),
            name: s(name),
            replicas: *replicas,
        },
        Action::PatchObject {
            object,
            patch_type,
            patch,
            field,
            expected,
            ..
        } => Effect::Patched {
            object: object.clone(),
            patch_type: *patch_type,
            patch: s(patch),
            field: s(field),
            expected: s(expected),
        },
        Action::DeleteObject { object, .. } => Effect::Absent {
            object: object.clone(),
        },
        Action::DeleteManifest { file, .. } => Effect::ManifestAbsent { file: s(file) },
        Action::DeleteCrds { groups, .. } => Effect::CrdsAbsent {
            groups: groups.clone(),
        },
        Action::ClearNodeCondition { node, condition } => Effect::ConditionCleared {
            node: s(node),
            condition: s(condition),
        },
        Action::TalosPatch {
            nodes,
            endpoints,
            file,
            ..
        } => Effect::TalosPatched {
            nodes: nodes.clone(),
            endpoints: endpoints.clone(),
            file: s(file),
        },
        Action::OmniConfigPatch {
            patch_id, remove, ..
        } => Effect::OmniConfigPatch {
            patch_id: s(patch_id),
            remove: *remove,
        },
        Action::OmniTemplatePatch {
            template,
            entry,
            remove,
            ..
        } => Effect::OmniTemplate {
            template: s(template),
            entry: s(entry),
            remove: *remove,
        },
        Action::RebootNode { node, .. } => Effect::Rebooted { node: s(node) },
        Action::HelmUpgrade {
            release,
            namespace,
            values_sha256,
            ..
        } => Effect::HelmRelease {
            release: s(release),
            namespace: s(namespace),
            values_sha256: s(values_sha256),
        },
        Action::HelmUninstall {
            release, namespace, ..
        } => Effect::HelmAbsent {
            release: s(release),
            namespace: s(namespace),
        },
        Action::HelmRollback {
            release,
            namespace,
            revision_file,
        } => Effect::HelmRolledBack {
            release: s(release),
            namespace: s(namespace),
            revision_file: s(revision_file),
        },
        Action::WaitDaemonSetReady { namespace, name } => Effect::RolledOut {
            namespace: s(namespace),
            name: s(name),
        },
        Action::RestartAgent {
            namespace,
            daemonset,
            selector,
            node,
        } => Effect::AgentRestarted {
            namespace: s(namespace),
            daemonset: s(daemonset),
            selector: s(selector),
            node: s(node),
        },
        Action::RolloutRestart {
            kind,
            namespace,
            name,
            token,
        } => Effect::Restarted {
            kind: s(kind),
            namespace: s(namespace),
            name: s(name),
            token: s(token),
        },
        Action::VerifySettings {
            namespace,
            configmap,
            settings,
            daemonset,
            selector,
            ..
        } => Effect::Settings {
            namespace: s(namespace),
            configmap: s(configmap),
            settings: settings.clone(),
            daemonset: s(daemonset),
            selector: s(selector),
        },
        Action::WaitJob {
            namespace, name, ..
        } => Effect::JobComplete {
            namespace: s(namespace),
            name: s(name),
        },
        Action::RecreatePods { node } => Effect::PodsRecreated { node: s(node) },
        Action::NodeClean {
            node,
            cni,
            include_kube_proxy,
            dry_run: false,
            pod,
            ..
        } => Effect::NodeCleaned {
            node: s(node),
            cni: s(cni),
            include_kube_proxy: *include_kube_proxy,
            pod: pod.clone(),
        },
        Action::NodeClean { node, pod, .. }
        | Action::NodeRestore { node, pod, .. }
        | Action::NodeFiles { node, pod, .. }
        | Action::NodeService { node, pod, .. } => Effect::PodRan {
            node: s(node),
            pod: pod.clone(),
        },
        Action::Verify { goal, probes } => Effect::Verified {
            goal: s(goal),
            probes: probes.clone(),
        },
        Action::ManualGate { question, .. } => Effect::Gate {
            question: s(question),
        },
    }
}

/// The node a step works on, if it works on one.
pub fn node_of(action: &Action) -> Option<&str> {
    match action {
        Action::Cordon { node, .. }
        | Action::Drain { node, .. }
        | Action::Uncordon { node, .. }
        | Action::LabelNode { node, .. }
        | Action::RebootNode { node, .. }
        | Action::RecreatePods { node }
        | Action::RestartAgent { node, .. }
        | Action::ClearNodeCondition { node, .. }
        | Action::NodeClean { node, .. }
        | Action::NodeRestore { node, .. }
        | Action::NodeFiles { node, .. }
        | Action::NodeService { node, .. }
        | Action::EtcdSnapshot { node, .. } => Some(node),
        _ => None,
    }
}

pub fn object_text(o: &ObjectRef) -> String {
    match &o.namespace {
        Some(ns) => format!("{ns}/{}/{}", o.kind, o.name),
        None => format!("{}/{}", o.kind, o.name),
    }
}

impl Effect {
    /// Whether the effect can only be judged by facts read before the step (so, on a first
    /// attempt, it is not done yet).
    pub fn needs_memo(&self) -> bool {
        matches!(
            self,
            Effect::Rebooted { .. }
                | Effect::AgentRestarted { .. }
                | Effect::PodsRecreated { .. }
                | Effect::PodRan { .. }
        )
    }

    /// The condition in words, for dry-run and status.
    pub fn describe(&self) -> String {
        match self {
            Effect::File { path, non_empty } => {
                format!(
                    "{path} exists{}",
                    if *non_empty { " and is not empty" } else { "" }
                )
            }
            Effect::Cordoned { node, annotation } => {
                format!("node {node} is unschedulable and carries {annotation}")
            }
            Effect::Uncordoned { node, annotation } => format!(
                "node {node} no longer carries {annotation} (schedulable again, unless it was cordoned before the plan)"
            ),
            Effect::Drained { node } => {
                format!("only DaemonSet, static and finished pods are left on {node}")
            }
            Effect::NodeLabel { node, key, value } => {
                let on = node
                    .as_deref()
                    .map_or("every node".to_string(), |n| format!("node {n}"));
                match value {
                    Some(v) => format!("label {key}={v} on {on}"),
                    None => format!("no label {key} on {on}"),
                }
            }
            Effect::NodeSelector {
                namespace,
                daemonset,
                key,
                value,
            } => match value {
                Some(v) => {
                    format!("{namespace}/DaemonSet/{daemonset} selects nodes with {key}={v}")
                }
                None => format!("{namespace}/DaemonSet/{daemonset} has no nodeSelector {key}"),
            },
            Effect::Applied { file } => {
                format!("every object of {file} is on the server as written")
            }
            Effect::Restored { path, .. } => {
                format!("every object saved in {path} is on the server again")
            }
            Effect::Replicas {
                namespace,
                name,
                replicas,
            } => format!("{namespace}/Deployment/{name} has {replicas} replicas, all settled"),
            Effect::Patched {
                object,
                field,
                expected,
                ..
            } if !field.is_empty() => {
                format!("{} has {field} = {expected}", object_text(object))
            }
            Effect::Patched { object, .. } => format!("{} has the patch", object_text(object)),
            Effect::Absent { object } => format!("{} is gone", object_text(object)),
            Effect::ManifestAbsent { file } => format!("no object of {file} is left"),
            Effect::CrdsAbsent { groups } => {
                format!("no CRD of {} is left", groups.join(", "))
            }
            Effect::ConditionCleared { node, condition } => {
                format!("node {node} has no {condition}=True condition")
            }
            Effect::TalosPatched { nodes, file, .. } => format!(
                "the machine config of {} has every field of {file}",
                nodes.join(", ")
            ),
            Effect::OmniConfigPatch { patch_id, remove } => format!(
                "Omni {} ConfigPatch {patch_id}",
                if *remove { "has no" } else { "has the" }
            ),
            Effect::OmniTemplate {
                template,
                entry,
                remove,
            } => format!(
                "{template} {} {entry}",
                if *remove { "no longer lists" } else { "lists" }
            ),
            Effect::Rebooted { node } => {
                format!("node {node} booted again (new boot ID) and is Ready")
            }
            Effect::HelmRelease {
                release,
                namespace,
                values_sha256,
            } => format!(
                "release {namespace}/{release} is deployed with values sha256:{}",
                &values_sha256[..12.min(values_sha256.len())]
            ),
            Effect::HelmAbsent { release, namespace } => {
                format!("no release {namespace}/{release}")
            }
            Effect::HelmRolledBack {
                release,
                namespace,
                revision_file,
            } => {
                format!("release {namespace}/{release} is back at the revision in {revision_file}")
            }
            Effect::RolledOut { namespace, name } => {
                format!("{namespace}/DaemonSet/{name} is rolled out")
            }
            Effect::AgentRestarted {
                namespace,
                daemonset,
                node,
                ..
            } => format!("the {namespace}/{daemonset} pod on {node} is new and Ready"),
            Effect::Restarted {
                kind,
                namespace,
                name,
                ..
            } => format!("{namespace}/{kind}/{name} restarted and rolled out"),
            Effect::Settings {
                namespace,
                configmap,
                settings,
                ..
            } => format!(
                "{namespace}/ConfigMap/{configmap} holds {}",
                settings
                    .iter()
                    .map(|s| format!("{}={}", s.key, s.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Effect::JobComplete { namespace, name } => {
                format!("{namespace}/Job/{name} completed")
            }
            Effect::PodsRecreated { node } => {
                format!("no pod-network pod on {node} is older than the step")
            }
            Effect::NodeCleaned { node, cni, .. } => {
                format!("the node agent finds nothing of {cni} on {node}")
            }
            Effect::PodRan { node, pod } => {
                format!(
                    "pod {}/{} ran on {node} and exited 0",
                    pod.namespace, pod.name
                )
            }
            Effect::Verified { goal, probes } => {
                format!("{goal} ({} probe(s) pass)", probes.len())
            }
            Effect::Gate { question } => format!("a person answered: {question}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_their_target() {
        assert_eq!(
            of(&Action::LabelAllNodes {
                key: "a/b".into(),
                value: None
            }),
            Effect::NodeLabel {
                node: None,
                key: "a/b".into(),
                value: None
            }
        );
        assert_eq!(
            node_of(&Action::LabelNode {
                node: "w1".into(),
                key: "a/b".into(),
                value: Some("x".into())
            }),
            Some("w1")
        );
    }

    #[test]
    fn only_gates_wait_for_people() {
        assert!(matches!(
            of(&Action::ManualGate {
                question: "q".into(),
                starts_outage: false
            }),
            Effect::Gate { .. }
        ));
        assert!(matches!(
            of(&Action::Verify {
                goal: "g".into(),
                probes: vec![Probe::NodesReady]
            }),
            Effect::Verified { .. }
        ));
    }
}
