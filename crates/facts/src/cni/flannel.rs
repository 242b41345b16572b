//! Flannel (and the Flannel half of Canal).
//! Sources: research/node-state.md "Flannel", research/talos.md (Talos renders VXLAN port 4789,
//! DaemonSet kube-system/kube-flannel, ConfigMap kube-flannel-cfg).

use super::{find_canal, find_daemonset, from_daemonset, is_bundled_platform, port};
use crate::talos::effective;
use cniswap_model::{
    CniFacts, CniKind, FlannelMode, InstallMethod, PlatformFacts, PlatformKind, TalosFacts,
};
use cniswap_snapshot::Snapshot;

/// Upstream Flannel's VXLAN port when net-conf.json does not set one (the kernel default).
const UPSTREAM_VXLAN_PORT: u16 = 8472;

pub fn detect(
    snapshot: &Snapshot,
    platform: &PlatformFacts,
    talos: Option<&TalosFacts>,
) -> Option<CniFacts> {
    let ds = find_daemonset(snapshot, &["kube-flannel", "kube-flannel-ds", "flannel"]);
    let mut facts = match ds {
        Some(ds) => from_daemonset(CniKind::Flannel, snapshot, ds, "flannel"),
        None => CniFacts::new(CniKind::Flannel),
    };
    let namespace = facts.namespace.clone();
    let config = namespace
        .as_deref()
        .and_then(|ns| snapshot.objects.config_map(ns, "kube-flannel-cfg"))
        .or_else(|| {
            snapshot
                .objects
                .config_maps
                .iter()
                .find(|c| c.metadata.name == "kube-flannel-cfg")
        });
    if let Some(cm) = config {
        facts.flannel = cm.data.get("net-conf.json").and_then(|t| net_conf(t));
        facts.evidence.push(format!(
            "ConfigMap {} net-conf.json",
            cm.metadata.qualified()
        ));
    }

    let talos_cni = effective(talos, |c| c.cni.clone());
    if platform.kind == PlatformKind::Talos
        && ds.is_some_and(|d| d.metadata.namespace() == "kube-system")
    {
        facts.install = Some(InstallMethod::Talos);
    }
    if let Some((cni, file)) = &talos_cni
        && cni == "flannel"
    {
        facts
            .evidence
            .push(format!("Talos renders Flannel ({file})"));
    }

    // k3s and RKE2 (with flannel backend) embed flanneld: no DaemonSet, but node annotations.
    // Canal's flannel container writes the same annotations: there they are Canal's.
    if ds.is_none() && is_bundled_platform(platform) && find_canal(snapshot).is_none() {
        let annotated: Vec<String> = snapshot
            .objects
            .nodes
            .iter()
            .filter(|n| {
                n.metadata
                    .annotations
                    .contains_key("flannel.alpha.coreos.com/backend-type")
            })
            .map(|n| n.metadata.name.clone())
            .collect();
        if !annotated.is_empty() {
            facts.install = Some(InstallMethod::Bundled);
            facts.running = true;
            facts.evidence.push(format!(
                "embedded flannel: flannel.alpha.coreos.com annotations on {} nodes",
                annotated.len()
            ));
            facts.desired = annotated.len() as u32;
            facts.ready = annotated.len() as u32;
            facts.active_nodes = annotated;
        }
    }

    if let Some(mode) = &facts.flannel {
        facts.pod_cidrs.extend(mode.network.clone());
    }
    let found = ds.is_some() || config.is_some() || facts.install == Some(InstallMethod::Bundled);
    found.then_some(facts)
}

/// Canal: Calico policy + Flannel networking in one DaemonSet. RKE2's comes from its
/// `rke2-canal` HelmChart (the helm controller recreates what is deleted): bundled.
pub fn detect_canal(snapshot: &Snapshot, platform: &PlatformFacts) -> Option<CniFacts> {
    let ds = find_canal(snapshot)?;
    let mut facts = from_daemonset(CniKind::Canal, snapshot, ds, "calico/node");
    if platform.kind == PlatformKind::Rke2 && ds.metadata.name.starts_with("rke2-") {
        facts.install = Some(InstallMethod::Bundled);
        facts.evidence.push(format!(
            "RKE2 deploys it from its HelmChart kube-system/{}",
            ds.metadata.name
        ));
    }
    if facts.version.is_none() {
        facts.version = ds
            .image_containing("calico")
            .and_then(cniswap_config::talos::image_tag);
    }
    let cm = snapshot
        .objects
        .config_map(ds.metadata.namespace(), "canal-config")
        .or_else(|| {
            snapshot.objects.config_map(
                ds.metadata.namespace(),
                &format!("{}-config", ds.metadata.name),
            )
        });
    if let Some(cm) = cm {
        facts.flannel = cm.data.get("net-conf.json").and_then(|t| net_conf(t));
        facts.evidence.push(format!(
            "ConfigMap {} net-conf.json",
            cm.metadata.qualified()
        ));
    }
    if let Some(mode) = &facts.flannel {
        facts.pod_cidrs.extend(mode.network.clone());
    }
    Some(facts)
}

/// Reads Flannel's net-conf.json.
pub fn net_conf(text: &str) -> Option<FlannelMode> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let backend = json.get("Backend");
    let backend_type = backend
        .and_then(|b| b.get("Type"))
        .and_then(|t| t.as_str())
        .map(str::to_lowercase);
    let is_vxlan = backend_type.as_deref().is_none_or(|t| t == "vxlan");
    Some(FlannelMode {
        port: port(backend.and_then(|b| b.get("Port"))).or(if is_vxlan {
            Some(UPSTREAM_VXLAN_PORT)
        } else {
            None
        }),
        vni: backend
            .and_then(|b| b.get("VNI"))
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok()),
        direct_routing: backend
            .and_then(|b| b.get("DirectRouting"))
            .and_then(|v| v.as_bool()),
        backend: backend_type.or(Some("vxlan".to_string())),
        network: json
            .get("Network")
            .and_then(|n| n.as_str())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_conf_defaults_to_upstream_vxlan_port() {
        let mode =
            net_conf(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}"#).unwrap();
        assert_eq!(mode.port, Some(8472));
        assert_eq!(mode.network.as_deref(), Some("10.244.0.0/16"));
        let talos =
            net_conf(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "Port": 4789}}"#)
                .unwrap();
        assert_eq!(talos.port, Some(4789));
        let hostgw =
            net_conf(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}"#).unwrap();
        assert_eq!(hostgw.port, None);
    }
}
