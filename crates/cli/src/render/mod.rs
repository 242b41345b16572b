pub mod cni_table;
pub mod machine;
pub mod text;
pub mod timeline;

use crate::error::CliError;
use anstyle::{AnsiColor, Style};
use cniswap_model::Severity;
use cniswap_model::text::escape_control;
use std::io::Write;

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
pub const YELLOW: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
pub const RED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
pub const CYAN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

/// Writes to stdout through anstream (strips colour when stdout is not a terminal, or with
/// `--color never` / NO_COLOR); a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = anstream::stdout();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::other(format!("cannot write output: {e}"), "")),
    }
}

/// `warning: <message>` on stderr; the message is escaped (it may hold file names).
pub fn warn(message: &str) {
    let style = YELLOW.bold();
    let mut err = anstream::stderr();
    let _ = writeln!(
        err,
        "{style}warning{style:#}{BOLD}:{BOLD:#} {}",
        escape_control(message)
    );
}

/// A copy of `value` with every string in it (keys too) escaped for a terminal, for renderers
/// that put cluster data (node names, probe errors) into text: escaping the data once, before
/// rendering, covers every line they write. `None` if the value does not survive the round trip
/// through JSON (the caller then prints JSON, which escapes by itself).
pub fn escaped<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> Option<T> {
    fn walk(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(escape_control(&s).into_owned()),
            Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (escape_control(&k).into_owned(), walk(v)))
                    .collect(),
            ),
            other => other,
        }
    }
    let json = serde_json::to_value(value).ok()?;
    serde_json::from_value(walk(json)).ok()
}

/// `one` or `many` by `n`.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 step`, `2 steps`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// A severity word in its colour (`error` red, `warning` yellow, `info` cyan), bold.
pub fn severity(severity: Severity) -> String {
    let style = match severity {
        Severity::Error => RED,
        Severity::Warning => YELLOW,
        Severity::Info => CYAN,
    }
    .bold();
    format!("{style}{severity}{style:#}")
}

/// One finding on one line: `error[CIL001]: message` (message escaped).
pub fn finding_line(f: &cniswap_model::Finding) -> String {
    format!(
        "{}{BOLD}[{}]{BOLD:#}: {}",
        severity(f.severity),
        escape_control(&f.rule),
        escape_control(&f.message)
    )
}

/// A rule's Markdown documentation for the terminal: headings bold, code blocks in colour.
/// Plain text stays as written (anstream strips the styles in pipes).
pub fn markdown(docs: &str) -> String {
    let mut out = String::with_capacity(docs.len() + 256);
    let mut in_code = false;
    for line in docs.lines() {
        let style = if line.starts_with("```") {
            in_code = !in_code;
            DIM
        } else if in_code {
            CYAN
        } else if line.starts_with('#') {
            BOLD
        } else {
            Style::new()
        };
        out.push_str(&format!("{style}{line}{style:#}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_reports_hold_no_control_characters() {
        // A verify report whose node name and probe error came from a hostile cluster.
        let report = serde_json::json!({
            "nodes": ["w1\u{1b}]0;pwned\u{7}", "w2"],
            "checks": [{"error": "timeout\nerror: forged"}],
            "w3\rkey": 1.5
        });
        let escaped = escaped(&report).unwrap();
        assert_eq!(escaped["nodes"][0], "w1\\u{1b}]0;pwned\\u{7}");
        assert_eq!(escaped["checks"][0]["error"], "timeout\\nerror: forged");
        assert_eq!(escaped["w3\\rkey"], 1.5);
        assert_eq!(escaped["nodes"][1], "w2");
    }

    #[test]
    fn plurals_agree_with_counts() {
        assert_eq!(
            count(1, "rollback step", "rollback steps"),
            "1 rollback step"
        );
        assert_eq!(count(0, "step", "steps"), "0 steps");
        assert_eq!(count(3, "entry", "entries"), "3 entries");
    }
}
