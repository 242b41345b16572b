//! GitHub Actions workflow commands: `::error file=...,line=...,col=...,title=...::message`.
//!
//! Escaping follows GitHub's workflow-command rules (actions/toolkit `command.ts`): in the
//! message `%`, CR and LF become `%25`, `%0D`, `%0A`; in properties also `:` and `,` become
//! `%3A` and `%2C`. So no input can end a command early or start a line of its own. Skipped
//! inputs are plain log lines that start with `cniswap:`, never with `::`.

use crate::LintResult;
use cniswap_model::text::escape_control;
use cniswap_model::{Severity, SkippedInput};

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(result: &LintResult, skipped: &[SkippedInput]) -> String {
    let mut out = String::new();
    for f in &result.findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut properties = Vec::new();
        if let Some(l) = &f.location {
            properties.push(format!("file={}", escape_property(&l.file)));
            properties.push(format!("line={}", l.line));
            if l.column > 0 {
                properties.push(format!("col={}", l.column));
            }
        }
        properties.push(format!(
            "title={}",
            escape_property(&format!("{} {}", f.rule, f.name))
        ));
        out.push_str(&format!(
            "::{command} {}::{}\n",
            properties.join(","),
            escape_data(&format!("{} (help: {})", f.message, f.help))
        ));
    }
    for u in &result.unknown_suppressions {
        out.push_str(&format!(
            "::warning file={},line={},col={},title={}::{}\n",
            escape_property(&u.location.file),
            u.location.line,
            u.location.column,
            escape_property("cniswap inline suppression names no known rule"),
            escape_data(&u.hint)
        ));
    }
    for s in skipped {
        out.push_str(&format!(
            "cniswap: skipped {}: {}\n",
            escape_control(&s.path),
            escape_control(&s.reason)
        ));
    }
    out
}
