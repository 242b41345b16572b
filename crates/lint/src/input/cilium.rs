//! Cilium Helm values: plain values files, Flux HelmRelease / Argo CD wrappers, umbrella
//! charts (`cilium:` key), or, without any values, the running cluster's `cilium-config`
//! translated back to value names.

use super::version::ChartVersion;
use cniswap_config::{Node, Value};
use cniswap_snapshot::Snapshot;

#[derive(Debug, Clone)]
pub struct CiliumValues {
    /// The file, or `ConfigMap kube-system/cilium-config`.
    pub label: String,
    pub version: Option<ChartVersion>,
    /// The version is the one running in the cluster (the values do not pin one).
    pub version_from_cluster: bool,
    pub values: Node,
    /// Read back from a running cluster's ConfigMap rather than from values.
    pub from_cluster: bool,
    /// From a Flux HelmRelease / Argo CD Application: Helm manages the install.
    pub release: bool,
    /// Value sources the release names that were not read (a Secret): a key missing here
    /// may be set there, so "not set" cannot be claimed.
    pub unresolved: Vec<String>,
    /// Values for after the migration (plan's `values-final.yaml`): the rolling-migration
    /// rules do not apply to them.
    pub after_migration: bool,
}

impl CiliumValues {
    /// `Cilium 1.16.5`, `Cilium 1.16.5 (running in the cluster)`, or `an unknown Cilium version`.
    pub fn describe_version(&self) -> String {
        match (self.version, self.version_from_cluster) {
            (Some(v), false) => format!("Cilium {v}"),
            (Some(v), true) => format!("Cilium {v}, running in the cluster"),
            (None, _) => "an unknown Cilium version".into(),
        }
    }

    /// A value by dotted path (`cni.exclusive`).
    pub fn get(&self, path: &str) -> Option<&Node> {
        path.split('.')
            .try_fold(&self.values, |node, key| node.get(key))
            .filter(|n| !matches!(n.value, Value::Null))
    }

    pub fn text(&self, path: &str) -> Option<String> {
        self.get(path).and_then(Node::scalar_text)
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).and_then(Node::as_bool)
    }

    /// `kubeProxyReplacement` as written (true, false, strict, ...), lower-cased.
    pub fn kube_proxy_replacement(&self) -> Option<String> {
        self.text("kubeProxyReplacement")
            .map(|v| v.trim().to_ascii_lowercase())
    }

    /// KPR is on (`true`, or the legacy `strict` which meant full replacement).
    pub fn replaces_kube_proxy(&self) -> bool {
        matches!(
            self.kube_proxy_replacement().as_deref(),
            Some("true" | "strict")
        )
    }

    /// The tunnel port Cilium's overlay binds (chart defaults: vxlan 8472, geneve 6081);
    /// `None` in native routing.
    pub fn tunnel_port(&self) -> Option<(u16, Option<&Node>)> {
        let routing = self.text("routingMode");
        let legacy_tunnel = self.text("tunnel");
        if routing.as_deref() == Some("native") || legacy_tunnel.as_deref() == Some("disabled") {
            return None;
        }
        if let Some(node) = self.get("tunnelPort")
            && let Some(port) = node.as_u16().filter(|p| *p != 0)
        {
            return Some((port, Some(node)));
        }
        let protocol = self
            .text("tunnelProtocol")
            .or(legacy_tunnel)
            .unwrap_or_else(|| "vxlan".into());
        Some((if protocol == "geneve" { 6081 } else { 8472 }, None))
    }

    /// Every value source was read: a key missing from the values is really not set.
    pub fn complete(&self) -> bool {
        self.unresolved.is_empty()
    }

    /// The best node to point at for a finding about this file when the key is absent.
    pub fn anchor(&self) -> &Node {
        &self.values
    }

    pub fn cluster_pool_cidrs(&self) -> Vec<&Node> {
        [
            "ipam.operator.clusterPoolIPv4PodCIDRList",
            "ipam.operator.clusterPoolIPv4PodCIDR",
        ]
        .iter()
        .filter_map(|p| self.get(p))
        .flat_map(|n| match &n.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![n],
        })
        .collect()
    }
}

use cniswap_config::helm::{is_other_cni_chart, looks_like_cilium_values as looks_like_cilium};

pub fn collect(snapshot: &Snapshot, cluster_version: Option<&str>) -> Vec<CiliumValues> {
    let mut out = Vec::new();
    for helm in &snapshot.helm {
        let chart = helm.chart.to_ascii_lowercase();
        let mut values = &helm.values;
        // Umbrella charts nest the Cilium values under the dependency name.
        if let Some(inner) = values.get("cilium").filter(|v| looks_like_cilium(v)) {
            values = inner;
        } else if !(chart == "cilium" || !is_other_cni_chart(&chart) && looks_like_cilium(values)) {
            continue;
        }
        let version = helm
            .chart_version
            .as_deref()
            .map(|v| match v.strip_prefix("ociRepository:") {
                Some(name) => snapshot.oci_tags.get(name).map_or("", String::as_str),
                None => v,
            })
            .and_then(ChartVersion::parse);
        // Values that pin no version describe the install that runs, when a cluster is known.
        let running = cluster_version.and_then(ChartVersion::parse);
        out.push(CiliumValues {
            label: helm.file.clone(),
            version_from_cluster: version.is_none() && running.is_some(),
            version: version.or(running),
            values: values.clone(),
            from_cluster: false,
            release: helm.release,
            unresolved: helm.unresolved.clone(),
            after_migration: helm.after_migration,
        });
    }
    if out.is_empty()
        && let Some(cm) = snapshot
            .objects
            .config_maps
            .iter()
            .find(|c| c.metadata.name == "cilium-config")
    {
        out.push(CiliumValues {
            label: format!(
                "ConfigMap {}/cilium-config",
                cm.metadata.namespace.as_deref().unwrap_or("kube-system")
            ),
            version: cluster_version.and_then(ChartVersion::parse),
            version_from_cluster: true,
            values: from_config_map(&cm.data),
            from_cluster: true,
            release: false,
            unresolved: Vec::new(),
            after_migration: false,
        });
    }
    out
}

/// cilium-config keys and the value paths they come from.
const CONFIG_MAP_KEYS: &[(&str, &str)] = &[
    ("kube-proxy-replacement", "kubeProxyReplacement"),
    ("cni-exclusive", "cni.exclusive"),
    ("custom-cni-conf", "cni.customConf"),
    ("enable-bpf-masquerade", "bpf.masquerade"),
    ("enable-host-legacy-routing", "bpf.hostLegacyRouting"),
    ("routing-mode", "routingMode"),
    ("tunnel-protocol", "tunnelProtocol"),
    ("tunnel-port", "tunnelPort"),
    ("tunnel", "tunnel"),
    ("ipam", "ipam.mode"),
    (
        "cluster-pool-ipv4-cidr",
        "ipam.operator.clusterPoolIPv4PodCIDRList",
    ),
    ("enable-policy", "policyEnforcementMode"),
    ("policy-enforcement-mode", "policyEnforcementMode"),
    ("k8s-service-host", "k8sServiceHost"),
    ("k8s-service-port", "k8sServicePort"),
];

fn from_config_map(data: &std::collections::BTreeMap<String, String>) -> Node {
    let mut root = Node::synthetic(Value::Map(Vec::new()));
    for (key, path) in CONFIG_MAP_KEYS {
        if let Some(value) = data.get(*key) {
            let value = match value.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                v if *key == "cluster-pool-ipv4-cidr" => Value::Seq(
                    v.split_whitespace()
                        .map(|c| Node::synthetic(Value::Str(c.into())))
                        .collect(),
                ),
                v => Value::Str(v.into()),
            };
            insert(&mut root, path, Node::synthetic(value));
        }
    }
    root
}

fn insert(root: &mut Node, path: &str, value: Node) {
    let mut node = root;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        let Value::Map(entries) = &mut node.value else {
            return;
        };
        let index = match entries.iter().position(|(k, _)| k.as_str() == Some(key)) {
            Some(index) => index,
            None => {
                let child = if i + 1 == keys.len() {
                    value.clone()
                } else {
                    Node::synthetic(Value::Map(Vec::new()))
                };
                entries.push((Node::synthetic(Value::Str((*key).into())), child));
                entries.len() - 1
            }
        };
        node = &mut entries[index].1;
    }
}
