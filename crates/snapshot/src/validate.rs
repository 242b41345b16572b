//! Checks every decoded object against the rules an API server enforces, so a snapshot can only
//! hold what a cluster could have returned: names and labels by Kubernetes' own rules (a name
//! ends up in commands people run as cluster admins), addresses that parse as IPs, CIDRs and
//! ports in range, and the CNI settings facts read (Flannel's net-conf.json, Calico pools,
//! Cilium's config). A value that breaks them is an input error naming the object, never
//! replaced by a default.

use crate::decode::Object;
use crate::objects::*;
use cniswap_model::names::{self, shown};
use serde_json::Value;
use std::fmt::Display;

/// Which naming rule a kind's `metadata.name` follows (pkg/apis/core/validation).
#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
}

/// One object being checked. The object's name and the field are only put into words when a
/// check fails: every pod of a large snapshot is checked, and nearly all pass.
struct Check<'a> {
    kind: &'a str,
    meta: &'a Meta,
}

impl Check<'_> {
    fn fail(&self, field: impl Display, value: &str, reason: String) -> String {
        format!(
            "{} {}: {field} {} is not valid: {reason}",
            self.kind,
            shown(&self.meta.qualified()),
            shown(value)
        )
    }

    fn rule(
        &self,
        field: impl Display,
        value: &str,
        rule: fn(&str) -> Result<(), String>,
    ) -> Result<(), String> {
        rule(value).map_err(|reason| self.fail(field, value, reason))
    }

    fn meta(&self, meta: &Meta, rule: NameRule) -> Result<(), String> {
        let name_rule = match rule {
            NameRule::Subdomain => names::dns1123_subdomain,
            NameRule::Label => names::dns1123_label,
            NameRule::Dns1035 => names::dns1035_label,
        };
        self.rule("metadata.name", &meta.name, name_rule)?;
        if let Some(namespace) = &meta.namespace {
            self.rule("metadata.namespace", namespace, names::dns1123_label)?;
        }
        self.labels("metadata.labels", &meta.labels)?;
        for key in meta.annotations.keys() {
            self.rule("metadata.annotations key", key, names::qualified_name)?;
        }
        for owner in &meta.owner_references {
            self.rule(
                "metadata.ownerReferences[].name",
                &owner.name,
                names::dns1123_subdomain,
            )?;
        }
        Ok(())
    }

    fn labels<'a>(
        &self,
        field: impl Display,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<(), String> {
        for (key, value) in labels {
            self.rule(format_args!("{field} key"), key, names::qualified_name)?;
            self.rule(format_args!("{field}[{key}]"), value, names::label_value)?;
        }
        Ok(())
    }

    fn pod_spec(&self, field: &str, spec: &PodSpec) -> Result<(), String> {
        if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
            self.rule(
                format_args!("{field}.nodeName"),
                node,
                names::dns1123_subdomain,
            )?;
        }
        self.labels(format_args!("{field}.nodeSelector"), &spec.node_selector)?;
        for container in &spec.containers {
            self.rule(
                format_args!("{field}.containers[].name"),
                &container.name,
                names::dns1123_label,
            )?;
        }
        Ok(())
    }

    fn cidr(&self, field: impl Display, value: &str) -> Result<(), String> {
        self.rule(field, value, names::cidr)
    }

    fn port(&self, field: impl Display, value: &Value) -> Result<(), String> {
        let number = match value {
            Value::Null => return Ok(()),
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match number {
            Some(n) => {
                names::port(n).map_err(|reason| self.fail(field, &value.to_string(), reason))
            }
            None => Err(self.fail(
                field,
                &value.to_string(),
                "must be a port number".to_string(),
            )),
        }
    }
}

/// Checks one decoded object (Lists are checked item by item as they are decoded).
pub fn object(object: &Object) -> Result<(), String> {
    let check = |kind: &'static str, meta| Check { kind, meta };
    match object {
        Object::Node(node) => {
            let c = check("Node", &node.metadata);
            c.meta(&node.metadata, NameRule::Subdomain)?;
            if let Some(cidr) = node.spec.pod_cidr.as_deref().filter(|c| !c.is_empty()) {
                c.cidr("spec.podCIDR", cidr)?;
            }
            for cidr in &node.spec.pod_cidrs {
                c.cidr("spec.podCIDRs[]", cidr)?;
            }
            for address in &node.status.addresses {
                let rule = match address.kind.as_str() {
                    "InternalIP" | "ExternalIP" => names::ip_address,
                    _ => names::host,
                };
                c.rule(
                    format_args!("status.addresses[{}]", address.kind),
                    &address.address,
                    rule,
                )?;
            }
        }
        Object::Pod(pod) => {
            let c = check("Pod", &pod.metadata);
            c.meta(&pod.metadata, NameRule::Subdomain)?;
            c.pod_spec("spec", &pod.spec)?;
        }
        Object::DaemonSet(w) | Object::Deployment(w) | Object::StatefulSet(w) => {
            let kind = match object {
                Object::DaemonSet(_) => "DaemonSet",
                Object::Deployment(_) => "Deployment",
                _ => "StatefulSet",
            };
            let c = check(kind, &w.metadata);
            c.meta(&w.metadata, NameRule::Subdomain)?;
            c.labels(
                "spec.template.metadata.labels",
                &w.spec.template.metadata.labels,
            )?;
            c.pod_spec("spec.template.spec", &w.spec.template.spec)?;
        }
        Object::ConfigMap(cm) => {
            let c = check("ConfigMap", &cm.metadata);
            c.meta(&cm.metadata, NameRule::Subdomain)?;
            for key in cm.data.keys() {
                c.rule("data key", key, config_map_key)?;
            }
            config_map_settings(&c, cm)?;
        }
        Object::PodDisruptionBudget(pdb) => {
            check("PodDisruptionBudget", &pdb.metadata).meta(&pdb.metadata, NameRule::Subdomain)?
        }
        Object::ValidatingWebhookConfiguration(w) | Object::MutatingWebhookConfiguration(w) => {
            let c = check("WebhookConfiguration", &w.metadata);
            c.meta(&w.metadata, NameRule::Subdomain)?;
            for hook in &w.webhooks {
                // Kubernetes requires a fully qualified name (IsFullyQualifiedName).
                c.rule("webhooks[].name", &hook.name, names::dns1123_subdomain)?;
            }
            for service in w
                .webhooks
                .iter()
                .filter_map(|h| h.client_config.service.as_ref())
            {
                c.rule(
                    "webhooks[].clientConfig.service.namespace",
                    &service.namespace,
                    names::dns1123_label,
                )?;
                c.rule(
                    "webhooks[].clientConfig.service.name",
                    &service.name,
                    names::dns1035_label,
                )?;
            }
        }
        Object::Service(s) => {
            let c = check("Service", &s.metadata);
            c.meta(&s.metadata, NameRule::Dns1035)?;
            if let Some(ip) = s
                .spec
                .cluster_ip
                .as_deref()
                .filter(|ip| !ip.is_empty() && *ip != "None")
            {
                c.rule("spec.clusterIP", ip, names::ip_address)?;
            }
            for ip in &s.spec.external_ips {
                c.rule("spec.externalIPs[]", ip, names::ip_address)?;
            }
            if let Some(ip) = s
                .spec
                .load_balancer_ip
                .as_deref()
                .filter(|ip| !ip.is_empty())
            {
                c.rule("spec.loadBalancerIP", ip, names::ip_address)?;
            }
            for ip in s
                .status
                .load_balancer
                .ingress
                .iter()
                .filter_map(|i| i.ip.as_deref())
            {
                c.rule("status.loadBalancer.ingress[].ip", ip, names::ip_address)?;
            }
            c.labels("spec.selector", &s.spec.selector)?;
        }
        Object::Namespace(n) => {
            check("Namespace", &n.metadata).meta(&n.metadata, NameRule::Label)?
        }
        Object::NetworkPolicy(n) => {
            check("NetworkPolicy", &n.metadata).meta(&n.metadata, NameRule::Subdomain)?
        }
        Object::CsiDriver(n) => {
            check("CSIDriver", &n.metadata).meta(&n.metadata, NameRule::Subdomain)?
        }
        Object::CustomResourceDefinition(crd) => {
            let c = check("CustomResourceDefinition", &crd.metadata);
            c.meta(&crd.metadata, NameRule::Subdomain)?;
            if !crd.spec.group.is_empty() {
                c.rule("spec.group", &crd.spec.group, names::dns1123_subdomain)?;
            }
        }
        Object::StorageClass(sc) => {
            let c = check("StorageClass", &sc.metadata);
            c.meta(&sc.metadata, NameRule::Subdomain)?;
            if !sc.provisioner.is_empty() {
                c.rule(
                    "provisioner",
                    &sc.provisioner.to_lowercase(),
                    names::qualified_name,
                )?;
            }
        }
        Object::CniConfig(cr) | Object::CniPolicy(cr) => {
            let c = Check {
                kind: &cr.kind,
                meta: &cr.metadata,
            };
            c.meta(&cr.metadata, NameRule::Subdomain)?;
            cni_settings(&c, cr)?;
        }
        Object::Secret | Object::List(_) | Object::Other { .. } | Object::NotKubernetes => {}
    }
    Ok(())
}

/// `[-._a-zA-Z0-9]+` (IsConfigMapKey).
fn config_map_key(key: &str) -> Result<(), String> {
    if !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        Ok(())
    } else {
        Err("a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into())
    }
}

/// The CNI settings facts read from ConfigMaps.
fn config_map_settings(c: &Check, cm: &ConfigMap) -> Result<(), String> {
    if let Some(text) = cm.data.get("net-conf.json") {
        let json: Value = serde_json::from_str(text).map_err(|e| {
            c.fail(
                "data[net-conf.json]",
                "<text>",
                format!("Flannel's net-conf.json must be JSON ({e})"),
            )
        })?;
        if !json.is_object() {
            return Err(c.fail(
                "data[net-conf.json]",
                "<text>",
                "Flannel's net-conf.json must be a JSON object".into(),
            ));
        }
        for key in ["Network", "IPv6Network"] {
            match json.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => c.cidr(format_args!("net-conf.json {key}"), s)?,
                Some(other) => {
                    return Err(c.fail(
                        format_args!("net-conf.json {key}"),
                        &other.to_string(),
                        "must be a CIDR string".into(),
                    ));
                }
            }
        }
        if let Some(backend) = json.get("Backend") {
            c.port(
                "net-conf.json Backend.Port",
                backend.get("Port").unwrap_or(&Value::Null),
            )?;
            if let Some(vni) = backend.get("VNI")
                && vni.as_u64().is_none_or(|v| v >= (1 << 24))
            {
                return Err(c.fail(
                    "net-conf.json Backend.VNI",
                    &vni.to_string(),
                    "must be a VXLAN network identifier (0-16777215)".into(),
                ));
            }
        }
    }
    if cm.metadata.name.contains("cilium-config") {
        if let Some(port) = cm.data.get("tunnel-port") {
            c.port("data[tunnel-port]", &Value::String(port.clone()))?;
        }
        if let Some(pools) = cm.data.get("cluster-pool-ipv4-cidr") {
            for pool in pools.split([' ', ',']).filter(|s| !s.is_empty()) {
                c.cidr("data[cluster-pool-ipv4-cidr]", pool)?;
            }
        }
    }
    Ok(())
}

/// The Calico settings facts and rules read from custom resources.
fn cni_settings(c: &Check, cr: &CustomResource) -> Result<(), String> {
    let cidr_at = |field: &str, value: &Value| -> Result<(), String> {
        match value {
            Value::Null => Ok(()),
            Value::String(s) => c.cidr(field, s),
            other => Err(c.fail(field, &other.to_string(), "must be a CIDR string".into())),
        }
    };
    match cr.kind.as_str() {
        "IPPool" => cidr_at("spec.cidr", &cr.spec["cidr"])?,
        "Installation" => {
            if let Some(pools) = cr.spec["calicoNetwork"]["ipPools"].as_array() {
                for pool in pools {
                    cidr_at("spec.calicoNetwork.ipPools[].cidr", &pool["cidr"])?;
                }
            }
        }
        "FelixConfiguration" => {
            for field in ["vxlanPort", "wireguardListeningPort"] {
                c.port(format_args!("spec.{field}"), &cr.spec[field])?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Result<Object, String> {
        serde_json::from_str::<Object>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn hostile_names_are_refused_with_the_object_named() {
        let err = decode(
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"talos-w-1;touch pwned;#"}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("Node \"talos-w-1;touch pwned;#\": metadata.name"),
            "{err}"
        );
        assert!(err.contains("line 1"), "position kept: {err}");
        let err = decode(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p\nx","namespace":"default"}}"#,
        )
        .unwrap_err();
        assert!(err.contains("\\n"), "escaped: {err}");
        assert!(
            decode(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a.b"}}"#).is_err()
        );
        assert!(decode(r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.1.72 version; touch x #"}]}}"#).is_err());
        assert!(decode(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","labels":{"a":"b\nc"}}}"#).is_err());
        assert!(decode(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"nodeName":"$(id)"}}"#).is_err());
    }

    #[test]
    fn garbage_values_are_refused_not_defaulted() {
        for bad in [
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDR":"10.0.0.0/99"}}"#,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["::/200"]}}"#,
            r#"{"apiVersion":"crd.projectcalico.org/v1","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/99"}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-flannel-cfg","namespace":"kube-flannel"},"data":{"net-conf.json":"not json"}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-flannel-cfg","namespace":"kube-flannel"},"data":{"net-conf.json":"{\"Network\":\"300.0.0.0/8\"}"}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-flannel-cfg","namespace":"kube-flannel"},"data":{"net-conf.json":"{\"Backend\":{\"Port\":70000}}"}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cilium-config","namespace":"kube-system"},"data":{"tunnel-port":"-1"}}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        assert!(decode(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-flannel-cfg","namespace":"kube-flannel"},"data":{"net-conf.json":"{\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"vxlan\",\"Port\":4789}}"}}"#).is_ok());
    }
}
