//! The stable machine-readable report: `{"schema_version", "facts", "findings"}`.

use cniswap_model::{Facts, Finding, REPORT_SCHEMA_VERSION};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    facts: &'a Facts,
    findings: &'a [Finding],
}

fn report<'a>(facts: &'a Facts, findings: &'a [Finding]) -> Report<'a> {
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        facts,
        findings,
    }
}

pub fn json(facts: &Facts, findings: &[Finding]) -> String {
    let mut text = serde_json::to_string_pretty(&report(facts, findings))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

pub fn yaml(facts: &Facts, findings: &[Finding]) -> String {
    serde_saphyr::to_string(&report(facts, findings)).unwrap_or_else(|e| format!("error: {e}\n"))
}
