//! Where a run stands: the journal's records replayed over the plan. A step is done when its
//! last record is a finish or a skip; a step with a start and nothing after it was interrupted
//! and is tried again (after reading whether its effect is already there). A finished rollback
//! of a phase makes that phase's steps count as not run.

use crate::digest::PlanDigest;
use crate::drift::Fingerprint;
use crate::record::{Event, Failure, Memo, Mode, NodeMark, Record};
use cniswap_plan::{Plan, Step};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    /// Started and not finished: interrupted, or running now.
    Running {
        attempt: u32,
    },
    Done {
        /// Already in place before the step ran.
        skipped: bool,
        evidence: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    Failed {
        failure: Failure,
    },
    /// Waiting at a gate.
    Gate {
        question: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        failure: Option<Failure>,
    },
}

#[derive(Debug, Clone)]
pub struct StepState {
    pub status: StepStatus,
    /// From the latest start record (the first attempt's facts, carried over by each retry).
    pub memo: Option<Memo>,
    pub attempts: u32,
}

impl Default for StepState {
    fn default() -> Self {
        StepState {
            status: StepStatus::Pending,
            memo: None,
            attempts: 0,
        }
    }
}

/// Where each step lives in the plan.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub phase: usize,
    pub rollback: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub steps: HashMap<String, StepState>,
    pub approved: BTreeMap<String, String>,
    /// Phases whose rollback finished (and that were not applied again since).
    pub rolled_back: BTreeSet<String>,
    /// Last marker per node: (phase, mark).
    pub nodes: BTreeMap<String, (String, NodeMark)>,
    pub digest: Option<PlanDigest>,
    pub baseline: Option<Fingerprint>,
    pub began_at: Option<String>,
    /// The latest session: mode and holder.
    pub session: Option<(Mode, String, String)>,
    pub places: HashMap<String, Place>,
    /// Phase ids in plan order.
    pub phase_ids: Vec<String>,
}

impl State {
    pub fn replay(plan: &Plan, records: &[Record]) -> State {
        let mut state = State {
            phase_ids: plan.phases.iter().map(|p| p.id.clone()).collect(),
            ..State::default()
        };
        for (index, phase) in plan.phases.iter().enumerate() {
            for step in &phase.steps {
                state.places.insert(
                    step.id.clone(),
                    Place {
                        phase: index,
                        rollback: false,
                    },
                );
            }
            for step in &phase.rollback {
                state.places.insert(
                    step.id.clone(),
                    Place {
                        phase: index,
                        rollback: true,
                    },
                );
            }
        }
        for record in records {
            state.apply(plan, record);
        }
        state
    }

    fn entry(&mut self, step: &str) -> &mut StepState {
        self.steps.entry(step.to_string()).or_default()
    }

    /// A forward step of a rolled-back phase was done again: the phase is applied again.
    fn reapplied(&mut self, step: &str) {
        if let Some(place) = self.places.get(step).copied()
            && !place.rollback
            && let Some(id) = self.phase_ids.get(place.phase).cloned()
        {
            self.rolled_back.remove(&id);
        }
    }

    pub fn apply(&mut self, plan: &Plan, record: &Record) {
        if let Event::Finish { step, .. } | Event::Skip { step, .. } = &record.event {
            self.reapplied(step);
        }
        match &record.event {
            Event::Begin {
                digest, baseline, ..
            } => {
                self.digest = Some(digest.clone());
                self.baseline = baseline.clone();
                self.began_at = Some(record.at.clone());
            }
            Event::Session { mode, holder, .. } => {
                self.session = Some((*mode, holder.clone(), record.at.clone()));
            }
            Event::Start {
                step,
                phase,
                rollback,
                memo,
                attempt,
                ..
            } => {
                if !rollback {
                    self.rolled_back.remove(phase);
                }
                let entry = self.entry(step);
                entry.status = StepStatus::Running { attempt: *attempt };
                entry.memo = Some(memo.clone());
                entry.attempts = *attempt;
            }
            Event::Finish {
                step,
                evidence,
                duration_ms,
                ..
            } => {
                self.entry(step).status = StepStatus::Done {
                    skipped: false,
                    evidence: evidence.clone(),
                    duration_ms: Some(*duration_ms),
                };
            }
            Event::Skip { step, evidence } => {
                self.entry(step).status = StepStatus::Done {
                    skipped: true,
                    evidence: evidence.clone(),
                    duration_ms: None,
                };
            }
            Event::Fail { step, failure, .. } => {
                self.entry(step).status = StepStatus::Failed {
                    failure: failure.clone(),
                };
            }
            Event::Gate {
                step,
                question,
                failure,
            } => {
                self.entry(step).status = StepStatus::Gate {
                    question: question.clone(),
                    failure: failure.clone(),
                };
            }
            Event::Approved { step, by } => {
                self.approved.insert(step.clone(), by.clone());
            }
            Event::NodeMark { node, phase, mark } => {
                self.nodes.insert(node.clone(), (phase.clone(), *mark));
            }
            Event::RolledBack { phase } => {
                if let Some(p) = plan.phases.iter().find(|p| &p.id == phase) {
                    for step in p.steps.iter().chain(&p.rollback) {
                        self.steps.remove(&step.id);
                        self.approved.remove(&step.id);
                    }
                }
                self.rolled_back.insert(phase.clone());
            }
            Event::Retry { .. }
            | Event::Drift { .. }
            | Event::Stopped { .. }
            | Event::Quarantined { .. } => {}
        }
    }

    pub fn status(&self, step: &str) -> &StepStatus {
        const PENDING: StepStatus = StepStatus::Pending;
        self.steps.get(step).map(|s| &s.status).unwrap_or(&PENDING)
    }

    pub fn is_done(&self, step: &str) -> bool {
        matches!(self.status(step), StepStatus::Done { .. })
    }

    /// Whether the step acted on the cluster (started at least once) in the current epoch.
    pub fn touched(&self, step: &str) -> bool {
        match self.status(step) {
            StepStatus::Pending | StepStatus::Gate { .. } => false,
            StepStatus::Done { skipped, .. } => !skipped,
            StepStatus::Running { .. } | StepStatus::Failed { .. } => true,
        }
    }

    pub fn phase_done(&self, steps: &[Step]) -> bool {
        steps.iter().all(|s| self.is_done(&s.id))
    }

    /// Some forward step of the phase did something, or is underway.
    pub fn phase_started(&self, steps: &[Step]) -> bool {
        steps.iter().any(|s| {
            !matches!(
                self.status(&s.id),
                StepStatus::Pending | StepStatus::Gate { .. }
            )
        })
    }

    /// Any forward step of any phase started.
    pub fn any_started(&self, plan: &Plan) -> bool {
        plan.phases.iter().any(|p| self.phase_started(&p.steps))
    }

    /// The first forward step that is not done.
    pub fn next_step<'p>(&self, plan: &'p Plan) -> Option<&'p Step> {
        plan.phases
            .iter()
            .flat_map(|p| &p.steps)
            .find(|s| !self.is_done(&s.id))
    }
}
