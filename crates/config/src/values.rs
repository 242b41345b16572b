//! Checks the settings cniswap reads against their type and range, where they are read: a
//! `podSubnets` given as a string, a CIDR like `10.0.0.0/99`, a KubePrism port of 99999 or a
//! tunnel port of -1 is an error at its file:line, never silently replaced by a default
//! (issue 10 §10). Values still holding template or substitution syntax (`{{ }}`, `${VAR}`)
//! are left alone: they are only known once rendered.

use crate::template::PLACEHOLDER;
use crate::yaml::{Node, Value};
use cniswap_model::names;

/// What a field must hold.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A list of CIDR strings.
    CidrList,
    /// A port number (1-65535), as a number or a numeric string.
    Port,
    /// A port number, or 0 for "the default".
    PortOrZero,
    /// `true` or `false`.
    Bool,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

/// A setting that does not hold what its field allows, at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

type Field = (&'static [&'static str], Expect);

/// The v1alpha1 settings facts and rules read.
const TALOS_V1ALPHA1: &[Field] = &[
    (&["cluster", "network", "podSubnets"], Expect::CidrList),
    (&["cluster", "network", "serviceSubnets"], Expect::CidrList),
    (
        &["cluster", "network", "cni", "name"],
        Expect::OneOf(&["flannel", "custom", "none"]),
    ),
    (&["cluster", "proxy", "disabled"], Expect::Bool),
    (
        &["machine", "features", "kubePrism", "enabled"],
        Expect::Bool,
    ),
    (&["machine", "features", "kubePrism", "port"], Expect::Port),
    (&["machine", "features", "hostDNS", "enabled"], Expect::Bool),
    (
        &["machine", "features", "hostDNS", "forwardKubeDNSToHost"],
        Expect::Bool,
    ),
];

/// The settings of the Talos 1.14 documents facts and rules read, by document kind.
const TALOS_DOCUMENTS: &[(&str, &[Field])] = &[
    (
        "KubeNetworkConfig",
        &[
            (&["podSubnets"], Expect::CidrList),
            (&["serviceSubnets"], Expect::CidrList),
        ],
    ),
    ("KubePrismConfig", &[(&["port"], Expect::Port)]),
    ("KubeFlannelCNIConfig", &[(&["backendPort"], Expect::Port)]),
    ("KubeProxyConfig", &[(&["enabled"], Expect::Bool)]),
];

/// The Cilium values facts and rules read.
const CILIUM_VALUES: &[Field] = &[
    (&["tunnelPort"], Expect::PortOrZero),
    (&["k8sServicePort"], Expect::Port),
    (
        &["ipam", "operator", "clusterPoolIPv4PodCIDRList"],
        Expect::CidrList,
    ),
];

/// Checks Talos documents (v1alpha1 and the named documents).
pub fn check_talos(docs: &[Node]) -> Result<(), ValueError> {
    for doc in docs {
        if crate::talos::is_v1alpha1_document(doc) {
            check_fields(doc, TALOS_V1ALPHA1)?;
        } else if let Some(kind) = crate::talos::document_kind(doc)
            && let Some((_, fields)) = TALOS_DOCUMENTS.iter().find(|(k, _)| *k == kind)
        {
            check_fields(doc, fields)?;
        }
    }
    Ok(())
}

/// Checks Cilium Helm values.
pub fn check_cilium_values(values: &Node) -> Result<(), ValueError> {
    check_fields(values, CILIUM_VALUES)
}

/// Names that end up in commands and artifacts (`talosctl -n`, Omni labels): an Omni
/// ConfigPatch's id and labels, a cluster template's cluster name, the node of a talosctl
/// resource. They follow Kubernetes' label rules (Omni keys its resources by labels).
pub fn check_names(doc: &Node) -> Result<(), ValueError> {
    let at = |node: &Node, what: String, reason: String| ValueError {
        line: node.pos.line,
        column: node.pos.column,
        message: format!("{what} is not valid: {reason}"),
    };
    let text = |node: &Node| node.scalar_text().unwrap_or_default();
    if let Some(node) = doc
        .get("node")
        .filter(|_| crate::talos::unwrap_talosctl_resource(doc).is_some())
    {
        names::host(&text(node))
            .map_err(|r| at(node, format!("node {}", names::shown(&text(node))), r))?;
    }
    if let Some(metadata) = doc
        .get("metadata")
        .filter(|_| doc.path(&["metadata", "type"]).is_some())
    {
        if let Some(id) = metadata.get("id") {
            resource_id(&text(id))
                .map_err(|r| at(id, format!("metadata.id {}", names::shown(&text(id))), r))?;
        }
        for (key, value) in metadata
            .get("labels")
            .map(Node::entries)
            .unwrap_or_default()
        {
            let k = text(key);
            names::qualified_name(&k)
                .map_err(|r| at(key, format!("label key {}", names::shown(&k)), r))?;
            let v = text(value);
            names::label_value(&v)
                .map_err(|r| at(value, format!("label {k} value {}", names::shown(&v)), r))?;
        }
    }
    if crate::omni::is_template_document(doc)
        && doc.get("kind").and_then(Node::as_str) == Some("Cluster")
        && let Some(name) = doc.get("name").filter(|n| !templated(n))
    {
        let v = text(name);
        names::label_value(&v)
            .and_then(|()| {
                if v.is_empty() {
                    Err("must not be empty".into())
                } else {
                    Ok(())
                }
            })
            .map_err(|r| at(name, format!("cluster name {}", names::shown(&v)), r))?;
    }
    Ok(())
}

/// A COSI resource id (Omni, talosctl): letters, digits, `-`, `_` and `.`, at most 253.
fn resource_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 253
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("must be 1-253 letters, digits, '-', '_' or '.'".into());
    }
    Ok(())
}

fn check_fields(doc: &Node, fields: &[Field]) -> Result<(), ValueError> {
    for (path, expect) in fields {
        if let Some(node) = doc.path(path) {
            check(node, *expect).map_err(|reason| ValueError {
                line: node.pos.line,
                column: node.pos.column,
                message: format!("`{}` {reason}", path.join(".")),
            })?;
        }
    }
    Ok(())
}

/// Whether a value is still a template expression or a substitution variable.
fn templated(node: &Node) -> bool {
    node.as_str().is_some_and(|s| {
        s.contains(PLACEHOLDER) || s.contains("{{") || s.contains("${") || s.contains("{%")
    })
}

fn check(node: &Node, expect: Expect) -> Result<(), String> {
    if matches!(node.value, Value::Null) || templated(node) {
        return Ok(());
    }
    let shown = || {
        node.scalar_text()
            .map_or_else(|| "a list or map".to_string(), |s| names::shown(&s))
    };
    match expect {
        Expect::CidrList => match &node.value {
            Value::Seq(items) => {
                for item in items {
                    if templated(item) {
                        continue;
                    }
                    let Some(text) = item.as_str() else {
                        return Err(format!(
                            "must list CIDR strings, not {}",
                            item.scalar_text()
                                .map_or("a list or map".into(), |s| names::shown(&s))
                        ));
                    };
                    names::cidr(text).map_err(|e| format!("holds {}: {e}", names::shown(text)))?;
                }
                Ok(())
            }
            _ => Err(format!(
                "must be a list of CIDRs (e.g. [10.244.0.0/16]), not {}",
                shown()
            )),
        },
        Expect::Port | Expect::PortOrZero => {
            let number = match &node.value {
                Value::Int(i) => Some(*i),
                Value::Str(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match number {
                Some(0) if matches!(expect, Expect::PortOrZero) => Ok(()),
                Some(n) => names::port(n).map_err(|e| format!("is {n}: a port {e}")),
                None => Err(format!("must be a port number, not {}", shown())),
            }
        }
        Expect::Bool => match &node.value {
            Value::Bool(_) => Ok(()),
            _ => Err(format!("must be true or false, not {}", shown())),
        },
        Expect::OneOf(allowed) => match node.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            _ => Err(format!(
                "must be one of {}, not {}",
                allowed.join(", "),
                shown()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn talos(text: &str) -> Result<(), ValueError> {
        check_talos(&parse_documents(text).unwrap())
    }

    #[test]
    fn garbage_in_talos_settings_is_an_error_at_its_line() {
        for (text, line) in [
            ("cluster:\n  network:\n    podSubnets: 10.244.0.0/16\n", 3),
            ("cluster:\n  network:\n    podSubnets: [10.244.0.0/99]\n", 3),
            (
                "cluster:\n  network:\n    serviceSubnets: [\"::/200\"]\n",
                3,
            ),
            ("cluster:\n  network:\n    podSubnets: [300.0.0.0/8]\n", 3),
            (
                "machine:\n  features:\n    kubePrism:\n      enabled: true\n      port: 99999\n",
                5,
            ),
            ("apiVersion: v1alpha1\nkind: KubePrismConfig\nport: -1\n", 3),
            (
                "apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendPort: 70000\n",
                3,
            ),
            ("cluster:\n  network:\n    cni:\n      name: calico\n", 4),
            ("cluster:\n  proxy:\n    disabled: \"yes\"\n", 3),
        ] {
            let err = talos(text).unwrap_err();
            assert_eq!(err.line, line, "{text}: {err:?}");
        }
        assert!(talos("cluster:\n  network:\n    podSubnets: [10.244.0.0/16, fd00::/48]\n    cni: {name: none}\nmachine:\n  features:\n    kubePrism: {enabled: true, port: 7445}\n").is_ok());
    }

    #[test]
    fn hostile_names_in_talos_and_omni_resources_are_refused() {
        let one = |t: &str| check_names(&parse_documents(t).unwrap()[0]);
        let patch = "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cilium\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: 'cluster: {}'\n";
        assert!(one(patch).is_ok());
        let injected = patch.replace("cluster: homelab", "cluster: \"homelab\\nx: y\"");
        assert_eq!(one(&injected).unwrap_err().line, 6);
        assert!(one(&patch.replace("400-cilium", "400;reboot")).is_err());
        let resource = "metadata:\n  type: MachineConfigs.config.talos.dev\nnode: \"192.168.1.72 version; touch x #\"\nspec: |\n  version: v1alpha1\n";
        assert_eq!(one(resource).unwrap_err().line, 3);
        assert!(one(&resource.replace("192.168.1.72 version; touch x #", "192.168.1.72")).is_ok());
        assert!(one("kind: Cluster\nname: \"home lab\"\n").is_err());
        assert!(one("kind: Cluster\nname: homelab\n").is_ok());
    }

    #[test]
    fn templated_values_wait_for_rendering() {
        assert!(talos("cluster:\n  network:\n    podSubnets: [\"${pod_cidr}\"]\n").is_ok());
        assert!(talos("machine:\n  features:\n    kubePrism:\n      port: TEMPLATED\n").is_ok());
    }

    #[test]
    fn cilium_ports_and_pools() {
        let values = |t: &str| check_cilium_values(&parse_documents(t).unwrap()[0]);
        assert!(values("tunnelPort: 70000\n").is_err());
        assert!(values("tunnelPort: -1\n").is_err());
        assert!(values("tunnelPort: 0\nk8sServicePort: \"7445\"\n").is_ok());
        assert!(values("k8sServicePort: 0\n").is_err());
        assert!(
            values("ipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: 10.0.0.0/8\n").is_err()
        );
        assert!(
            values("ipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: [10.245.0.0/16]\n").is_ok()
        );
    }
}
