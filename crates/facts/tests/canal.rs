//! Canal is one CNI (calico-node and flannel in one DaemonSet), whatever its layout: upstream's
//! `canal`, RKE2's `rke2-canal` HelmChart (whose flannel writes the node annotations k3s' and
//! RKE2's embedded flannel write too), or a renamed DaemonSet told by its two containers.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use cniswap_model::{CniKind, InstallMethod, PlatformKind};

/// Three nodes of `kubelet` version, annotated as flannel annotates them, and one Canal
/// DaemonSet `name` in kube-system with its agent pods, config and Calico's default pool.
fn canal_cluster(kubelet: &str, name: &str, calico_image: &str, flannel_image: &str) -> String {
    let mut yaml = String::new();
    for i in 0..3 {
        let role = if i == 0 {
            "    node-role.kubernetes.io/control-plane: \"true\"\n"
        } else {
            ""
        };
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  labels:\n{role}    kubernetes.io/hostname: n{i}\n  annotations:\n    flannel.alpha.coreos.com/backend-type: vxlan\n    flannel.alpha.coreos.com/public-ip: 192.168.1.{}\nspec:\n  podCIDR: 10.42.{i}.0/24\nstatus:\n  nodeInfo:\n    osImage: Ubuntu 24.04\n    kubeletVersion: {kubelet}\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n",
            10 + i
        ));
        yaml.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{i}\n  namespace: kube-system\n  labels:\n    k8s-app: canal\n  ownerReferences:\n  - kind: DaemonSet\n    name: {name}\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: calico-node\n    image: {calico_image}\n  - name: kube-flannel\n    image: {flannel_image}\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"));
    }
    yaml.push_str(&format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: kube-system\n  labels:\n    app.kubernetes.io/managed-by: Helm\n  annotations:\n    meta.helm.sh/release-name: {name}\nspec:\n  selector:\n    matchLabels:\n      k8s-app: canal\n  template:\n    metadata:\n      labels:\n        k8s-app: canal\n    spec:\n      containers:\n      - name: calico-node\n        image: {calico_image}\n      - name: kube-flannel\n        image: {flannel_image}\nstatus:\n  desiredNumberScheduled: 3\n  numberReady: 3\n---\n"));
    yaml.push_str(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  namespace: kube-system\ndata:\n  net-conf.json: '{{\"Network\": \"10.42.0.0/16\", \"Backend\": {{\"Type\": \"vxlan\"}}}}'\n---\n"));
    yaml.push_str("apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n  name: default-ipv4-ippool\nspec:\n  cidr: 10.42.0.0/16\n  ipipMode: Never\n  vxlanMode: Never\n");
    yaml
}

fn facts(yaml: &str) -> cniswap_model::Facts {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
    std::fs::write(dir.path().join("cluster/all.yaml"), yaml).unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    cniswap_facts::detect(&snapshot)
}

#[test]
fn a_healthy_rke2_canal_cluster_runs_one_cni_from_its_helmchart() {
    let facts = facts(&canal_cluster(
        "v1.33.2+rke2r1",
        "rke2-canal",
        "rancher/hardened-calico:v3.29.2-build20250306",
        "rancher/hardened-flannel:v0.26.5-build20250306",
    ));
    assert_eq!(facts.platform.kind, PlatformKind::Rke2);
    let kinds: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![CniKind::Canal], "{:#?}", facts.cnis);
    let canal = &facts.cnis[0];
    assert!(canal.running);
    assert_eq!(canal.install, Some(InstallMethod::Bundled));
    assert_eq!(canal.daemonset.as_deref(), Some("rke2-canal"));
    assert_eq!(canal.version.as_deref(), Some("v3.29.2-build20250306"));
    assert_eq!(canal.pod_cidrs, vec!["10.42.0.0/16".to_string()]);
    assert!(
        canal
            .evidence
            .iter()
            .any(|e| e.contains("HelmChart kube-system/rke2-canal")),
        "{:?}",
        canal.evidence
    );
    assert_eq!(canal.active_nodes.len(), 3);
}

#[test]
fn upstream_canal_stays_one_cni_on_every_platform() {
    for kubelet in ["v1.33.2", "v1.33.2+k3s1", "v1.33.2+rke2r1"] {
        let facts = facts(&canal_cluster(
            kubelet,
            "canal",
            "docker.io/calico/node:v3.29.1",
            "quay.io/coreos/flannel:v0.15.1",
        ));
        let kinds: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![CniKind::Canal], "{kubelet}: {:#?}", facts.cnis);
        // Upstream's chart is a Helm release the user owns, not the distribution's.
        assert_eq!(
            facts.cnis[0].install,
            Some(InstallMethod::Helm),
            "{kubelet}"
        );
        assert_eq!(facts.cnis[0].version.as_deref(), Some("v3.29.1"));
    }
}

#[test]
fn a_renamed_canal_is_told_by_its_two_containers() {
    let facts = facts(&canal_cluster(
        "v1.33.2+rke2r1",
        "network-agent",
        "docker.io/calico/node:v3.29.1",
        "docker.io/flannel/flannel:v0.26.1",
    ));
    let kinds: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![CniKind::Canal], "{:#?}", facts.cnis);
    assert_eq!(facts.cnis[0].daemonset.as_deref(), Some("network-agent"));
}

#[test]
fn embedded_flannel_without_canal_is_still_flannel() {
    // The same nodes without the Canal DaemonSet: RKE2's/k3s' own flanneld wrote the annotations.
    let yaml: String = canal_cluster(
        "v1.33.2+k3s1",
        "rke2-canal",
        "rancher/hardened-calico:v3.29.2",
        "rancher/hardened-flannel:v0.26.5",
    )
    .split("---\n")
    .filter(|doc| doc.contains("kind: Node\n"))
    .collect::<Vec<_>>()
    .join("---\n");
    let facts = facts(&yaml);
    let kinds: Vec<CniKind> = facts.cnis.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![CniKind::Flannel], "{:#?}", facts.cnis);
    assert_eq!(facts.cnis[0].install, Some(InstallMethod::Bundled));
}
