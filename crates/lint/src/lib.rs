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
pub use suppress::{Suppressed, SuppressionConfig, SuppressionError, UnknownSuppression};

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
    for rule in RULES {
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
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| location_key(a).cmp(&location_key(b)))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    findings.dedup();
    let (kept, suppressed) = suppress::apply(findings, snapshot, suppressions);
    result.findings = kept;
    result.suppressed = suppressed;
    result.unknown_suppressions = suppress::unknown_inline(snapshot);
    result
}

fn location_key(f: &Finding) -> (String, usize, usize) {
    f.location
        .as_ref()
        .map_or_else(Default::default, |l| (l.file.clone(), l.line, l.column))
}
