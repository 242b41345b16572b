//! Talos machine configuration: both formats, strategic-merge patches, and a summary of the
//! settings cniswap cares about.
//!
//! Facts from research/talos.md (siderolabs/talos v1.12-v1.14): a missing `cluster.network.cni`
//! means Flannel; in the 1.14 form Flannel is deployed whenever a `KubeFlannelCNIConfig` document
//! exists, whatever `cni.name` says (siderolabs/talos#13958).

mod merge;
mod summary;

pub use merge::{apply_patch, merge_into};
pub use summary::{image_tag, is_base_layer, is_full_config, summarize};

use crate::yaml::Node;

/// Kubernetes settings documents introduced by the Talos 1.14 multi-document form.
pub const KUBERNETES_DOCUMENT_KINDS: &[&str] = &[
    "KubeNetworkConfig",
    "KubeFlannelCNIConfig",
    "KubeProxyConfig",
    "KubePrismConfig",
    "KubeNodeConfig",
    "KubeletConfig",
    "KubeInlineManifestConfig",
    "KubeExternalManifestConfig",
];

/// A document only the Talos 1.14 multi-document form has: one of
/// [`KUBERNETES_DOCUMENT_KINDS`], or a `ResolverConfig` carrying `hostDNS` (moved there in 1.14).
/// A `ResolverConfig` with only `nameservers`/`searchDomains` exists since Talos 1.12
/// (docs.siderolabs.com/talos/v1.12/networking/configuration/resolvers) and says nothing
/// about the format.
pub fn is_1_14_document(doc: &Node) -> bool {
    match document_kind(doc) {
        Some("ResolverConfig") => doc.get("hostDNS").is_some(),
        Some(kind) => KUBERNETES_DOCUMENT_KINDS.contains(&kind),
        None => false,
    }
}

/// Top-level keys of a v1alpha1 document.
const V1ALPHA1_KEYS: &[&str] = &["version", "debug", "persist", "machine", "cluster"];

/// A `version: v1alpha1` document, or a patch of one (`machine:` / `cluster:` at top level and
/// nothing else: Cilium values also have a `cluster:` section, next to many other keys).
pub fn is_v1alpha1_document(doc: &Node) -> bool {
    if doc.get("apiVersion").is_some() || doc.get("kind").is_some() {
        return false;
    }
    let only_talos_keys = doc
        .entries()
        .iter()
        .all(|(k, _)| k.as_str().is_some_and(|k| V1ALPHA1_KEYS.contains(&k)));
    if !only_talos_keys {
        return false;
    }
    doc.get("version").and_then(Node::as_str) == Some("v1alpha1")
        || doc.get("machine").is_some_and(Node::is_map)
        || doc.get("cluster").is_some_and(Node::is_map)
}

/// A Talos named document (`apiVersion: v1alpha1`, `kind: ...Config`).
pub fn is_named_document(doc: &Node) -> bool {
    doc.get("apiVersion").and_then(Node::as_str) == Some("v1alpha1")
        && doc
            .get("kind")
            .and_then(Node::as_str)
            .is_some_and(|k| k.ends_with("Config"))
}

pub fn document_kind(doc: &Node) -> Option<&str> {
    if is_named_document(doc) {
        doc.get("kind").and_then(Node::as_str)
    } else {
        None
    }
}

/// `talosctl get machineconfig -o yaml` wraps the config in a resource whose `spec` is the
/// config text. Returns the node name and the inner text.
pub fn unwrap_talosctl_resource(doc: &Node) -> Option<(Option<String>, &str)> {
    let ty = doc.path(&["metadata", "type"]).and_then(Node::as_str)?;
    if !ty.starts_with("MachineConfigs.config.talos.dev") {
        return None;
    }
    let node = doc.get("node").and_then(Node::scalar_text);
    Some((node, doc.get("spec")?.as_str()?))
}

/// True when any of `docs` is part of a Talos machine config or patch.
pub fn looks_like_talos(docs: &[Node]) -> bool {
    docs.iter().any(|d| {
        is_v1alpha1_document(d) || is_named_document(d) || unwrap_talosctl_resource(d).is_some()
    })
}
