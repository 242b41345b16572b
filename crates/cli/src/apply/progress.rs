//! Progress while a plan runs: on a terminal, a bar for the phase and one for the node being
//! switched; in a pipe, one plain line per step.

use super::report::esc;
use cniswap_exec::{Observer, Progress as Event};
use cniswap_plan::Plan;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Progress {
    terminal: bool,
    bars: MultiProgress,
    phase: Option<ProgressBar>,
    node: Option<(String, ProgressBar)>,
    phases: usize,
    /// Steps per node in the current phase.
    node_steps: Vec<(String, u64)>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress {
    pub fn new(plan: &Plan) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bars = MultiProgress::with_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Progress {
            terminal,
            bars,
            phase: None,
            node: None,
            phases: plan.phases.len(),
            node_steps: Vec::new(),
        }
    }

    fn line(&self, text: String) {
        if self.terminal {
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.node.take() {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.phase.take() {
            bar.finish_and_clear();
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Observer for Progress {
    fn on(&mut self, event: Event<'_>) {
        match event {
            Event::Phase {
                index,
                phase,
                rollback,
                done,
                total,
            } => {
                self.finish();
                let what = if rollback {
                    "rollback of phase"
                } else {
                    "phase"
                };
                self.line(format!(
                    "== {what} {}/{}: {} ({done}/{total} steps done)",
                    index + 1,
                    self.phases,
                    esc(&phase.name)
                ));
                let steps = if rollback {
                    &phase.rollback
                } else {
                    &phase.steps
                };
                self.node_steps.clear();
                for s in steps {
                    if let Some(n) =
                        cniswap_exec::effect::node_of(&s.action).filter(|n| *n != "all")
                    {
                        match self.node_steps.iter_mut().find(|(name, _)| name == n) {
                            Some((_, count)) => *count += 1,
                            None => self.node_steps.push((n.to_string(), 1)),
                        }
                    }
                }
                if self.terminal {
                    let bar = self.bars.add(ProgressBar::new(total as u64));
                    bar.set_style(style(
                        "{prefix:>10} [{bar:30}] {pos}/{len} steps, {elapsed} so far, about {eta} left {msg}",
                    ));
                    bar.set_prefix(format!("phase {}", index + 1));
                    bar.set_position(done as u64);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.phase = Some(bar);
                }
            }
            Event::StepStart {
                step,
                node,
                attempt,
            } => {
                let again = if attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                if let Some(bar) = &self.phase {
                    bar.set_message(format!(
                        "{} {}{again}",
                        esc(&step.id),
                        esc(&step.description)
                    ));
                }
                if self.terminal
                    && let Some(node) = node
                    && self.node.as_ref().is_none_or(|(n, _)| n != node)
                {
                    if let Some((_, old)) = self.node.take() {
                        old.finish_and_clear();
                    }
                    let total = self
                        .node_steps
                        .iter()
                        .find(|(n, _)| n == node)
                        .map_or(1, |(_, c)| *c);
                    let bar = self.bars.add(ProgressBar::new(total));
                    bar.set_style(style("{prefix:>10} [{bar:30}] {pos}/{len} {elapsed} {msg}"));
                    bar.set_prefix(esc(node).into_owned());
                    self.node = Some((node.to_string(), bar));
                }
                if !self.terminal {
                    eprintln!(
                        "{} started{again}: {}",
                        esc(&step.id),
                        esc(&step.description)
                    );
                }
            }
            Event::StepDone {
                step,
                skipped,
                evidence,
                elapsed,
            } => {
                if let Some(bar) = &self.phase {
                    bar.inc(1);
                }
                if let Some((node, bar)) = &self.node
                    && cniswap_exec::effect::node_of(&step.action) == Some(node.as_str())
                {
                    bar.inc(1);
                    bar.set_message(esc(&step.id).into_owned());
                }
                let verb = if skipped { "already done" } else { "done" };
                self.line(format!(
                    "{} {verb} in {}: {}",
                    esc(&step.id),
                    seconds(elapsed),
                    esc(evidence)
                ));
            }
            Event::Retry {
                step,
                failure,
                attempt,
            } => self.line(format!(
                "{} retry {attempt}: {}",
                esc(&step.id),
                esc(&failure.message)
            )),
            Event::NodeDone { node } => {
                if let Some((n, bar)) = &self.node
                    && n == node
                {
                    bar.finish_and_clear();
                    self.node = None;
                }
                self.line(format!("node {} done", esc(node)));
            }
            Event::Warning(text) => self.line(format!("warning: {}", esc(&text))),
        }
    }
}
