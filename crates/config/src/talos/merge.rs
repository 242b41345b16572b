//! Talos strategic merge, as `talosctl patch` / `--config-patch` apply it:
//! maps merge key by key, lists append (except fields Talos marks `merge:"replace"`),
//! `$patch: delete` removes a section or a whole named document.

use super::{document_kind, is_v1alpha1_document};
use crate::yaml::{Node, Value};

/// v1alpha1 list fields that a patch replaces instead of appending to (`merge:"replace"` in
/// pkg/machinery/config/types/v1alpha1).
const REPLACE_LISTS: &[&[&str]] = &[
    &["cluster", "network", "podSubnets"],
    &["cluster", "network", "serviceSubnets"],
    &["cluster", "apiServer", "admissionControl"],
    &["cluster", "apiServer", "auditPolicy"],
    &["podSubnets"],
    &["serviceSubnets"],
];

fn is_delete_marker(node: &Node) -> bool {
    node.get("$patch").and_then(Node::as_str) == Some("delete")
}

/// Applies a multi-document patch to a multi-document config in place.
pub fn apply_patch(config: &mut Vec<Node>, patch: &[Node]) {
    for patch_doc in patch {
        if is_v1alpha1_document(patch_doc) {
            match config.iter_mut().find(|d| is_v1alpha1_document(d)) {
                Some(base) => merge_into(base, patch_doc),
                None => config.push(without_markers(patch_doc)),
            }
            continue;
        }
        let Some(kind) = document_kind(patch_doc) else {
            continue;
        };
        let name = patch_doc.get("name").and_then(Node::scalar_text);
        let same = |d: &Node| {
            document_kind(d) == Some(kind) && d.get("name").and_then(Node::scalar_text) == name
        };
        if is_delete_marker(patch_doc) {
            config.retain(|d| !same(d));
        } else if let Some(base) = config.iter_mut().find(|d| same(d)) {
            merge_into(base, patch_doc);
        } else {
            config.push(without_markers(patch_doc));
        }
    }
}

/// Merges one patch document into one config document.
pub fn merge_into(base: &mut Node, patch: &Node) {
    merge_at(base, patch, &mut Vec::new());
}

fn merge_at(base: &mut Node, patch: &Node, path: &mut Vec<String>) {
    match (&mut base.value, &patch.value) {
        (Value::Map(base_entries), Value::Map(patch_entries)) => {
            for (key, value) in patch_entries {
                let Some(name) = key.scalar_text() else {
                    continue;
                };
                if name == "$patch" {
                    continue;
                }
                let existing = base_entries
                    .iter()
                    .position(|(k, _)| k.scalar_text().as_deref() == Some(&name));
                if is_delete_marker(value) {
                    if let Some(i) = existing {
                        base_entries.remove(i);
                    }
                    continue;
                }
                match existing {
                    Some(i) => {
                        path.push(name);
                        merge_at(&mut base_entries[i].1, value, path);
                        path.pop();
                    }
                    None => base_entries.push((key.clone(), without_markers(value))),
                }
            }
        }
        (Value::Seq(_), Value::Seq(_))
            if REPLACE_LISTS.iter().any(|p| p.iter().eq(path.iter())) =>
        {
            // The patch's list, with its position, is now the value.
            *base = patch.clone();
        }
        (Value::Seq(base_items), Value::Seq(patch_items)) => {
            base_items.extend(patch_items.iter().cloned());
        }
        _ => *base = without_markers(patch),
    }
}

fn without_markers(node: &Node) -> Node {
    match &node.value {
        Value::Map(entries) => Node {
            pos: node.pos,
            value: Value::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k.as_str() != Some("$patch"))
                    .map(|(k, v)| (k.clone(), without_markers(v)))
                    .collect(),
            ),
        },
        _ => node.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn docs(text: &str) -> Vec<Node> {
        parse_documents(text).unwrap()
    }

    #[test]
    fn pod_subnets_are_replaced_not_appended() {
        let mut config = docs(
            "version: v1alpha1\ncluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n    cni: {name: flannel}\n",
        );
        apply_patch(
            &mut config,
            &docs("cluster:\n  network:\n    podSubnets: [10.42.0.0/16]\n    cni: {name: none}\n"),
        );
        let network = config[0].path(&["cluster", "network"]).unwrap();
        assert_eq!(
            network.get("podSubnets").unwrap().string_list(),
            vec!["10.42.0.0/16"]
        );
        assert_eq!(
            network.path(&["cni", "name"]).unwrap().as_str(),
            Some("none")
        );
    }

    #[test]
    fn other_lists_append() {
        let mut config = docs("cluster:\n  extraManifests: [a]\n");
        apply_patch(&mut config, &docs("cluster:\n  extraManifests: [b]\n"));
        assert_eq!(
            config[0]
                .path(&["cluster", "extraManifests"])
                .unwrap()
                .string_list(),
            vec!["a", "b"]
        );
    }

    #[test]
    fn delete_marker_removes_named_document() {
        let mut config = docs(
            "version: v1alpha1\ncluster: {}\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\n",
        );
        apply_patch(
            &mut config,
            &docs("apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n"),
        );
        assert_eq!(config.len(), 1);
    }

    #[test]
    fn delete_marker_removes_section() {
        let mut config = docs(
            "machine:\n  features:\n    hostDNS: {enabled: true}\n    kubePrism: {enabled: true}\n",
        );
        apply_patch(
            &mut config,
            &docs("machine:\n  features:\n    hostDNS:\n      $patch: delete\n"),
        );
        let features = config[0].path(&["machine", "features"]).unwrap();
        assert!(features.get("hostDNS").is_none());
        assert!(features.get("kubePrism").is_some());
    }
}
