//! Cilium: the deployed ConfigMap `cilium-config` first, Helm values for what it lacks.
//! Source: research/cilium.md "Helm values that matter".

use super::{find_daemonset, from_daemonset};
use cniswap_config::Node as YamlNode;
use cniswap_model::{CiliumMode, CniFacts, CniKind};
use cniswap_snapshot::Snapshot;

pub fn detect(snapshot: &Snapshot) -> Option<CniFacts> {
    let ds = find_daemonset(snapshot, &["cilium", "rke2-cilium"]);
    let config = snapshot
        .objects
        .config_maps
        .iter()
        .find(|c| c.metadata.name == "cilium-config");
    let values = snapshot.helm.iter().find(|h| h.chart == "cilium");
    if ds.is_none() && config.is_none() && values.is_none() {
        return None;
    }
    let mut facts = match ds {
        Some(ds) => from_daemonset(CniKind::Cilium, snapshot, ds, "cilium"),
        None => CniFacts::new(CniKind::Cilium),
    };
    let mut mode = CiliumMode::default();

    if let Some(cm) = config {
        let get = |k: &str| {
            cm.data
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let flag = |k: &str| get(k).map(|v| v == "true");
        mode.routing_mode = get("routing-mode");
        mode.tunnel_protocol = get("tunnel-protocol");
        // Cilium <= 1.14 used a single `tunnel` key (vxlan | geneve | disabled).
        if let Some(legacy) = get("tunnel") {
            if legacy == "disabled" {
                mode.routing_mode.get_or_insert("native".to_string());
            } else {
                mode.routing_mode.get_or_insert("tunnel".to_string());
                mode.tunnel_protocol.get_or_insert(legacy);
            }
        }
        mode.tunnel_port = get("tunnel-port").and_then(|p| p.parse().ok());
        mode.ipam_mode = get("ipam");
        mode.kube_proxy_replacement = get("kube-proxy-replacement");
        mode.cni_exclusive = flag("cni-exclusive");
        mode.custom_cni_conf = flag("custom-cni-conf");
        mode.bpf_masquerade = flag("enable-bpf-masquerade");
        mode.host_legacy_routing = flag("enable-host-legacy-routing");
        mode.policy_enforcement_mode = get("enable-policy");
        if let Some(pool) = get("cluster-pool-ipv4-cidr") {
            facts.pod_cidrs.extend(
                pool.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        mode.sources
            .push(format!("ConfigMap {}", cm.metadata.qualified()));
    }

    if let Some(values) = values {
        let v = &values.values;
        let text = |path: &[&str]| v.path(path).and_then(YamlNode::scalar_text);
        let flag = |path: &[&str]| v.path(path).and_then(YamlNode::as_bool);
        mode.routing_mode = mode.routing_mode.or_else(|| text(&["routingMode"]));
        mode.tunnel_protocol = mode
            .tunnel_protocol
            .or_else(|| text(&["tunnelProtocol"]))
            .or_else(|| text(&["tunnel"]).filter(|t| t != "disabled"));
        mode.tunnel_port = mode
            .tunnel_port
            .or_else(|| v.path(&["tunnelPort"]).and_then(YamlNode::as_u16));
        mode.ipam_mode = mode.ipam_mode.or_else(|| text(&["ipam", "mode"]));
        mode.kube_proxy_replacement = mode
            .kube_proxy_replacement
            .or_else(|| text(&["kubeProxyReplacement"]));
        mode.cni_exclusive = mode.cni_exclusive.or_else(|| flag(&["cni", "exclusive"]));
        mode.custom_cni_conf = mode
            .custom_cni_conf
            .or_else(|| flag(&["cni", "customConf"]));
        mode.bpf_masquerade = mode.bpf_masquerade.or_else(|| flag(&["bpf", "masquerade"]));
        mode.host_legacy_routing = mode
            .host_legacy_routing
            .or_else(|| flag(&["bpf", "hostLegacyRouting"]));
        mode.policy_enforcement_mode = mode
            .policy_enforcement_mode
            .or_else(|| text(&["policyEnforcementMode"]));
        mode.k8s_service_host = text(&["k8sServiceHost"]);
        mode.k8s_service_port = text(&["k8sServicePort"]);
        if facts.pod_cidrs.is_empty() {
            facts.pod_cidrs = v
                .path(&["ipam", "operator", "clusterPoolIPv4PodCIDRList"])
                .map(YamlNode::string_list)
                .unwrap_or_default();
        }
        if facts.version.is_none() {
            facts.version = values.chart_version.clone();
        }
        mode.sources.push(format!("Helm values {}", values.file));
    }

    // Chart defaults, stated only when the routing mode is known to be tunnel.
    if mode.routing_mode.as_deref().is_none_or(|m| m == "tunnel")
        && mode.tunnel_port.is_none()
        && !mode.sources.is_empty()
    {
        mode.tunnel_port = match mode.tunnel_protocol.as_deref() {
            Some("geneve") => Some(6081),
            Some("vxlan") | None => Some(8472),
            _ => None,
        };
    }
    facts.cilium = Some(mode);
    Some(facts)
}
