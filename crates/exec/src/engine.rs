//! The state machine: phases in order, steps in order, each step read (done already?), written
//! ahead (start record, synced), run, read back (effect there?), recorded; gates stop the run
//! until a person approves; rollback runs the rollback steps of started phases in reverse.

use crate::actions::{ActionError, Actions, Check, RunContext};
use crate::crash::CrashPoints;
use crate::digest::{self, PlanDigest};
use crate::drift;
use crate::effect::{self, Effect};
use crate::journal::{Journal, JournalError};
use crate::record::{Event, Failure, Memo, Mode, NodeMark};
use crate::state::{State, StepStatus};
use cniswap_plan::{Phase, Plan, Step};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    /// Approve every manual gate of the plan (not the escalation of a blocked step).
    pub yes: bool,
    /// Steps approved one by one: gates, and blocked steps allowed to go further.
    pub approve: Vec<String>,
    /// Stop after this step.
    pub until: Option<String>,
    /// Only this phase (its number from 1, or its id).
    pub phase: Option<String>,
    /// Transient errors (an API server restarting) are retried for this long.
    pub retry_for: Duration,
    /// First and longest pause between retries.
    pub backoff: (Duration, Duration),
    /// Who runs this (`user@host pid N`), for the session record.
    pub holder: String,
    pub args: Vec<String>,
    pub version: String,
    pub crash: CrashPoints,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            yes: false,
            approve: Vec::new(),
            until: None,
            phase: None,
            retry_for: Duration::from_secs(180),
            backoff: (Duration::from_millis(500), Duration::from_secs(10)),
            holder: String::new(),
            args: Vec::new(),
            version: String::new(),
            crash: CrashPoints::none(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Everything asked for is done.
    Complete,
    /// Stopped after `--until STEP`.
    Until {
        step: String,
    },
    /// Waiting for a person. `blocked`: the step itself asked (approve it with --approve).
    Gate {
        step: String,
        question: String,
        commands: Vec<String>,
        failure: Option<Failure>,
    },
    Failed {
        step: String,
        failure: Failure,
    },
    /// Stopped at a safe point after Ctrl-C; `next` runs first on resume.
    Interrupted {
        next: Option<String>,
    },
    Drift {
        phase: String,
        differences: Vec<String>,
    },
    /// Could not start: the plan changed, a tool is missing, a bad option.
    Refused {
        failures: Vec<Failure>,
    },
}

pub trait Observer {
    fn on(&mut self, event: Progress<'_>);
}

pub enum Progress<'a> {
    Phase {
        index: usize,
        phase: &'a Phase,
        rollback: bool,
        done: usize,
        total: usize,
    },
    StepStart {
        step: &'a Step,
        node: Option<&'a str>,
        attempt: u32,
    },
    StepDone {
        step: &'a Step,
        skipped: bool,
        evidence: &'a str,
        elapsed: Duration,
    },
    Retry {
        step: &'a Step,
        failure: &'a Failure,
        attempt: u32,
    },
    NodeDone {
        node: &'a str,
    },
    /// Something worth saying that does not stop the run.
    Warning(String),
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {
    fn on(&mut self, _: Progress<'_>) {}
}

pub struct Executor<'a, A: Actions + ?Sized> {
    pub plan: &'a Plan,
    pub digest: PlanDigest,
    pub journal: &'a mut Journal,
    pub actions: &'a mut A,
    pub options: &'a Options,
    pub observer: &'a mut dyn Observer,
    pub stop: &'a AtomicBool,
    state: State,
}

enum StepEnd {
    Done,
    Stop(Outcome),
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a, A: Actions + ?Sized> Executor<'a, A> {
    pub fn new(
        plan: &'a Plan,
        digest: PlanDigest,
        journal: &'a mut Journal,
        actions: &'a mut A,
        options: &'a Options,
        observer: &'a mut dyn Observer,
        stop: &'a AtomicBool,
    ) -> Self {
        let state = State::replay(plan, &journal.records);
        Executor {
            plan,
            digest,
            journal,
            actions,
            options,
            observer,
            stop,
            state,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    fn record(&mut self, event: Event) -> Result<(), JournalError> {
        let record = self.journal.append(event)?.clone();
        self.state.apply(self.plan, &record);
        self.actions.mirror(&record);
        Ok(())
    }

    fn approved_by(&self, step: &str, blocked: bool) -> Option<String> {
        if let Some(by) = self.state.approved.get(step) {
            return Some(by.clone());
        }
        if self.options.approve.iter().any(|s| s == step) {
            return Some(format!("--approve {step}"));
        }
        (self.options.yes && !blocked).then(|| "--yes".to_string())
    }

    /// The journal belongs to this plan, or starts now. Refuses a changed plan.
    fn begin(&mut self, mode: Mode) -> Result<Option<Outcome>, JournalError> {
        if let Some(then) = self.state.digest.clone() {
            let changes = digest::changes(&then, &self.digest);
            if !changes.is_empty() {
                let began = self.state.began_at.clone().unwrap_or_default();
                return Ok(Some(Outcome::Refused {
                    failures: vec![Failure::new(format!(
                        "the plan changed since its journal began ({began}): {}",
                        changes.join("; ")
                    ))
                    .object(self.journal.path().display().to_string())
                    .next(
                        "put the plan's files back as they were to resume; or, to run a new plan, give it its own directory (`cniswap plan --out-dir NEW_DIR`) — what the old journal did stays in the cluster",
                    )]
                }));
            }
        } else {
            if mode == Mode::Rollback {
                return Ok(Some(Outcome::Refused {
                    failures: vec![
                        Failure::new("nothing to roll back: this plan was never applied")
                            .object(self.journal.path().display().to_string())
                            .next("`cniswap apply status PLAN_DIR` shows the journal"),
                    ],
                }));
            }
            let baseline = match self.actions.fingerprint() {
                Ok(f) => f,
                Err(e) => return Ok(Some(self.refuse_cluster(e))),
            };
            if let Some(now) = &baseline {
                let differences = drift::differences(self.plan, None, now, false);
                if !differences.is_empty() {
                    let phase = self
                        .plan
                        .phases
                        .first()
                        .map(|p| p.id.clone())
                        .unwrap_or_default();
                    self.record(Event::Drift {
                        phase: phase.clone(),
                        differences: differences.clone(),
                    })?;
                    return Ok(Some(Outcome::Drift { phase, differences }));
                }
            }
            self.record(Event::Begin {
                digest: self.digest.clone(),
                cluster: self.plan.cluster.clone(),
                baseline,
            })?;
        }
        self.record(Event::Session {
            mode,
            holder: self.options.holder.clone(),
            version: self.options.version.clone(),
            args: self.options.args.clone(),
        })?;
        Ok(None)
    }

    fn refuse_cluster(&self, e: ActionError) -> Outcome {
        Outcome::Refused {
            failures: vec![e.failure().clone()],
        }
    }

    fn drift_check(&mut self, phase: &str) -> Result<Option<Outcome>, JournalError> {
        let now = match self.actions.fingerprint() {
            Ok(Some(now)) => now,
            Ok(None) => return Ok(None),
            Err(e) => return Ok(Some(self.refuse_cluster(e))),
        };
        let started = self.state.any_started(self.plan);
        let differences =
            drift::differences(self.plan, self.state.baseline.as_ref(), &now, started);
        if differences.is_empty() {
            return Ok(None);
        }
        self.record(Event::Drift {
            phase: phase.to_string(),
            differences: differences.clone(),
        })?;
        Ok(Some(Outcome::Drift {
            phase: phase.to_string(),
            differences,
        }))
    }

    fn phase_index(&self) -> Result<Option<usize>, Box<Outcome>> {
        let Some(wanted) = &self.options.phase else {
            return Ok(None);
        };
        let by_number = wanted
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && *n <= self.plan.phases.len())
            .map(|n| n - 1);
        by_number
            .or_else(|| self.plan.phases.iter().position(|p| &p.id == wanted))
            .map(Some)
            .ok_or_else(|| {
                Box::new(Outcome::Refused {
                    failures: vec![
                        Failure::new(format!("--phase {wanted}: no such phase")).next(format!(
                            "give a number from 1 to {} or a phase id ({})",
                            self.plan.phases.len(),
                            self.plan
                                .phases
                                .iter()
                                .map(|p| p.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ],
                })
            })
    }

    fn preflight(&mut self, steps: &[&Step]) -> Option<Outcome> {
        match self.actions.preflight(steps) {
            Ok(()) => None,
            Err(failures) => Some(Outcome::Refused { failures }),
        }
    }

    /// Runs the plan forward from where the journal stands.
    pub fn apply(&mut self) -> Result<Outcome, JournalError> {
        let only = match self.phase_index() {
            Ok(o) => o,
            Err(outcome) => return Ok(*outcome),
        };
        if let Some(until) = &self.options.until
            && !self
                .plan
                .phases
                .iter()
                .any(|p| p.steps.iter().any(|s| &s.id == until))
        {
            return Ok(Outcome::Refused {
                failures: vec![
                    Failure::new(format!("--until {until}: no such step in the plan"))
                        .next("use a step id from plan.yaml or `cniswap apply status`"),
                ],
            });
        }
        if let Some(outcome) = self.begin(Mode::Apply)? {
            return Ok(outcome);
        }
        let plan = self.plan;
        if let Some(index) = only
            && let Some(earlier) = plan.phases[..index]
                .iter()
                .find(|p| !self.state.phase_done(&p.steps))
        {
            return Ok(Outcome::Refused {
                failures: vec![
                    Failure::new(format!(
                        "--phase {}: the earlier phase {} is not done",
                        index + 1,
                        earlier.id
                    ))
                    .next("run the earlier phases first (`cniswap apply PLAN_DIR`)"),
                ],
            });
        }
        let mut in_scope: Vec<&Step> = plan
            .phases
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o == *i))
            .flat_map(|(_, p)| &p.steps)
            .collect();
        // The tools of steps after --until are not needed by this run.
        if let Some(until) = &self.options.until
            && let Some(last) = in_scope.iter().position(|s| &s.id == until)
        {
            in_scope.truncate(last + 1);
        }
        let remaining: Vec<&Step> = in_scope
            .into_iter()
            .filter(|s| !self.state.is_done(&s.id))
            .collect();
        if let Some(outcome) = self.preflight(&remaining) {
            return Ok(outcome);
        }
        for (index, phase) in plan.phases.iter().enumerate() {
            if only.is_some_and(|o| o != index) {
                continue;
            }
            if self.state.phase_done(&phase.steps) {
                // Markers a crash left unwritten after the phase's last step.
                for (k, step) in phase.steps.iter().enumerate() {
                    let node = effect::node_of(&step.action).filter(|n| *n != "all");
                    self.finish_node(phase, k, node)?;
                }
                if let Some(until) = &self.options.until
                    && phase.steps.iter().any(|s| &s.id == until)
                {
                    return self.stop_until(until.clone());
                }
                continue;
            }
            if let Some(outcome) = self.drift_check(&phase.id)? {
                return Ok(outcome);
            }
            let done = phase
                .steps
                .iter()
                .filter(|s| self.state.is_done(&s.id))
                .count();
            self.observer.on(Progress::Phase {
                index,
                phase,
                rollback: false,
                done,
                total: phase.steps.len(),
            });
            for (k, step) in phase.steps.iter().enumerate() {
                let node = effect::node_of(&step.action).filter(|n| *n != "all");
                if !self.state.is_done(&step.id) {
                    if self.stop.load(Ordering::SeqCst) {
                        self.record(Event::Stopped {
                            reason: "interrupted (Ctrl-C)".into(),
                        })?;
                        return Ok(Outcome::Interrupted {
                            next: Some(step.id.clone()),
                        });
                    }
                    if let Some(node) = node
                        && self.state.nodes.get(node)
                            != Some(&(phase.id.clone(), NodeMark::InProgress))
                    {
                        self.mark(node, &phase.id, NodeMark::InProgress)?;
                    }
                    if let StepEnd::Stop(outcome) = self.step(phase, step, false)? {
                        return Ok(outcome);
                    }
                }
                // Also after a resume whose last run stopped between the step and its marker.
                self.finish_node(phase, k, node)?;
                // --until: stop after that step, whether it ran now or was done before.
                if self.options.until.as_deref() == Some(step.id.as_str()) {
                    return self.stop_until(step.id.clone());
                }
            }
        }
        Ok(Outcome::Complete)
    }

    fn stop_until(&mut self, step: String) -> Result<Outcome, JournalError> {
        self.record(Event::Stopped {
            reason: format!("--until {step}"),
        })?;
        Ok(Outcome::Until { step })
    }

    /// Marks the node done when step `k` ends its group of consecutive steps on that node.
    fn finish_node(
        &mut self,
        phase: &Phase,
        k: usize,
        node: Option<&str>,
    ) -> Result<(), JournalError> {
        let Some(node) = node else { return Ok(()) };
        let group_ends = phase
            .steps
            .get(k + 1)
            .is_none_or(|next| effect::node_of(&next.action) != Some(node));
        let group_done = phase.steps[..=k]
            .iter()
            .rev()
            .take_while(|s| effect::node_of(&s.action) == Some(node))
            .all(|s| self.state.is_done(&s.id));
        if group_ends
            && group_done
            && self.state.nodes.get(node) != Some(&(phase.id.clone(), NodeMark::Done))
        {
            self.mark(node, &phase.id, NodeMark::Done)?;
            self.observer.on(Progress::NodeDone { node });
        }
        Ok(())
    }

    fn mark(&mut self, node: &str, phase: &str, mark: NodeMark) -> Result<(), JournalError> {
        // The journal first: a marker in the cluster without its record would be unexplained.
        self.record(Event::NodeMark {
            node: node.to_string(),
            phase: phase.to_string(),
            mark,
        })?;
        if let Err(e) = self.actions.mark_node(node, phase, mark) {
            // Markers help people and other tools; the journal is the authority.
            self.observer.on(Progress::Warning(format!(
                "could not mark node {node} ({}); the journal has it",
                e.failure().message
            )));
        }
        Ok(())
    }

    /// Rolls back started phases, last first (or only `--phase N`).
    pub fn rollback(&mut self) -> Result<Outcome, JournalError> {
        let only = match self.phase_index() {
            Ok(o) => o,
            Err(outcome) => return Ok(*outcome),
        };
        if let Some(outcome) = self.begin(Mode::Rollback)? {
            return Ok(outcome);
        }
        let plan = self.plan;
        let started = |state: &State, p: &Phase| {
            state.phase_started(&p.steps) && !state.rolled_back.contains(&p.id)
        };
        if let Some(index) = only
            && let Some(later) = plan.phases[index + 1..]
                .iter()
                .find(|p| started(&self.state, p))
        {
            return Ok(Outcome::Refused {
                failures: vec![Failure::new(format!(
                    "--phase {}: the later phase {} is applied and not rolled back",
                    index + 1,
                    later.id
                ))
                .next("roll back later phases first (`cniswap apply rollback PLAN_DIR` rolls back every started phase, last first)")],
            });
        }
        let phases: Vec<(usize, &Phase)> = plan
            .phases
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, p)| only.is_none_or(|o| o == *i) && started(&self.state, p))
            .collect();
        let remaining: Vec<&Step> = phases
            .iter()
            .flat_map(|(_, p)| &p.rollback)
            .filter(|s| !self.state.is_done(&s.id))
            .collect();
        if let Some(outcome) = self.preflight(&remaining) {
            return Ok(outcome);
        }
        for (index, phase) in phases {
            if let Some(outcome) = self.drift_check(&phase.id)? {
                return Ok(outcome);
            }
            let done = phase
                .rollback
                .iter()
                .filter(|s| self.state.is_done(&s.id))
                .count();
            self.observer.on(Progress::Phase {
                index,
                phase,
                rollback: true,
                done,
                total: phase.rollback.len(),
            });
            for step in &phase.rollback {
                if self.state.is_done(&step.id) {
                    continue;
                }
                if self.stop.load(Ordering::SeqCst) {
                    self.record(Event::Stopped {
                        reason: "interrupted (Ctrl-C)".into(),
                    })?;
                    return Ok(Outcome::Interrupted {
                        next: Some(step.id.clone()),
                    });
                }
                // A node this phase switches but never reached needs no undoing (no reboot of
                // a node that was never switched). A phase with no step of its own on the node
                // (an install everywhere) changed it as a whole: its node steps always run.
                if let Some(node) = effect::node_of(&step.action).filter(|n| *n != "all")
                    && phase
                        .steps
                        .iter()
                        .any(|s| effect::node_of(&s.action) == Some(node))
                    && !phase.steps.iter().any(|s| {
                        effect::node_of(&s.action) == Some(node) && self.state.touched(&s.id)
                    })
                {
                    self.record(Event::Skip {
                        step: step.id.clone(),
                        evidence: format!("this phase did not change node {node}"),
                    })?;
                    continue;
                }
                if let StepEnd::Stop(outcome) = self.step(phase, step, true)? {
                    return Ok(outcome);
                }
            }
            // The rollback put back what the phase's backups hold: they are retired before
            // the phase counts as rolled back, so a later run of it saves the state as it is
            // then (retire.rs). A crash in between retires nothing twice: a missing file is
            // skipped.
            let backups = phase.backups_written();
            match self.actions.retire_backups(&backups) {
                Ok(retired) if !retired.is_empty() => {
                    self.observer.on(Progress::Warning(format!(
                        "phase {} is rolled back: its backups were retired ({}); a new run of it saves the state as it is then",
                        phase.id,
                        retired
                            .iter()
                            .map(|(from, to)| format!("{from} -> {to}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    let failure = e.failure().clone();
                    return Ok(Outcome::Failed {
                        step: phase
                            .rollback
                            .last()
                            .map(|s| s.id.clone())
                            .unwrap_or_else(|| phase.id.clone()),
                        failure,
                    });
                }
            }
            self.record(Event::RolledBack {
                phase: phase.id.clone(),
            })?;
            let mut nodes: Vec<&str> = phase
                .steps
                .iter()
                .filter_map(|s| effect::node_of(&s.action))
                .filter(|n| *n != "all")
                .collect();
            nodes.sort();
            nodes.dedup();
            for node in nodes {
                if self
                    .state
                    .nodes
                    .get(node)
                    .is_some_and(|(p, _)| p == &phase.id)
                {
                    self.mark(node, &phase.id, NodeMark::Cleared)?;
                }
            }
        }
        Ok(Outcome::Complete)
    }

    /// Calls `f` until it returns something other than a transient error or the budget is
    /// spent; each retry is journaled.
    fn retrying<T>(
        &mut self,
        step: &Step,
        mut f: impl FnMut(&mut A) -> Result<T, ActionError>,
    ) -> Result<Result<T, ActionError>, JournalError> {
        let started = Instant::now();
        let budget = self.options.retry_for;
        let mut pause = self.options.backoff.0;
        let mut attempt = 0;
        loop {
            match f(self.actions) {
                Err(ActionError::Transient(failure)) if started.elapsed() < budget => {
                    attempt += 1;
                    self.observer.on(Progress::Retry {
                        step,
                        failure: &failure,
                        attempt,
                    });
                    self.record(Event::Retry {
                        step: step.id.clone(),
                        attempt,
                        failure: *failure,
                    })?;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(self.options.backoff.1);
                }
                other => return Ok(other),
            }
        }
    }

    fn gate(
        &mut self,
        step: &Step,
        question: String,
        failure: Option<Failure>,
    ) -> Result<StepEnd, JournalError> {
        self.record(Event::Gate {
            step: step.id.clone(),
            question: question.clone(),
            failure: failure.clone(),
        })?;
        Ok(StepEnd::Stop(Outcome::Gate {
            step: step.id.clone(),
            question,
            commands: step.commands.clone(),
            failure,
        }))
    }

    fn fail(
        &mut self,
        step: &Step,
        failure: Failure,
        since: Instant,
    ) -> Result<StepEnd, JournalError> {
        self.record(Event::Fail {
            step: step.id.clone(),
            duration_ms: ms(since.elapsed()),
            failure: failure.clone(),
        })?;
        Ok(StepEnd::Stop(Outcome::Failed {
            step: step.id.clone(),
            failure,
        }))
    }

    fn step(
        &mut self,
        phase: &Phase,
        step: &Step,
        rollback: bool,
    ) -> Result<StepEnd, JournalError> {
        let crash = self.options.crash.clone();
        let effect = effect::of(&step.action);
        let begun = Instant::now();
        if let Effect::Gate { question } = &effect {
            {
                return match self.approved_by(&step.id, false) {
                    Some(by) => {
                        if !self.state.approved.contains_key(&step.id) {
                            self.record(Event::Approved {
                                step: step.id.clone(),
                                by: by.clone(),
                            })?;
                        }
                        let evidence = format!("approved with {by}");
                        self.record(Event::Finish {
                            step: step.id.clone(),
                            duration_ms: 0,
                            evidence: evidence.clone(),
                            output: String::new(),
                        })?;
                        self.observer.on(Progress::StepDone {
                            step,
                            skipped: false,
                            evidence: &evidence,
                            elapsed: Duration::ZERO,
                        });
                        Ok(StepEnd::Done)
                    }
                    None => self.gate(step, question.clone(), None),
                };
            }
        }
        let resumed_memo = self.state.steps.get(&step.id).and_then(|s| s.memo.clone());
        let blocked_before = matches!(
            self.state.status(&step.id),
            StepStatus::Gate {
                failure: Some(_),
                ..
            }
        );
        let empty = Memo::new();
        let before = {
            let memo = resumed_memo.as_ref().unwrap_or(&empty);
            self.retrying(step, |a| a.check(step, &effect, memo))?
        };
        match before {
            Ok(Check::Done(evidence)) => {
                self.record(Event::Skip {
                    step: step.id.clone(),
                    evidence: evidence.clone(),
                })?;
                self.observer.on(Progress::StepDone {
                    step,
                    skipped: true,
                    evidence: &evidence,
                    elapsed: begun.elapsed(),
                });
                return Ok(StepEnd::Done);
            }
            Ok(Check::NotDone(_)) => {}
            Err(e) => return self.fail(step, read_failure(e, "before"), begun),
        }
        crash.point(&step.id, "before-start");
        let memo = match resumed_memo {
            Some(memo) => memo,
            None => match self.retrying(step, |a| a.prepare(step))? {
                Ok(memo) => memo,
                Err(e) => return self.fail(step, e.failure().clone(), begun),
            },
        };
        let attempt = self.state.steps.get(&step.id).map_or(0, |s| s.attempts) + 1;
        let approved = if blocked_before {
            self.approved_by(&step.id, true)
        } else {
            None
        };
        if let Some(by) = &approved
            && !self.state.approved.contains_key(&step.id)
        {
            self.record(Event::Approved {
                step: step.id.clone(),
                by: by.clone(),
            })?;
        }
        let node = effect::node_of(&step.action).map(str::to_string);
        self.record(Event::Start {
            step: step.id.clone(),
            phase: phase.id.clone(),
            rollback,
            node: node.clone(),
            memo: memo.clone(),
            attempt,
        })?;
        self.observer.on(Progress::StepStart {
            step,
            node: node.as_deref(),
            attempt,
        });
        crash.point(&step.id, "after-start");
        let started = Instant::now();
        let timeout = Duration::from_secs(u64::from(step.timeout_seconds.max(1)));
        let run = self.retrying(step, |a| {
            a.run(
                step,
                &RunContext {
                    memo: &memo,
                    approved: approved.is_some(),
                    attempt,
                    timeout,
                    crash: &crash,
                },
            )
        })?;
        let output = match run {
            Ok(output) => output,
            Err(ActionError::Blocked(failure)) if approved.is_none() => {
                let question = format!("{} needs a decision: {}", step.id, failure.message);
                return self.gate(step, question, Some(*failure));
            }
            Err(e) => return self.fail(step, e.failure().clone(), started),
        };
        crash.point(&step.id, "after-run");
        let after = self.retrying(step, |a| a.check(step, &effect, &memo))?;
        let evidence = match after {
            Ok(Check::Done(evidence)) => evidence,
            Ok(Check::NotDone(missing)) => {
                let failure = Failure::new(format!(
                    "the step ran, but its effect is not there: {missing}"
                ))
                .output(output)
                .next(format!(
                    "look at what the step should have done ({}); fix it and run `cniswap apply` again, or roll the phase back",
                    effect.describe()
                ));
                return self.fail(step, failure, started);
            }
            Err(e) => return self.fail(step, read_failure(e, "after"), started),
        };
        self.record(Event::Finish {
            step: step.id.clone(),
            duration_ms: ms(started.elapsed()),
            evidence: evidence.clone(),
            output,
        })?;
        self.observer.on(Progress::StepDone {
            step,
            skipped: false,
            evidence: &evidence,
            elapsed: started.elapsed(),
        });
        crash.point(&step.id, "after-finish");
        Ok(StepEnd::Done)
    }
}

fn read_failure(e: ActionError, when: &str) -> Failure {
    let mut failure = e.failure().clone();
    failure.message = format!(
        "could not read the step's effect {when} it ran: {}",
        failure.message
    );
    failure
}
