//! rustc-style text: `error[CIL001]: title`, `--> file:line:col`, the source line with the key
//! underlined, `= help:` with the fix and the docs link. Source lines come from the snapshot's
//! redacted text, never from re-reading a file.

use crate::LintResult;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use cniswap_model::{Finding, Severity};
use cniswap_snapshot::Snapshot;

pub struct TextOptions {
    pub color: bool,
}

fn level(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Info => Level::NOTE,
    }
}

/// The byte range of the token at `column` (1-based chars) on `line`: the key, up to `:`.
fn token_span(line: &str, column: usize) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    let len = rest
        .find(|c: char| c == ':' || c == ',' || c == '}' || c == ']' || c.is_whitespace())
        .filter(|n| *n > 0)
        .unwrap_or(rest.len().max(1).min(rest.len()));
    start..start + len
}

fn render_one(finding: &Finding, snapshot: &Snapshot, renderer: &Renderer) -> String {
    let title = crate::find_rule(&finding.rule).map_or(finding.name.as_str(), |r| r.meta.title);
    let url = super::docs_url(&finding.rule);
    let help = format!("{}\n  see: {url}", finding.help);
    let source = finding
        .location
        .as_ref()
        .filter(|l| l.column > 0)
        .and_then(|location| {
            let file = snapshot.sources.iter().find(|s| s.path == location.file)?;
            let line = file.text.lines().nth(location.line.checked_sub(1)?)?;
            Some((location, line))
        });
    let mut group = Group::with_title(
        level(finding.severity)
            .primary_title(title)
            .id(finding.rule.as_str()),
    );
    match (source, &finding.location) {
        (Some((location, line)), _) => {
            group = group.element(
                Snippet::source(line)
                    .line_start(location.line)
                    .path(location.file.as_str())
                    .annotation(
                        AnnotationKind::Primary
                            .span(token_span(line, location.column))
                            .label(finding.message.as_str()),
                    ),
            );
        }
        (None, Some(location)) if location.column == 0 => {
            group = group
                .element(Level::NOTE.message(format!("in {}: {}", location.file, finding.message)));
        }
        (None, Some(location)) => {
            group = group.element(Level::NOTE.message(format!(
                "at {}:{}:{}: {}",
                location.file, location.line, location.column, finding.message
            )));
        }
        (None, None) => {
            let object = finding
                .object
                .as_deref()
                .map(|o| format!("{o}: "))
                .unwrap_or_default();
            group = group.element(Level::NOTE.message(format!("{object}{}", finding.message)));
        }
    }
    group = group.element(Level::HELP.message(help));
    let report: [Group; 1] = [group];
    renderer.render(&report).to_string()
}

pub fn render(result: &LintResult, snapshot: &Snapshot, options: &TextOptions) -> String {
    let renderer = if options.color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for finding in &result.findings {
        out.push_str(&render_one(finding, snapshot, &renderer));
        out.push_str("\n\n");
    }
    let count = |s: Severity| result.findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} info; {} suppressed; {} rules ran, {} skipped for missing inputs\n",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        result.suppressed.len(),
        result.rules_run,
        result.rules_skipped.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::token_span;

    #[test]
    fn spans_cover_the_key() {
        let line = "  exclusive: false";
        assert_eq!(&line[token_span(line, 3)], "exclusive");
        let line = "    - ^eth0$";
        assert_eq!(&line[token_span(line, 7)], "^eth0$");
        assert_eq!(token_span("", 1), 0..0);
    }
}
