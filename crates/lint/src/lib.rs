//! The cniswap rule engine: ../shared/RULES.md as code.
//!
//! Data flow: a [`Snapshot`] (files or a cluster) and its [`Facts`] become a [`Context`] of
//! typed views (effective Talos configs per role, Cilium values, Calico resources, Flannel
//! config); every rule whose inputs are present runs over it and emits findings; suppressions
//! (inline comments, `.cniswap.yaml`) are applied last.

mod context;
pub mod input;
mod keys;
mod registry;
pub mod report;
mod rule;
mod rules;
mod suppress;

pub use context::{Context, Strategy, Target};
pub use registry::{RULES, find_rule};
pub use rule::{Draft, Emitter, Input, Rule, RuleMeta};
pub use suppress::{
    Selection, Suppressed, SuppressionConfig, SuppressionError, UnknownSuppression,
};

use cniswap_model::{Facts, Finding};
use cniswap_snapshot::Snapshot;

/// The result of one lint run.
#[derive(Debug, Clone, Default)]
pub struct LintResult {
    /// Findings in severity order (errors first), then by file and line.
    pub findings: Vec<Finding>,
    /// Findings silenced by an inline comment or `.cniswap.yaml`.
    pub suppressed: Vec<Suppressed>,
    /// Rules that ran.
    pub rules_run: usize,
    /// Rules that did not run, with the inputs they were missing.
    pub rules_skipped: Vec<(&'static str, Vec<&'static str>)>,
    /// Inline `# cniswap:ignore` comments that name no rule ID (they suppress nothing).
    pub unknown_suppressions: Vec<UnknownSuppression>,
    /// Rules turned off by `select`/`ignore` codes.
    pub rules_deselected: usize,
    /// What the rules assumed about the inputs (the Talos version of each config and where it
    /// was read), for `-v`.
    pub notes: Vec<String>,
    /// The first input (a file, or the snapshot directory): where SARIF places findings about
    /// the cluster rather than a file.
    pub origin: Option<String>,
    /// Inputs read in part (template expressions blanked out, documents not recognised).
    pub read_in_part: Vec<cniswap_model::SkippedInput>,
}

/// Runs every rule whose inputs the snapshot provides.
pub fn lint(
    snapshot: &Snapshot,
    facts: &Facts,
    target: Target,
    suppressions: &SuppressionConfig,
) -> LintResult {
    let ctx = Context::new(snapshot, facts, target);
    let mut result = LintResult::default();
    let mut findings = Vec::new();
    for view in &ctx.talos {
        let version = view
            .version
            .map_or_else(|| "unknown".to_string(), |v| v.to_string());
        result.notes.push(format!(
            "Talos {version} for {} (from {})",
            view.describe(),
            view.version_from
        ));
    }
    for rule in RULES {
        if !suppressions.selection.enabled(rule.meta.id, rule.meta.name) {
            result.rules_deselected += 1;
            continue;
        }
        let missing: Vec<&'static str> = rule
            .meta
            .inputs
            .iter()
            .filter(|i| !ctx.has(**i))
            .map(|i| i.as_str())
            .collect();
        if !missing.is_empty() {
            result.rules_skipped.push((rule.meta.id, missing));
            continue;
        }
        let mut emitter = Emitter::new(&rule.meta, &ctx);
        (rule.check)(&ctx, &mut emitter);
        findings.extend(emitter.into_findings());
        result.rules_run += 1;
    }
    findings.iter_mut().for_each(|f| place(f, snapshot));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| location_key(a).cmp(&location_key(b)))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| without_roles(&a.message).cmp(&without_roles(&b.message)))
    });
    // The same line reported once per node role is one problem: findings of one rule at one
    // place whose messages differ only in the role they name are reported once.
    findings.dedup_by(|b, a| {
        a.rule == b.rule
            && a.location.is_some()
            && a.location == b.location
            && without_roles(&a.message) == without_roles(&b.message)
    });
    let (kept, suppressed) = suppress::apply(findings, snapshot, suppressions);
    result.findings = kept;
    result.suppressed = suppressed;
    result.unknown_suppressions = suppress::unknown_inline(snapshot);
    result.read_in_part = snapshot.partly_read.clone();
    result.origin = snapshot
        .sources
        .first()
        .map(|s| s.path.clone())
        .or_else(|| {
            snapshot
                .source
                .strip_prefix("snapshot:")
                .map(|p| format!("{}/", p.trim_end_matches('/')))
        });
    result
}

/// A message without the node role a per-role view adds to its label.
fn without_roles(message: &str) -> String {
    [" (controlplane nodes)", " (worker nodes)"]
        .iter()
        .fold(message.to_string(), |m, role| m.replace(role, ""))
}

/// A finding without a position but about a file (its object names one) points at that file.
fn place(finding: &mut Finding, snapshot: &Snapshot) {
    if finding.location.is_some() {
        return;
    }
    let Some(object) = finding.object.as_deref() else {
        return;
    };
    let label = object.strip_prefix("Talos config ").unwrap_or(object);
    let file = label.split(['#', ' ']).next().unwrap_or_default();
    if snapshot.source_named(file).is_some() {
        finding.location = Some(cniswap_model::Location {
            file: file.to_string(),
            line: 1,
            column: 0,
        });
    }
}

fn location_key(f: &Finding) -> (String, usize, usize) {
    f.location
        .as_ref()
        .map_or_else(Default::default, |l| (l.file.clone(), l.line, l.column))
}
