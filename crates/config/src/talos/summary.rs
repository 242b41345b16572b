//! Reads the CNI-relevant settings out of a Talos config or patch, in either format.

use super::{document_kind, is_v1alpha1_document};
use crate::yaml::Node;
use cniswap_model::{TalosConfigFacts, TalosConfigFormat};

/// Summarises one Talos config (`full = true`: absent fields take Talos defaults) or patch
/// (`full = false`: absent fields stay unknown because the patch does not change them).
pub fn summarize(file: &str, kind: &str, docs: &[Node], full: bool) -> TalosConfigFacts {
    let v1 = docs.iter().find(|d| is_v1alpha1_document(d));
    let named = |k: &str| docs.iter().find(|d| document_kind(d) == Some(k));
    let at = |path: &[&str]| v1.and_then(|d| d.path(path));

    let has_kube_documents = docs.iter().any(super::is_1_14_document);
    let format = if has_kube_documents {
        Some(TalosConfigFormat::MultiDocument)
    } else if v1.is_some() {
        Some(TalosConfigFormat::V1alpha1)
    } else {
        None
    };

    let flannel_document = named("KubeFlannelCNIConfig").is_some();
    let cni_name = at(&["cluster", "network", "cni", "name"]).and_then(Node::scalar_text);
    let cni = if flannel_document {
        Some("flannel".to_string())
    } else if cni_name.is_some() {
        cni_name
    } else if full {
        // v1alpha1: a missing cni section means Flannel; the 1.14 form deploys Flannel only
        // from its own document.
        Some(
            if format == Some(TalosConfigFormat::MultiDocument) {
                "none"
            } else {
                "flannel"
            }
            .to_string(),
        )
    } else {
        None
    };

    let proxy_doc = named("KubeProxyConfig");
    let proxy_disabled = proxy_doc
        .and_then(|d| d.get("enabled"))
        .and_then(Node::as_bool)
        .map(|enabled| !enabled)
        .or_else(|| at(&["cluster", "proxy", "disabled"]).and_then(Node::as_bool))
        .or(if full && proxy_doc.is_none() {
            Some(false)
        } else {
            None
        });
    let proxy_mode = proxy_doc
        .and_then(|d| d.get("mode"))
        .or_else(|| at(&["cluster", "proxy", "mode"]))
        .and_then(Node::scalar_text);

    let network_doc = named("KubeNetworkConfig");
    let subnets = |key: &str| {
        network_doc
            .and_then(|d| d.get(key))
            .or_else(|| at(&["cluster", "network", key]))
            .map(Node::string_list)
            .unwrap_or_default()
    };

    let prism_doc = named("KubePrismConfig");
    let (kube_prism_enabled, kube_prism_port) = match prism_doc {
        Some(doc) => (Some(true), doc.get("port").and_then(Node::as_u16)),
        None => {
            let enabled =
                at(&["machine", "features", "kubePrism", "enabled"]).and_then(Node::as_bool);
            let port = at(&["machine", "features", "kubePrism", "port"]).and_then(Node::as_u16);
            let enabled = enabled.or(if full { Some(false) } else { None });
            (
                enabled,
                port.or(if enabled == Some(true) {
                    Some(7445)
                } else {
                    None
                }),
            )
        }
    };

    let host_dns = named("ResolverConfig")
        .and_then(|d| d.get("hostDNS"))
        .or_else(|| at(&["machine", "features", "hostDNS"]));
    let host_dns_flag = |key: &str| {
        host_dns
            .and_then(|h| h.get(key))
            .and_then(Node::as_bool)
            .or(if full { Some(false) } else { None })
    };

    let image_tag = |path: &[&str]| at(path).and_then(Node::as_str).and_then(image_tag);

    let mut inline_manifests: Vec<String> = at(&["cluster", "inlineManifests"])
        .map(|m| {
            m.as_seq()
                .iter()
                .filter_map(|i| i.get("name")?.scalar_text())
                .collect()
        })
        .unwrap_or_default();
    let mut extra_manifests = at(&["cluster", "extraManifests"])
        .map(Node::string_list)
        .unwrap_or_default();
    for doc in docs {
        match document_kind(doc) {
            Some("KubeInlineManifestConfig") => {
                inline_manifests.extend(doc.get("name").and_then(Node::scalar_text))
            }
            Some("KubeExternalManifestConfig") => {
                extra_manifests.extend(doc.get("url").and_then(Node::scalar_text))
            }
            _ => {}
        }
    }

    TalosConfigFacts {
        file: file.to_string(),
        kind: kind.to_string(),
        format,
        role: at(&["machine", "type"]).and_then(Node::scalar_text),
        node: None,
        talos_version: image_tag(&["machine", "install", "image"]),
        kubernetes_version: image_tag(&["cluster", "apiServer", "image"])
            .or_else(|| image_tag(&["machine", "kubelet", "image"])),
        cni,
        cni_urls: at(&["cluster", "network", "cni", "urls"])
            .map(Node::string_list)
            .unwrap_or_default(),
        flannel_document,
        proxy_disabled,
        proxy_mode,
        pod_subnets: subnets("podSubnets"),
        service_subnets: subnets("serviceSubnets"),
        kube_prism_enabled,
        kube_prism_port,
        host_dns_enabled: host_dns_flag("enabled"),
        forward_kube_dns_to_host: host_dns_flag("forwardKubeDNSToHost"),
        inline_manifests,
        extra_manifests,
        redacted: Vec::new(),
    }
}

/// The version tag of an image reference: `ghcr.io/siderolabs/installer:v1.10.5` -> `v1.10.5`.
pub fn image_tag(image: &str) -> Option<String> {
    let image = image.split('@').next()?;
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/')).then(|| tag.to_string())
}

/// Whether a v1alpha1 document is a complete machine config rather than a patch.
pub fn is_full_config(docs: &[Node]) -> bool {
    docs.iter().any(|d| {
        is_v1alpha1_document(d)
            && d.path(&["machine", "type"]).is_some()
            && (d.get("version").and_then(Node::as_str) == Some("v1alpha1")
                || carries_cluster_secrets(d) && d.path(&["cluster", "clusterName"]).is_some())
    })
}

/// The base layer of a machine config written in layers (Jinja or `talosctl machineconfig
/// patch` pipelines): the cluster's secrets, but no `machine.type`, which the role's layer
/// adds. It is what the other layers land on, not a patch over `talosctl gen config` output.
/// (`version: v1alpha1` alone says nothing: Terraform and talosctl patches often carry it.)
pub fn is_base_layer(docs: &[Node]) -> bool {
    docs.iter().any(|d| {
        is_v1alpha1_document(d)
            && d.path(&["machine", "type"]).is_none()
            && carries_cluster_secrets(d)
    })
}

/// Keys only a complete machine config has (`talosctl gen config` writes them from the
/// secrets bundle; a patch to generated output does not carry them).
fn carries_cluster_secrets(doc: &Node) -> bool {
    const SECRET_PATHS: &[&[&str]] = &[
        &["machine", "token"],
        &["machine", "ca"],
        &["cluster", "secret"],
        &["cluster", "token"],
        &["cluster", "ca"],
    ];
    SECRET_PATHS
        .iter()
        .filter(|p| doc.path(p).is_some())
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn a_config_with_type_secrets_and_name_is_complete_without_version() {
        let docs = parse_documents(
            "machine:\n  type: controlplane\n  token: x\n  ca: {crt: a}\ncluster:\n  clusterName: c\n  secret: s\n",
        )
        .unwrap();
        assert!(is_full_config(&docs));
        let layer = parse_documents("machine:\n  type: controlplane\n  token: x\n  ca: {crt: a}\n")
            .unwrap();
        assert!(
            !is_full_config(&layer),
            "a role layer without the cluster part"
        );
    }

    #[test]
    fn a_layer_with_the_secrets_and_no_type_is_a_base_layer() {
        // A Jinja-layered machine config: the role layer adds `machine.type`.
        let docs = parse_documents(
            "machine:\n  token: x\n  ca: {crt: a, key: b}\ncluster:\n  secret: s\n  network:\n    cni: {name: none}\n",
        )
        .unwrap();
        assert!(is_base_layer(&docs) && !is_full_config(&docs));
        let patch =
            parse_documents("machine:\n  token: x\ncluster:\n  network:\n    cni: {name: none}\n")
                .unwrap();
        assert!(!is_base_layer(&patch), "one secret-like key is not enough");
        let role =
            parse_documents("machine:\n  type: worker\n  token: x\n  ca: {crt: a}\n").unwrap();
        assert!(
            !is_base_layer(&role),
            "the role's layer is a patch for that role"
        );
        let versioned = parse_documents("version: v1alpha1\nmachine:\n  kubelet: {}\n").unwrap();
        assert!(
            !is_base_layer(&versioned),
            "Terraform patches carry `version` too"
        );
    }

    #[test]
    fn v1alpha1_full_config_defaults_to_flannel_and_kube_proxy() {
        let docs = parse_documents(
            "version: v1alpha1\nmachine:\n  type: controlplane\n  install: {image: ghcr.io/siderolabs/installer:v1.10.5}\ncluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n    serviceSubnets: [10.96.0.0/12]\n",
        )
        .unwrap();
        let s = summarize("cp.yaml", "full", &docs, true);
        assert_eq!(s.format, Some(TalosConfigFormat::V1alpha1));
        assert_eq!(s.cni.as_deref(), Some("flannel"));
        assert_eq!(s.proxy_disabled, Some(false));
        assert_eq!(s.talos_version.as_deref(), Some("v1.10.5"));
        assert_eq!(s.role.as_deref(), Some("controlplane"));
    }

    #[test]
    fn flannel_document_wins_over_cni_none() {
        let docs = parse_documents(
            "version: v1alpha1\nmachine: {type: worker}\ncluster:\n  network:\n    cni: {name: none}\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\nbackendPort: 4789\n",
        )
        .unwrap();
        let s = summarize("w.yaml", "full", &docs, true);
        assert_eq!(s.format, Some(TalosConfigFormat::MultiDocument));
        assert!(s.flannel_document);
        assert_eq!(s.cni.as_deref(), Some("flannel"));
    }

    #[test]
    fn patch_leaves_unknowns_unknown() {
        let docs = parse_documents("cluster:\n  proxy:\n    disabled: true\n").unwrap();
        let s = summarize("p.yaml", "patch", &docs, false);
        assert_eq!(s.cni, None);
        assert_eq!(s.proxy_disabled, Some(true));
        assert_eq!(s.forward_kube_dns_to_host, None);
    }

    #[test]
    fn image_tags() {
        assert_eq!(
            image_tag("factory.talos.dev/installer/abc:v1.14.0").as_deref(),
            Some("v1.14.0")
        );
        assert_eq!(image_tag("registry:5000/img").as_deref(), None);
    }
}
