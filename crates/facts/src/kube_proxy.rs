use crate::talos::effective;
use crate::util::{active_nodes, flag_value};
use cniswap_model::{CniFacts, CniKind, KubeProxyFacts, PlatformFacts, PlatformKind, TalosFacts};
use cniswap_snapshot::Snapshot;

pub fn detect(
    snapshot: &Snapshot,
    platform: &PlatformFacts,
    talos: Option<&TalosFacts>,
    cnis: &[CniFacts],
) -> KubeProxyFacts {
    let mut facts = KubeProxyFacts::default();
    let objects = &snapshot.objects;

    if let Some(ds) = objects
        .daemonsets
        .iter()
        .find(|d| d.metadata.name == "kube-proxy")
    {
        facts.present = true;
        facts.daemonset = Some(ds.metadata.qualified());
        facts.desired = ds.status.desired_number_scheduled.unwrap_or(0);
        facts.ready = ds.status.number_ready.unwrap_or(0);
        facts.mode = flag_value(ds.args(), "--proxy-mode");
        let nodes = active_nodes(&objects.pods, ds).len();
        facts.evidence.push(format!(
            "DaemonSet {} ({}/{} ready, pods on {nodes} nodes)",
            ds.metadata.qualified(),
            facts.ready,
            facts.desired
        ));
    }
    // RKE2 runs kube-proxy as static pods.
    let static_pods = objects
        .pods
        .iter()
        .filter(|p| {
            p.metadata.namespace() == "kube-system"
                && p.metadata.name.starts_with("kube-proxy-")
                && p.is_static()
        })
        .count();
    if static_pods > 0 {
        facts.present = true;
        facts
            .evidence
            .push(format!("{static_pods} kube-proxy static pods"));
    }
    if platform.kind == PlatformKind::K3s {
        let args: Vec<&str> = objects
            .nodes
            .iter()
            .filter_map(|n| n.metadata.annotations.get("k3s.io/node-args"))
            .map(String::as_str)
            .collect();
        if !args.is_empty() {
            let disabled = args.iter().any(|a| a.contains("--disable-kube-proxy"));
            facts.present = !disabled;
            facts.evidence.push(format!(
                "k3s node-args {} --disable-kube-proxy",
                if disabled {
                    "include"
                } else {
                    "do not include"
                }
            ));
        }
    }

    if facts.mode.is_none()
        && let Some(cm) = objects.config_map("kube-system", "kube-proxy")
    {
        let config = cm
            .data
            .get("config.conf")
            .map(String::as_str)
            .unwrap_or_default();
        let mode = config_mode(config);
        facts.mode = match mode.as_deref() {
            // An empty mode means the platform default: iptables on Linux.
            Some("") => Some("iptables".to_string()),
            other => other.map(str::to_string),
        };
    }

    if let Some((disabled, file)) = effective(talos, |c| c.proxy_disabled) {
        facts.disabled_in_talos = Some(disabled);
        facts.evidence.push(format!(
            "Talos {} kube-proxy ({file})",
            if disabled { "disables" } else { "deploys" }
        ));
        if facts.mode.is_none() && !disabled {
            facts.mode = effective(talos, |c| c.proxy_mode.clone()).map(|(m, _)| m);
        }
    }

    facts.replaced_by = cnis.iter().find_map(|c| {
        let cilium_kpr = c
            .cilium
            .as_ref()
            .and_then(|m| m.kube_proxy_replacement.as_deref())
            .is_some_and(|v| v == "true" || v == "strict");
        let calico_bpf = c.calico.as_ref().and_then(|m| m.dataplane.as_deref()) == Some("BPF");
        (cilium_kpr || calico_bpf).then_some(c.kind)
    });
    if facts.replaced_by.is_some() && !facts.present {
        facts.evidence.push(format!(
            "services handled by {}",
            facts.replaced_by.unwrap_or(CniKind::Cilium)
        ));
    }
    facts
}

/// `mode` of a KubeProxyConfiguration, which kubeadm writes as YAML (a `mode:` line) and other
/// installers as JSON.
fn config_mode(config: &str) -> Option<String> {
    if let Ok(serde_json::Value::Object(json)) = serde_json::from_str(config) {
        return json
            .get("mode")
            .and_then(|m| m.as_str())
            .map(str::to_string);
    }
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("mode:"))
        .map(|m| m.trim().trim_matches(['"', '\'']).to_string())
}

#[cfg(test)]
mod tests {
    use super::config_mode;

    #[test]
    fn reads_the_mode_of_yaml_and_json_configs() {
        let yaml = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"nftables\"\n";
        assert_eq!(config_mode(yaml).as_deref(), Some("nftables"));
        let json = "{\n  \"kind\": \"KubeProxyConfiguration\",\n  \"mode\": \"iptables\"\n}";
        assert_eq!(config_mode(json).as_deref(), Some("iptables"));
        assert_eq!(config_mode("{}"), None);
    }
}
