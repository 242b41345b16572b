//! The plan: phases of typed steps, each with a precondition that detects "already done", a
//! timeout and the commands a person runs by hand; rollback steps per phase. This is the
//! schema of plan.yaml.
//!
//! Each [`Action`] carries what an executor needs to do the step and to prove its effect
//! without reading shell: objects, labels and their values, files, values digests, expected
//! settings. `commands` and `check` are the same step for people, derived from the same data.

use cniswap_model::Finding;
use serde::{Deserialize, Serialize};

/// Version of the plan.yaml schema. Bump on incompatible changes.
/// 2: typed actions (objects, label keys and values, values digests, agent pods, probes),
/// `notes` and `pods_deleted` on steps, `risks` in the estimates, `agent_image`.
pub const PLAN_SCHEMA_VERSION: u32 = 2;

/// The annotation a Cordon step writes before cordoning: `true` when the node was cordoned
/// already (by someone else), `false` otherwise. Uncordon leaves a `true` node cordoned.
pub const CORDON_ANNOTATION: &str = "cniswap.io/cordoned-before";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub schema_version: u32,
    pub cluster: String,
    pub platform: String,
    /// CNIs running now (the migration's sources).
    pub from: Vec<String>,
    pub to: String,
    pub strategy: String,
    /// Why this strategy (for `--strategy auto`, why auto picked it).
    pub strategy_reason: String,
    /// keep or replace.
    pub kube_proxy: String,
    pub install: String,
    /// The node agent image the plan runs on nodes (`--agent-image`); every node must be able
    /// to pull it.
    pub agent_image: String,
    /// The image of the small pods checks and node file edits run (a shell with wget and
    /// sleep); every node must be able to pull it.
    #[serde(default = "default_helper_image")]
    pub helper_image: String,
    /// Lint findings for this combination of facts, configs and target.
    pub preflight: Vec<Finding>,
    /// Preflight findings the plan itself resolves, and how. They do not block the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled: Vec<Handled>,
    /// The facts the plan acts on that a default could have stood in for (pod CIDR, API
    /// endpoint, migration pool), each with the record or flag that proves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proven: Vec<ProvenFact>,
    pub estimates: Estimates,
    pub phases: Vec<Phase>,
    /// Generated files, relative to the plan directory.
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProvenFact {
    pub fact: String,
    pub value: String,
    /// The record or flag it was read from, or why it was chosen.
    pub source: String,
}

impl ProvenFact {
    pub fn new(fact: &str, sourced: &crate::known::Sourced) -> Self {
        ProvenFact {
            fact: fact.to_string(),
            value: sourced.value.clone(),
            source: sourced.source.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Handled {
    pub rule: String,
    /// `file:line` or the object of the finding.
    pub at: String,
    pub by: String,
}

impl Handled {
    /// Where a finding points, in the form `at` uses.
    pub fn place(finding: &Finding) -> String {
        finding
            .location
            .as_ref()
            .map(|l| format!("{}:{}", l.file, l.line))
            .or_else(|| finding.object.clone())
            .unwrap_or_default()
    }

    pub fn covers(&self, finding: &Finding) -> bool {
        self.rule == finding.rule && self.at == Self::place(finding)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub id: String,
    pub name: String,
    pub goal: String,
    pub steps: Vec<Step>,
    /// How to undo this phase, in order.
    pub rollback: Vec<Step>,
}

impl Phase {
    /// The plan-directory backups this phase's forward steps write (files, or directories for
    /// CRD backups and the snapshot), in step order, each once. A finished rollback of the
    /// phase retires them (the cluster holds their state again), so a later run of the phase
    /// saves the cluster as it is then. Node-side backups (`node clean`) are not among them.
    pub fn backups_written(&self) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        for step in &self.steps {
            let written: Vec<&str> = match &step.action {
                Action::NodeClean { .. } => Vec::new(),
                Action::Snapshot { dir, .. } => vec![dir.as_str()],
                Action::EtcdSnapshot { file, .. } => vec![file.as_str()],
                Action::HelmUpgrade {
                    revision_backup, ..
                } => revision_backup.as_deref().into_iter().collect(),
                other => other.backup().into_iter().collect(),
            };
            for file in written {
                let file = file.trim_end_matches('/').to_string();
                if !file.is_empty() && !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        files
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    pub description: String,
    /// Exact commands for someone executing by hand, in order; each is one `sh -c` script.
    pub commands: Vec<String>,
    /// What a person reads before running the commands (prerequisites, consequences).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How to tell it is already done (re-running a plan is safe).
    pub done_when: String,
    /// A shell command that exits 0 when the step's own effect is in place (and fails when
    /// the API server cannot be reached), where one can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub timeout_seconds: u32,
    /// Pods that are recreated by this step (per-node steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_recreated: Vec<String>,
    /// Pods this step deletes for good (no controller recreates them); backed up first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_deleted: Vec<String>,
}

/// A Kubernetes object. `kind` is what `kubectl get` takes (`daemonset`, `installation`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

/// How a patch is read: a JSON merge patch, a strategic merge patch (lists merge by key), or a
/// JSON patch.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchType::Merge => "merge",
            PatchType::Strategic => "strategic",
            PatchType::Json => "json",
        }
    }
}

/// How a manifest file is produced from its sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "tool", rename_all = "kebab-case")]
pub enum Render {
    /// `helm template` of a pinned chart with values files.
    Helm {
        /// Empty for a chart in the plan directory (`chart` is then its path there).
        repo: String,
        chart: String,
        version: String,
        release: String,
        namespace: String,
        values: Vec<String>,
    },
    /// `kubectl kustomize DIR`: a downloaded upstream manifest with generated patches.
    Kustomize { dir: String },
}

/// A setting a running agent must use: a key of its ConfigMap with its value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// What an agent reports about itself: `command` run in each agent pod (container
/// `container`) prints a line that matches `line` (an extended regular expression).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentReport {
    pub container: String,
    pub command: Vec<String>,
    pub line: String,
}

/// The privileged pod that runs a command on one node (the node agent, or a shell for files):
/// `kube-system` (exempt from Pod Security enforcement on Talos and kubeadm), pinned by
/// nodeName, tolerating every taint, host network and PID namespace, the host's root at /host.
/// Run attached; the step waits for it and fails with its exit code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodePod {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
}

/// Files another CNI renamed (Cilium's `*.cilium_bak`), to rename back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RenameBack {
    pub dir: String,
    pub suffix: String,
}

/// One check of the Verify steps. A later `cniswap verify` invocation is one more kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "probe", rename_all = "kebab-case")]
pub enum Probe {
    /// Every node is Ready.
    NodesReady,
    /// No pod is Pending or failing (other than Succeeded/Running).
    NoPodStuck,
    /// A pod pinned to `from` reaches a pod pinned to `to` (ICMP).
    PodToPod { from: String, to: String },
    /// A pod resolves `name` (a fully qualified name) through cluster DNS.
    Dns { name: String },
    /// A pod reaches `url` (the kubernetes Service).
    Service { url: String },
    /// A new pod pinned to `node` (tolerating its cordon and taints) gets an address in
    /// `cidr`, or in the node's podCIDR when `cidr` is None.
    PodAddress { node: String, cidr: Option<String> },
    /// The DaemonSet runs a Ready pod on every node.
    AgentsReady {
        namespace: String,
        daemonset: String,
    },
    /// Every node carries the label `key=value`.
    NodesLabelled { key: String, value: String },
    /// No node carries the label `key`, except with `value` when given.
    NoNodeLabelled { key: String, except: Option<String> },
    /// The object does not exist.
    Absent { object: ObjectRef },
    /// The object exists.
    Present { object: ObjectRef },
    /// No pod is left in the namespace (a namespace that does not exist has none).
    NoPods { namespace: String },
    /// No pod in `namespace` matches the label `selector` (an agent's pods are gone), on
    /// `node` only when given.
    NoPodsMatching {
        namespace: String,
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// Every object of `resource` (`plural.group`), in `namespace` or all, reads one of
    /// `allowed` at `field` (a jsonpath); none of them existing passes.
    FieldIn {
        resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        field: String,
        allowed: Vec<String>,
    },
    /// The machine configs of `nodes` (at `endpoints`, as talosctl reaches them) contain the
    /// patch in `file`: Omni rendered a ConfigPatch or template entry into them.
    TalosConfigHas {
        nodes: Vec<String>,
        endpoints: Vec<String>,
        file: String,
    },
    /// The node agent on `node` finds no error (NOD001: the first CNI config belongs to the
    /// CNI the node runs).
    NodeInventory { node: String, pod: NodePod },
    /// `cniswap inspect`, `cniswap lint --live` or `cniswap verify` with these arguments exits 0.
    Cniswap { args: Vec<String> },
    /// A check pod on `node` (privileged, host namespaces) exits 0; `what` says what it checks.
    NodeCheck {
        node: String,
        what: String,
        pod: NodePod,
    },
}

/// What a step does, with its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Saves the objects as YAML into `file` (plan directory): written to a temporary file and
    /// renamed, never over an existing non-empty backup. Absent objects are skipped.
    Backup {
        objects: Vec<ObjectRef>,
        file: String,
    },
    /// `cniswap snapshot` of the cluster into `dir`, written whole or not at all; with
    /// `talos_nodes`, their machine configs too (secrets redacted: never written in clear).
    Snapshot {
        dir: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        talos_nodes: Vec<String>,
    },
    /// An etcd snapshot of a control plane (Talos: `talosctl etcd snapshot`) into `file`.
    EtcdSnapshot {
        node: String,
        endpoint: String,
        file: String,
    },
    /// Records whether the node is cordoned already (annotation [`CORDON_ANNOTATION`]), then
    /// cordons it.
    Cordon {
        node: String,
        annotation: String,
    },
    /// Evicts every pod but DaemonSet and mirror pods (PodDisruptionBudgets respected).
    /// `bare_pods` have no controller: they are backed up into `bare_pods_backup` and deleted.
    Drain {
        node: String,
        eviction_timeout_seconds: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bare_pods: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bare_pods_backup: Option<String>,
    },
    /// Uncordons the node unless its [`CORDON_ANNOTATION`] says it was cordoned before the
    /// plan; removes the annotation.
    Uncordon {
        node: String,
        annotation: String,
    },
    /// Sets (`value`) or removes (`None`) a label on one node.
    LabelNode {
        node: String,
        key: String,
        value: Option<String>,
    },
    /// Sets or removes a label on every node.
    LabelAllNodes {
        key: String,
        value: Option<String>,
    },
    /// Sets (`value`) or removes (`None`) one key of a DaemonSet's pod nodeSelector.
    NodeSelector {
        namespace: String,
        daemonset: String,
        key: String,
        value: Option<String>,
    },
    /// Downloads a pinned upstream file into the plan directory.
    Download {
        url: String,
        file: String,
    },
    /// Renders manifests into `file`.
    RenderManifest {
        file: String,
        render: Render,
    },
    /// Applies a manifest file (server-side).
    ApplyManifest {
        file: String,
    },
    /// Puts back the objects of a backup file (or a directory ending in `/`) written by a
    /// Backup or a delete; an empty backup (the object did not exist) puts back nothing.
    /// `replace`: the saved object replaces the live one whole (fields added since go).
    RestoreBackup {
        path: String,
        #[serde(default, skip_serializing_if = "is_false")]
        replace: bool,
    },
    ScaleDeployment {
        namespace: String,
        name: String,
        replicas: u32,
    },
    /// Patches an object; done when `field` (a jsonpath) reads `expected`.
    PatchObject {
        object: ObjectRef,
        patch_type: PatchType,
        patch: String,
        field: String,
        expected: String,
        /// The object is saved here first (atomically), when the patch needs undoing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<String>,
    },
    /// Deletes an object after saving it to `backup`.
    DeleteObject {
        object: ObjectRef,
        backup: String,
    },
    /// Deletes what a manifest file created, after saving those objects to `backup`.
    DeleteManifest {
        file: String,
        backup: String,
    },
    /// Deletes the CRDs of these API groups (their objects go with them), after saving CRDs and
    /// objects into the directory `backup`.
    DeleteCrds {
        groups: Vec<String>,
        backup: String,
    },
    /// Sets a node condition to False (a stopped CNI leaves `NetworkUnavailable=True`).
    ClearNodeCondition {
        node: String,
        condition: String,
    },
    /// `talosctl patch machineconfig --mode=no-reboot` on the role's nodes (`endpoints` are
    /// their addresses).
    TalosPatch {
        role: String,
        nodes: Vec<String>,
        endpoints: Vec<String>,
        file: String,
    },
    /// Creates (or, with `remove`, deletes after a backup) an Omni ConfigPatch.
    OmniConfigPatch {
        /// The ConfigPatch id (`patch_id`: a step has its own `id`).
        patch_id: String,
        cluster: String,
        file: String,
        remove: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<String>,
    },
    /// Adds (or removes) a `patches:` entry of an Omni cluster template document, then syncs.
    OmniTemplatePatch {
        template: String,
        document: String,
        entry: String,
        remove: bool,
    },
    RebootNode {
        node: String,
        address: String,
    },
    /// `helm upgrade --install` with values whose digest is recorded in the release
    /// description (`cniswap values sha256:<values_sha256>`), proving which values run.
    HelmUpgrade {
        release: String,
        namespace: String,
        /// Empty for a chart in the plan directory (`chart` is then its path there).
        repo: String,
        chart: String,
        version: String,
        values: Vec<String>,
        values_sha256: String,
        /// The release's revision before the upgrade is written here (empty: no release yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision_backup: Option<String>,
    },
    HelmUninstall {
        release: String,
        namespace: String,
        backup: String,
    },
    /// Rolls the release back to the revision in `revision_file`; uninstalls it when the file
    /// is empty (there was no release before).
    HelmRollback {
        release: String,
        namespace: String,
        revision_file: String,
    },
    WaitDaemonSetReady {
        namespace: String,
        name: String,
    },
    /// Deletes the agent pod (`selector`) on one node and waits until its replacement is Ready.
    RestartAgent {
        namespace: String,
        daemonset: String,
        selector: String,
        node: String,
    },
    /// Restarts every pod of a DaemonSet or Deployment by setting the pod-template annotation
    /// `cniswap.io/restart` to `token`, and waits for the rollout.
    RolloutRestart {
        kind: String,
        namespace: String,
        name: String,
        token: String,
    },
    /// The agents run with these settings: the ConfigMap holds them, and (when given) every
    /// agent pod reports `report`.
    VerifySettings {
        namespace: String,
        configmap: String,
        settings: Vec<Setting>,
        daemonset: String,
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<AgentReport>,
    },
    /// Waits until a Job completes. `switches_nodes`: the Job cordons and switches nodes
    /// itself, labelling them with this key (Calico's migration controller); apply marks each
    /// node in progress from its cordon until its pod-network pods are Ready again.
    WaitJob {
        namespace: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        switches_nodes: Option<String>,
    },
    /// Deletes the node's pod-network pods so their controllers recreate them on the new CNI.
    RecreatePods {
        node: String,
    },
    /// `cniswap node clean` on the node, in the agent pod (`dry_run`: shows what it would
    /// remove; changes nothing).
    NodeClean {
        node: String,
        cni: String,
        include_kube_proxy: bool,
        dry_run: bool,
        pod: NodePod,
        /// Where the node keeps the backup (host path).
        backup: String,
    },
    /// `cniswap node restore` of a NodeClean backup, in the agent pod.
    NodeRestore {
        node: String,
        backup: String,
        pod: NodePod,
    },
    /// Changes files on the node through a privileged pod (Talos has no shell).
    NodeFiles {
        node: String,
        /// Host paths removed.
        remove: Vec<String>,
        /// Files `<dir>/*<suffix>` renamed back to their name without the suffix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rename_back: Option<RenameBack>,
        pod: NodePod,
    },
    /// Changes a k3s/RKE2 node's own service from a privileged pod in the host's namespaces
    /// (distribution.rs): saves what it changes on the node (`backup`, once), writes the
    /// config drop-in `dropin` with `settings`, removes `remove` (static pod and addon
    /// manifests), restarts the systemd `unit` and waits until it runs again. With `restore`:
    /// puts the saved files back, removes the drop-in, restarts, and retires the backup.
    NodeService {
        node: String,
        unit: String,
        dropin: String,
        settings: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        backup: String,
        #[serde(default, skip_serializing_if = "is_false")]
        restore: bool,
        pod: NodePod,
    },
    /// Checks that prove the cluster works.
    Verify {
        goal: String,
        probes: Vec<Probe>,
    },
    /// A person decides. `starts_outage`: the pod network is down from here (cutover).
    ManualGate {
        question: String,
        #[serde(default, skip_serializing_if = "is_false")]
        starts_outage: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Action {
    /// Whether this step removes something (and so needs a backup before it).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::DeleteObject { .. }
                | Action::DeleteManifest { .. }
                | Action::DeleteCrds { .. }
                | Action::HelmUninstall { .. }
                | Action::NodeClean { dry_run: false, .. }
        ) || matches!(self, Action::Drain { bare_pods, .. } if !bare_pods.is_empty())
    }

    /// Where this step saves what it removes or changes, when it does.
    pub fn backup(&self) -> Option<&str> {
        match self {
            Action::DeleteObject { backup, .. }
            | Action::DeleteManifest { backup, .. }
            | Action::DeleteCrds { backup, .. }
            | Action::HelmUninstall { backup, .. }
            | Action::NodeClean { backup, .. } => Some(backup),
            Action::Drain {
                bare_pods_backup, ..
            } => bare_pods_backup.as_deref(),
            Action::PatchObject { backup, .. } | Action::OmniConfigPatch { backup, .. } => {
                backup.as_deref()
            }
            Action::Backup { file, .. } => Some(file),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Estimates {
    pub per_node: Vec<NodeEstimate>,
    /// Wall time of the whole plan, minutes.
    pub total_minutes: u32,
    /// Longest time any pod network is down, minutes (the MIG009 input).
    pub longest_outage_minutes: u32,
    /// Whether that outage reaches the 1 h projected service-account token lifetime (MIG009).
    pub exceeds_token_lifetime: bool,
    /// What the plan changes beyond the network, and which steps handle it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    pub assumptions: Vec<String>,
}

/// An effect of the migration beyond the pod network (a relaxed PodDisruptionBudget, an API
/// server that is down while its only node restarts), and how the plan handles it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Risk {
    /// The finding it comes from (MIG003, MIG005, MIG007, ...), when one fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub effect: String,
    /// How the plan handles it (steps that back up, relax, and restore).
    pub handling: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeEstimate {
    pub node: String,
    pub role: String,
    pub pods_recreated: usize,
    /// Seconds the node's pods are without network.
    pub interruption_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    pub path: String,
    pub description: String,
}

fn default_helper_image() -> String {
    crate::agent::BUSYBOX.to_string()
}
