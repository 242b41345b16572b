//! talhelper's `talconfig.yaml`: a cluster description that renders Talos configs.

use crate::yaml::Node;

#[derive(Debug, Clone, Default)]
pub struct TalConfig {
    pub cluster: Option<String>,
    pub talos_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub cni_name: Option<String>,
    pub pod_subnets: Vec<String>,
    pub service_subnets: Vec<String>,
    /// Inline patches with the role they apply to (`None` = every node); `@file` references
    /// are listed in `patch_files`.
    pub inline_patches: Vec<(Option<&'static str>, Node)>,
    pub patch_files: Vec<(Option<&'static str>, String)>,
    pub nodes: Vec<String>,
}

/// The cluster settings talhelper writes into every generated config (`cniConfig`,
/// `clusterPodNets`, `clusterSvcNets`), as a v1alpha1 patch that keeps the source positions.
pub fn generated_patch(doc: &Node) -> Option<Node> {
    use crate::yaml::Value;
    let key = |name: &str| Node::synthetic(Value::Str(name.to_string()));
    let mut network = Vec::new();
    if let Some(cni) = doc.get("cniConfig") {
        network.push((key("cni"), cni.clone()));
    }
    if let Some(pods) = doc.get("clusterPodNets") {
        network.push((key("podSubnets"), pods.clone()));
    }
    if let Some(services) = doc.get("clusterSvcNets") {
        network.push((key("serviceSubnets"), services.clone()));
    }
    if network.is_empty() {
        return None;
    }
    let network = Node::synthetic(Value::Map(network));
    let cluster = Node::synthetic(Value::Map(vec![(key("network"), network)]));
    Some(Node::synthetic(Value::Map(vec![(key("cluster"), cluster)])))
}

pub fn is_talconfig(doc: &Node) -> bool {
    doc.get("clusterName").is_some()
        && (doc.get("nodes").is_some() || doc.get("talosVersion").is_some())
}

/// Reads a talconfig; with the file's text as `source`, string patches keep file positions.
pub fn read(doc: &Node, source: Option<&str>) -> TalConfig {
    let mut config = TalConfig {
        cluster: doc.get("clusterName").and_then(Node::scalar_text),
        talos_version: doc.get("talosVersion").and_then(Node::scalar_text),
        kubernetes_version: doc.get("kubernetesVersion").and_then(Node::scalar_text),
        cni_name: doc.path(&["cniConfig", "name"]).and_then(Node::scalar_text),
        pod_subnets: doc
            .get("clusterPodNets")
            .map(Node::string_list)
            .unwrap_or_default(),
        service_subnets: doc
            .get("clusterSvcNets")
            .map(Node::string_list)
            .unwrap_or_default(),
        nodes: doc
            .get("nodes")
            .map(|n| {
                n.as_seq()
                    .iter()
                    .filter_map(|n| n.get("hostname")?.scalar_text())
                    .collect()
            })
            .unwrap_or_default(),
        ..TalConfig::default()
    };
    let lists = [
        (None, doc.get("patches")),
        (Some("controlplane"), doc.path(&["controlPlane", "patches"])),
        (Some("worker"), doc.path(&["worker", "patches"])),
    ];
    for (role, list) in lists {
        for patch in list.map(Node::as_seq).unwrap_or_default() {
            match &patch.value {
                crate::yaml::Value::Str(text) if text.trim_start().starts_with('@') => {
                    let file = text.trim().trim_start_matches('@').to_string();
                    config.patch_files.push((role, file));
                }
                crate::yaml::Value::Str(_) => config.inline_patches.extend(
                    crate::yaml::parse_embedded(patch, source)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|d| (role, d)),
                ),
                crate::yaml::Value::Map(_) => config.inline_patches.push((role, patch.clone())),
                _ => {}
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn reads_versions_cni_and_patches() {
        let doc = &parse_documents(
            "clusterName: home\ntalosVersion: v1.13.9\nkubernetesVersion: v1.36.4\ncniConfig:\n  name: none\nnodes:\n  - hostname: cp1\npatches:\n  - \"@./patches/kubeprism.yaml\"\ncontrolPlane:\n  patches:\n    - |-\n      cluster:\n        proxy:\n          disabled: true\n",
        )
        .unwrap()[0];
        assert!(is_talconfig(doc));
        let c = read(doc, None);
        assert_eq!(c.cni_name.as_deref(), Some("none"));
        assert_eq!(
            c.patch_files,
            vec![(None, "./patches/kubeprism.yaml".to_string())]
        );
        assert_eq!(c.inline_patches.len(), 1);
        assert_eq!(c.inline_patches[0].0, Some("controlplane"));
        assert_eq!(c.nodes, vec!["cp1"]);
    }
}
