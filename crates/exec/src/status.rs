//! `cniswap apply status`: where a run stands, from the plan and its journal alone.

use crate::record::{NodeMark, Record};
use crate::state::{State, StepStatus};
use cniswap_plan::{Plan, Step};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub from: Vec<String>,
    pub to: String,
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub began_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_session: Option<Session>,
    /// Who holds the cluster's apply Lease (filled in when the cluster can be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    pub phases: Vec<PhaseReport>,
    pub nodes: Vec<NodeReport>,
    pub journal: JournalInfo,
    /// Files of the plan that differ from when the journal began.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan_changed: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Session {
    pub mode: crate::record::Mode,
    pub holder: String,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct Next {
    pub step: String,
    pub phase: String,
    pub description: String,
    /// Why it is next: pending, interrupted, failed, waiting at a gate.
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub number: usize,
    pub id: String,
    pub name: String,
    /// pending, in-progress, done, rolled-back.
    pub state: String,
    pub done: usize,
    pub total: usize,
    pub steps: Vec<StepReport>,
    pub rollback: Vec<StepReport>,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub id: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub description: String,
    #[serde(flatten)]
    pub status: StepStatus,
}

#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub phase: String,
    pub mark: NodeMark,
}

#[derive(Debug, Serialize)]
pub struct JournalInfo {
    pub records: usize,
    /// Bytes of a cut-off last line (moved aside by the next apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off_tail: Option<usize>,
}

fn action_name(step: &Step) -> String {
    serde_json::to_value(&step.action)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_string))
        .unwrap_or_default()
}

fn step_report(state: &State, step: &Step) -> StepReport {
    StepReport {
        id: step.id.clone(),
        action: action_name(step),
        node: crate::effect::node_of(&step.action).map(str::to_string),
        description: step.description.clone(),
        status: state.status(&step.id).clone(),
    }
}

pub fn report(plan: &Plan, records: &[Record], cut_off_tail: Option<usize>) -> Report {
    let state = State::replay(plan, records);
    let phases = plan
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let done = p.steps.iter().filter(|s| state.is_done(&s.id)).count();
            let phase_state = if state.rolled_back.contains(&p.id) {
                "rolled-back"
            } else if done == p.steps.len() {
                "done"
            } else if state.phase_started(&p.steps)
                || p.rollback.iter().any(|s| state.touched(&s.id))
            {
                "in-progress"
            } else {
                "pending"
            };
            PhaseReport {
                number: i + 1,
                id: p.id.clone(),
                name: p.name.clone(),
                state: phase_state.into(),
                done,
                total: p.steps.len(),
                steps: p.steps.iter().map(|s| step_report(&state, s)).collect(),
                rollback: p.rollback.iter().map(|s| step_report(&state, s)).collect(),
            }
        })
        .collect();
    let next = plan.phases.iter().find_map(|p| {
        p.steps
            .iter()
            .find(|s| !state.is_done(&s.id))
            .map(|s| Next {
                step: s.id.clone(),
                phase: p.id.clone(),
                description: s.description.clone(),
                state: match state.status(&s.id) {
                    StepStatus::Pending => "pending",
                    StepStatus::Running { .. } => "interrupted: runs again first",
                    StepStatus::Failed { .. } => "failed",
                    StepStatus::Gate { .. } => "waiting at a gate",
                    StepStatus::Done { .. } => "done",
                }
                .into(),
            })
    });
    Report {
        cluster: plan.cluster.clone(),
        from: plan.from.clone(),
        to: plan.to.clone(),
        strategy: plan.strategy.clone(),
        began_at: state.began_at.clone(),
        last_session: state.session.as_ref().map(|(mode, holder, at)| Session {
            mode: *mode,
            holder: holder.clone(),
            at: at.clone(),
        }),
        lock: None,
        next,
        phases,
        nodes: state
            .nodes
            .iter()
            .map(|(node, (phase, mark))| NodeReport {
                node: node.clone(),
                phase: phase.clone(),
                mark: *mark,
            })
            .collect(),
        journal: JournalInfo {
            records: records.len(),
            cut_off_tail,
        },
        plan_changed: Vec::new(),
    }
}
