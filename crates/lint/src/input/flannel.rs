//! Flannel's network config: `net-conf.json` of the kube-flannel-cfg ConfigMap (files or
//! cluster), and the Flannel Helm chart's values.

use cniswap_config::Node;
use cniswap_model::Location;
use cniswap_snapshot::Snapshot;

#[derive(Debug, Clone)]
pub struct FlannelConfig {
    /// `ConfigMap kube-flannel/kube-flannel-cfg` or the values file.
    pub label: String,
    pub network: Option<String>,
    pub backend: Option<String>,
    pub port: Option<u16>,
    pub direct_routing: Option<bool>,
    /// Where `Network` is written, when the config came from a file.
    pub network_at: Option<Location>,
    /// Where the backend is written.
    pub backend_at: Option<Location>,
}

pub fn collect(snapshot: &Snapshot) -> Vec<FlannelConfig> {
    let mut out = Vec::new();
    for m in &snapshot.manifests {
        if m.doc.path(&["metadata", "name"]).and_then(Node::as_str) != Some("kube-flannel-cfg") {
            continue;
        }
        let Some(holder) = m.doc.path(&["data", "net-conf.json"]) else {
            continue;
        };
        let namespace = m
            .doc
            .path(&["metadata", "namespace"])
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        let file = snapshot
            .source_file(holder.pos.source)
            .map(|f| f.path.clone());
        let text = holder.as_str().unwrap_or_default();
        let locate = |needle: &str| {
            let file = file.clone()?;
            let needle = needle.to_ascii_lowercase();
            let index = text
                .lines()
                .position(|l| l.to_ascii_lowercase().contains(&needle))?;
            let line = text.lines().nth(index)?.to_ascii_lowercase();
            let column = line.find(&needle)? + 1;
            // Block scalars start on the holder's line (saphyr marks the first content line).
            Some(Location {
                file,
                line: holder.pos.line + index,
                column: holder.pos.column + column - 1,
            })
        };
        let mut config = from_net_conf(&format!("ConfigMap {namespace}/kube-flannel-cfg"), text);
        config.network_at = locate("\"Network\"");
        config.backend_at = locate("\"Type\"");
        out.push(config);
    }
    if out.is_empty() {
        for cm in snapshot
            .objects
            .config_maps
            .iter()
            .filter(|c| c.metadata.name == "kube-flannel-cfg")
        {
            if let Some(text) = cm.data.get("net-conf.json") {
                let label = format!(
                    "ConfigMap {}/kube-flannel-cfg",
                    cm.metadata.namespace.as_deref().unwrap_or_default()
                );
                out.push(from_net_conf(&label, text));
            }
        }
    }
    for helm in snapshot.helm.iter().filter(|h| h.chart == "flannel") {
        let values = &helm.values;
        let at = |node: Option<&Node>| {
            let node = node?;
            Some(Location {
                file: snapshot.source_file(node.pos.source)?.path.clone(),
                line: node.pos.line,
                column: node.pos.column,
            })
        };
        let network = values.get("podCidr");
        let backend = values.path(&["flannel", "backend"]);
        out.push(FlannelConfig {
            label: helm.file.clone(),
            network: network.and_then(Node::scalar_text),
            backend: backend.and_then(Node::scalar_text),
            port: values
                .path(&["flannel", "backendPort"])
                .and_then(Node::as_u16),
            direct_routing: None,
            network_at: at(network),
            backend_at: at(backend),
        });
    }
    out
}

/// A net-conf.json key as flanneld reads it: Go's `encoding/json` matches field names without
/// regard to case (`Directrouting` sets `DirectRouting`), an exact match first.
fn field<'a>(object: Option<&'a serde_json::Value>, key: &str) -> Option<&'a serde_json::Value> {
    let map = object?.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn from_net_conf(label: &str, text: &str) -> FlannelConfig {
    let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let backend = field(Some(&json), "Backend");
    FlannelConfig {
        label: label.to_string(),
        network: field(Some(&json), "Network")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        backend: field(backend, "Type")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        port: field(backend, "Port")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        direct_routing: field(backend, "DirectRouting").and_then(serde_json::Value::as_bool),
        network_at: None,
        backend_at: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_read_as_flanneld_reads_them() {
        let config = super::from_net_conf(
            "x",
            r#"{"network": "10.42.0.0/16", "backend": {"type": "vxlan", "Directrouting": true, "PORT": 4789}}"#,
        );
        assert_eq!(config.network.as_deref(), Some("10.42.0.0/16"));
        assert_eq!(config.backend.as_deref(), Some("vxlan"));
        assert_eq!(config.direct_routing, Some(true));
        assert_eq!(config.port, Some(4789));
    }
}
