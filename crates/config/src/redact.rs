//! Secret redaction for Talos machine configs, Omni resources and kubeconfigs.
//!
//! Redaction rewrites only the secret scalars in the original text, so comments, ordering and
//! line numbers stay as the user wrote them and later findings still point at the right line.
//! Secret paths come from research/talos.md "Secrets" (machine.token, machine.ca.key,
//! cluster.secret, cluster.token, cluster.*.key, *EncryptionSecret), plus WireGuard private
//! keys and kubeconfig credentials.

use crate::yaml::{Node, Value, YamlError, parse_documents};

pub const REDACTED: &str = "<redacted by cniswap>";

/// Keys whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "secretboxEncryptionSecret",
    "aescbcEncryptionSecret",
    "privateKey",
    "presharedKey",
    "bootstrapToken",
    "password",
    "client-key-data",
    "client-secret",
    "id-token",
    "refresh-token",
];

/// Parents under which a `key` field is a private key (machine.ca, cluster.ca,
/// cluster.aggregatorCA, cluster.serviceAccount, cluster.etcd.ca, machine.acceptedCAs items).
const KEY_PARENTS: &[&str] = &["ca", "aggregatorCA", "serviceAccount", "acceptedCAs", "os"];

#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    /// The parsed documents with every secret value replaced, so callers need not parse again.
    /// Positions are those of the original text (redaction keeps line numbers).
    pub docs: Vec<Node>,
    /// Dotted paths of the fields that were redacted (never their values).
    pub paths: Vec<String>,
}

/// Redacts every secret in a YAML stream. Fails only when the text is not YAML.
pub fn redact_yaml(text: &str) -> Result<Redacted, YamlError> {
    let mut docs = parse_documents(text)?;
    let mut spans = Vec::new();
    let mut paths = Vec::new();
    for doc in &mut docs {
        collect(doc, &mut Vec::new(), &mut spans, &mut paths);
    }
    Ok(Redacted {
        text: replace_char_spans(text, &mut spans),
        docs,
        paths,
    })
}

/// Redacts a string that holds YAML inside another document (talosctl `spec`, Omni `spec.data`).
/// `redact_yaml` does not look inside strings: whoever unwraps an embedded config redacts it here.
/// Text that does not parse is replaced whole: better to lose it than to leak it.
pub fn redact_embedded(text: &str) -> Redacted {
    redact_yaml(text).unwrap_or_else(|_| Redacted {
        text: REDACTED.to_string(),
        docs: Vec::new(),
        paths: vec!["<unparseable embedded config>".to_string()],
    })
}

/// Records the text range of each secret and replaces its value in the tree.
fn collect(
    node: &mut Node,
    path: &mut Vec<String>,
    spans: &mut Vec<(usize, usize)>,
    paths: &mut Vec<String>,
) {
    match &mut node.value {
        Value::Map(entries) => {
            let under_key_parent = path
                .last()
                .is_some_and(|p| KEY_PARENTS.contains(&p.as_str()));
            let has_certificate = has_sibling(entries, "crt");
            for (key, value) in entries.iter_mut() {
                let Some(name) = key.scalar_text() else {
                    continue;
                };
                let secret = SECRET_KEYS.contains(&name.as_str())
                    || (name == "key" && (under_key_parent || has_certificate));
                path.push(name);
                if secret && is_scalar(value) && !is_empty(value) {
                    spans.push((key.pos.char_end, value.pos.char_end));
                    paths.push(path.join("."));
                    value.value = Value::Str(REDACTED.to_string());
                } else {
                    collect(value, path, spans, paths);
                }
                path.pop();
            }
        }
        Value::Seq(items) => {
            for item in items.iter_mut() {
                collect(item, path, spans, paths);
            }
        }
        _ => {}
    }
}

fn has_sibling(entries: &[(Node, Node)], key: &str) -> bool {
    entries.iter().any(|(k, _)| k.as_str() == Some(key))
}

fn is_empty(node: &Node) -> bool {
    matches!(&node.value, Value::Null) || node.as_str() == Some("")
}

fn is_scalar(node: &Node) -> bool {
    !matches!(node.value, Value::Map(_) | Value::Seq(_))
}

/// Replaces each `(end of key, end of value)` range with `: "<redacted>"`, keeping as many
/// newlines as the range held so that every later line keeps its number.
fn replace_char_spans(text: &str, spans: &mut [(usize, usize)]) -> String {
    spans.sort_unstable();
    let byte_at: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let to_byte = |c: usize| byte_at.get(c).copied().unwrap_or(text.len());
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for &(start, end) in spans.iter() {
        let (start, mut end) = (to_byte(start), to_byte(end));
        if start < cursor {
            continue;
        }
        // A block scalar's span runs into the next line's indentation: stop at its last newline.
        if let Some(newline) = text[start..end].rfind('\n') {
            end = start + newline + 1;
        }
        out.push_str(&text[cursor..start]);
        out.push_str(": \"");
        out.push_str(REDACTED);
        out.push('"');
        out.extend(std::iter::repeat_n(
            '\n',
            text[start..end].matches('\n').count(),
        ));
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_structure_and_comments() {
        let text = "machine:\n  token: abc.def # join token\n  ca:\n    crt: LS0tCRT\n    key: LS0tKEY\ncluster:\n  secret: s3cr3t\n  network:\n    cni: {name: none}\n";
        let r = redact_yaml(text).unwrap();
        assert!(
            !r.text.contains("abc.def")
                && !r.text.contains("LS0tKEY")
                && !r.text.contains("s3cr3t")
        );
        assert!(r.text.contains("LS0tCRT"), "certificates are public");
        assert!(r.text.contains("# join token"));
        assert_eq!(r.text.lines().count(), text.lines().count());
        assert_eq!(
            r.paths,
            vec!["machine.token", "machine.ca.key", "cluster.secret"]
        );
        assert_eq!(
            r.docs[0].path(&["machine", "token"]).unwrap().as_str(),
            Some(REDACTED)
        );
        let again = parse_documents(&r.text).unwrap();
        assert_eq!(
            again[0]
                .path(&["cluster", "network", "cni", "name"])
                .unwrap()
                .as_str(),
            Some("none")
        );
    }

    #[test]
    fn taint_keys_are_not_secrets() {
        let r = redact_yaml(
            "taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n",
        )
        .unwrap();
        assert!(r.paths.is_empty());
    }

    #[test]
    fn block_scalar_secret_is_replaced() {
        let r = redact_yaml(
            "cluster:\n  serviceAccount:\n    key: |\n      LINE1\n      LINE2\n  x: 1\n",
        )
        .unwrap();
        assert!(
            !r.text.contains("LINE1") && !r.text.contains("LINE2"),
            "{}",
            r.text
        );
        assert_eq!(r.text.lines().count(), 6);
        assert_eq!(
            parse_documents(&r.text).unwrap()[0]
                .path(&["cluster", "x"])
                .unwrap()
                .as_u16(),
            Some(1)
        );
    }
}
