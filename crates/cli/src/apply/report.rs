//! What apply says when it stops, and the text form of `apply status`.
//!
//! Everything shown here comes from plan.yaml, the journal or the cluster (the Lease holder), so
//! each such text is escaped ([`esc`]) where it is put in a line: an escape sequence must not act
//! on the terminal, and a newline must not forge a line (`error: ...`) of its own.

use crate::error::CliError;
use anstyle::{AnsiColor, Style};
use cniswap_exec::state::StepStatus;
use cniswap_exec::status::Report;
use cniswap_exec::{Failure, Outcome};
use cniswap_model::text::escape_control;
use cniswap_plan::Plan;
use std::path::Path;

/// Text from the plan, the journal or the cluster, made safe for one line of human output.
pub(crate) fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    escape_control(text)
}

fn failure_text(f: &Failure) -> String {
    let mut out = String::new();
    if let Some(o) = &f.object {
        out.push_str(&format!("  object:  {}\n", esc(o)));
    }
    if let Some(c) = &f.command {
        out.push_str(&format!("  command: {}\n", esc(c)));
    }
    if !f.output.trim().is_empty() {
        out.push_str("  output:\n");
        for line in f.output.trim_end().lines().take(40) {
            out.push_str(&format!("    {}\n", esc(line)));
        }
    }
    if !f.next.is_empty() {
        out.push_str(&format!("  next:    {}\n", esc(&f.next)));
    }
    out
}

fn describe_step(plan: &Plan, id: &str) -> String {
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter().chain(&p.rollback))
        .find(|s| s.id == id)
        .map(|s| format!("{} ({})", esc(id), esc(&s.description)))
        .unwrap_or_else(|| esc(id).into_owned())
}

pub fn outcome(dir: &Path, plan: &Plan, outcome: &Outcome, rollback: bool) -> Result<(), CliError> {
    let d = dir.display().to_string();
    let d = esc(&d);
    let bold = Style::new().bold();
    let red = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let yellow = Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()));
    let green = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
    let text = match outcome {
        Outcome::Complete if rollback => format!(
            "{green}Rolled back.{green:#} `cniswap apply status {d}` shows each phase; `cniswap apply {d}` applies the plan again.\n"
        ),
        Outcome::Complete => format!(
            "{green}Plan applied:{green:#} every step is done and proven. `cniswap apply status {d}` shows the journal.\n"
        ),
        Outcome::Until { step } => format!(
            "Stopped after {} as asked (--until). Run `cniswap apply {d}` to go on.\n",
            describe_step(plan, step)
        ),
        Outcome::Gate {
            step,
            question,
            commands,
            failure,
        } => {
            let (step, question) = (esc(step), esc(question));
            let mut t = format!("{yellow}Waiting at gate {step}:{yellow:#} {question}\n");
            if let Some(f) = failure {
                t.push_str(&failure_text(f));
            }
            if !commands.is_empty() {
                t.push_str("  look at:\n");
                for c in commands {
                    t.push_str(&format!("    {}\n", esc(c)));
                }
            }
            let again = if rollback { "apply rollback" } else { "apply" };
            t.push_str(&format!(
                "  {bold}to go on:{bold:#} `cniswap {again} {d} --approve {step}`{}\n",
                if failure.is_none() {
                    " (or --yes for every gate of the plan)"
                } else {
                    ", or fix the cause and run without it"
                }
            ));
            t
        }
        Outcome::Failed { step, failure } => {
            let mut t = format!(
                "{red}error:{red:#} step {} failed: {}\n",
                describe_step(plan, step),
                esc(&failure.message)
            );
            let step = esc(step);
            t.push_str(&failure_text(failure));
            t.push_str(&format!(
                "  {bold}then:{bold:#} `cniswap apply {d}` tries {step} again (done steps are skipped); `cniswap apply rollback {d}` undoes the started phases\n"
            ));
            t
        }
        Outcome::Interrupted { next } => format!(
            "Interrupted{}. Run the same command again to resume; `cniswap apply status {d}` shows where it stands.\n",
            next.as_ref()
                .map(|s| format!(" before {}", describe_step(plan, s)))
                .unwrap_or_default()
        ),
        Outcome::Drift { phase, differences } => {
            let mut t = format!(
                "{red}error:{red:#} the cluster no longer matches the plan (checked before phase {phase}); nothing of that phase ran:\n"
            );
            for d in differences {
                t.push_str(&format!("  - {}\n", esc(d)));
            }
            t.push_str(&format!(
                "  {bold}next:{bold:#} put the cluster back as it was, or make a new plan for it (`cniswap plan ... --out-dir NEW_DIR`); `cniswap apply rollback {d}` undoes what ran\n"
            ));
            t
        }
        Outcome::Refused { failures } => {
            let mut t = String::new();
            for f in failures {
                t.push_str(&format!("{red}error:{red:#} {}\n", esc(&f.message)));
                t.push_str(&failure_text(f));
            }
            t
        }
    };
    let mut err = anstream::stderr();
    use std::io::Write;
    let _ = err.write_all(text.as_bytes());
    Ok(())
}

/// A step's state in a word or two (the table's STATE column), and what is worth a line of
/// its own under the step (a failure, a gate's question, the proof of a done step).
fn state_of(status: &StepStatus) -> (&'static str, Style, Option<String>) {
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let red = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let yellow = Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()));
    match status {
        StepStatus::Pending => ("pending", Style::new(), None),
        StepStatus::Running { attempt } => (
            "interrupted",
            yellow,
            Some(format!(
                "interrupted during attempt {attempt}: runs again first"
            )),
        ),
        StepStatus::Done {
            skipped: true,
            evidence,
            ..
        } => ("already done", green, Some(evidence.clone())),
        StepStatus::Done { evidence, .. } => ("done", green, Some(evidence.clone())),
        StepStatus::Failed { failure } => ("FAILED", red, Some(failure.message.clone())),
        StepStatus::Gate { question, .. } => ("at a gate", yellow, Some(question.clone())),
    }
}

fn duration_of(status: &StepStatus) -> String {
    match status {
        StepStatus::Done {
            duration_ms: Some(ms),
            skipped: false,
            ..
        } => format!("{:.1} s", *ms as f64 / 1000.0),
        _ => String::new(),
    }
}

/// The user running cniswap, for the lock holder and the journal: `SUDO_USER` first (who ran
/// `sudo cniswap`), then `USER` and `LOGNAME`, else the numeric user id.
pub fn user_name() -> String {
    user_name_from(|name| std::env::var(name).ok()).unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| format!("uid {}", m.uid()))
            .unwrap_or_else(|_| "an unknown user".into())
    })
}

fn user_name_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|name| var(name))
        .find(|value| !value.trim().is_empty())
}

/// `apply status` for people: where the run stands, then one table per phase (step, state,
/// duration, node, name) with the next step marked, then the nodes.
pub fn status_text(r: &Report) -> String {
    let bold = Style::new().bold();
    let dim = Style::new().dimmed();
    let from: Vec<_> = r.from.iter().map(|f| esc(f)).collect();
    let mut t = format!(
        "Plan: {} -> {} on {} ({})\n",
        from.join(" + "),
        esc(&r.to),
        esc(&r.cluster),
        esc(&r.strategy)
    );
    match &r.began_at {
        Some(at) => t.push_str(&format!(
            "Journal: {} records since {}\n",
            r.journal.records,
            esc(at)
        )),
        None => t.push_str("Journal: none yet (never applied)\n"),
    }
    if let Some(bytes) = r.journal.cut_off_tail {
        t.push_str(&format!(
            "  its last line ({bytes} bytes) was cut off; the next apply moves it aside and repeats that step\n"
        ));
    }
    if let Some(s) = &r.last_session {
        let mode = match s.mode {
            cniswap_exec::record::Mode::Apply => "apply",
            cniswap_exec::record::Mode::Rollback => "rollback",
        };
        t.push_str(&format!(
            "Last run: {mode} by {} at {}\n",
            esc(&s.holder),
            esc(&s.at)
        ));
    }
    if let Some(lock) = &r.lock {
        t.push_str(&format!("Lock: {}\n", esc(lock)));
    }
    if !r.plan_changed.is_empty() {
        let changed: Vec<_> = r.plan_changed.iter().map(|c| esc(c)).collect();
        t.push_str(&format!(
            "The plan changed since the journal began: {} (apply refuses to resume it)\n",
            changed.join("; ")
        ));
    }
    match &r.next {
        Some(n) => t.push_str(&format!(
            "{bold}Next:{bold:#} {} {} ({})\n",
            esc(&n.step),
            esc(&n.description),
            esc(&n.state)
        )),
        None if r.began_at.is_some() => t.push_str("Next: nothing, every step is done\n"),
        None => {}
    }
    let next = r.next.as_ref().map(|n| n.step.as_str());
    for p in &r.phases {
        t.push_str(&format!(
            "\n{bold}{}. {}{bold:#} [{}] {}/{} steps\n",
            p.number,
            esc(&p.name),
            esc(&p.state),
            p.done,
            p.total
        ));
        let rolled = p
            .rollback
            .iter()
            .filter(|s| s.status != StepStatus::Pending);
        let rows: Vec<_> = p.steps.iter().chain(rolled).collect();
        let id_width = rows
            .iter()
            .map(|s| esc(&s.id).chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let node_width = rows
            .iter()
            .map(|s| s.node.as_deref().map_or(1, |n| esc(n).chars().count()))
            .max()
            .unwrap_or(0)
            .max(4);
        t.push_str(&format!(
            "  {dim}  {:<id_width$}  {:<12}  {:>7}  {:<node_width$}  NAME{dim:#}\n",
            "STEP", "STATE", "TIME", "NODE"
        ));
        for s in rows {
            let (word, style, detail) = state_of(&s.status);
            let marker = if next == Some(s.id.as_str()) {
                ">"
            } else {
                " "
            };
            t.push_str(&format!(
                "  {bold}{marker}{bold:#} {:<id_width$}  {style}{word:<12}{style:#}  {:>7}  {:<node_width$}  {}\n",
                esc(&s.id),
                duration_of(&s.status),
                s.node.as_deref().map_or("-".into(), esc),
                esc(&s.description),
            ));
            if let Some(detail) = detail.filter(|d| !d.trim().is_empty()) {
                t.push_str(&format!(
                    "    {:<id_width$}  {dim}{}{dim:#}\n",
                    "",
                    esc(&detail)
                ));
            }
        }
    }
    if !r.nodes.is_empty() {
        t.push_str(&format!("\n{bold}Nodes:{bold:#}\n"));
        let width = r
            .nodes
            .iter()
            .map(|n| esc(&n.node).chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        for n in &r.nodes {
            let mark = match n.mark {
                cniswap_exec::NodeMark::InProgress => "in progress",
                cniswap_exec::NodeMark::Done => "done",
                cniswap_exec::NodeMark::Cleared => "cleared",
            };
            t.push_str(&format!(
                "   {:<width$}  {mark:<11}  (phase {})\n",
                esc(&n.node),
                esc(&n.phase)
            ));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_who_ran_sudo_then_the_login_name() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            user_name_from(env(&[("SUDO_USER", "alice"), ("USER", "root")])).as_deref(),
            Some("alice")
        );
        assert_eq!(
            user_name_from(env(&[("SUDO_USER", ""), ("USER", "bob")])).as_deref(),
            Some("bob")
        );
        assert_eq!(
            user_name_from(env(&[("LOGNAME", "carol")])).as_deref(),
            Some("carol")
        );
        assert_eq!(user_name_from(env(&[])), None);
        assert!(!user_name().is_empty());
    }
}
