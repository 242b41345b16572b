//! SARIF 2.1.0 with real regions (line and column of the key), one rule descriptor per rule
//! that ran, help URIs to the rule docs.

use crate::{LintResult, RULES};
use cniswap_model::Severity;
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Tool, ToolComponent,
};

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Error => ResultLevel::Error,
        Severity::Warning => ResultLevel::Warning,
        Severity::Info => ResultLevel::Note,
    }
}

/// A whole-file finding (column 0) has no column in SARIF.
fn region(l: &cniswap_model::Location) -> Region {
    let line = i64::try_from(l.line).unwrap_or(1);
    match i64::try_from(l.column) {
        Ok(column) if column > 0 => Region::builder()
            .start_line(line)
            .start_column(column)
            .build(),
        _ => Region::builder().start_line(line).build(),
    }
}

pub fn render(result: &LintResult) -> String {
    let rules: Vec<ReportingDescriptor> = RULES
        .iter()
        .map(|r| {
            ReportingDescriptor::builder()
                .id(r.meta.id)
                .name(r.meta.name)
                .short_description(
                    MultiformatMessageString::builder()
                        .text(r.meta.title)
                        .build(),
                )
                .help(MultiformatMessageString::builder().text(r.meta.fix).build())
                .help_uri(super::docs_url(r.meta.id))
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = result
        .findings
        .iter()
        .map(|f| {
            let text = match &f.object {
                Some(object) if f.location.is_none() => {
                    format!("{object}: {} (help: {})", f.message, f.help)
                }
                _ => format!("{} (help: {})", f.message, f.help),
            };
            let builder = SarifResult::builder()
                .rule_id(f.rule.as_str())
                .level(level(f.severity))
                .message(Message::builder().text(text).build());
            match &f.location {
                Some(l) => builder
                    .locations(vec![
                        Location::builder()
                            .physical_location(
                                PhysicalLocation::builder()
                                    .artifact_location(
                                        ArtifactLocation::builder().uri(l.file.as_str()).build(),
                                    )
                                    .region(region(l))
                                    .build(),
                            )
                            .build(),
                    ])
                    .build(),
                None => builder.build(),
            }
        })
        .collect();
    let run = Run::builder()
        .tool(
            Tool::builder()
                .driver(
                    ToolComponent::builder()
                        .name("cniswap")
                        .version(env!("CARGO_PKG_VERSION"))
                        .information_uri("https://github.com/cniswap/cniswap")
                        .rules(rules)
                        .build(),
                )
                .build(),
        )
        .results(results)
        .build();
    let sarif = Sarif::builder()
        .version(serde_json::json!("2.1.0"))
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .runs(vec![run])
        .build();
    serde_json::to_string_pretty(&sarif).unwrap_or_default() + "\n"
}
