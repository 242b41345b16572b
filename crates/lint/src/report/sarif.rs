//! SARIF 2.1.0 with real regions (line and column of the key), one rule descriptor per rule
//! that ran, help URIs to the rule docs.

use crate::{LintResult, RULES};
use cniswap_model::{Severity, SkippedInput};
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, Notification,
    PhysicalLocation, Region, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Tool, ToolComponent,
};

fn file_location(file: &str, region: Option<Region>) -> Location {
    let physical = PhysicalLocation::builder()
        .artifact_location(ArtifactLocation::builder().uri(file).build());
    Location::builder()
        .physical_location(match region {
            Some(region) => physical.region(region).build(),
            None => physical.build(),
        })
        .build()
}

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

pub fn render(result: &LintResult, skipped: &[SkippedInput]) -> String {
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
                .help(
                    MultiformatMessageString::builder()
                        .text(format!(
                            "{} (`{}` explains the rule)",
                            r.meta.fix,
                            super::explain_command(r.meta.id)
                        ))
                        .build(),
                )
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = result
        .findings
        .iter()
        .map(|f| {
            let text = match &f.object {
                Some(object) if f.location.is_none() => format!(
                    "{} (help: {})",
                    super::text::with_object(Some(object), &f.message),
                    f.help
                ),
                _ => format!("{} (help: {})", f.message, f.help),
            };
            let builder = SarifResult::builder()
                .rule_id(f.rule.as_str())
                .level(level(f.severity))
                .message(Message::builder().text(text).build());
            // GitHub code scanning rejects results without a location: a finding about the
            // cluster rather than a file points at the first input.
            let location = match &f.location {
                Some(l) => file_location(&l.file, Some(region(l))),
                None => file_location(
                    result.origin.as_deref().unwrap_or("."),
                    Some(Region::builder().start_line(1).build()),
                ),
            };
            builder.locations(vec![location]).build()
        })
        .collect();
    // Inputs that were not read, and inline suppressions naming no rule: notifications, so
    // code scanning shows them next to the results.
    let configuration: Vec<Notification> = result
        .unknown_suppressions
        .iter()
        .map(|u| {
            let region = Region::builder()
                .start_line(i64::try_from(u.location.line).unwrap_or(1))
                .start_column(i64::try_from(u.location.column).unwrap_or(1))
                .build();
            Notification::builder()
                .level(serde_json::json!("warning"))
                .message(Message::builder().text(u.hint.as_str()).build())
                .locations(vec![file_location(&u.location.file, Some(region))])
                .build()
        })
        .collect();
    let execution: Vec<Notification> = skipped
        .iter()
        .map(|s| {
            Notification::builder()
                .level(serde_json::json!("note"))
                .message(
                    Message::builder()
                        .text(format!("skipped: {}", s.reason))
                        .build(),
                )
                .locations(vec![file_location(&s.path, None)])
                .build()
        })
        .collect();
    let invocation = Invocation::builder()
        .execution_successful(true)
        .tool_configuration_notifications(configuration)
        .tool_execution_notifications(execution)
        .build();
    let run = Run::builder()
        .invocations(vec![invocation])
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
