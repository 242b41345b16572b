//! `{"findings": [...], "suppressed": n, "summary": {...}}`: the finding fields are the stable
//! `Finding` schema shared with `cniswap inspect -o json`.

use crate::LintResult;
use cniswap_model::{Finding, Severity, SkippedInput};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    findings: &'a [Finding],
    suppressed: Vec<SuppressedOut<'a>>,
    /// Inputs that could not be read, with why (templates that do not parse, unknown files).
    skipped: &'a [SkippedInput],
    /// Inputs read in part, with what was left out.
    read_in_part: &'a [SkippedInput],
    /// Inline `# cniswap:ignore` comments naming no rule ID (they suppress nothing).
    unknown_suppressions: &'a [crate::UnknownSuppression],
    summary: Summary,
}

#[derive(Serialize)]
struct SuppressedOut<'a> {
    rule: &'a str,
    location: Option<&'a cniswap_model::Location>,
    by: &'a str,
}

#[derive(Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
    info: usize,
    suppressed: usize,
    rules_run: usize,
}

pub fn render(result: &LintResult, skipped: &[SkippedInput]) -> String {
    let count = |s: Severity| result.findings.iter().filter(|f| f.severity == s).count();
    let report = Report {
        schema_version: cniswap_model::REPORT_SCHEMA_VERSION,
        findings: &result.findings,
        suppressed: result
            .suppressed
            .iter()
            .map(|s| SuppressedOut {
                rule: &s.finding.rule,
                location: s.finding.location.as_ref(),
                by: &s.by,
            })
            .collect(),
        skipped,
        read_in_part: &result.read_in_part,
        unknown_suppressions: &result.unknown_suppressions,
        summary: Summary {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            info: count(Severity::Info),
            suppressed: result.suppressed.len(),
            rules_run: result.rules_run,
        },
    };
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}
