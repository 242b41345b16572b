//! Simulated nodes: kwok keeps Node objects Ready and moves their pods to Running with fake IPs
//! (no datapath), so API-level tests and benchmarks can use a thousand nodes on one machine.

use crate::components::Components;
use crate::error::{LabError, Result};
use crate::process::{self, Spawn};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The annotation kwok manages nodes by; real nodes never carry it.
pub const ANNOTATION: &str = "kwok.x-k8s.io/node";

/// kwok's default stages ship inside its Go module (as kwokctl uses them); the lab reads
/// them from the module cache the components were built from.
const STAGES: &[&str] = &[
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
];

fn module_dir(version: &str) -> Result<PathBuf> {
    let out = process::run("go", &["env", "GOMODCACHE"])?;
    let dir = Path::new(out.trim()).join(format!("sigs.k8s.io/kwok@{version}"));
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(LabError::Other(format!(
            "kwok's stages are read from its Go module, but {} is missing: run `go mod download sigs.k8s.io/kwok@{version}` in lab/components/kwok",
            dir.display()
        )))
    }
}

/// Writes kwok's configuration: its options and the default node and pod stages.
pub fn write_config(dir: &Path, version: &str) -> Result<PathBuf> {
    let module = module_dir(version)?;
    let mut text = String::from(
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  manageAllNodes: false\n  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake\n\
         # kwokctl fills these in; a bare kwok needs them set.\n  \
         podPlayStageParallelism: 16\n  nodePlayStageParallelism: 8\n  nodeLeaseParallelism: 4\n  \
         podsOnNodeSyncParallelism: 4\n  enablePodsOnNodeSyncListPager: true\n  \
         enablePodsOnNodeSyncStreamWatch: false\n",
    );
    for stage in STAGES {
        let path = module.join(stage);
        let body = std::fs::read_to_string(&path)
            .map_err(LabError::io(format!("read kwok stage {}", path.display())))?;
        text.push_str("---\n");
        text.push_str(&body);
        if !body.ends_with('\n') {
            text.push('\n');
        }
    }
    let path = dir.join("kwok.yaml");
    std::fs::write(&path, text).map_err(LabError::io(format!("write {}", path.display())))?;
    Ok(path)
}

pub fn start(
    dir: &Path,
    components: &Components,
    kubeconfig: &Path,
    config: &Path,
    port: u16,
) -> Result<(crate::state::ProcessRecord, std::process::Child)> {
    process::spawn(Spawn {
        name: "kwok".into(),
        program: &components.kwok.path,
        args: vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--config={}", config.display()),
            format!("--server-address=127.0.0.1:{port}"),
        ],
        env: vec![],
        log: dir.join("logs/kwok.log"),
        namespaces: None,
        node: None,
    })
}

/// A simulated node, labelled like a worker in one of three zones.
pub fn node(name: &str, index: usize, kubelet_version: &str) -> Value {
    // Addresses from 100.64.0.0/10 (shared address space): never the lab's own networks.
    let address = format!("100.64.{}.{}", index / 250, index % 250 + 1);
    let zone = ["zone-a", "zone-b", "zone-c"][index % 3];
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
            },
        },
        "status": {
            "addresses": [{"type": "InternalIP", "address": address},
                          {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kubeletVersion": kubelet_version,
                "containerRuntimeVersion": "containerd://1.6.20",
            },
        },
    })
}

/// A Deployment whose pods run only on simulated nodes.
pub fn workload(name: &str, replicas: usize, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"type": "kwok"},
                    "containers": [{"name": "app", "image": image}],
                },
            },
        },
    })
}

/// A DaemonSet on every simulated node (taints tolerated), like a CNI's agent.
pub fn daemonset(name: &str, namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"type": "kwok"},
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": name, "image": image}],
                },
            },
        },
    })
}
