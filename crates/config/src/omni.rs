//! Sidero Omni: ConfigPatch resources and cluster templates (research/talos.md "Omni").

use crate::yaml::{Node, YamlError};

pub const CONFIG_PATCH_TYPE: &str = "ConfigPatches.omni.sidero.dev";
pub const CLUSTER_LABEL: &str = "omni.sidero.dev/cluster";

/// A standalone `ConfigPatches.omni.sidero.dev` resource.
#[derive(Debug, Clone)]
pub struct ConfigPatch {
    pub id: Option<String>,
    pub cluster: Option<String>,
    pub machine_set: Option<String>,
    pub cluster_machine: Option<String>,
    /// The Talos patch carried in `spec.data`, secrets redacted.
    pub patch: Vec<Node>,
    /// `spec.data` with its secrets redacted (same lines), for callers that keep the file text.
    pub redacted_data: Option<String>,
    /// Paths of secrets found in `spec.data` (Omni forbids most of them; they never leave here).
    pub redacted: Vec<String>,
}

pub fn is_config_patch(doc: &Node) -> bool {
    doc.path(&["metadata", "type"]).and_then(Node::as_str) == Some(CONFIG_PATCH_TYPE)
}

/// Reads a ConfigPatch; its `spec.data` must itself be valid YAML. With the file's text as
/// `source`, positions inside `spec.data` point into the file.
pub fn read_config_patch(doc: &Node, source: Option<&str>) -> Result<ConfigPatch, YamlError> {
    let label = |name: &str| {
        doc.path(&["metadata", "labels", name])
            .and_then(Node::scalar_text)
    };
    let holder = doc.path(&["spec", "data"]);
    let mut redacted_data = None;
    let (patch, redacted) = match holder.and_then(Node::as_str) {
        Some(text) => {
            let clean = crate::redact::redact_yaml(text).map_err(|e| YamlError {
                // Positions inside spec.data are relative to the string; anchor them at the key.
                line: doc.path(&["spec", "data"]).map_or(e.line, |n| n.pos.line),
                column: e.column,
                message: format!("in spec.data: {}", e.message),
                limit: e.limit,
            })?;
            redacted_data = Some(clean.text);
            let mut docs = clean.docs;
            if let Some(holder) = holder {
                crate::yaml::anchor_embedded(&mut docs, holder, source);
            }
            (docs, clean.paths)
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(ConfigPatch {
        id: doc.path(&["metadata", "id"]).and_then(Node::scalar_text),
        cluster: label(CLUSTER_LABEL),
        machine_set: label("omni.sidero.dev/machine-set"),
        cluster_machine: label("omni.sidero.dev/cluster-machine"),
        patch,
        redacted,
        redacted_data,
    })
}

/// One document of an Omni cluster template (`kind: Cluster | ControlPlane | Workers | Machine`).
pub fn is_template_document(doc: &Node) -> bool {
    doc.get("apiVersion").is_none()
        && matches!(
            doc.get("kind").and_then(Node::as_str),
            Some("Cluster" | "ControlPlane" | "Workers" | "Machine")
        )
}

/// A patch listed in a cluster template.
#[derive(Debug, Clone)]
pub struct TemplatePatch {
    /// Cluster, ControlPlane, Workers or Machine.
    pub scope: String,
    pub name: Option<String>,
    /// Inline patch documents; empty when the patch is a `file:` reference.
    pub inline: Vec<Node>,
    pub file: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterTemplate {
    pub cluster: Option<String>,
    pub talos_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub patches: Vec<TemplatePatch>,
}

pub fn read_template(docs: &[Node], source: Option<&str>) -> ClusterTemplate {
    let mut template = ClusterTemplate::default();
    for doc in docs.iter().filter(|d| is_template_document(d)) {
        let scope = doc
            .get("kind")
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        if scope == "Cluster" {
            template.cluster = doc.get("name").and_then(Node::scalar_text);
            template.talos_version = doc.path(&["talos", "version"]).and_then(Node::scalar_text);
            template.kubernetes_version = doc
                .path(&["kubernetes", "version"])
                .and_then(Node::scalar_text);
        }
        for patch in doc.get("patches").map(Node::as_seq).unwrap_or_default() {
            let inline = match patch.get("inline") {
                Some(node) if node.is_map() => vec![node.clone()],
                Some(node) => crate::yaml::parse_embedded(node, source).unwrap_or_default(),
                None => Vec::new(),
            };
            template.patches.push(TemplatePatch {
                scope: scope.clone(),
                name: patch.get("name").and_then(Node::scalar_text),
                inline,
                file: patch.get("file").and_then(Node::scalar_text),
            });
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn config_patch_data_is_parsed() {
        let doc = &parse_documents(
            "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cni\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n",
        )
        .unwrap()[0];
        assert!(is_config_patch(doc));
        let patch = read_config_patch(doc, None).unwrap();
        assert_eq!(patch.cluster.as_deref(), Some("lab"));
        assert_eq!(
            patch.patch[0]
                .path(&["cluster", "network", "cni", "name"])
                .unwrap()
                .as_str(),
            Some("none")
        );
    }

    #[test]
    fn template_patches_are_collected() {
        let docs = parse_documents(
            "kind: Cluster\nname: lab\ntalos: {version: v1.13.7}\nkubernetes: {version: v1.36.4}\npatches:\n  - name: no-cni\n    inline:\n      cluster: {network: {cni: {name: none}}}\n  - file: patches/x.yaml\n---\nkind: Workers\nmachineClass: {name: w}\n",
        )
        .unwrap();
        let t = read_template(&docs, None);
        assert_eq!(t.cluster.as_deref(), Some("lab"));
        assert_eq!(t.talos_version.as_deref(), Some("v1.13.7"));
        assert_eq!(t.patches.len(), 2);
        assert_eq!(t.patches[1].file.as_deref(), Some("patches/x.yaml"));
    }
}
