//! The interface between the executor and a cluster: what a step needs done and read. The
//! kube-rs adapter (crates/apply) implements it against an API server; `testing::Memory`
//! implements it in memory for the state-machine tests.

use crate::crash::CrashPoints;
use crate::drift::Fingerprint;
use crate::effect::Effect;
use crate::record::{Failure, Memo, NodeMark, Record};
use cniswap_plan::Step;
use std::time::Duration;

/// The outcome of reading a step's effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// In place; the text says what showed it.
    Done(String),
    /// Not (fully) in place; the text says what is missing.
    NotDone(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionError {
    /// Worth trying again: the API server did not answer, a conflict, a 5xx.
    Transient(Box<Failure>),
    /// The step cannot succeed as things are.
    Failed(Box<Failure>),
    /// The step needs a person's decision (a drain held by a PodDisruptionBudget, a bare pod).
    /// Approving the step (`--approve STEP`) lets the next attempt go further.
    Blocked(Box<Failure>),
}

impl ActionError {
    pub fn transient(f: Failure) -> Self {
        ActionError::Transient(Box::new(f))
    }
    pub fn failed(f: Failure) -> Self {
        ActionError::Failed(Box::new(f))
    }
    pub fn blocked(f: Failure) -> Self {
        ActionError::Blocked(Box::new(f))
    }
    pub fn failure(&self) -> &Failure {
        match self {
            ActionError::Transient(f) | ActionError::Failed(f) | ActionError::Blocked(f) => f,
        }
    }
}

/// What `run` gets besides the step.
pub struct RunContext<'a> {
    /// Facts read before the first attempt (see `Actions::prepare`).
    pub memo: &'a Memo,
    /// A person approved going further than the step's safe course (e.g. deleting pods a
    /// PodDisruptionBudget protects).
    pub approved: bool,
    /// 1 for the first try of the step, more when it runs again after an interruption.
    pub attempt: u32,
    /// The step's own time limit.
    pub timeout: Duration,
    pub crash: &'a CrashPoints,
}

pub trait Actions {
    /// Before the first step: everything the given steps need is here (external tools on PATH,
    /// the agent image). Each missing thing is one failure.
    fn preflight(&mut self, steps: &[&Step]) -> Result<(), Vec<Failure>>;

    /// Reads the facts the step's effect is judged against, before it first acts.
    fn prepare(&mut self, step: &Step) -> Result<Memo, ActionError>;

    /// Reads whether the effect is in place. Never changes anything.
    fn check(&mut self, step: &Step, effect: &Effect, memo: &Memo) -> Result<Check, ActionError>;

    /// Does the step. Must be idempotent: after a crash it runs again from the start. Returns
    /// the output to keep in the journal.
    fn run(&mut self, step: &Step, ctx: &RunContext) -> Result<String, ActionError>;

    /// Writes a node's in-progress / done marker where the cluster keeps it.
    fn mark_node(&mut self, node: &str, phase: &str, mark: NodeMark) -> Result<(), ActionError>;

    /// The facts the drift check compares; `None` when they cannot be read offline.
    fn fingerprint(&mut self) -> Result<Option<Fingerprint>, ActionError>;

    /// Copies a record to the cluster's mirror of the journal. Best effort: the local journal
    /// is the authority, a mirror that cannot be written is reported, not fatal.
    fn mirror(&mut self, record: &Record);

    /// Retires backups of the plan directory once the rollback that used them finished
    /// (`retire::retire`: renamed aside, never deleted). Returns (file, retired name) for
    /// each one that existed.
    fn retire_backups(&mut self, files: &[String]) -> Result<Vec<(String, String)>, ActionError>;

    /// The operations a step would perform, with their arguments (for --dry-run).
    fn describe(&self, step: &Step) -> Vec<String>;
}
