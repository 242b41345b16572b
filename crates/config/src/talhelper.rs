//! talhelper's `talconfig.yaml`: a cluster description that renders Talos configs.

use crate::yaml::{Node, parse_documents};

#[derive(Debug, Clone, Default)]
pub struct TalConfig {
    pub cluster: Option<String>,
    pub talos_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub cni_name: Option<String>,
    pub pod_subnets: Vec<String>,
    pub service_subnets: Vec<String>,
    /// Inline patches (all nodes, control planes, workers); `@file` references are listed in `patch_files`.
    pub inline_patches: Vec<Node>,
    pub patch_files: Vec<String>,
    pub nodes: Vec<String>,
}

pub fn is_talconfig(doc: &Node) -> bool {
    doc.get("clusterName").is_some()
        && (doc.get("nodes").is_some() || doc.get("talosVersion").is_some())
}

pub fn read(doc: &Node) -> TalConfig {
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
        doc.get("patches"),
        doc.path(&["controlPlane", "patches"]),
        doc.path(&["worker", "patches"]),
    ];
    for patch in lists.into_iter().flatten().flat_map(Node::as_seq) {
        match &patch.value {
            crate::yaml::Value::Str(text) if text.trim_start().starts_with('@') => {
                config
                    .patch_files
                    .push(text.trim().trim_start_matches('@').to_string());
            }
            crate::yaml::Value::Str(text) => config
                .inline_patches
                .extend(parse_documents(text).unwrap_or_default()),
            crate::yaml::Value::Map(_) => config.inline_patches.push(patch.clone()),
            _ => {}
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_cni_and_patches() {
        let doc = &parse_documents(
            "clusterName: home\ntalosVersion: v1.13.9\nkubernetesVersion: v1.36.4\ncniConfig:\n  name: none\nnodes:\n  - hostname: cp1\npatches:\n  - \"@./patches/kubeprism.yaml\"\ncontrolPlane:\n  patches:\n    - |-\n      cluster:\n        proxy:\n          disabled: true\n",
        )
        .unwrap()[0];
        assert!(is_talconfig(doc));
        let c = read(doc);
        assert_eq!(c.cni_name.as_deref(), Some("none"));
        assert_eq!(c.patch_files, vec!["./patches/kubeprism.yaml"]);
        assert_eq!(c.inline_patches.len(), 1);
        assert_eq!(c.nodes, vec!["cp1"]);
    }
}
