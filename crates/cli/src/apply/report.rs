//! What apply says when it stops, and the text form of `apply status`.

use crate::error::CliError;
use anstyle::{AnsiColor, Style};
use cniswap_exec::state::StepStatus;
use cniswap_exec::status::Report;
use cniswap_exec::{Failure, Outcome};
use cniswap_plan::Plan;
use std::path::Path;

fn failure_text(f: &Failure) -> String {
    let mut out = String::new();
    if let Some(o) = &f.object {
        out.push_str(&format!("  object:  {o}\n"));
    }
    if let Some(c) = &f.command {
        out.push_str(&format!("  command: {c}\n"));
    }
    if !f.output.trim().is_empty() {
        out.push_str("  output:\n");
        for line in f.output.trim_end().lines().take(40) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if !f.next.is_empty() {
        out.push_str(&format!("  next:    {}\n", f.next));
    }
    out
}

fn describe_step(plan: &Plan, id: &str) -> String {
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter().chain(&p.rollback))
        .find(|s| s.id == id)
        .map(|s| format!("{id} ({})", s.description))
        .unwrap_or_else(|| id.to_string())
}

pub fn outcome(dir: &Path, plan: &Plan, outcome: &Outcome, rollback: bool) -> Result<(), CliError> {
    let d = dir.display();
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
            let mut t = format!("{yellow}Waiting at gate {step}:{yellow:#} {question}\n");
            if let Some(f) = failure {
                t.push_str(&failure_text(f));
            }
            if !commands.is_empty() {
                t.push_str("  look at:\n");
                for c in commands {
                    t.push_str(&format!("    {c}\n"));
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
                failure.message
            );
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
                t.push_str(&format!("  - {d}\n"));
            }
            t.push_str(&format!(
                "  {bold}next:{bold:#} put the cluster back as it was, or make a new plan for it (`cniswap plan ... --out-dir NEW_DIR`); `cniswap apply rollback {d}` undoes what ran\n"
            ));
            t
        }
        Outcome::Refused { failures } => {
            let mut t = String::new();
            for f in failures {
                t.push_str(&format!("{red}error:{red:#} {}\n", f.message));
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

fn status_word(status: &StepStatus) -> String {
    match status {
        StepStatus::Pending => "pending".into(),
        StepStatus::Running { attempt } => {
            format!("interrupted (attempt {attempt}): runs again first")
        }
        StepStatus::Done {
            skipped: true,
            evidence,
            ..
        } => format!("already done: {evidence}"),
        StepStatus::Done {
            evidence,
            duration_ms,
            ..
        } => format!(
            "done{}: {evidence}",
            duration_ms
                .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default()
        ),
        StepStatus::Failed { failure } => format!("FAILED: {}", failure.message),
        StepStatus::Gate { question, .. } => format!("waiting at a gate: {question}"),
    }
}

pub fn status_text(r: &Report) -> String {
    let mut t = format!(
        "Plan: {} -> {} on {} ({})\n",
        r.from.join(" + "),
        r.to,
        r.cluster,
        r.strategy
    );
    match &r.began_at {
        Some(at) => t.push_str(&format!(
            "Journal: {} records since {at}\n",
            r.journal.records
        )),
        None => t.push_str("Journal: none yet (never applied)\n"),
    }
    if let Some(bytes) = r.journal.cut_off_tail {
        t.push_str(&format!(
            "  its last line ({bytes} bytes) was cut off; the next apply moves it aside and repeats that step\n"
        ));
    }
    if let Some(s) = &r.last_session {
        t.push_str(
            &format!("Last run: {:?} by {} at {}\n", s.mode, s.holder, s.at)
                .replace("Apply", "apply")
                .replace("Rollback", "rollback"),
        );
    }
    if let Some(lock) = &r.lock {
        t.push_str(&format!("Lock: {lock}\n"));
    }
    if !r.plan_changed.is_empty() {
        t.push_str(&format!(
            "The plan changed since the journal began: {} (apply refuses to resume it)\n",
            r.plan_changed.join("; ")
        ));
    }
    match &r.next {
        Some(n) => t.push_str(&format!(
            "Next: {} {} ({})\n",
            n.step, n.description, n.state
        )),
        None if r.began_at.is_some() => t.push_str("Next: nothing, every step is done\n"),
        None => {}
    }
    for p in &r.phases {
        t.push_str(&format!(
            "\n{}. {} [{}] {}/{} steps\n",
            p.number, p.name, p.state, p.done, p.total
        ));
        for s in &p.steps {
            t.push_str(&format!("   {:<6} {}\n", s.id, status_word(&s.status)));
        }
        let rolled: Vec<_> = p
            .rollback
            .iter()
            .filter(|s| s.status != StepStatus::Pending)
            .collect();
        for s in rolled {
            t.push_str(&format!("   {:<6} {}\n", s.id, status_word(&s.status)));
        }
    }
    if !r.nodes.is_empty() {
        t.push_str("\nNodes:\n");
        for n in &r.nodes {
            t.push_str(
                &format!("   {:<20} {:?} ({})\n", n.node, n.mark, n.phase)
                    .replace("InProgress", "in progress"),
            );
        }
    }
    t
}
