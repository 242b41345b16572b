//! Calico: operator (Installation, IPPool, FelixConfiguration) or manifest install.
//! Source: research/calico.md "Operator Installation fields that matter".

use super::{find_canal, find_daemonset, from_daemonset};
use cniswap_model::{CalicoMode, CniFacts, CniKind, InstallMethod};
use cniswap_snapshot::Snapshot;
use serde_json::Value;

pub fn detect(snapshot: &Snapshot) -> Option<CniFacts> {
    let ds = find_daemonset(snapshot, &["calico-node"]);
    let crs = &snapshot.objects.cni_configs;
    let installation = crs.iter().find(|c| c.kind == "Installation");
    let pools: Vec<_> = crs.iter().filter(|c| c.kind == "IPPool").collect();
    if ds.is_none() && installation.is_none() && pools.is_empty() {
        return None;
    }
    // Canal also runs calico-node images; it is reported on its own.
    if ds.is_none() && find_canal(snapshot).is_some() {
        return None;
    }
    let mut facts = match ds {
        Some(ds) => from_daemonset(CniKind::Calico, snapshot, ds, "node"),
        None => CniFacts::new(CniKind::Calico),
    };
    let mut mode = CalicoMode::default();

    if let Some(inst) = installation {
        facts.install = Some(InstallMethod::TigeraOperator);
        let network = &inst.spec["calicoNetwork"];
        mode.dataplane = str_at(network, "linuxDataplane");
        mode.bgp = str_at(network, "bgp");
        mode.kube_proxy_management = str_at(network, "kubeProxyManagement")
            .or_else(|| str_at(&inst.spec, "kubeProxyManagement"));
        for pool in network["ipPools"].as_array().into_iter().flatten() {
            facts.pod_cidrs.extend(str_at(pool, "cidr"));
            // The operator's default encapsulation is IPIP.
            mode.encapsulation
                .push(str_at(pool, "encapsulation").unwrap_or_else(|| "IPIP".to_string()));
        }
        mode.sources
            .push(format!("Installation/{}", inst.metadata.name));
    }
    for pool in &pools {
        if let Some(cidr) = str_at(&pool.spec, "cidr")
            && !facts.pod_cidrs.contains(&cidr)
        {
            facts.pod_cidrs.push(cidr);
            mode.encapsulation.push(pool_encapsulation(&pool.spec));
        }
        mode.sources.push(format!("IPPool/{}", pool.metadata.name));
    }
    if let Some(felix) = crs
        .iter()
        .find(|c| c.kind == "FelixConfiguration" && c.metadata.name == "default")
    {
        if felix.spec["bpfEnabled"].as_bool() == Some(true) {
            mode.dataplane = Some("BPF".to_string());
        }
        mode.sources.push("FelixConfiguration/default".to_string());
    }
    if let Some(cm) = snapshot
        .objects
        .config_maps
        .iter()
        .find(|c| c.metadata.name == "calico-config")
    {
        if let Some(backend) = cm.data.get("calico_backend")
            && mode.bgp.is_none()
        {
            let bgp = if backend == "bird" {
                "Enabled"
            } else {
                "Disabled"
            };
            mode.bgp = Some(bgp.to_string());
        }
        mode.sources
            .push(format!("ConfigMap/{}", cm.metadata.qualified()));
    }
    if mode.dataplane.is_none() && installation.is_some() {
        mode.dataplane = Some("Iptables".to_string());
    }
    mode.encapsulation.sort();
    mode.encapsulation.dedup();
    facts.calico = Some(mode);
    Some(facts)
}

fn str_at(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Encapsulation of a projectcalico IPPool in the Installation vocabulary.
fn pool_encapsulation(spec: &Value) -> String {
    let vxlan = spec["vxlanMode"].as_str().unwrap_or("Never");
    let ipip = spec["ipipMode"].as_str().unwrap_or("Never");
    match (vxlan, ipip) {
        ("Always", _) => "VXLAN",
        ("CrossSubnet", _) => "VXLANCrossSubnet",
        (_, "Always") => "IPIP",
        (_, "CrossSubnet") => "IPIPCrossSubnet",
        _ => "None",
    }
    .to_string()
}
