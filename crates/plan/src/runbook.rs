//! runbook.md: the same plan for people who execute by hand.

use crate::model::{Plan, Step};
use std::fmt::Write;

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let from = if plan.from.is_empty() {
        "nothing".to_string()
    } else {
        plan.from.join(" + ")
    };
    let _ = writeln!(
        out,
        "# Runbook: {from} -> {} on {}\n",
        plan.to, plan.cluster
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| platform | {} |", plan.platform);
    let _ = writeln!(
        out,
        "| strategy | **{}**: {} |",
        plan.strategy, plan.strategy_reason
    );
    let _ = writeln!(out, "| kube-proxy | {} |", plan.kube_proxy);
    let _ = writeln!(out, "| install | {} |", plan.install);
    let _ = writeln!(
        out,
        "| estimate | about {} min in total; longest pod-network outage about {} min{} |\n",
        plan.estimates.total_minutes,
        plan.estimates.longest_outage_minutes,
        if plan.estimates.exceeds_token_lifetime {
            " (**over the 1 h token lifetime: MIG009**)"
        } else {
            ""
        }
    );

    let _ = writeln!(out, "## Before you start: preflight findings\n");
    if plan.preflight.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for f in &plan.preflight {
        let at = f
            .location
            .as_ref()
            .map(|l| format!(" ({}:{})", l.file, l.line))
            .or_else(|| f.object.as_ref().map(|o| format!(" ({o})")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{} {}** [{}]{at}: {}\n  - Fix: {}",
            f.rule, f.name, f.severity, f.message, f.help
        );
        if let Some(h) = plan.handled.iter().find(|h| h.covers(f)) {
            let _ = writeln!(out, "  - Resolved by this plan: {}", h.by);
        }
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Files\n");
    for a in &plan.artifacts {
        let _ = writeln!(out, "- `{}`: {}", a.path, a.description);
    }
    let _ = writeln!(
        out,
        "\nEvery step below says how to check it is done: re-running a finished step is safe.\n"
    );

    let _ = writeln!(
        out,
        "## Per-node estimate\n\n| node | role | pods recreated | interruption |\n|---|---|---:|---:|"
    );
    for n in &plan.estimates.per_node {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} s |",
            n.node, n.role, n.pods_recreated, n.interruption_seconds
        );
    }
    let _ = writeln!(
        out,
        "\nAssumptions: {}\n",
        plan.estimates.assumptions.join("; ")
    );

    for (i, phase) in plan.phases.iter().enumerate() {
        let _ = writeln!(
            out,
            "## Phase {}: {}\n\n_Goal:_ {}\n",
            i + 1,
            phase.name,
            phase.goal
        );
        for step in &phase.steps {
            step_md(&mut out, step);
        }
        let _ = writeln!(out, "### Rollback of phase {}\n", i + 1);
        for step in &phase.rollback {
            step_md(&mut out, step);
        }
    }
    out
}

fn step_md(out: &mut String, step: &Step) {
    let _ = writeln!(out, "**{}** {}\n", step.id, step.description);
    if !step.commands.is_empty() {
        let _ = writeln!(out, "```sh\n{}\n```", step.commands.join("\n"));
    }
    let timeout = if step.timeout_seconds > 0 {
        format!(" Timeout: {} s.", step.timeout_seconds)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Done when: {}.{timeout}",
        step.done_when.trim_end_matches('.')
    );
    if let Some(check) = &step.check {
        let _ = writeln!(out, "Already done if this succeeds: `{check}`");
    }
    if !step.pods_recreated.is_empty() {
        let shown: Vec<&str> = step
            .pods_recreated
            .iter()
            .take(20)
            .map(String::as_str)
            .collect();
        let more = step.pods_recreated.len().saturating_sub(20);
        let _ = writeln!(
            out,
            "Pods recreated: {}{}.",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(out);
}
