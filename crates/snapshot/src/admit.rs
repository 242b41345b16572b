//! Every object enters a snapshot through here, whether it was read from a file or from the
//! API: its secrets are redacted by meaning (ConfigMap data, Calico and Cilium resources) and it
//! is checked against the API server's own rules ([`crate::validate`]).

use crate::decode::Object;
use cniswap_config::redact;
use std::collections::BTreeMap;

/// The object as a snapshot may hold it, or why it cannot be held.
pub fn admit(mut object: Object) -> Result<Object, String> {
    match &mut object {
        Object::ConfigMap(cm) => cm.data = redact_data(std::mem::take(&mut cm.data)),
        Object::CniConfig(cr) => {
            redact::redact_json(&mut cr.spec);
        }
        _ => {}
    }
    crate::validate::object(&object)?;
    Ok(object)
}

/// ConfigMap data with its secrets redacted: values under secret-sounding keys, credentials
/// inside values, and secrets of YAML embedded in them (kubeadm's ClusterConfiguration can
/// carry `oidc-client-secret`).
fn redact_data(data: BTreeMap<String, String>) -> BTreeMap<String, String> {
    data.into_iter()
        .map(|(key, value)| {
            let value = if redact::is_secret_key(&key) && !value.is_empty() {
                redact::REDACTED.to_string()
            } else {
                redact::redact_string(&value).unwrap_or(value)
            };
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{ConfigMap, Meta};

    #[test]
    fn config_map_secrets_are_redacted_whatever_the_source() {
        let cm = ConfigMap {
            metadata: Meta {
                name: "kubeadm-config".into(),
                namespace: Some("kube-system".into()),
                ..Meta::default()
            },
            data: BTreeMap::from([
                (
                    "ClusterConfiguration".to_string(),
                    "apiServer:\n  extraArgs:\n    oidc-client-secret: MARKER\nnetworking:\n  podSubnet: 10.244.0.0/16\n".to_string(),
                ),
                ("token".to_string(), "MARKER".to_string()),
            ]),
        };
        let Object::ConfigMap(cm) = admit(Object::ConfigMap(cm)).unwrap() else {
            panic!()
        };
        let all = format!("{:?}", cm.data);
        assert!(!all.contains("MARKER"), "{all}");
        assert!(all.contains("10.244.0.0/16"));
    }
}
