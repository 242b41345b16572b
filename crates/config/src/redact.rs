//! Secret redaction, by meaning rather than by a list of known paths.
//!
//! A value is secret when:
//! - its key says so: a name containing password, passphrase, secret, token, credential,
//!   private key, API or access key, authorization or cookie (`oidc-client-secret`,
//!   `bootstrap-token`, `identityToken`, `client-key-data`, WireGuard `privateKey`, ...); a
//!   `key` next to a certificate or under a CA; a registry `auth`; Talos `cluster.id` (part of
//!   the secrets bundle, research/talos.md "Secrets"); a pre-shared key named `PSK` (Flannel's
//!   IPsec and WireGuard backends in net-conf.json); `machine.files[].content`, which cniswap
//!   never reads; or anything below such a key;
//! - it sits in a Kubernetes Secret (`data`, `stringData`), wherever that Secret is embedded;
//! - it is a credential inside a value: the user part of a URL (`http://user:pass@proxy`), a
//!   secret query parameter, an `Authorization`-style `Bearer`/`Basic` value, or a
//!   `--flag=value` argument whose flag names a secret;
//! - it is inside YAML or JSON embedded in a string (inline manifests, kubeconfigs, talosctl
//!   resources, Omni `spec.data`), which is parsed and redacted the same way.
//!
//! Aliases are resolved first: a secret reached through `*alias` is rewritten where its anchor
//! is defined. Redaction rewrites only the secret scalars in the original text, so comments,
//! ordering and line numbers stay as the user wrote them and findings still point at the
//! right line.

use crate::yaml::{Node, Value, YamlError, parse_documents};

pub const REDACTED: &str = "<redacted by cniswap>";

/// Words that make a key secret (matched on the lower-cased key without `-`, `_` and `.`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "privatekey",
    "presharedkey",
    "apikey",
    "accesskey",
    "authkey",
    "keydata",
    "authorization",
    "cookie",
];

/// Parents under which a `key` field is a private key (machine.ca, cluster.ca,
/// cluster.aggregatorCA, cluster.serviceAccount, cluster.etcd.ca, machine.acceptedCAs items).
const KEY_PARENTS: &[&str] = &["ca", "aggregatorCA", "serviceAccount", "acceptedCAs", "os"];

/// How deep embedded YAML is followed (a string holding YAML holding a string of YAML ...).
const MAX_EMBEDDING: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    /// The parsed documents with every secret value replaced, so callers need not parse again.
    /// Positions are those of the original text (redaction keeps line numbers).
    pub docs: Vec<Node>,
    /// Dotted paths of the fields that were redacted (never their values).
    pub paths: Vec<String>,
}

/// Redacts every secret in a YAML stream. Fails only when the text is not YAML (or goes over a
/// budget).
pub fn redact_yaml(text: &str) -> Result<Redacted, YamlError> {
    redact_nested(text, 0)
}

/// Redacts a string that holds YAML inside another document (talosctl `spec`, Omni `spec.data`).
/// Text that does not parse is replaced whole: better to lose it than to leak it.
pub fn redact_embedded(text: &str) -> Redacted {
    redact_yaml(text).unwrap_or_else(|_| Redacted {
        text: REDACTED.to_string(),
        docs: Vec::new(),
        paths: vec!["<unparseable embedded config>".to_string()],
    })
}

fn redact_nested(text: &str, embedding: usize) -> Result<Redacted, YamlError> {
    let mut docs = parse_documents(text)?;
    let mut walk = Walk {
        text,
        embedding,
        edits: Vec::new(),
        paths: Vec::new(),
        path: Vec::new(),
        replaced: std::collections::HashMap::new(),
    };
    for doc in &mut docs {
        walk.node(doc, Context::default());
    }
    let Walk {
        edits,
        paths,
        replaced,
        ..
    } = walk;
    // An alias is a copy that keeps its anchor's position: whichever copy was redacted, every
    // other copy of the same text (the anchor itself, other aliases) must say the same.
    if !replaced.is_empty() {
        for doc in &mut docs {
            apply_replaced(doc, &replaced);
        }
    }
    Ok(Redacted {
        text: apply_edits(text, edits),
        docs,
        paths,
    })
}

/// Whether a mapping key names a secret, by the words it contains.
pub fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_WORDS.iter().any(|w| normalized.contains(w)) || normalized.ends_with("psk")
}

/// A `--flag=value` (or `-flag=value`) argument whose flag names a secret, with the value
/// redacted; `None` when the argument carries no secret.
pub fn redact_argument(arg: &str) -> Option<String> {
    let (flag, _) = arg.split_once('=')?;
    (flag.starts_with('-') && is_secret_key(flag.trim_start_matches('-')))
        .then(|| format!("{flag}={REDACTED}"))
}

/// A string value with the credentials it carries redacted (URL user info, secret query
/// parameters, `Bearer`/`Basic` authorization values, secret `--flag=value` arguments); `None`
/// when it carries none.
pub fn redact_inline_credentials(value: &str) -> Option<String> {
    let trimmed = value.trim_start().to_ascii_lowercase();
    if ["bearer ", "basic ", "token ", "digest "]
        .iter()
        .any(|scheme| trimmed.starts_with(scheme))
    {
        return Some(REDACTED.to_string());
    }
    if let Some(arg) = redact_argument(value) {
        return Some(arg);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let clean = redact_url_rest(url);
        changed |= clean != url;
        out.push_str(&clean);
        rest = tail;
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// The part of a URL after `scheme://`, without user info and with secret query values redacted.
fn redact_url_rest(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let mut out = match authority.rfind('@') {
        Some(at) => format!("{REDACTED}@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    match path.split_once('?') {
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((name, _)) if is_secret_key(name) => format!("{name}={REDACTED}"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
        }
        None => out.push_str(path),
    }
    out
}

/// Redacts the secrets of a JSON value in place (Calico and Cilium resources, ConfigMap data);
/// returns the dotted paths redacted.
pub fn redact_json(value: &mut serde_json::Value) -> Vec<String> {
    let mut paths = Vec::new();
    let mut stack: Vec<(&mut serde_json::Value, String, bool)> =
        vec![(value, String::new(), false)];
    while let Some((value, path, forced)) = stack.pop() {
        let secret_object = value.get("kind").and_then(|k| k.as_str()) == Some("Secret");
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let force = forced
                        || is_secret_key(key)
                        || (secret_object && matches!(key.as_str(), "data" | "stringData"));
                    stack.push((child, child_path, force));
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    stack.push((item, path.clone(), forced));
                }
            }
            serde_json::Value::String(s) => {
                if forced {
                    if !s.is_empty() && s != REDACTED {
                        *s = REDACTED.to_string();
                    }
                    paths.push(path);
                } else if let Some(clean) = redact_string(s) {
                    *s = clean;
                    paths.push(path);
                }
            }
            serde_json::Value::Number(_) if forced => {
                *value = serde_json::Value::String(REDACTED.to_string());
                paths.push(path);
            }
            _ => {}
        }
    }
    paths.sort();
    paths
}

/// A string value (not a YAML field) with its secrets redacted: inline credentials, or the
/// secrets of YAML/JSON embedded in it. `None` when nothing in it is secret.
pub fn redact_string(value: &str) -> Option<String> {
    if let Some(clean) = redact_inline_credentials(value) {
        return Some(clean);
    }
    if looks_embedded(value) {
        return match redact_nested(value, 1) {
            Ok(r) if !r.paths.is_empty() => Some(r.text),
            _ => None,
        };
    }
    None
}

fn looks_embedded(value: &str) -> bool {
    let start = value.trim_start();
    (value.contains('\n') && value.contains(':')) || start.starts_with('{')
}

/// Where a node sits, as far as redaction cares.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    /// Everything below is secret.
    forced: bool,
    /// The value must be embedded YAML; if it does not parse it is replaced whole.
    embedded_required: bool,
}

struct Edit {
    start: usize,
    end: usize,
    replacement: String,
}

struct Walk<'t> {
    text: &'t str,
    embedding: usize,
    edits: Vec<Edit>,
    paths: Vec<String>,
    path: Vec<String>,
    /// New values by the source span of the scalar they replaced.
    replaced: std::collections::HashMap<(usize, usize), Value>,
}

/// Gives every scalar whose source span was redacted its redacted value.
fn apply_replaced(doc: &mut Node, replaced: &std::collections::HashMap<(usize, usize), Value>) {
    let mut stack = vec![doc];
    while let Some(node) = stack.pop() {
        let span = (node.pos.char_start, node.pos.char_end);
        let positioned = node.has_position();
        match &mut node.value {
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    stack.push(k);
                    stack.push(v);
                }
            }
            value => {
                if positioned && let Some(new) = replaced.get(&span) {
                    *value = new.clone();
                }
            }
        }
    }
}

impl Walk<'_> {
    fn node(&mut self, node: &mut Node, ctx: Context) {
        match &mut node.value {
            Value::Map(entries) => {
                let secret_object = entries
                    .iter()
                    .any(|(k, v)| k.as_str() == Some("kind") && v.as_str() == Some("Secret"));
                let parent = self.path.last().cloned();
                let grandparent_is_root = self.path.len() == 1;
                let has_certificate = entries
                    .iter()
                    .any(|(k, _)| matches!(k.as_str(), Some("crt" | "cert" | "certificate")));
                let in_files = self.path.len() >= 2
                    && self.path[self.path.len() - 2..] == ["machine", "files"];
                for (key, value) in entries.iter_mut() {
                    let Some(name) = key.scalar_text() else {
                        continue;
                    };
                    let secret = ctx.forced
                        || is_secret_key(&name)
                        || (name == "key"
                            && (has_certificate
                                || parent.as_deref().is_some_and(|p| KEY_PARENTS.contains(&p))))
                        || (name == "auth" && value.as_str().is_some())
                        || (name == "id"
                            && parent.as_deref() == Some("cluster")
                            && grandparent_is_root)
                        || (secret_object && matches!(name.as_str(), "data" | "stringData"))
                        || (in_files && name == "content");
                    let embedded_required = name == "contents"
                        && (parent.as_deref() == Some("inlineManifests") || self.path.is_empty());
                    self.path.push(name);
                    self.node(
                        value,
                        Context {
                            forced: secret,
                            embedded_required,
                        },
                    );
                    self.path.pop();
                }
            }
            Value::Seq(items) => {
                let mut after_secret_flag = false;
                for item in items.iter_mut() {
                    let next_secret = item.as_str().is_some_and(|s| {
                        s.starts_with('-')
                            && !s.contains('=')
                            && is_secret_key(s.trim_start_matches('-'))
                    });
                    self.node(
                        item,
                        Context {
                            forced: ctx.forced || after_secret_flag,
                            embedded_required: false,
                        },
                    );
                    after_secret_flag = next_secret;
                }
            }
            Value::Null => {}
            Value::Bool(_) if !ctx.forced => {}
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => {
                self.scalar(node, ctx)
            }
        }
    }

    fn scalar(&mut self, node: &mut Node, ctx: Context) {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            other if ctx.forced => format!("{other:?}"),
            _ => return,
        };
        if text.is_empty() {
            return;
        }
        if ctx.forced {
            self.paths.push(self.path.join("."));
            if text != REDACTED {
                self.replace(node, Replacement::Redacted);
                self.set(node, Value::Str(REDACTED.to_string()));
            }
            return;
        }
        if let Some(clean) = redact_inline_credentials(&text) {
            self.paths.push(self.path.join("."));
            self.replace(node, Replacement::Quoted(&clean));
            self.set(node, Value::Str(clean));
            return;
        }
        if (ctx.embedded_required || looks_embedded(&text)) && self.embedding < MAX_EMBEDDING {
            match redact_nested(&text, self.embedding + 1) {
                Ok(inner) if inner.paths.is_empty() => {}
                Ok(inner) => {
                    let prefix = self.path.join(".");
                    self.paths
                        .extend(inner.paths.iter().map(|p| format!("{prefix}>{p}")));
                    self.replace(node, Replacement::Embedded(&inner.text));
                    self.set(node, Value::Str(inner.text));
                }
                Err(_) if ctx.embedded_required => {
                    self.paths.push(self.path.join("."));
                    self.replace(node, Replacement::Redacted);
                    self.set(node, Value::Str(REDACTED.to_string()));
                }
                Err(_) => {}
            }
        }
    }

    /// Gives `node` its redacted value, and remembers it for the other copies of its text.
    fn set(&mut self, node: &mut Node, value: Value) {
        if node.has_position() {
            self.replaced
                .insert((node.pos.char_start, node.pos.char_end), value.clone());
        }
        node.value = value;
    }

    /// Records the text edit that replaces `node`'s scalar (at its anchor when aliased).
    fn replace(&mut self, node: &Node, replacement: Replacement<'_>) {
        let (start, end) = (node.pos.char_start, node.pos.char_end);
        if !node.has_position() || end <= start {
            return;
        }
        let span: String = self.text.chars().skip(start).take(end - start).collect();
        // Keep an anchor or tag in front of the scalar (`&name "value"`, `!!str value`).
        let mut skip = 0;
        let mut rest = span.as_str();
        while rest.starts_with(['&', '!']) {
            let token = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let spaces = rest[token..].len() - rest[token..].trim_start().len();
            skip += rest[..token + spaces].chars().count();
            rest = &rest[token + spaces..];
        }
        let mut indent = " ".repeat(node.pos.column.saturating_sub(1));
        if node.pos.block && rest.starts_with(['|', '>']) {
            // With properties the span starts before the indicator: keep that line too.
            if let Some(newline) = rest.find('\n') {
                let content = &rest[newline + 1..];
                let spaces = content.len() - content.trim_start_matches(' ').len();
                skip += rest[..newline + 1].chars().count() + spaces;
                indent = " ".repeat(spaces);
                rest = &content[spaces..];
            }
        }
        let start = start + skip;
        let span = rest;
        let newlines = span.matches('\n').count();
        if node.pos.block {
            // `|`/`>` stays; the content lines are replaced, keeping their number.
            let region_newlines = span
                .rfind('\n')
                .map_or(0, |i| span[..=i].matches('\n').count());
            let content_len = span
                .rfind('\n')
                .map_or(span.chars().count(), |i| span[..=i].chars().count());
            let body = match replacement {
                Replacement::Embedded(inner) if inner.matches('\n').count() <= region_newlines => {
                    let mut lines: Vec<String> = Vec::new();
                    for (i, line) in inner.split('\n').enumerate() {
                        lines.push(if i == 0 || line.is_empty() {
                            line.to_string()
                        } else {
                            format!("{indent}{line}")
                        });
                    }
                    let mut body = lines.join("\n");
                    let have = body.matches('\n').count();
                    body.push_str(&"\n".repeat(region_newlines - have));
                    body
                }
                Replacement::Quoted(value) if !value.contains('\n') => {
                    format!("{value}{}", "\n".repeat(region_newlines))
                }
                _ => format!("{REDACTED}{}", "\n".repeat(region_newlines)),
            };
            self.edits.push(Edit {
                start,
                end: start + content_len,
                replacement: body,
            });
            return;
        }
        let value = match replacement {
            Replacement::Redacted => REDACTED,
            Replacement::Quoted(v) | Replacement::Embedded(v) if !v.contains('\n') => v,
            _ => REDACTED,
        };
        let quoted = serde_json::to_string(value).unwrap_or_else(|_| format!("\"{REDACTED}\""));
        self.edits.push(Edit {
            start,
            end,
            replacement: format!("{quoted}{}", "\n".repeat(newlines)),
        });
    }
}

enum Replacement<'a> {
    /// The whole value becomes [`REDACTED`].
    Redacted,
    /// The value becomes this one-line string.
    Quoted(&'a str),
    /// The value becomes this redacted text of the YAML it held (same number of lines).
    Embedded(&'a str),
}

/// Applies the edits (character ranges) to `text`. Overlapping edits (several aliases of one
/// anchor) apply once.
fn apply_edits(text: &str, mut edits: Vec<Edit>) -> String {
    if edits.is_empty() {
        return text.to_string();
    }
    edits.sort_by_key(|e| (e.start, e.end));
    // Character offsets to byte offsets, in one pass over the text.
    let mut wanted: Vec<usize> = edits.iter().flat_map(|e| [e.start, e.end]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut bytes_at = std::collections::HashMap::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    for (chars, (byte, _)) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .enumerate()
    {
        while next.peek().is_some_and(|w| **w == chars) {
            bytes_at.insert(chars, byte);
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
    }
    let to_byte = |c: usize| bytes_at.get(&c).copied().unwrap_or(text.len());
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for edit in edits {
        let (start, end) = (to_byte(edit.start), to_byte(edit.end));
        if start < cursor {
            continue;
        }
        out.push_str(&text[cursor..start]);
        out.push_str(&edit.replacement);
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

    /// Every field of issue 10 §4 and issue 9 §4, with a marker, in clear and base64.
    const TALOS: &str = r#"version: v1alpha1
machine:
  token: MARKER-machine-token
  env:
    https_proxy: http://proxyuser:MARKER-proxy@proxy.example:3128
  registries:
    config:
      registry.example:
        auth:
          username: someone
          password: MARKER-registry-password
          auth: TUFSS0VSLXJlZ2lzdHJ5LWF1dGg=
          identityToken: MARKER-identity-token
  systemDiskEncryption:
    state:
      provider: luks2
      keys:
        - static:
            passphrase: MARKER-disk-passphrase
          slot: 0
  kubelet:
    extraArgs:
      bootstrap-token: MARKER-bootstrap-token
  files:
    - path: /var/etc/kubeconfig
      permissions: 0o600
      op: create
      content: |
        users:
          - name: admin
            user:
              client-key-data: TUFSS0VSLWZpbGU=
cluster:
  id: MARKER-cluster-id
  secret: MARKER-cluster-secret
  apiServer:
    extraArgs:
      oidc-client-secret: MARKER-oidc
  extraManifestHeaders:
    Authorization: Bearer MARKER-bearer
  extraManifests:
    - https://example.com/m.yaml?token=MARKER-query&x=1
  inlineManifests:
    - name: creds
      contents: |
        apiVersion: v1
        kind: Secret
        metadata:
          name: creds
        data:
          password: TUFSS0VSLWlubGluZQ==
        stringData:
          kubeconfig: MARKER-inline-kubeconfig
    - name: cilium
      contents: |
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: cilium-config
        data:
          tunnel-port: "8473"
"#;

    #[test]
    fn every_secret_field_is_redacted_and_the_rest_kept() {
        let r = redact_yaml(TALOS).unwrap();
        assert!(!r.text.contains("MARKER"), "{}", r.text);
        assert!(
            !r.text.contains("TUFSS0VS"),
            "base64 of the marker: {}",
            r.text
        );
        assert_eq!(r.text.lines().count(), TALOS.lines().count());
        let docs = parse_documents(&r.text).unwrap();
        let doc = &docs[0];
        for (path, expected) in [
            (&["cluster", "inlineManifests"][..], None),
            (
                &[
                    "machine",
                    "registries",
                    "config",
                    "registry.example",
                    "auth",
                    "username",
                ],
                Some("someone"),
            ),
            (
                &["machine", "systemDiskEncryption", "state", "provider"],
                Some("luks2"),
            ),
        ] {
            let node = doc.path(path).unwrap();
            if let Some(expected) = expected {
                assert_eq!(node.as_str(), Some(expected));
            }
        }
        assert!(
            r.text
                .contains("http://<redacted by cniswap>@proxy.example:3128")
        );
        assert!(r.text.contains("token=<redacted by cniswap>&x=1"));
        assert!(
            r.text.contains("tunnel-port: \"8473\""),
            "non-secret embedded content stays"
        );
        // The tree handed to readers agrees with the text.
        assert_eq!(
            r.docs[0].path(&["cluster", "id"]).unwrap().as_str(),
            Some(REDACTED)
        );
        assert!(r.paths.contains(&"cluster.id".to_string()));
        assert!(r.paths.iter().all(|p| !p.contains("MARKER")));
    }

    #[test]
    fn flannel_pre_shared_keys_in_net_conf_are_redacted() {
        for backend in ["ipsec", "wireguard"] {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: |\n    {{\n      \"Network\": \"10.244.0.0/16\",\n      \"Backend\": {{\"Type\": \"{backend}\", \"PSK\": \"MARKER-{backend}-psk\"}}\n    }}\n"
            );
            let r = redact_yaml(&text).unwrap();
            assert!(!r.text.contains("MARKER"), "{}", r.text);
            assert!(r.text.contains("10.244.0.0/16"), "{}", r.text);
            assert!(
                r.text.contains(backend),
                "the backend type stays: {}",
                r.text
            );
        }
        // A live ConfigMap, as the cluster reader redacts it.
        let mut live = serde_json::json!({"kind": "ConfigMap", "data": {"net-conf.json":
            "{\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"wireguard\",\"PSK\":\"MARKER-live\"}}"}});
        redact_json(&mut live);
        assert!(!live.to_string().contains("MARKER"), "{live}");
        assert!(live.to_string().contains("10.244.0.0/16"), "{live}");
        assert!(is_secret_key("PSK") && is_secret_key("ipsec-psk"));
        assert!(!is_secret_key("upskill"));
    }

    #[test]
    fn an_alias_does_not_bypass_redaction() {
        let text = "x: &t MARKER-anchored\nmachine:\n  token: *t\n  other: *t\nblock: &b |\n  MARKER-block\nsecret: *b\n";
        let r = redact_yaml(text).unwrap();
        assert!(!r.text.contains("MARKER"), "{}", r.text);
        let again = parse_documents(&r.text).unwrap_or_else(|e| panic!("{e}\n{}", r.text));
        assert_eq!(
            again[0].path(&["machine", "token"]).unwrap().as_str(),
            Some(REDACTED)
        );
        assert_eq!(r.text.lines().count(), text.lines().count());
        // The anchor definition keeps its anchor, so the aliases still resolve.
        assert!(r.text.starts_with("x: &t \""), "{}", r.text);
        // The tree readers get agrees: the anchor and every alias copy are redacted.
        assert_eq!(r.docs[0].get("x").unwrap().as_str(), Some(REDACTED));
        assert_eq!(
            r.docs[0].path(&["machine", "other"]).unwrap().as_str(),
            Some(REDACTED)
        );
        assert!(!format!("{:?}", r.docs).contains("MARKER"));
    }

    #[test]
    fn unparseable_inline_manifest_is_replaced_whole() {
        let text = "cluster:\n  inlineManifests:\n    - name: x\n      contents: |\n        MARKER: [unclosed\n        more\n";
        let r = redact_yaml(text).unwrap();
        assert!(!r.text.contains("MARKER"), "{}", r.text);
        assert_eq!(r.text.lines().count(), text.lines().count());
    }

    #[test]
    fn credentials_inside_values() {
        assert_eq!(
            redact_inline_credentials("https://u:p@h/x?access_token=s&b=1").as_deref(),
            Some("https://<redacted by cniswap>@h/x?access_token=<redacted by cniswap>&b=1")
        );
        assert_eq!(redact_inline_credentials("https://h/x?b=1"), None);
        assert_eq!(
            redact_argument("--oidc-client-secret=abc").as_deref(),
            Some("--oidc-client-secret=<redacted by cniswap>")
        );
        assert_eq!(redact_argument("--cluster-cidr=10.0.0.0/8"), None);
        let r = redact_yaml("args: [--token, MARKER, --v=2]\n").unwrap();
        assert!(!r.text.contains("MARKER"), "{}", r.text);
        let mut json = serde_json::json!({"spec": {"password": "MARKER", "peer": "1.2.3.4", "n": [{"authKey": 5}]}});
        let paths = redact_json(&mut json);
        assert!(!json.to_string().contains("MARKER"));
        assert_eq!(json["spec"]["peer"], "1.2.3.4");
        assert_eq!(paths, vec!["spec.n.authKey", "spec.password"]);
    }
}
