use crate::talos::effective;
use cniswap_model::{
    KubernetesFacts, NodeFacts, PlatformFacts, PlatformKind, TalosFacts, VersionCount,
};
use cniswap_snapshot::Snapshot;
use std::collections::BTreeMap;

/// `Talos (v1.10.5)` -> `v1.10.5`.
pub fn talos_version_of_os_image(os_image: &str) -> Option<String> {
    let rest = os_image.strip_prefix("Talos")?;
    let version = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    (!version.is_empty()).then(|| version.to_string())
}

pub fn detect(snapshot: &Snapshot, talos: Option<&TalosFacts>) -> PlatformFacts {
    let nodes = &snapshot.objects.nodes;
    let total = nodes.len();
    let count = |pred: &dyn Fn(&cniswap_snapshot::objects::Node) -> bool| {
        nodes.iter().filter(|n| pred(n)).count()
    };
    let mut facts = PlatformFacts::default();

    let talos_nodes = count(&|n| n.status.node_info.os_image.starts_with("Talos"));
    let k3s_nodes = count(&|n| n.status.node_info.kubelet_version.contains("+k3s"));
    let rke2_nodes = count(&|n| n.status.node_info.kubelet_version.contains("+rke2"));
    let kubeadm_config = snapshot
        .objects
        .config_map("kube-system", "kubeadm-config")
        .is_some();

    if talos_nodes > 0 {
        facts.kind = PlatformKind::Talos;
        facts.evidence.push(format!(
            "node osImage \"Talos (...)\" on {talos_nodes}/{total} nodes"
        ));
        let mut versions: Vec<String> = nodes
            .iter()
            .filter_map(|n| talos_version_of_os_image(&n.status.node_info.os_image))
            .collect();
        versions.sort();
        versions.dedup();
        if versions.len() == 1 {
            facts.version = versions.pop();
        }
    } else if talos.is_some() {
        facts.kind = PlatformKind::Talos;
        facts
            .evidence
            .push("Talos machine configs or patches in the snapshot".to_string());
    } else if k3s_nodes > 0 {
        facts.kind = PlatformKind::K3s;
        facts
            .evidence
            .push(format!("kubelet version +k3s on {k3s_nodes}/{total} nodes"));
    } else if rke2_nodes > 0 {
        facts.kind = PlatformKind::Rke2;
        facts.evidence.push(format!(
            "kubelet version +rke2 on {rke2_nodes}/{total} nodes"
        ));
    } else if kubeadm_config {
        facts.kind = PlatformKind::Kubeadm;
        facts
            .evidence
            .push("ConfigMap kube-system/kubeadm-config".to_string());
    } else {
        facts
            .evidence
            .push("no distribution-specific marker found".to_string());
    }

    if facts.kind == PlatformKind::Talos && facts.version.is_none() {
        let from_templates = snapshot
            .omni_templates
            .iter()
            .find_map(|t| t.talos_version.clone());
        if let Some((v, file)) = effective(talos, |c| c.talos_version.clone()) {
            facts
                .evidence
                .push(format!("Talos version {v} from {file}"));
            facts.version = Some(v);
        } else if let Some(v) = from_templates {
            facts.version = Some(v);
        }
    }

    let omni_labels = count(&|n| {
        n.metadata
            .labels
            .keys()
            .any(|k| k.starts_with("omni.sidero.dev/"))
    });
    if !snapshot.omni_templates.is_empty()
        || snapshot
            .talos
            .iter()
            .any(|t| t.summary.kind.starts_with("omni"))
    {
        facts.omni = true;
        facts
            .evidence
            .push("Omni cluster template or ConfigPatches in the snapshot".to_string());
    } else if omni_labels > 0 {
        facts.omni = true;
        facts.evidence.push(format!(
            "omni.sidero.dev/* labels on {omni_labels}/{total} nodes"
        ));
    }
    facts
}

pub fn kubernetes_versions(nodes: &[NodeFacts]) -> KubernetesFacts {
    let mut kubelet: BTreeMap<&str, usize> = BTreeMap::new();
    let mut talos: BTreeMap<&str, usize> = BTreeMap::new();
    for node in nodes {
        if let Some(v) = &node.kubelet_version {
            *kubelet.entry(v).or_default() += 1;
        }
        if let Some(v) = &node.talos_version {
            *talos.entry(v).or_default() += 1;
        }
    }
    let mut versions: Vec<VersionCount> = kubelet
        .iter()
        .map(|(v, n)| VersionCount {
            version: v.to_string(),
            nodes: *n,
        })
        .collect();
    versions.sort_by(|a, b| b.nodes.cmp(&a.nodes).then(a.version.cmp(&b.version)));
    KubernetesFacts {
        versions,
        mixed_versions: kubelet.len() > 1 || talos.len() > 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talos_os_image() {
        assert_eq!(
            talos_version_of_os_image("Talos (v1.10.5)").as_deref(),
            Some("v1.10.5")
        );
        assert_eq!(talos_version_of_os_image("Ubuntu 24.04"), None);
    }
}
