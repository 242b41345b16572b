//! The plan: phases of typed steps, each with a precondition that detects "already done", a
//! timeout and the commands a person runs by hand; rollback steps per phase. This is the
//! schema of plan.yaml.

use cniswap_model::Finding;
use serde::{Deserialize, Serialize};

/// Version of the plan.yaml schema. Bump on incompatible changes.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

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
    /// Lint findings for this combination of facts, configs and target.
    pub preflight: Vec<Finding>,
    /// Preflight findings the plan itself resolves, and how. They do not block the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled: Vec<Handled>,
    pub estimates: Estimates,
    pub phases: Vec<Phase>,
    /// Generated files, relative to the plan directory.
    pub artifacts: Vec<Artifact>,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    pub description: String,
    /// Exact commands for someone executing by hand.
    pub commands: Vec<String>,
    /// How to tell it is already done (re-running a plan is safe).
    pub done_when: String,
    /// A shell command that exits 0 when the step is already done, where one can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub timeout_seconds: u32,
    /// Pods that are recreated by this step (per-node steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_recreated: Vec<String>,
}

/// What a step does, with its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Backup {
        objects: Vec<String>,
        file: String,
    },
    Cordon {
        node: String,
    },
    Drain {
        node: String,
    },
    Uncordon {
        node: String,
    },
    LabelNode {
        node: String,
        label: String,
        remove: bool,
    },
    PatchDaemonSetNodeSelector {
        namespace: String,
        name: String,
        selector: String,
    },
    ApplyManifest {
        file: String,
    },
    /// Puts back what a backup directory holds (several files; no single-file check).
    RestoreBackup {
        path: String,
    },
    ScaleDeployment {
        namespace: String,
        name: String,
        replicas: u32,
    },
    /// A JSON merge patch on one object; done when `jsonpath` reads `expected`.
    PatchObject {
        kind: String,
        name: String,
        patch: String,
        jsonpath: String,
        expected: String,
    },
    /// Renders a chart into a file with `helm template` (manifest and Talos URL installs).
    RenderManifest {
        file: String,
        chart: String,
    },
    DeleteObject {
        kind: String,
        namespace: Option<String>,
        name: String,
        backup: String,
    },
    TalosPatch {
        role: String,
        nodes: Vec<String>,
        file: String,
    },
    OmniApply {
        file: String,
    },
    RebootNode {
        node: String,
    },
    HelmUpgrade {
        release: String,
        namespace: String,
        chart: String,
        values: Vec<String>,
    },
    HelmUninstall {
        release: String,
        namespace: String,
        backup: String,
    },
    HelmRollback {
        release: String,
        namespace: String,
    },
    WaitDaemonSetReady {
        namespace: String,
        name: String,
        node: Option<String>,
    },
    RecreatePods {
        node: String,
    },
    NodeClean {
        node: String,
        cni: String,
        include_kube_proxy: bool,
    },
    Verify {
        check: String,
    },
    ManualGate {
        question: String,
    },
}

impl Action {
    /// Whether this step removes something (and so needs a backup before it).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::DeleteObject { .. } | Action::NodeClean { .. } | Action::HelmUninstall { .. }
        )
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
    pub assumptions: Vec<String>,
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
