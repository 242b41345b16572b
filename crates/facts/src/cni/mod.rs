//! One module per CNI. Each finds its agent DaemonSet, configuration and version, and whether
//! its agents run; leftovers without agents are reported as a non-running CNI.

mod calico;
mod cilium;
mod flannel;
mod weave;

use crate::util::{active_nodes, is_helm_managed, not_ready_nodes};
use cniswap_config::talos::image_tag;
use cniswap_model::{CniFacts, CniKind, InstallMethod, PlatformFacts, PlatformKind, TalosFacts};
use cniswap_snapshot::Snapshot;
use cniswap_snapshot::objects::Workload;

pub fn detect(
    snapshot: &Snapshot,
    platform: &PlatformFacts,
    talos: Option<&TalosFacts>,
) -> Vec<CniFacts> {
    let mut cnis = Vec::new();
    cnis.extend(flannel::detect(snapshot, platform, talos));
    cnis.extend(flannel::detect_canal(snapshot, platform));
    cnis.extend(calico::detect(snapshot));
    cnis.extend(cilium::detect(snapshot));
    cnis.extend(weave::detect(snapshot));
    cnis
}

/// Finds the agent DaemonSet by name (any namespace, first match in `names` order).
fn find_daemonset<'a>(snapshot: &'a Snapshot, names: &[&str]) -> Option<&'a Workload> {
    names.iter().find_map(|name| {
        snapshot
            .objects
            .daemonsets
            .iter()
            .find(|d| d.metadata.name == *name)
    })
}

/// Canal is one DaemonSet running calico-node beside flannel (upstream `canal`, RKE2's
/// `rke2-canal`): told by its containers, not only its name.
fn is_canal(ds: &Workload) -> bool {
    let name = ds.metadata.name.as_str();
    name == "canal"
        || name == "rke2-canal"
        || (ds.image_containing("calico").is_some() && ds.image_containing("flannel").is_some())
}

/// The Canal DaemonSet, if the cluster runs one.
fn find_canal(snapshot: &Snapshot) -> Option<&Workload> {
    snapshot.objects.daemonsets.iter().find(|d| is_canal(d))
}

/// Fills what a DaemonSet says about a CNI: namespace, status, version, active nodes, install method.
fn from_daemonset(
    kind: CniKind,
    snapshot: &Snapshot,
    ds: &Workload,
    image_needle: &str,
) -> CniFacts {
    let mut facts = CniFacts::new(kind);
    facts.namespace = ds.metadata.namespace.clone();
    facts.daemonset = Some(ds.metadata.name.clone());
    facts.desired = ds.status.desired_number_scheduled.unwrap_or(0);
    facts.ready = ds.status.number_ready.unwrap_or(0);
    facts.version = ds.image_containing(image_needle).and_then(image_tag);
    facts.active_nodes = active_nodes(&snapshot.objects.pods, ds);
    facts.not_ready_nodes = not_ready_nodes(&snapshot.objects.pods, ds);
    facts.running = facts.ready > 0 || !facts.active_nodes.is_empty();
    facts.install = Some(if is_helm_managed(ds) {
        InstallMethod::Helm
    } else {
        InstallMethod::Manifest
    });
    facts.evidence.push(format!(
        "DaemonSet {} ({}/{} ready{})",
        ds.metadata.qualified(),
        facts.ready,
        facts.desired,
        facts
            .version
            .as_deref()
            .map(|v| format!(", image {v}"))
            .unwrap_or_default()
    ));
    facts
}

fn is_bundled_platform(platform: &PlatformFacts) -> bool {
    matches!(platform.kind, PlatformKind::K3s | PlatformKind::Rke2)
}

/// Parses a port that may be written as a number or a string.
fn port(value: Option<&serde_json::Value>) -> Option<u16> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
