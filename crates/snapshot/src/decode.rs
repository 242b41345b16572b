//! Streaming decoder for Kubernetes objects in any serde format (JSON, YAML).
//!
//! Each object is read key by key. Once `kind` is known, `spec`/`status`/`data` are parsed
//! straight into the minimal types of `objects`, skipping everything else without building a
//! tree. kubectl prints `apiVersion` and `kind` first for most kinds; when a body key comes
//! earlier (ConfigMap `data` sorts before `kind` in YAML) it is buffered and converted later.
//! `items` is always a list of objects, whatever the kind, so a List never needs buffering.

use crate::objects::*;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// One decoded document: a known kind, a List of them, or something else.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Node(Node),
    Pod(Pod),
    DaemonSet(Workload),
    Deployment(Workload),
    StatefulSet(Workload),
    ConfigMap(ConfigMap),
    PodDisruptionBudget(PodDisruptionBudget),
    ValidatingWebhookConfiguration(WebhookConfiguration),
    MutatingWebhookConfiguration(WebhookConfiguration),
    Service(Service),
    NetworkPolicy(Named),
    Namespace(Named),
    CsiDriver(Named),
    CustomResourceDefinition(CustomResourceDefinition),
    StorageClass(StorageClass),
    /// Calico / Cilium configuration resources, spec kept.
    CniConfig(CustomResource),
    /// Calico / Cilium policy resources, identity only.
    CniPolicy(CustomResource),
    /// A Secret: nothing of it is kept, by design.
    Secret,
    List(Vec<Object>),
    Other {
        api_version: String,
        kind: String,
    },
    /// A mapping without `kind` (a values file, a Talos config, ...): not a Kubernetes object.
    NotKubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What decoding keeps of a kind.
enum Class {
    Node,
    Pod,
    Workload,
    ConfigMap,
    Pdb,
    Webhook,
    Service,
    Named,
    Crd,
    Storage,
    CniConfig,
    CniPolicy,
    Secret,
    Other,
}

/// Calico and Cilium kinds whose spec matters for facts and rules.
pub const CNI_CONFIG_KINDS: &[&str] = &[
    "Installation",
    "IPPool",
    "FelixConfiguration",
    "BGPConfiguration",
    "CiliumNodeConfig",
    "CiliumL2AnnouncementPolicy",
    "CiliumLoadBalancerIPPool",
    "CiliumBGPClusterConfig",
];

/// Calico and Cilium policy kinds that vanish with their CRDs.
pub const CNI_POLICY_KINDS: &[&str] = &[
    "GlobalNetworkPolicy",
    "NetworkSet",
    "GlobalNetworkSet",
    "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy",
    "CiliumNetworkPolicy",
    "CiliumClusterwideNetworkPolicy",
];

fn classify(api_version: &str, kind: &str) -> Class {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let cni_group =
        group.contains("projectcalico.org") || group.contains("tigera.io") || group == "cilium.io";
    match kind {
        "Node" => Class::Node,
        "Pod" => Class::Pod,
        "DaemonSet" | "Deployment" | "StatefulSet" => Class::Workload,
        "ConfigMap" => Class::ConfigMap,
        "PodDisruptionBudget" => Class::Pdb,
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => Class::Webhook,
        "Service" => Class::Service,
        "Namespace" | "CSIDriver" => Class::Named,
        "NetworkPolicy" if cni_group => Class::CniPolicy,
        "NetworkPolicy" => Class::Named,
        "CustomResourceDefinition" => Class::Crd,
        "StorageClass" => Class::Storage,
        "Secret" => Class::Secret,
        k if cni_group && CNI_CONFIG_KINDS.contains(&k) => Class::CniConfig,
        k if cni_group && CNI_POLICY_KINDS.contains(&k) => Class::CniPolicy,
        _ => Class::Other,
    }
}

enum Part {
    NodeSpec(NodeSpec),
    NodeStatus(NodeStatus),
    PodSpec(PodSpec),
    PodStatus(PodStatus),
    WorkloadSpec(WorkloadSpec),
    WorkloadStatus(WorkloadStatus),
    Data(BTreeMap<String, String>),
    PdbSpec(PdbSpec),
    PdbStatus(PdbStatus),
    Webhooks(Vec<Webhook>),
    ServiceSpec(ServiceSpec),
    ServiceStatus(ServiceStatus),
    CrdSpec(CrdSpec),
    Provisioner(String),
    Json(serde_json::Value),
    Skip,
}

/// A map key, borrowed from the input where the decoder can (JSON without escapes): an object
/// has a handful of keys, and a snapshot hundreds of thousands of objects.
pub(crate) struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key<'de>, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => self.visit_str(s),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        d.deserialize_string(KeyVisitor)
    }
}

struct PartSeed<'k> {
    class: Class,
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for PartSeed<'_> {
    type Value = Part;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Part, D::Error> {
        // `null` bodies (e.g. `status: null`) are treated as absent.
        fn opt<'de, T: Deserialize<'de> + Default, D: Deserializer<'de>>(
            d: D,
        ) -> Result<T, D::Error> {
            Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
        }
        Ok(match (self.class, self.key) {
            (Class::Node, "spec") => Part::NodeSpec(opt(d)?),
            (Class::Node, "status") => Part::NodeStatus(opt(d)?),
            (Class::Pod, "spec") => Part::PodSpec(opt(d)?),
            (Class::Pod, "status") => Part::PodStatus(opt(d)?),
            (Class::Workload, "spec") => Part::WorkloadSpec(opt(d)?),
            (Class::Workload, "status") => Part::WorkloadStatus(opt(d)?),
            (Class::ConfigMap, "data") => Part::Data(
                opt::<BTreeMap<String, Option<String>>, _>(d)?
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect(),
            ),
            (Class::Pdb, "spec") => Part::PdbSpec(opt(d)?),
            (Class::Pdb, "status") => Part::PdbStatus(opt(d)?),
            (Class::Webhook, "webhooks") => Part::Webhooks(opt(d)?),
            (Class::Service, "spec") => Part::ServiceSpec(opt(d)?),
            (Class::Service, "status") => Part::ServiceStatus(opt(d)?),
            (Class::Crd, "spec") => Part::CrdSpec(opt(d)?),
            (Class::Storage, "provisioner") => Part::Provisioner(opt(d)?),
            (Class::CniConfig, "spec") => Part::Json(serde_json::Value::deserialize(d)?),
            _ => {
                IgnoredAny::deserialize(d)?;
                Part::Skip
            }
        })
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or List (a mapping with apiVersion and kind)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Object, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Object>()? {
            items.push(item);
        }
        Ok(Object::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut api_version = String::new();
        let mut kind: Option<String> = None;
        let mut metadata: Option<Meta> = None;
        let mut items: Option<Vec<Object>> = None;
        let mut parts: Vec<Part> = Vec::new();
        let mut buffered: Vec<(String, serde_json::Value)> = Vec::new();

        while let Some(key) = map.next_key::<Key>()? {
            match &*key.0 {
                "apiVersion" => {
                    api_version = map.next_value::<Option<String>>()?.unwrap_or_default()
                }
                "kind" => kind = map.next_value()?,
                "metadata" => metadata = map.next_value::<Option<Meta>>()?,
                "items" => {
                    items = Some(map.next_value::<Option<Vec<Object>>>()?.unwrap_or_default())
                }
                _ => match &kind {
                    Some(k) => {
                        let part = map.next_value_seed(PartSeed {
                            class: classify(&api_version, k),
                            key: &key.0,
                        })?;
                        parts.push(part);
                    }
                    None => buffered.push((key.0.into_owned(), map.next_value()?)),
                },
            }
        }

        if let Some(items) = items {
            return Ok(Object::List(items));
        }
        let Some(kind) = kind else {
            return Ok(Object::NotKubernetes);
        };
        let class = classify(&api_version, &kind);
        for (key, value) in buffered {
            let part = PartSeed { class, key: &key }
                .deserialize(value)
                .map_err(|e| de::Error::custom(format!("{kind} field `{key}`: {e}")))?;
            parts.push(part);
        }
        let object = assemble(
            class,
            api_version,
            kind,
            metadata.unwrap_or_default(),
            parts,
        );
        // As an invalid value, so that the decoders attach the position.
        crate::admit::admit(object).map_err(|message| {
            de::Error::invalid_value(
                de::Unexpected::Other(&message),
                &"names and values a Kubernetes API server accepts",
            )
        })
    }
}

fn assemble(
    class: Class,
    api_version: String,
    kind: String,
    metadata: Meta,
    mut parts: Vec<Part>,
) -> Object {
    // The first part of the variant, moved out (a key given twice: the first counts).
    macro_rules! take {
        ($variant:ident) => {
            parts.iter_mut().find_map(|p| match p {
                Part::$variant(_) => match std::mem::replace(p, Part::Skip) {
                    Part::$variant(v) => Some(v),
                    _ => None,
                },
                _ => None,
            })
        };
    }
    match class {
        Class::Node => Object::Node(Node {
            metadata,
            spec: take!(NodeSpec).unwrap_or_default(),
            status: take!(NodeStatus).unwrap_or_default(),
        }),
        Class::Pod => {
            let mut pod = Pod {
                metadata,
                spec: take!(PodSpec).unwrap_or_default(),
                status: take!(PodStatus).unwrap_or_default(),
            };
            pod.compact();
            Object::Pod(pod)
        }
        Class::Workload => {
            let w = Workload {
                metadata,
                spec: take!(WorkloadSpec).unwrap_or_default(),
                status: take!(WorkloadStatus).unwrap_or_default(),
            };
            match kind.as_str() {
                "DaemonSet" => Object::DaemonSet(w),
                "Deployment" => Object::Deployment(w),
                _ => Object::StatefulSet(w),
            }
        }
        Class::ConfigMap => {
            let data = if config_map_is_relevant(&metadata) {
                take!(Data).unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            Object::ConfigMap(ConfigMap { metadata, data })
        }
        Class::Pdb => Object::PodDisruptionBudget(PodDisruptionBudget {
            metadata,
            spec: take!(PdbSpec).unwrap_or_default(),
            status: take!(PdbStatus).unwrap_or_default(),
        }),
        Class::Webhook => {
            let config = WebhookConfiguration {
                metadata,
                webhooks: take!(Webhooks).unwrap_or_default(),
            };
            if kind == "ValidatingWebhookConfiguration" {
                Object::ValidatingWebhookConfiguration(config)
            } else {
                Object::MutatingWebhookConfiguration(config)
            }
        }
        Class::Service => Object::Service(Service {
            metadata,
            spec: take!(ServiceSpec).unwrap_or_default(),
            status: take!(ServiceStatus).unwrap_or_default(),
        }),
        Class::Named => match kind.as_str() {
            "Namespace" => Object::Namespace(Named { metadata }),
            "CSIDriver" => Object::CsiDriver(Named { metadata }),
            _ => Object::NetworkPolicy(Named { metadata }),
        },
        Class::Crd => Object::CustomResourceDefinition(CustomResourceDefinition {
            metadata,
            spec: take!(CrdSpec).unwrap_or_default(),
        }),
        Class::Storage => Object::StorageClass(StorageClass {
            metadata,
            provisioner: take!(Provisioner).unwrap_or_default(),
        }),
        Class::CniConfig => Object::CniConfig(CustomResource {
            api_version,
            kind,
            metadata,
            spec: take!(Json).unwrap_or_default(),
        }),
        Class::CniPolicy => Object::CniPolicy(CustomResource {
            api_version,
            kind,
            metadata,
            spec: serde_json::Value::Null,
        }),
        Class::Secret => Object::Secret,
        Class::Other => Object::Other { api_version, kind },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_in_json_is_decoded_minimally() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default",
              "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{...}"},
              "ownerReferences":[{"kind":"ReplicaSet","name":"a-1","controller":true}]},
             "spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx","args":["--x"],"env":[{"name":"A","value":"b"}]}]},
             "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}]}"#;
        let obj: Object = serde_json::from_str(json).unwrap();
        let Object::List(items) = obj else {
            panic!("not a list")
        };
        let Object::Pod(pod) = &items[0] else {
            panic!("not a pod")
        };
        assert_eq!(pod.spec.node_name.as_deref(), Some("n1"));
        assert!(
            pod.metadata.annotations.is_empty(),
            "irrelevant annotations are dropped"
        );
        assert!(
            pod.spec.containers[0].args.is_empty(),
            "args are dropped for ordinary pods"
        );
        assert!(pod.is_ready());
    }

    #[test]
    fn configmap_data_before_kind_is_buffered_then_kept_when_relevant() {
        let yaml = "apiVersion: v1\ndata:\n  net-conf.json: '{\"Network\": \"10.244.0.0/16\"}'\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-system\n";
        let obj: Object = serde_saphyr::from_str(yaml).unwrap();
        let Object::ConfigMap(cm) = obj else {
            panic!("not a configmap")
        };
        assert!(cm.data["net-conf.json"].contains("10.244.0.0/16"));
    }

    #[test]
    fn secrets_keep_nothing() {
        let yaml = "apiVersion: v1\ndata:\n  token: c2VjcmV0\nkind: Secret\nmetadata:\n  name: s\n";
        assert_eq!(
            serde_saphyr::from_str::<Object>(yaml).unwrap(),
            Object::Secret
        );
    }

    #[test]
    fn wrong_field_type_is_an_error_with_context() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"hostNetwork":"yes"}}"#;
        let err = serde_json::from_str::<Object>(json).unwrap_err();
        assert!(err.line() >= 1);
    }

    #[test]
    fn calico_resources_are_classified() {
        let yaml = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata: {name: default}\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.244.0.0/16, encapsulation: VXLAN}]\n";
        let Object::CniConfig(cr) = serde_saphyr::from_str::<Object>(yaml).unwrap() else {
            panic!()
        };
        assert_eq!(
            cr.spec["calicoNetwork"]["ipPools"][0]["encapsulation"],
            "VXLAN"
        );
        let policy = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {}\n";
        assert!(matches!(
            serde_saphyr::from_str::<Object>(policy).unwrap(),
            Object::CniPolicy(_)
        ));
    }
}
