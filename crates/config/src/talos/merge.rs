//! Talos strategic merge, as `talosctl patch` / `--config-patch` apply it:
//! maps merge key by key, lists append (except fields Talos marks `merge:"replace"`),
//! `$patch: delete` removes a section or a whole named document.

use super::{document_kind, is_v1alpha1_document};
use crate::yaml::{Node, Value};
use std::collections::HashMap;

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

/// Applies a multi-document patch to a multi-document config in place. Documents are found
/// by kind and name through an index, so a patch of N documents costs O(N), not O(N^2).
pub fn apply_patch(config: &mut Vec<Node>, patch: &[Node]) {
    // Each config document by (kind, name); deleted ones become None until the end.
    let mut slots: Vec<Option<Node>> = config.drain(..).map(Some).collect();
    let key = |d: &Node| -> Option<(String, Option<String>)> {
        Some((
            document_kind(d)?.to_string(),
            d.get("name").and_then(Node::scalar_text),
        ))
    };
    let mut index: HashMap<(String, Option<String>), Vec<usize>> = HashMap::new();
    let mut v1alpha1: Option<usize> = None;
    for (i, doc) in slots.iter().enumerate() {
        let Some(doc) = doc else { continue };
        if is_v1alpha1_document(doc) {
            v1alpha1.get_or_insert(i);
        } else if let Some(k) = key(doc) {
            index.entry(k).or_default().push(i);
        }
    }
    for patch_doc in patch {
        if is_v1alpha1_document(patch_doc) {
            match v1alpha1.and_then(|i| slots[i].as_mut()) {
                Some(base) => merge_into(base, patch_doc),
                None => {
                    v1alpha1 = Some(slots.len());
                    slots.push(Some(without_markers(patch_doc)));
                }
            }
            continue;
        }
        let Some(k) = key(patch_doc) else {
            continue;
        };
        if is_delete_marker(patch_doc) {
            for i in index.remove(&k).unwrap_or_default() {
                slots[i] = None;
            }
        } else if let Some(base) = index
            .get(&k)
            .and_then(|slots_of| slots_of.first())
            .and_then(|i| slots[*i].as_mut())
        {
            merge_into(base, patch_doc);
        } else {
            index.entry(k).or_default().push(slots.len());
            slots.push(Some(without_markers(patch_doc)));
        }
    }
    config.extend(slots.into_iter().flatten());
}

/// Merges one patch document into one config document.
pub fn merge_into(base: &mut Node, patch: &Node) {
    merge_at(base, patch, &mut Vec::new());
}

fn merge_at(base: &mut Node, patch: &Node, path: &mut Vec<String>) {
    match (&mut base.value, &patch.value) {
        (Value::Map(base_entries), Value::Map(patch_entries)) => {
            // Built only for large maps, where a linear search per patch key would be O(N^2).
            let mut keys: Option<HashMap<String, usize>> = None;
            for (key, value) in patch_entries {
                let Some(name) = key.scalar_text() else {
                    continue;
                };
                if name == "$patch" {
                    continue;
                }
                let existing = position_of(base_entries, &name, &mut keys);
                if is_delete_marker(value) {
                    if let Some(i) = existing {
                        base_entries.remove(i);
                        keys = None;
                    }
                    continue;
                }
                match existing {
                    Some(i) => {
                        path.push(name);
                        merge_at(&mut base_entries[i].1, value, path);
                        path.pop();
                    }
                    None => {
                        if let Some(keys) = keys.as_mut() {
                            keys.insert(name, base_entries.len());
                        }
                        base_entries.push((key.clone(), without_markers(value)));
                    }
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

/// Where `name` is among the entries: a scan for small maps, an index for large ones.
fn position_of(
    entries: &[(Node, Node)],
    name: &str,
    keys: &mut Option<HashMap<String, usize>>,
) -> Option<usize> {
    const SCAN: usize = 32;
    if entries.len() <= SCAN && keys.is_none() {
        return entries
            .iter()
            .position(|(k, _)| k.scalar_text().as_deref() == Some(name));
    }
    let index = keys.get_or_insert_with(|| {
        let mut index = HashMap::new();
        for (i, (k, _)) in entries.iter().enumerate() {
            if let Some(text) = k.scalar_text() {
                index.entry(text).or_insert(i);
            }
        }
        index
    });
    index.get(name).copied()
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
    fn many_named_documents_merge_by_kind_and_name_in_order() {
        // The indexed merge must do exactly what the pairwise one did, at any size.
        let mut text = String::from("version: v1alpha1\nmachine: {type: worker}\n");
        for i in 0..200 {
            text.push_str(&format!("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: s{i}\nenvironment: [A={i}]\n"));
        }
        let mut config = docs(&text);
        let mut patch = String::from("machine: {type: controlplane}\n");
        patch.push_str("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: s7\nenvironment: [B=1]\n");
        patch.push_str(
            "---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: s9\n$patch: delete\n",
        );
        patch.push_str("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: new\n");
        patch.push_str("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: new\nenvironment: [C=2]\n");
        apply_patch(&mut config, &docs(&patch));
        assert_eq!(config.len(), 201);
        assert_eq!(
            config[0].path(&["machine", "type"]).unwrap().as_str(),
            Some("controlplane")
        );
        assert_eq!(
            config[8].get("environment").unwrap().string_list(),
            vec!["A=7", "B=1"]
        );
        assert_eq!(config[9].get("name").unwrap().as_str(), Some("s8"));
        assert_eq!(config[10].get("name").unwrap().as_str(), Some("s10"));
        let last = config.last().unwrap();
        assert_eq!(last.get("name").unwrap().as_str(), Some("new"));
        assert_eq!(last.get("environment").unwrap().string_list(), vec!["C=2"]);
        // A large map merges key by key too.
        let mut base: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        base = format!(
            "machine:\n  sysctls:\n{}",
            base.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let mut config = docs(&base);
        apply_patch(
            &mut config,
            &docs(
                "machine:\n  sysctls:\n    k50: changed\n    k100: added\n    k3:\n      $patch: delete\n",
            ),
        );
        let sysctls = config[0].path(&["machine", "sysctls"]).unwrap();
        assert_eq!(sysctls.entries().len(), 100);
        assert_eq!(sysctls.get("k50").unwrap().as_str(), Some("changed"));
        assert_eq!(sysctls.get("k100").unwrap().as_str(), Some("added"));
        assert!(sysctls.get("k3").is_none());
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
