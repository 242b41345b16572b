//! Best-effort reading of templated YAML (Jinja `.j2`, Terraform `.tftpl`, Go templates): the
//! template syntax is blanked out so the rest can be linted, keeping every line where it was.

/// Placeholder for an expression (`{{ ... }}`, `${ ... }`) inside a line.
pub const PLACEHOLDER: &str = "TEMPLATED";

/// Replaces directive-only lines (`{% if %}`, `%{ for }`, `{{- end }}`, `{# #}`, a lone
/// `${indent(...)}`) with empty lines and inline expressions with [`PLACEHOLDER`]. Returns
/// `None` when there was nothing to neutralise.
pub fn neutralise(text: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim();
        let directive_only = (trimmed.starts_with("{%") && trimmed.ends_with("%}"))
            || (trimmed.starts_with("%{") && trimmed.ends_with('}'))
            || (trimmed.starts_with("{#") && trimmed.ends_with("#}"))
            || (trimmed.starts_with("{{") && trimmed.ends_with("}}") && !trimmed.contains(':'))
            || (trimmed.starts_with("${") && trimmed.ends_with('}') && !trimmed.contains(": "));
        if directive_only {
            changed = true;
            out.push_str(newline);
            continue;
        }
        let replaced = replace_expressions(body);
        changed |= replaced != body;
        out.push_str(&replaced);
        out.push_str(newline);
    }
    changed.then_some(out)
}

fn replace_expressions(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let next = [("{{", "}}"), ("${", "}"), ("{%", "%}"), ("%{", "}")]
            .iter()
            .filter_map(|(open, close)| rest.find(open).map(|i| (i, *open, *close)))
            .min_by_key(|(i, _, _)| *i);
        let Some((start, open, close)) = next else {
            out.push_str(rest);
            return out;
        };
        let Some(len) = rest[start + open.len()..].find(close) else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        out.push_str(PLACEHOLDER);
        rest = &rest[start + open.len() + len + close.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_blanks_template_syntax() {
        let text = "machine:\n{% if x %}\n  type: {{ role }}\n%{ for ip in ips ~}\n  certSANs: [\"${ip}\"]\n%{ endfor ~}\n{% endif %}\n";
        let out = neutralise(text).unwrap();
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.contains("  type: TEMPLATED"));
        assert!(out.contains("certSANs: [\"TEMPLATED\"]"));
        assert!(crate::yaml::parse_documents(&out).is_ok(), "{out}");
        assert_eq!(neutralise("a: 1\n"), None);
    }
}
