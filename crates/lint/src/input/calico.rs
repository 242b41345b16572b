//! Calico operator and Felix resources: from files (with positions), from tigera-operator Helm
//! values (`installation:`), or from a cluster snapshot.

use cniswap_config::{Node, Value};
use cniswap_snapshot::Snapshot;

#[derive(Debug, Clone)]
pub struct Resource {
    /// `Installation/default`, `ConfigMap tigera-operator/kubernetes-services-endpoint`, ...
    pub label: String,
    /// The object's `spec` (Helm values: the `installation` block; ConfigMaps: `data`).
    pub spec: Node,
}

impl Resource {
    pub fn get(&self, path: &str) -> Option<&Node> {
        path.split('.')
            .try_fold(&self.spec, |node, key| node.get(key))
            .filter(|n| !matches!(n.value, Value::Null))
    }

    pub fn text(&self, path: &str) -> Option<String> {
        self.get(path).and_then(Node::scalar_text)
    }
}

#[derive(Debug, Clone, Default)]
pub struct CalicoInputs {
    pub installations: Vec<Resource>,
    pub felix: Vec<Resource>,
    pub ip_pools: Vec<Resource>,
    pub services_endpoint: Vec<Resource>,
}

impl CalicoInputs {
    pub fn is_empty(&self) -> bool {
        self.installations.is_empty()
            && self.felix.is_empty()
            && self.ip_pools.is_empty()
            && self.services_endpoint.is_empty()
    }

    /// The BPF dataplane is selected (Installation `linuxDataplane: BPF`, or Felix `bpfEnabled`).
    pub fn bpf(&self) -> Option<&Node> {
        self.installations
            .iter()
            .filter_map(|i| i.get("calicoNetwork.linuxDataplane"))
            .find(|n| n.as_str() == Some("BPF"))
            .or_else(|| {
                self.felix
                    .iter()
                    .filter_map(|f| f.get("bpfEnabled"))
                    .find(|n| n.as_bool() == Some(true))
            })
    }

    /// Every pool CIDR with its node: Installation ipPools and IPPool resources.
    pub fn pool_cidrs(&self) -> Vec<&Node> {
        let from_installations = self.installations.iter().flat_map(|i| {
            i.get("calicoNetwork.ipPools")
                .map(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.get("cidr"))
        });
        let from_pools = self.ip_pools.iter().filter_map(|p| p.get("cidr"));
        from_installations.chain(from_pools).collect()
    }
}

pub fn collect(snapshot: &Snapshot) -> CalicoInputs {
    let mut inputs = CalicoInputs::default();
    let from_files = |kind: &str| -> Vec<Resource> {
        snapshot
            .manifests
            .iter()
            .filter(|m| m.doc.get("kind").and_then(Node::as_str) == Some(kind))
            .map(|m| Resource {
                label: label(kind, &m.doc),
                spec: m.doc.get("spec").cloned().unwrap_or_else(empty),
            })
            .collect()
    };
    inputs.installations = from_files("Installation");
    inputs.felix = from_files("FelixConfiguration");
    inputs.ip_pools = from_files("IPPool");
    for m in &snapshot.manifests {
        if m.doc.path(&["metadata", "name"]).and_then(Node::as_str)
            == Some("kubernetes-services-endpoint")
        {
            inputs.services_endpoint.push(Resource {
                label: label("ConfigMap", &m.doc),
                spec: m.doc.get("data").cloned().unwrap_or_else(empty),
            });
        }
    }
    for helm in &snapshot.helm {
        if helm.chart.contains("tigera-operator")
            && let Some(installation) = helm.values.get("installation")
        {
            inputs.installations.push(Resource {
                label: format!("{} (installation values)", helm.file),
                spec: installation.clone(),
            });
        }
    }
    // Cluster objects, for kinds no file provided.
    for (kind, list) in [
        ("Installation", &mut inputs.installations),
        ("FelixConfiguration", &mut inputs.felix),
        ("IPPool", &mut inputs.ip_pools),
    ] {
        if !list.is_empty() {
            continue;
        }
        for object in snapshot
            .objects
            .cni_configs
            .iter()
            .filter(|o| o.kind == kind)
        {
            list.push(Resource {
                label: format!("{kind}/{}", object.metadata.name),
                spec: Node::from_json(&object.spec),
            });
        }
    }
    if inputs.services_endpoint.is_empty()
        && let Some(cm) = snapshot
            .objects
            .config_maps
            .iter()
            .find(|c| c.metadata.name == "kubernetes-services-endpoint")
    {
        let data = serde_json::to_value(&cm.data).unwrap_or_default();
        inputs.services_endpoint.push(Resource {
            label: format!(
                "ConfigMap {}/kubernetes-services-endpoint",
                cm.metadata
                    .namespace
                    .as_deref()
                    .unwrap_or("tigera-operator")
            ),
            spec: Node::from_json(&data),
        });
    }
    inputs
}

fn empty() -> Node {
    Node::synthetic(Value::Map(Vec::new()))
}

fn label(kind: &str, doc: &Node) -> String {
    let name = doc
        .path(&["metadata", "name"])
        .and_then(Node::scalar_text)
        .unwrap_or_default();
    match doc
        .path(&["metadata", "namespace"])
        .and_then(Node::scalar_text)
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
