//! Minimal Kubernetes object types: only the fields that facts and rules read.
//!
//! serde skips every other field while parsing, so a 150,000-pod snapshot costs memory for
//! these fields only. The same types serialize back to valid (minimal) Kubernetes objects,
//! which is what `cniswap snapshot -o DIR` writes.

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "relevant_annotations"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerRef>,
}

impl Meta {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn qualified(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
}

/// Annotation prefixes facts read; everything else (last-applied-configuration above all) is
/// dropped while parsing.
const ANNOTATION_PREFIXES: &[&str] = &[
    "flannel.alpha.coreos.com/",
    "projectcalico.org/",
    "io.cilium",
    "network.cilium.io/",
    "kubernetes.io/config.",
    "meta.helm.sh/",
    "config.k8s.io/owning-inventory",
    "k3s.io/node-args",
    "rke2.io/node-args",
    "omni.sidero.dev/",
];

/// An object's labels: a map, kept as a list sorted by key. A pod has a few labels, and a
/// `BTreeMap` allocates room for eleven in every map (about 550 bytes): on 150,000 pods that
/// was a quarter of what inspect held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// In key order, like a map.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Sets a label; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl FromIterator<(String, String)> for Labels {
    /// Sorted by key; of a key given twice the last value counts, as when a map is built.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, first| later.0 == first.0);
        pairs.shrink_to_fit();
        Labels(pairs)
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        Labels(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// `labels: null` is what an empty map looks like in many charts' output; an API server
/// accepts it as no labels. Otherwise read exactly as a `BTreeMap<String, String>` is.
impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map(Labels);
        impl<'de> Deserialize<'de> for Map {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Pairs;
                impl<'de> Visitor<'de> for Pairs {
                    type Value = Labels;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a map")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                        let mut pairs = Vec::new();
                        while let Some(pair) = map.next_entry::<String, String>()? {
                            pairs.push(pair);
                        }
                        Ok(pairs.into_iter().collect())
                    }
                }
                d.deserialize_map(Pairs).map(Map)
            }
        }
        Ok(Option::<Map>::deserialize(d)?
            .map(|m| m.0)
            .unwrap_or_default())
    }
}

fn relevant_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Filter;
    impl<'de> Visitor<'de> for Filter {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(crate::decode::Key(key)) = map.next_key()? {
                if ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p)) {
                    let value: Option<String> = map.next_value()?;
                    kept.insert(key.into_owned(), value.unwrap_or_default());
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(kept)
        }
    }
    d.deserialize_any(Filter)
}

/// A boolean written as a boolean: YAML readers turn the string `"true"` into `true`, which an
/// API server refuses; so does cniswap, instead of guessing (`null` is false, as absent).
fn strict_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Strict;
    impl<'de> Visitor<'de> for Strict {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean (true or false, unquoted)")
        }
        fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(Strict)
}

// ------------------------------------------------------------------ core kinds

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    pub metadata: Meta,
    pub spec: NodeSpec,
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    #[serde(rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    #[serde(rename = "podCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
    #[serde(
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "strict_bool"
    )]
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    pub node_info: NodeInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfo {
    pub kubelet_version: String,
    pub os_image: String,
    pub kernel_version: String,
    pub container_runtime_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    pub metadata: Meta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "strict_bool"
    )]
    pub host_network: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Pod {
    pub fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// Static pods show up as mirror pods owned by their Node.
    pub fn is_static(&self) -> bool {
        self.metadata
            .annotations
            .contains_key("kubernetes.io/config.mirror")
            || self
                .metadata
                .owner_references
                .iter()
                .any(|o| o.kind == "Node")
    }

    /// Container command lines are only kept where facts read them (control-plane static pods);
    /// for every other pod they are dropped after parsing to keep memory proportional to facts,
    /// and so are the conditions other than Ready.
    pub fn compact(&mut self) {
        // Of the conditions, facts read whether the pod is Ready.
        self.status.conditions.retain(|c| c.kind == "Ready");
        // Lists grow by four when decoded: a pod has one container and one owner, and holding
        // room for four cost 100 MB on 150,000 pods.
        self.status.conditions.shrink_to_fit();
        self.spec.containers.shrink_to_fit();
        self.metadata.owner_references.shrink_to_fit();
        let control_plane = self.metadata.namespace() == "kube-system"
            && ["kube-controller-manager", "kube-apiserver"]
                .iter()
                .any(|p| self.metadata.name.starts_with(p));
        if control_plane {
            // Kept for their CIDR flags; a secret flag (`--oidc-client-secret=...`) is not.
            for container in &mut self.spec.containers {
                for arg in container
                    .command
                    .iter_mut()
                    .chain(container.args.iter_mut())
                {
                    if let Some(clean) = cniswap_config::redact::redact_argument(arg) {
                        *arg = clean;
                    }
                }
            }
            return;
        }
        for container in &mut self.spec.containers {
            container.command = Vec::new();
            container.args = Vec::new();
        }
    }
}

/// DaemonSet, Deployment or StatefulSet: the parts CNI and DNS detection need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Workload {
    pub metadata: Meta,
    pub spec: WorkloadSpec,
    pub status: WorkloadStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTemplate {
    pub metadata: Meta,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_number_scheduled: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_ready: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<u32>,
}

impl Workload {
    /// Pods a DaemonSet wants (or replicas of a Deployment/StatefulSet).
    pub fn desired(&self) -> u32 {
        self.status
            .desired_number_scheduled
            .or(self.spec.replicas)
            .unwrap_or_default()
    }

    pub fn ready(&self) -> u32 {
        self.status
            .number_ready
            .or(self.status.ready_replicas)
            .unwrap_or_default()
    }

    /// Image of the first container whose image name contains `needle`.
    pub fn image_containing(&self, needle: &str) -> Option<&str> {
        self.spec
            .template
            .spec
            .containers
            .iter()
            .map(|c| c.image.as_str())
            .find(|i| i.contains(needle))
    }

    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.spec
            .template
            .spec
            .containers
            .iter()
            .flat_map(|c| c.command.iter().chain(c.args.iter()))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigMap {
    pub metadata: Meta,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// ConfigMaps whose data facts read; the data of every other ConfigMap is dropped.
pub const RELEVANT_CONFIG_MAPS: &[&str] = &[
    "kube-flannel-cfg",
    "cilium-config",
    "calico-config",
    "canal-config",
    "kube-proxy",
    "kubeadm-config",
    "kubernetes-services-endpoint",
    "coredns",
    "weave-net",
    "rke2-cilium-config",
    "rke2-canal-config",
];

pub fn config_map_is_relevant(meta: &Meta) -> bool {
    RELEVANT_CONFIG_MAPS.contains(&meta.name.as_str())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodDisruptionBudget {
    pub metadata: Meta,
    pub spec: PdbSpec,
    pub status: PdbStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PdbSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PdbStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disruptions_allowed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_healthy: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_healthy: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_pods: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

/// A Validating- or MutatingWebhookConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfiguration {
    pub metadata: Meta,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Webhook {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<String>,
    pub client_config: WebhookClientConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<WebhookRule>,
    /// Which namespaces' objects it sees (none: every namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Which objects it sees by their labels (none: every object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// `null` reads as an empty map (the API server writes `matchLabels: null`).
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A Kubernetes label selector (matchLabels and matchExpressions, ANDed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist.
    pub operator: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether labels satisfy the selector, as the API server decides; `None` when an
    /// operator is not one Kubernetes defines (nothing is assumed).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        if !self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            return Some(false);
        }
        for r in &self.match_expressions {
            let value = labels.get(&r.key);
            let ok = match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => return None,
            };
            if !ok {
                return Some(false);
            }
        }
        Some(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookClientConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceReference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceReference {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookRule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub metadata: Meta,
    pub spec: ServiceSpec,
    #[serde(skip_serializing_if = "ServiceStatus::is_empty")]
    pub status: ServiceStatus,
}

impl Service {
    /// Every address the Service answers on outside the pod network: cluster IPs, external
    /// IPs, requested and assigned load-balancer IPs.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.spec
            .cluster_ip
            .iter()
            .chain(&self.spec.external_ips)
            .chain(&self.spec.load_balancer_ip)
            .chain(
                self.status
                    .load_balancer
                    .ingress
                    .iter()
                    .filter_map(|i| i.ip.as_ref()),
            )
            .map(String::as_str)
            .filter(|ip| !ip.is_empty() && *ip != "None")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceStatus {
    pub load_balancer: LoadBalancerStatus,
}

impl ServiceStatus {
    pub fn is_empty(&self) -> bool {
        self.load_balancer.ingress.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadBalancerStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadBalancerIngress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "externalIPs", skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<String>,
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    pub load_balancer_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomResourceDefinition {
    pub metadata: Meta,
    pub spec: CrdSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrdSpec {
    pub group: String,
    pub names: CrdNames,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<CrdVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrdNames {
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plural: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageClass {
    pub metadata: Meta,
    pub provisioner: String,
}

/// An object that only needs identifying (NetworkPolicy, Namespace, CSIDriver, CNI policy CRs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Named {
    pub metadata: Meta,
}

/// A CNI configuration custom resource whose spec facts and rules read (Calico Installation,
/// IPPool, FelixConfiguration; Cilium CiliumNodeConfig, ...). Specs are small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomResource {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub spec: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_and_write_like_a_map() {
        let labels: Labels = serde_json::from_str(r#"{"b":"2","a":"1","b":"3","c":""}"#).unwrap();
        let map: BTreeMap<String, String> =
            serde_json::from_str(r#"{"b":"2","a":"1","b":"3","c":""}"#).unwrap();
        assert_eq!(labels.to_map(), map, "the last of a repeated key counts");
        assert_eq!(labels.get("b").map(String::as_str), Some("3"));
        assert!(labels.contains_key("c") && !labels.contains_key("d"));
        assert_eq!(
            serde_json::to_string(&labels).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert!(serde_json::from_str::<Labels>("null").unwrap().is_empty());
        assert!(serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"["a"]"#).is_err());
        let mut labels = Labels::default();
        assert_eq!(labels.insert("z".into(), "1".into()), None);
        assert_eq!(labels.insert("a".into(), "2".into()), None);
        assert_eq!(labels.insert("z".into(), "3".into()), Some("1".into()));
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["a", "z"]);
    }

    #[test]
    fn pods_keep_only_the_ready_condition() {
        let mut pod: Pod = serde_json::from_str(
            r#"{"metadata":{"name":"p"},"status":{"conditions":[{"type":"Initialized","status":"True"},{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}}"#,
        )
        .unwrap();
        pod.compact();
        assert_eq!(pod.status.conditions.len(), 1);
        assert!(!pod.is_ready());
    }
}
