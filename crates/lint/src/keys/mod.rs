//! Key sets of the configuration formats cniswap checks for unknown keys (TAL017, CIL017,
//! CAL011), built as data from the upstream sources named at the top of each file in data/.

use cniswap_config::{Node, Value};
use std::collections::BTreeMap;

pub mod cilium;

/// A `major.minor` version.
pub type Minor = (u32, u32);

#[derive(Debug, Default)]
pub struct KeyTree {
    root: KeyNode,
}

#[derive(Debug, Default)]
struct KeyNode {
    children: BTreeMap<String, KeyNode>,
    /// Takes any keys below.
    open: bool,
    /// Exists since this version.
    since: Option<Minor>,
}

/// A key the tree does not know.
#[derive(Debug)]
pub struct UnknownKey<'a> {
    /// Dotted path of the key as written.
    pub path: String,
    /// The key node (for its position).
    pub key: &'a Node,
    /// The nearest valid path, when one is close enough.
    pub suggestion: Option<String>,
    /// The suggestion is a sibling spelled alike (a typo), not the same key elsewhere.
    pub typo: bool,
    /// Set when the key exists, but only from this version on.
    pub since: Option<Minor>,
}

fn parse_minor(text: &str) -> Option<Minor> {
    let (major, minor) = text.trim_start_matches('v').split_once('.')?;
    Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
}

impl KeyTree {
    /// Parses the data format: one dotted path per line, `[]` for list items, ` *` for open
    /// maps, `@1.N` for the first version with the key. `#` starts a comment line.
    pub fn parse(text: &str) -> Self {
        let mut tree = KeyTree::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(path) = words.next() else { continue };
            let mut open = false;
            let mut since = None;
            for word in words {
                if word == "*" {
                    open = true;
                } else if let Some(v) = word.strip_prefix('@') {
                    since = parse_minor(v);
                }
            }
            let node = tree.insert(path);
            node.open |= open;
            node.since = node.since.or(since);
        }
        tree
    }

    fn insert(&mut self, path: &str) -> &mut KeyNode {
        let mut node = &mut self.root;
        for segment in segments(path) {
            node = node.children.entry(segment.to_string()).or_default();
        }
        node
    }

    pub fn add(&mut self, path: &str, since: Option<Minor>) {
        let node = self.insert(path);
        node.since = since;
    }

    pub fn remove(&mut self, path: &str) {
        let segments: Vec<&str> = segments(path).collect();
        let Some((last, parents)) = segments.split_last() else {
            return;
        };
        let mut node = &mut self.root;
        for s in parents {
            match node.children.get_mut(*s) {
                Some(next) => node = next,
                None => return,
            }
        }
        node.children.remove(*last);
    }

    /// Every key of `doc` the tree does not know, for a config of `version` (unknown: the
    /// newest keys count as known).
    pub fn unknown_keys<'a>(&self, doc: &'a Node, version: Option<Minor>) -> Vec<UnknownKey<'a>> {
        let mut out = Vec::new();
        self.walk(&self.root, doc, &mut Vec::new(), version, &mut out);
        out
    }

    fn walk<'a>(
        &self,
        tree: &KeyNode,
        node: &'a Node,
        path: &mut Vec<String>,
        version: Option<Minor>,
        out: &mut Vec<UnknownKey<'a>>,
    ) {
        if tree.open || tree.children.is_empty() {
            return;
        }
        match &node.value {
            Value::Map(entries) => {
                for (key_node, value) in entries {
                    let Some(key) = key_node.scalar_text() else {
                        continue;
                    };
                    if key == "$patch" {
                        continue;
                    }
                    match tree.children.get(&key) {
                        Some(child) => {
                            if let (Some(since), Some(v)) = (child.since, version)
                                && v < since
                            {
                                out.push(UnknownKey {
                                    path: join(path, &key),
                                    key: key_node,
                                    suggestion: None,
                                    typo: false,
                                    since: Some(since),
                                });
                                continue;
                            }
                            path.push(key);
                            self.walk(child, value, path, version, out);
                            path.pop();
                        }
                        None => {
                            let typo = typo_of(tree, &key).map(|k| join(path, k));
                            out.push(UnknownKey {
                                path: join(path, &key),
                                key: key_node,
                                typo: typo.is_some(),
                                suggestion: typo.or_else(|| self.moved_to(path, &key, value)),
                                since: None,
                            });
                        }
                    }
                }
            }
            Value::Seq(items) => {
                if let Some(item) = tree.children.get("[]") {
                    path.push("[]".into());
                    for element in items {
                        self.walk(item, element, path, version, out);
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The same key at another path whose children fit what was written
    /// (`cluster.network.proxy.disabled` -> `cluster.proxy.disabled`).
    fn moved_to(&self, path: &[String], key: &str, value: &Node) -> Option<String> {
        let wanted: Vec<String> = value
            .entries()
            .iter()
            .filter_map(|(k, _)| k.scalar_text())
            .collect();
        let mut best: Option<(usize, String)> = None;
        let mut stack = vec![(&self.root, Vec::<String>::new())];
        while let Some((node, node_path)) = stack.pop() {
            for (name, child) in &node.children {
                let mut child_path = node_path.clone();
                child_path.push(name.clone());
                if name.eq_ignore_ascii_case(key)
                    && wanted
                        .iter()
                        .all(|w| child.open || child.children.contains_key(w))
                {
                    let common = child_path
                        .iter()
                        .zip(path)
                        .take_while(|(a, b)| a == b)
                        .count();
                    // A bare generic key (`enabled: true`) matches everywhere: only suggest
                    // another place when the written children or the path prefix agree.
                    let evidence = !wanted.is_empty() || common > 0;
                    if evidence && best.as_ref().is_none_or(|(c, _)| common > *c) {
                        best = Some((common, child_path.join(".")));
                    }
                }
                stack.push((child, child_path));
            }
        }
        best.map(|(_, p)| p)
    }
}

/// A sibling spelled alike: equal ignoring case (`automount`), or at most two edits away
/// (`enable` -> `enabled`).
fn typo_of<'a>(parent: &'a KeyNode, key: &str) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    parent
        .children
        .keys()
        .filter(|k| *k != "[]")
        .map(|k| {
            (
                strsim::damerau_levenshtein(&k.to_ascii_lowercase(), &lower),
                k,
            )
        })
        .filter(|(distance, k)| *distance == 0 || (*distance <= 2 && k.len() >= 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.as_str())
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('.').flat_map(|s| match s.strip_suffix("[]") {
        Some(name) => vec![name, "[]"],
        None => vec![s],
    })
}

fn join(path: &[String], key: &str) -> String {
    let mut out = String::new();
    for segment in path.iter().map(String::as_str).chain([key]) {
        if segment == "[]" {
            out.push_str("[]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// Talos v1alpha1 machine config keys.
pub fn talos() -> &'static KeyTree {
    static TREE: std::sync::OnceLock<KeyTree> = std::sync::OnceLock::new();
    TREE.get_or_init(|| KeyTree::parse(include_str!("data/talos.txt")))
}

/// Fields of the Talos named documents cniswap checks, by kind.
pub fn talos_documents() -> &'static BTreeMap<String, KeyTree> {
    static TREES: std::sync::OnceLock<BTreeMap<String, KeyTree>> = std::sync::OnceLock::new();
    TREES.get_or_init(|| {
        let mut trees = BTreeMap::new();
        for line in include_str!("data/talos-documents.txt").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(kind) = words.next() else { continue };
            let mut text = String::from("apiVersion\nkind\nname\n");
            for field in words {
                match field.strip_suffix('*') {
                    Some(open) => text.push_str(&format!("{open} *\n")),
                    None => text.push_str(&format!("{field}\n")),
                }
            }
            trees.insert(kind.to_string(), KeyTree::parse(&text));
        }
        trees
    })
}

/// Tigera operator Installation spec fields.
pub fn calico_installation() -> &'static KeyTree {
    static TREE: std::sync::OnceLock<KeyTree> = std::sync::OnceLock::new();
    TREE.get_or_init(|| KeyTree::parse(include_str!("data/calico-installation.txt")))
}

/// Calico FelixConfiguration spec fields.
pub fn calico_felix() -> &'static KeyTree {
    static TREE: std::sync::OnceLock<KeyTree> = std::sync::OnceLock::new();
    TREE.get_or_init(|| KeyTree::parse(include_str!("data/calico-felix.txt")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cniswap_config::yaml::parse_documents;

    #[test]
    fn suggests_siblings_and_moved_sections() {
        let doc = &parse_documents(
            "cluster:\n  network:\n    proxy:\n      disabled: true\n    cni: {name: none}\n",
        )
        .unwrap()[0];
        let unknown = talos().unknown_keys(doc, Some((1, 11)));
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].path, "cluster.network.proxy");
        assert_eq!(unknown[0].suggestion.as_deref(), Some("cluster.proxy"));
        assert_eq!(unknown[0].key.pos.line, 3);
    }

    #[test]
    fn open_maps_lists_and_versions() {
        let doc = &parse_documents(
            "machine:\n  network:\n    interfaces: [{interface: eth0, dhcp: true}]\n  features:\n    hostDNS: {enabled: true}\ncluster:\n  inlineManifests:\n    - name: x\n      contens: y\n",
        )
        .unwrap()[0];
        let unknown = talos().unknown_keys(doc, Some((1, 6)));
        let paths: Vec<_> = unknown.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "machine.features.hostDNS",
                "cluster.inlineManifests[].contens"
            ]
        );
        assert_eq!(unknown[0].since, Some((1, 7)));
        assert_eq!(
            unknown[1].suggestion.as_deref(),
            Some("cluster.inlineManifests[].contents")
        );
    }
}
