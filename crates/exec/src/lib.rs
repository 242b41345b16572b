//! The executor's pure core (no cluster client, no async runtime): the journal, the state
//! machine of phases, steps and gates, resume, rollback and the drift rules, over the
//! [`Actions`] interface. `cniswap apply` pairs it with the kube-rs adapter (crates/apply).
//!
//! Crash safety comes from the order of things: a step's start record is on disk before the
//! step acts; every action is idempotent and judged by reading its effect back, so a step
//! interrupted anywhere is simply run again; the facts a step is judged against are read once,
//! before its first attempt, and kept in its start record.

pub mod actions;
pub mod admit;
pub mod crash;
pub mod digest;
pub mod drift;
pub mod effect;
pub mod engine;
pub mod journal;
pub mod key;
pub mod plandir;
pub mod record;
pub mod retire;
pub mod state;
pub mod status;
pub mod testing;

pub use actions::{ActionError, Actions, Check, RunContext};
pub use crash::CrashPoints;
pub use engine::{Executor, Observer, Options, Outcome, Progress, Quiet};
pub use journal::{JOURNAL_FILE, Journal, JournalError};
pub use key::JournalKey;
pub use plandir::{Access, FileError, PlanDir};
pub use record::{Event, Failure, Memo, Mode, NodeMark, Record};

/// Where the cluster keeps the journal's mirror (a ConfigMap in kube-system).
pub const MIRROR_NAME: &str = "cniswap-journal";
/// The Lease that makes a second `apply` on the same cluster wait.
pub const LEASE_NAME: &str = "cniswap-apply";
/// The nodeSelector key cniswap puts on a DaemonSet to hold it to some nodes.
pub const SELECTOR_KEY: &str = "cniswap.io/cni";
/// Node annotations: the step in progress, the last phase done, and a cordon made by cniswap.
pub const NODE_IN_PROGRESS: &str = "cniswap.io/apply-in-progress";
pub const NODE_DONE: &str = "cniswap.io/apply-done";
pub const NODE_CORDONED: &str = "cniswap.io/cordoned";

/// Exit codes of `cniswap apply` (documented in --help and docs/apply.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const GATE: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Complete | Outcome::Until { .. } => exit::OK,
            Outcome::Failed { .. } | Outcome::Drift { .. } => exit::FAILED,
            Outcome::Refused { .. } => exit::INPUT,
            Outcome::Gate { .. } => exit::GATE,
            Outcome::Interrupted { .. } => exit::INTERRUPTED,
        }
    }
}
