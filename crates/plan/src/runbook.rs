//! runbook.md: the same plan for people who execute by hand.

use crate::model::{Plan, Step};
use std::fmt::Write;

/// A Markdown code fence longer than any run of backticks in `text`, so no value can close it.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Text on one Markdown line: control characters become spaces.
fn line(text: &str) -> String {
    crate::artifacts::comment_line(text)
}

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
        plan.to,
        line(&plan.cluster)
    );
    let blocking = crate::blocking(plan);
    if !blocking.is_empty() {
        let _ = writeln!(
            out,
            "## Unresolved: fix these before you start\n\nThe plan was written with --force. No step of it resolves these error findings:\n"
        );
        for f in &blocking {
            let _ = writeln!(
                out,
                "- **{} {}**: {}\n  - Fix: {}",
                f.rule,
                f.name,
                line(&f.message),
                line(&f.help)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| platform | {} |", line(&plan.platform));
    let _ = writeln!(
        out,
        "| strategy | **{}**: {} |",
        plan.strategy, plan.strategy_reason
    );
    let _ = writeln!(out, "| kube-proxy | {} |", plan.kube_proxy);
    let _ = writeln!(out, "| install | {} |", plan.install);
    for fact in &plan.proven {
        let _ = writeln!(
            out,
            "| {} | `{}`: {} |",
            line(&fact.fact),
            line(&fact.value),
            line(&fact.source)
        );
    }
    let _ = writeln!(
        out,
        "| estimate | about {} min in total; longest pod-network outage about {} min{} |",
        plan.estimates.total_minutes,
        plan.estimates.longest_outage_minutes,
        if plan.estimates.exceeds_token_lifetime {
            " (**over the 1 h token lifetime: MIG009**)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "| node agent | `{}` |\n", line(&plan.agent_image));
    let _ = writeln!(
        out,
        "Steps that work on nodes run the node agent image `{}` in a privileged pod in kube-system: every node must be able to pull it (mirror it and pass `--agent-image` otherwise). Commands need kubectl{}, curl for downloads, and awk.\n",
        line(&plan.agent_image),
        if plan.platform.starts_with("talos") {
            ", talosctl"
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
            .map(|l| format!(" ({}:{})", line(&l.file), l.line))
            .or_else(|| f.object.as_ref().map(|o| format!(" ({})", line(o))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{} {}** [{}]{at}: {}\n  - Fix: {}",
            f.rule,
            f.name,
            f.severity,
            line(&f.message),
            line(&f.help)
        );
        if let Some(h) = plan.handled.iter().find(|h| h.covers(f)) {
            let _ = writeln!(out, "  - Resolved by this plan: {}", line(&h.by));
        }
    }
    let _ = writeln!(out);

    if !plan.estimates.risks.is_empty() {
        let _ = writeln!(out, "## What else the migration affects\n");
        for r in &plan.estimates.risks {
            let rule = r
                .rule
                .as_deref()
                .map(|r| format!("{r}: "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {rule}{}\n  - Handled: {}",
                line(&r.effect),
                line(&r.handling)
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Files\n");
    for a in &plan.artifacts {
        let _ = writeln!(out, "- `{}`: {}", a.path, line(&a.description));
    }
    let _ = writeln!(
        out,
        "\nEvery step below says how to check it is done: re-running a finished step is safe.\n"
    );

    if plan.strategy != "fresh" {
        let _ = writeln!(
            out,
            "## Before you start: watch connectivity in a second terminal\n\n\
             Start this in a second terminal before the first phase and stop it (Ctrl-C) after the \
             last one. It probes every node pair, the Services, DNS and the API server every \
             200 ms and writes every outage per path, with its start, end and duration, to \
             `cniswap-verify-<time>/` (report.json, timeline.png). Add `--switching NODE` for \
             the node you switch; cordoned nodes count as switched.\n\n```sh\n{}\n```\n",
            crate::shell::argv(&[
                "cniswap".to_string(),
                "verify".into(),
                "--continuous".into(),
                "--image".into(),
                plan.agent_image.clone(),
            ])
        );
    }
    let _ = writeln!(
        out,
        "## Per-node estimate\n\n| node | role | pods recreated | interruption |\n|---|---|---:|---:|"
    );
    for n in &plan.estimates.per_node {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} s |",
            line(&n.node),
            n.role,
            n.pods_recreated,
            n.interruption_seconds
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
        retire_md(&mut out, phase);
    }
    out
}

/// After a phase's rollback: its backups are retired, as `cniswap apply` does, so a later run
/// of the phase saves the cluster as it is then instead of keeping the older copy.
fn retire_md(out: &mut String, phase: &crate::model::Phase) {
    let files = phase.backups_written();
    if files.is_empty() {
        return;
    }
    let list = crate::shell::argv(&files);
    let command = sh!(
        "for f in {}; do test ! -e \"$f\" || mv \"$f\" \"$f.retired-$(date +%s)\"; done",
        crate::shell::Code(&list)
    );
    let _ = writeln!(
        out,
        "When this rollback has finished, retire the phase's backups (kept aside, never deleted): the cluster holds their state again, and a later run of the phase must save the cluster as it is then, not keep these older copies.\n"
    );
    let fence = fence(command.as_str());
    let _ = writeln!(out, "{fence}sh\n{}\n{fence}\n", command.as_str());
}

fn list(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(20).map(|n| line(n)).collect();
    let more = names.len().saturating_sub(20);
    format!(
        "{}{}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

fn step_md(out: &mut String, step: &Step) {
    let _ = writeln!(out, "**{}** {}\n", step.id, line(&step.description));
    for note in &step.notes {
        let _ = writeln!(out, "> {}\n", line(note));
    }
    if !step.commands.is_empty() {
        let body = step.commands.join("\n");
        let fence = fence(&body);
        let _ = writeln!(out, "{fence}sh\n{body}\n{fence}");
    }
    let timeout = if step.timeout_seconds > 0 {
        format!(" Timeout: {} s.", step.timeout_seconds)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Done when: {}.{timeout}",
        line(step.done_when.trim_end_matches('.'))
    );
    if let Some(check) = &step.check {
        let fence = fence(check);
        let _ = writeln!(
            out,
            "Already done if this succeeds:\n{fence}sh\n{check}\n{fence}"
        );
    }
    if !step.pods_recreated.is_empty() {
        let _ = writeln!(out, "Pods recreated: {}.", list(&step.pods_recreated));
    }
    if !step.pods_deleted.is_empty() {
        let _ = writeln!(
            out,
            "Pods deleted and not recreated (no controller): {}.",
            list(&step.pods_deleted)
        );
    }
    let _ = writeln!(out);
}
