//! What the journal holds: one record per event of a run.

use crate::digest::PlanDigest;
use crate::drift::Fingerprint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Facts a step reads before it acts, kept in its start record so that a resumed step judges
/// its effect against the state before its first attempt (a node's boot ID before a reboot,
/// the pods on a node before they are recreated, whether a node was cordoned by someone else).
pub type Memo = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeMark {
    InProgress,
    Done,
    /// Markers removed (the phase was rolled back).
    Cleared,
}

/// Why a step did not complete, in the words an operator needs: what, where, the command and
/// its output, and what to do next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    /// The object or node concerned (`node/w1`, `kube-system/DaemonSet/kube-flannel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The request or command that failed (`POST .../pods/x/eviction`, `helm upgrade ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// The next thing to do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next: String,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            ..Failure::default()
        }
    }
    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }
    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = output.into();
        self
    }
    pub fn next(mut self, next: impl Into<String>) -> Self {
        self.next = next.into();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The first record: which plan (and files) this journal belongs to, and the cluster facts
    /// the drift check compares against.
    Begin {
        digest: PlanDigest,
        cluster: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline: Option<Fingerprint>,
    },
    /// One invocation of apply or rollback.
    Session {
        mode: Mode,
        holder: String,
        version: String,
        args: Vec<String>,
    },
    /// Written (and synced) before a step acts.
    Start {
        step: String,
        phase: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        memo: Memo,
        attempt: u32,
    },
    /// The step ran and its effect was read back.
    Finish {
        step: String,
        duration_ms: u64,
        /// What proved the effect.
        evidence: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output: String,
    },
    /// The step's effect was already in place before it ran.
    Skip {
        step: String,
        evidence: String,
    },
    Fail {
        step: String,
        duration_ms: u64,
        failure: Failure,
    },
    /// A transient error; the step is tried again.
    Retry {
        step: String,
        attempt: u32,
        failure: Failure,
    },
    /// The run stopped at a gate: a manual gate, or a step that needs a person's decision
    /// (a drain blocked by a PodDisruptionBudget). Approval lets it go on.
    Gate {
        step: String,
        question: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<Failure>,
    },
    Approved {
        step: String,
        by: String,
    },
    /// The cluster no longer matches the plan.
    Drift {
        phase: String,
        differences: Vec<String>,
    },
    NodeMark {
        node: String,
        phase: String,
        mark: NodeMark,
    },
    /// Every rollback step of the phase is done: the phase's forward steps count as not run.
    RolledBack {
        phase: String,
    },
    Stopped {
        reason: String,
    },
    /// A cut-off tail was moved aside into `file`.
    Quarantined {
        file: String,
        bytes: usize,
    },
}

impl Event {
    /// The step a record is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::Start { step, .. }
            | Event::Finish { step, .. }
            | Event::Skip { step, .. }
            | Event::Fail { step, .. }
            | Event::Retry { step, .. }
            | Event::Gate { step, .. }
            | Event::Approved { step, .. } => Some(step),
            _ => None,
        }
    }
}
