//! GitHub Actions workflow commands: `::error file=...,line=...,col=...,title=...::message`.

use crate::LintResult;
use cniswap_model::Severity;

/// Workflow-command escaping (GitHub's toolkit: `%`, CR, LF; and `:`/`,` in properties).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(result: &LintResult) -> String {
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
    out
}
