//! rustc-style text: `error[CIL001]: title`, `--> file:line:col`, the source line with the key
//! underlined, `= help:` with the fix and the docs link. Source lines come from the snapshot's
//! redacted text, never from re-reading a file.

use crate::LintResult;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use cniswap_model::text::{control_pictures, escape_control};
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

/// The byte range of the YAML/JSON token that starts at `column` (1-based chars) on `line`:
/// a key up to its `:`, a quoted scalar up to its closing quote, or a plain value to its end
/// (a URL keeps its `:`s; a trailing comment, and in flow style `,` `]` `}`, end it).
fn token_span(line: &str, column: usize) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    let end = match rest.chars().next() {
        None => 0,
        Some(quote @ ('"' | '\'')) => quoted_len(rest, quote),
        Some(_) => plain_len(rest, in_flow(&line[..start])),
    };
    start..start + end.max(rest.chars().next().map_or(0, char::len_utf8))
}

/// Length of a quoted scalar at the start of `text`, quotes included (to the end of the line
/// when it does not close there).
fn quoted_len(text: &str, quote: char) -> usize {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            c if c == quote => {
                // '' inside a single-quoted scalar is an escaped quote.
                if quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    continue;
                }
                return i + c.len_utf8();
            }
            _ => {}
        }
    }
    text.len()
}

/// Length of a plain scalar at the start of `text`: up to `: ` (it is a key), ` #`, the end of
/// the line, or in flow style `,` `]` `}`; trailing blanks excluded.
fn plain_len(text: &str, flow: bool) -> usize {
    let mut end = text.len();
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        let next = text[i + c.len_utf8()..].chars().next();
        let key_end = c == ':' && next.is_none_or(|n| n.is_whitespace() || (flow && n == ','));
        let comment = c == '#' && previous.is_whitespace() && i > 0;
        if key_end || comment || (flow && matches!(c, ',' | ']' | '}')) {
            end = i;
            break;
        }
        previous = c;
    }
    text[..end].trim_end().len()
}

/// Whether `before` leaves an unclosed `[` or `{` (outside quotes): the token is in flow style.
fn in_flow(before: &str) -> bool {
    let mut depth = 0i32;
    let mut quote = None;
    for c in before.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, '#') => break,
            _ => {}
        }
    }
    depth > 0
}

/// `object: message`, unless the message already names the object.
pub(crate) fn with_object(object: Option<&str>, message: &str) -> String {
    match object {
        Some(object) if !message.contains(object) => format!("{object}: {message}"),
        _ => message.to_string(),
    }
}

fn render_one(finding: &Finding, snapshot: &Snapshot, renderer: &Renderer) -> String {
    let title = crate::find_rule(&finding.rule).map_or(finding.name.as_str(), |r| r.meta.title);
    let explain = super::explain_command(&finding.rule);
    let help = format!("{}\n  see: {explain}", escape_control(&finding.help));
    let message = escape_control(&finding.message);
    let file = finding
        .location
        .as_ref()
        .map(|l| escape_control(&l.file).into_owned())
        .unwrap_or_default();
    let source = finding
        .location
        .as_ref()
        .filter(|l| l.column > 0)
        .and_then(|location| {
            let line = snapshot.source_named(&location.file)?.line(location.line)?;
            Some((location, control_pictures(line)))
        });
    let mut group = Group::with_title(
        level(finding.severity)
            .primary_title(title)
            .id(finding.rule.as_str()),
    );
    match (&source, &finding.location) {
        (Some((location, line)), _) => {
            group = group.element(
                Snippet::source(line.as_ref())
                    .line_start(location.line)
                    .path(file.as_str())
                    .annotation(
                        AnnotationKind::Primary
                            .span(token_span(line, location.column))
                            .label(message.as_ref()),
                    ),
            );
        }
        (None, Some(location)) if location.column == 0 => {
            group = group.element(Level::NOTE.message(format!("in {file}: {message}")));
        }
        (None, Some(location)) => {
            group = group.element(Level::NOTE.message(format!(
                "at {file}:{}:{}: {message}",
                location.line, location.column
            )));
        }
        (None, None) => {
            let object = finding.object.as_deref().map(escape_control);
            group = group.element(Level::NOTE.message(with_object(object.as_deref(), &message)));
        }
    }
    group = group.element(Level::HELP.message(help));
    let report: [Group; 1] = [group];
    renderer.render(&report).to_string()
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn render(result: &LintResult, snapshot: &Snapshot, options: &TextOptions) -> String {
    let renderer = if options.color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for (finding, repeats) in group_repeats(&result.findings) {
        let mut text = render_one(finding, snapshot, &renderer);
        if !repeats.is_empty() {
            let places: Vec<String> = repeats.iter().map(|f| place(f)).collect();
            text.push_str(&format!(
                "\n  = also at {}: {}",
                count(places.len(), "other place", "other places"),
                places.join(", ")
            ));
        }
        out.push_str(&text);
        out.push_str("\n\n");
    }
    for unknown in &result.unknown_suppressions {
        let group = Group::with_title(
            Level::WARNING.primary_title("inline suppression names no known rule"),
        )
        .element(Level::NOTE.message(format!(
            "at {}:{}:{}: {}",
            escape_control(&unknown.location.file),
            unknown.location.line,
            unknown.location.column,
            escape_control(&unknown.hint)
        )));
        out.push_str(&renderer.render(&[group]).to_string());
        out.push_str("\n\n");
    }
    let severity = |s: Severity| result.findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{}, {}, {} info; {} suppressed; {} ran, {} skipped for missing inputs{}\n",
        count(severity(Severity::Error), "error", "errors"),
        count(severity(Severity::Warning), "warning", "warnings"),
        severity(Severity::Info),
        result.suppressed.len(),
        count(result.rules_run, "rule", "rules"),
        result.rules_skipped.len(),
        if result.rules_deselected > 0 {
            format!(", {} not selected", result.rules_deselected)
        } else {
            String::new()
        }
    ));
    out.push_str(&per_rule(result));
    out.push_str(&skipped(snapshot));
    out
}

/// Findings with the same rule and message in several places (the same floating URL in
/// every cluster's patch): the first is shown in full, the others as places.
fn group_repeats(findings: &[Finding]) -> Vec<(&Finding, Vec<&Finding>)> {
    let mut groups: Vec<(&Finding, Vec<&Finding>)> = Vec::new();
    for finding in findings {
        match groups.iter_mut().find(|(first, _)| {
            first.rule == finding.rule
                && first.severity == finding.severity
                && first.message == finding.message
                && first.location.is_some()
                && finding.location.is_some()
        }) {
            Some((_, repeats)) => repeats.push(finding),
            None => groups.push((finding, Vec::new())),
        }
    }
    groups
}

fn place(finding: &Finding) -> String {
    finding.location.as_ref().map_or_else(String::new, |l| {
        let file = escape_control(&l.file);
        if l.column == 0 {
            file.into_owned()
        } else {
            format!("{file}:{}", l.line)
        }
    })
}

/// A count per rule, most findings first, when more than one finding was reported.
fn per_rule(result: &LintResult) -> String {
    let mut counts: Vec<(&str, Severity, usize)> = Vec::new();
    for finding in &result.findings {
        match counts.iter_mut().find(|(rule, _, _)| *rule == finding.rule) {
            Some((_, _, n)) => *n += 1,
            None => counts.push((&finding.rule, finding.severity, 1)),
        }
    }
    if result.findings.len() < 2 {
        return String::new();
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    let mut out = String::from("\nPer rule:\n");
    for (rule, severity, n) in counts {
        let title = crate::find_rule(rule).map_or("", |r| r.meta.title);
        out.push_str(&format!(
            "  {n:>4}  {rule:<7} {:<8} {title}\n",
            severity.to_string()
        ));
    }
    out
}

/// The inputs that were not read, each with why. Files that are not YAML or JSON by their
/// extension are only counted (`-v` names them).
fn skipped(snapshot: &Snapshot) -> String {
    let (by_extension, listed): (Vec<_>, Vec<_>) = snapshot
        .skipped
        .iter()
        .partition(|s| s.reason == cniswap_snapshot::NOT_YAML_OR_JSON);
    let mut out = String::new();
    if !snapshot.partly_read.is_empty() {
        out.push_str(&format!(
            "\nRead in part ({}):\n",
            count(snapshot.partly_read.len(), "input", "inputs")
        ));
        for s in &snapshot.partly_read {
            out.push_str(&format!(
                "  {}: {}\n",
                escape_control(&s.path),
                escape_control(&s.reason)
            ));
        }
    }
    if !listed.is_empty() {
        out.push_str(&format!(
            "\nSkipped ({}):\n",
            count(listed.len(), "input", "inputs")
        ));
        for s in listed {
            out.push_str(&format!(
                "  {}: {}\n",
                escape_control(&s.path),
                escape_control(&s.reason)
            ));
        }
    }
    if !by_extension.is_empty() {
        out.push_str(&format!(
            "not read: {} not YAML or JSON by extension{}\n",
            count(by_extension.len(), "file", "files"),
            match by_extension.as_slice() {
                [one] => format!(" ({})", escape_control(&one.path)),
                _ => " (-v names them)".to_string(),
            }
        ));
    }
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

    #[test]
    fn spans_cover_the_whole_value() {
        let span = |line: &'static str, column: usize| &line[token_span(line, column)];
        // TAL008/TAL009: the whole URL, not `https`.
        let line = "        - https://raw.githubusercontent.com/cilium/cilium/main/install/kubernetes/quick-install.yaml";
        assert_eq!(span(line, 11), &line[10..]);
        assert_eq!(span("  exclusive: false", 14), "false");
        assert_eq!(span("  mode: kubernetes # the default", 9), "kubernetes");
        assert_eq!(
            span("urls: [\"https://a.example/x.yaml\", b]", 8),
            "\"https://a.example/x.yaml\""
        );
        assert_eq!(
            span("urls: [https://a.example/x.yaml, b]", 8),
            "https://a.example/x.yaml"
        );
        assert_eq!(span("{a: 1, host: 10.0.0.1}", 8), "host");
        assert_eq!(span("  name: 'it''s here' # c", 9), "'it''s here'");
        assert_eq!(span("  \"cni\": {\"exclusive\": false}", 3), "\"cni\"");
        assert_eq!(span("key: a#b", 6), "a#b");
    }

    #[test]
    fn objects_are_not_repeated() {
        assert_eq!(
            super::with_object(
                Some("Longhorn (driver.longhorn.io)"),
                "Longhorn (driver.longhorn.io) uses the pod network"
            ),
            "Longhorn (driver.longhorn.io) uses the pod network"
        );
        assert_eq!(
            super::with_object(Some("ns/pod"), "no controller"),
            "ns/pod: no controller"
        );
    }
}
